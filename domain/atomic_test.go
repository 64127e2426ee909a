package domain

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// newAtomicService returns a sole writer over a fresh embedded store, which
// appends to several streams at once: the path of atomic.go.
func newAtomicService(t *testing.T) (*Service, *pebble.Store) {
	s, st, _ := newCountedAtomicService(t)
	return s, st
}

// newCountedAtomicService is newAtomicService with a count of the calls
// that append to the store.
func newCountedAtomicService(t *testing.T) (*Service, *pebble.Store, *atomic.Int64) {
	t.Helper()
	var appends atomic.Int64
	st, err := pebble.Open(t.TempDir(), pebble.WithObserver(pebble.Observer{
		Append: func(time.Duration, error) { appends.Add(1) },
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := newServiceOver(st, WithSoleWriter())
	if s.repo.multi() == nil {
		t.Fatal("the embedded store's sole writer does not append to several streams at once")
	}
	return s, st, &appends
}

// wantRun checks that the log holds events of these types, in this order,
// at consecutive positions: what one atomic append writes.
func wantRun(t *testing.T, log []eventstore.Event, types ...string) {
	t.Helper()
	for i := range log {
		if typeName(log[i].Type) != types[0] {
			continue
		}
		ok := i+len(types) <= len(log)
		for j := 1; ok && j < len(types); j++ {
			e := log[i+j]
			ok = typeName(e.Type) == types[j] && e.Position.Commit == log[i].Position.Commit+uint64(j)
		}
		if ok {
			return
		}
	}
	t.Errorf("no run of %v at consecutive positions in the log", types)
}

// TestAtomicApprovalAndRelease: on a store that appends to several streams
// at once, an approval's entitlement, reservation, forward commitments and
// approval are one append, in that order, as are a release's charge and
// release; the sole writer's cached states are what the log holds, the
// hash chains hold, and a retry writes nothing.
func TestAtomicApprovalAndRelease(t *testing.T) {
	ctx := context.Background()
	s, st, appends := newCountedAtomicService(t)
	_, gid := approvedHousing(t, s)
	p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2024-01-15"), GrantID: gid, Installment: 1}))
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2024-01-15"), PaymentID: p.ID}))
	before := appends.Load()
	must(t)(s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2024-01-15"), PaymentID: p.ID, BankReference: "B1"}))
	if n := appends.Load() - before; n != 1 {
		t.Errorf("the release took %d appends, want 1", n)
	}
	log := readAll(t, st)
	wantRun(t, log, TypeEntitlementReserved, TypeBudgetReserved, TypeForwardCommitted, TypeForwardCommitted, TypeGrantApproved)
	wantRun(t, log, TypePaymentCharged, TypePaymentReleased)
	if n := countEvents(t, st, TypeEntitlementReleased, TypeBudgetReservationReleased, TypePaymentChargeReversed); n != 0 {
		t.Errorf("%d events undoing a step; want none", n)
	}

	// Retries answer as the first time and write nothing.
	m := withID(on(approver, "2025-01-15"), "approve-again")
	g2 := apply(t, s, registerTalent(t, s, "B"), "housing", "300000")
	toNoticeClosed(t, s, g2)
	before = appends.Load()
	first := must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: m, GrantID: g2}))
	if n := appends.Load() - before; n != 1 {
		t.Errorf("the approval took %d appends, want 1", n)
	}
	n := countEvents(t, st)
	again := must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: m, GrantID: g2}))
	if again.Position != first.Position || countEvents(t, st) != n {
		t.Errorf("retried approval answered %+v after %+v; the log went from %d to %d events", again, first, n, countEvents(t, st))
	}

	fresh := newServiceOver(st)
	for _, g := range []string{gid, g2} {
		if got, want := jsonString(t, grantState(t, s, g).approval), jsonString(t, grantState(t, fresh, g).approval); got != want {
			t.Errorf("grant %s: cached approval %s, the log's %s", g, got, want)
		}
		wantGrantMoneyAddsUp(t, fresh, g, "after atomic appends")
	}
	for _, fy := range []int{2024, 2025, 2026} {
		if got, want := budgetState(t, s, "housing", fy), budgetState(t, fresh, "housing", fy); jsonString(t, got) != jsonString(t, want) {
			t.Errorf("%d: cached budget %+v, the log's %+v", fy, got, want)
		}
	}
	wantMoney(t, "paid in 2024", budgetState(t, fresh, "housing", 2024).Paid, "240000.00")
	ledger(t, st)
	verifyChains(t, st)
}

// TestAtomicConcurrentApprovalsAcrossYears: 50 approvals at once whose
// current-year shares exceed the budget never overdraw it, and a refused
// one writes nothing, so nothing has to be undone.
func TestAtomicConcurrentApprovalsAcrossYears(t *testing.T) {
	ctx := context.Background()
	s, st := newAtomicService(t)
	must(t)(s.DefineProgram(ctx, DefineProgram{
		Meta: on(admin, "2024-01-02"), ProgramID: "split", Name: "Split grants", Kind: KindTransport,
		Caps: map[string]Money{"B": money(t, "100000")}, Schedule: Schedule{Percentages: decs(t, "50", "50"), IntervalMonths: 12},
	}))
	appropriate(t, s, "split", 2024, "1000000")
	appropriateOn(t, s, "split", 2025, "600000", "2024-01-02")
	grants := make([]string, 50)
	for i := range grants {
		grants[i] = apply(t, s, registerTalent(t, s, "B"), "split", "100000")
		must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: grants[i], Decision: "approve"}))
	}
	if ok := approveAll(t, grants, s); ok != 20 {
		t.Errorf("%d approvals succeeded, want 20", ok)
	}
	fresh := newServiceOver(st)
	wantMoney(t, "2024 available", budgetState(t, fresh, "split", 2024).Available, "0.00")
	b25 := budgetState(t, fresh, "split", 2025)
	wantMoney(t, "2025 committed", b25.Committed, "600000.00")
	wantMoney(t, "2025 uncovered", b25.Uncovered, "400000.00")
	for typ, want := range map[string]int{TypeEntitlementReserved: 20, TypeBudgetReserved: 20, TypeForwardCommitted: 20,
		TypeGrantApproved: 20, TypeEntitlementReleased: 0, TypeBudgetReservationReleased: 0} {
		if n := countEvents(t, st, typ); n != want {
			t.Errorf("%d %s, want %d", n, typ, want)
		}
	}
	bal := ledger(t, st)
	wantMoney(t, "ledger available", bal["budget:split:2024:available"], "0.00")
	verifyChains(t, st)
}

// TestAtomicApprovalContinuesAnInterruptedOne: an approval interrupted
// between its appends (written stream by stream, by an earlier release of
// the ledger or a store without multi-stream appends) is continued by its
// retry on the stepwise path, and reserves nothing twice.
func TestAtomicApprovalContinuesAnInterruptedOne(t *testing.T) {
	ctx := context.Background()
	s, st := newAtomicService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriateOn(t, s, "housing", 2025, "30000000", "2024-01-02")
	appropriateOn(t, s, "housing", 2026, "30000000", "2024-01-02")
	gid := apply(t, s, registerTalent(t, s, "B"), "housing", "600000")
	toNoticeClosed(t, s, gid)
	crashAfterReservation(t, s, gid, "approve-crash", "2024-01-15")
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: withID(on(approver, "2024-01-15"), "approve-crash"), GrantID: gid}))
	fresh := newServiceOver(st)
	if g := grantState(t, fresh, gid); g.state != GrantStateApproved {
		t.Fatalf("grant is %s, want approved", g.state)
	}
	for typ, want := range map[string]int{TypeEntitlementReserved: 1, TypeBudgetReserved: 1, TypeGrantApproved: 1} {
		if n := countGrantEvents(t, st, typ, gid); n != want {
			t.Errorf("%d %s, want %d", n, typ, want)
		}
	}
	wantGrantMoneyAddsUp(t, fresh, gid, "after the continued approval")
	verifyChains(t, st)
}

// TestAtomicReleaseAfterAnotherWriter: when the store holds what the sole
// writer did not write (its promise broken, or an interrupted charge of an
// earlier attempt), the combined append fails on its version, writes
// nothing, and the command is carried out stream by stream on the stored
// state.
func TestAtomicReleaseAfterAnotherWriter(t *testing.T) {
	ctx := context.Background()
	s, st := newAtomicService(t)
	_, gid := approvedHousing(t, s)
	p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2024-01-15"), GrantID: gid, Installment: 1}))
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2024-01-15"), PaymentID: p.ID}))
	budgetState(t, s, "housing", 2024) // cached
	// Another writer appropriates more to the budget behind s's back.
	appropriateOn(t, newServiceOver(st), "housing", 2024, "1000", "2024-01-15")
	must(t)(s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2024-01-15"), PaymentID: p.ID, BankReference: "B1"}))
	fresh := newServiceOver(st)
	b := budgetState(t, fresh, "housing", 2024)
	wantMoney(t, "paid", b.Paid, "240000.00")
	wantMoney(t, "appropriated", b.Appropriated, "30001000.00")
	if st := grantState(t, fresh, gid).payments[p.ID].state; st != PaymentStateReleased {
		t.Errorf("payment is %s, want released", st)
	}
	if n := countGrantEvents(t, st, TypePaymentCharged, gid); n != 1 {
		t.Errorf("%d PaymentCharged, want 1", n)
	}
	wantGrantMoneyAddsUp(t, fresh, gid, "after the release")
	verifyChains(t, st)
}
