package domain

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// reviewedGrants sets up a program "small" without notice, a 2024 budget of
// 1,000,000 and n reviewed grants of 100,000 each, ready for approval.
func reviewedGrants(t *testing.T, s *Service, n int) []string {
	t.Helper()
	ctx := context.Background()
	must(t)(s.DefineProgram(ctx, DefineProgram{
		Meta: on(admin, "2024-01-02"), ProgramID: "small", Name: "Small grants", Kind: KindTransport,
		Caps: map[string]Money{"B": money(t, "100000")}, Schedule: Schedule{Percentages: decs(t, "100")},
	}))
	appropriate(t, s, "small", 2024, "1000000")
	ids := make([]string, n)
	for i := range ids {
		tid := registerTalent(t, s, "B")
		ids[i] = apply(t, s, tid, "small", "100000")
		must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: ids[i], Decision: "approve"}))
	}
	return ids
}

// approveAll approves every grant concurrently, each through services[i %
// len(services)], and returns how many succeeded, failing the test on any
// error but insufficient funds.
func approveAll(t *testing.T, grants []string, services ...*Service) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(grants))
	start := make(chan struct{})
	for i, id := range grants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = services[i%len(services)].ApproveGrant(context.Background(),
				ApproveGrant{Meta: on(approver, "2024-02-01"), GrantID: id})
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch ErrorCode(err) {
		case "":
			ok++
		case EINSUFFICIENTFUNDS:
		default:
			t.Errorf("approve %s: %v, want success or insufficient_funds", grants[i], err)
		}
	}
	return ok
}

// checkTenApproved checks the outcome of approving 50 grants of 100,000
// against 1,000,000: ten approved, the budget fully and exactly committed,
// and the log agreeing.
func checkTenApproved(t *testing.T, s *Service, grants []string, ok int) {
	t.Helper()
	if ok != 10 {
		t.Errorf("%d approvals succeeded, want 10", ok)
	}
	b := budgetState(t, s, "small", 2024)
	wantMoney(t, "available", b.Available, "0.00")
	wantMoney(t, "committed", b.Committed, "1000000.00")
	if len(b.Grants) != 10 {
		t.Errorf("%d grants hold a reservation, want 10", len(b.Grants))
	}
	approved := 0
	for _, id := range grants {
		if grantState(t, s, id).state == GrantStateApproved {
			approved++
		}
	}
	if approved != 10 {
		t.Errorf("%d grants are approved, want 10", approved)
	}
	if n := countEvents(t, s.Store(), TypeBudgetReserved); n != 10 {
		t.Errorf("%d BudgetReserved events, want 10", n)
	}
	if n := countEvents(t, s.Store(), TypeGrantApproved); n != 10 {
		t.Errorf("%d GrantApproved events, want 10", n)
	}
	// The ledger never shows the available budget below zero.
	bal := ledger(t, s.Store())
	wantMoney(t, "ledger available", bal["budget:small:2024:available"], "0.00")
	verifyChains(t, s.Store())
}

func TestConcurrentApprovalsNeverOverdraw(t *testing.T) {
	s := newTestService(t)
	grants := reviewedGrants(t, s, 50)
	ok := approveAll(t, grants, s)
	checkTenApproved(t, s, grants, ok)
}

// TestConcurrentApprovalsTwoProcesses approves through two services over
// one store, as two processes would: their in-process locks do not see each
// other, so only the store's optimistic concurrency keeps the budget whole.
func TestConcurrentApprovalsTwoProcesses(t *testing.T) {
	s1 := newTestService(t)
	grants := reviewedGrants(t, s1, 50)
	s2 := newServiceOver(s1.Store())
	// Both services have the budget cached before the race starts, so the
	// second writer always holds a stale version.
	budgetState(t, s1, "small", 2024)
	budgetState(t, s2, "small", 2024)
	ok := approveAll(t, grants, s1, s2)
	checkTenApproved(t, newServiceOver(s1.Store()), grants, ok)
}

// TestConcurrentPreparePayment races two clerks preparing the same
// installment, in one process and across two: one payment is prepared, the
// other attempt is a conflict.
func TestConcurrentPreparePayment(t *testing.T) {
	for _, twoProcesses := range []bool{false, true} {
		t.Run(fmt.Sprintf("two_processes=%v", twoProcesses), func(t *testing.T) {
			s := newTestService(t)
			_, grantID := approvedHousing(t, s)
			services := []*Service{s, s}
			if twoProcesses {
				services[1] = newServiceOver(s.Store())
				grantState(t, services[1], grantID) // cache the grant in both
			}
			var wg sync.WaitGroup
			results := make([]Result, 2)
			errs := make([]error, 2)
			for i, who := range []Actor{clerk, clerk2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = services[i].PreparePayment(context.Background(),
						PreparePayment{Meta: on(who, "2024-01-20"), GrantID: grantID, Installment: 1})
				}()
			}
			wg.Wait()
			codes := []string{ErrorCode(errs[0]), ErrorCode(errs[1])}
			if !(codes[0] == "" && codes[1] == ECONFLICT || codes[0] == ECONFLICT && codes[1] == "") {
				t.Fatalf("outcomes %v (%v, %v), want one success and one conflict", codes, errs[0], errs[1])
			}
			if n := countEvents(t, s.Store(), TypePaymentPrepared); n != 1 {
				t.Errorf("%d PaymentPrepared events, want 1", n)
			}
			verifyChains(t, s.Store())
		})
	}
}

func TestNoDoublePayment(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	_, grantID := approvedHousing(t, s)

	p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2024-01-15"), GrantID: grantID, Installment: 1}))
	// A prepared installment cannot be prepared again.
	_, err := s.PreparePayment(ctx, PreparePayment{Meta: on(clerk2, "2024-01-15"), GrantID: grantID, Installment: 1})
	wantCode(t, err, ECONFLICT)
	// Nor can an installment be released before it is approved.
	_, err = s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2024-01-15"), PaymentID: p.ID, BankReference: "B1"})
	wantCode(t, err, ECONFLICT)
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2024-01-15"), PaymentID: p.ID}))
	_, err = s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver2, "2024-01-15"), PaymentID: p.ID})
	wantCode(t, err, ECONFLICT)
	must(t)(s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2024-01-15"), PaymentID: p.ID, BankReference: "B1"}))
	// Released once; releasing again, by anyone, is a conflict.
	_, err = s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer2, "2024-01-16"), PaymentID: p.ID, BankReference: "B2"})
	wantCode(t, err, ECONFLICT)
	// A paid installment cannot be prepared again.
	_, err = s.PreparePayment(ctx, PreparePayment{Meta: on(clerk2, "2024-01-16"), GrantID: grantID, Installment: 1})
	wantCode(t, err, ECONFLICT)
	// Installment 3 is not prepared before installment 2 is paid.
	_, err = s.PreparePayment(ctx, PreparePayment{Meta: on(clerk2, "2026-02-01"), GrantID: grantID, Installment: 3})
	wantCode(t, err, ECONFLICT)
	if n := countEvents(t, s.Store(), TypePaymentReleased); n != 1 {
		t.Errorf("%d PaymentReleased events, want 1", n)
	}
	if g := grantState(t, s, grantID); g.paid.String() != "240000.00" {
		t.Errorf("paid = %s, want 240000.00", g.paid)
	}

	// A failed payment frees the installment for a new attempt.
	p2 := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2025-01-15"), GrantID: grantID, Installment: 2}))
	must(t)(s.FailPayment(ctx, PaymentCommand{Meta: on(treasurer, "2025-01-15"), PaymentID: p2.ID, Reason: "account closed"}))
	_, err = s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2025-01-15"), PaymentID: p2.ID})
	wantCode(t, err, ECONFLICT)
	p3 := payInstallment(t, s, grantID, 2, "2025-01-16")
	if p3 == p2.ID {
		t.Errorf("retry of installment 2 reuses payment ID %s", p3)
	}
	if g := grantState(t, s, grantID); g.paid.String() != "420000.00" {
		t.Errorf("paid = %s, want 420000.00", g.paid)
	}
}

// TestApprovalOfStaleGrantIsUndone approves through a process whose copy of
// the grant predates its rejection elsewhere: the reservation it made is
// released at once, and the approval refused.
func TestApprovalOfStaleGrantIsUndone(t *testing.T) {
	ctx := context.Background()
	s1 := newTestService(t)
	defineHousing(t, s1, "housing", 5)
	appropriate(t, s1, "housing", 2024, "30000000")
	tid := registerTalent(t, s1, "B")
	gid := apply(t, s1, tid, "housing", "600000")
	toNoticeClosed(t, s1, gid)
	s2 := newServiceOver(s1.Store())
	grantState(t, s2, gid) // s2 caches the grant as notice_closed

	must(t)(s1.RejectGrant(ctx, RejectGrant{Meta: on(approver2, "2024-01-15"), GrantID: gid, Reason: "withdrawn"}))
	_, err := s2.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: gid})
	wantCode(t, err, ECONFLICT)
	if st := grantState(t, s2, gid).state; st != GrantStateRejected {
		t.Errorf("state = %s, want rejected", st)
	}
	b := budgetState(t, newServiceOver(s1.Store()), "housing", 2024)
	wantMoney(t, "available", b.Available, "30000000.00")
	if n := countGrantEvents(t, s1.Store(), TypeGrantApproved, gid); n != 0 {
		t.Errorf("%d GrantApproved for a rejected grant", n)
	}
	// The reservation in 2024 and the forward commitments on 2025 and 2026
	// are all given back.
	r := countGrantEvents(t, s1.Store(), TypeBudgetReserved, gid) + countGrantEvents(t, s1.Store(), TypeForwardCommitted, gid)
	if u := countGrantEvents(t, s1.Store(), TypeBudgetReservationReleased, gid); r != u {
		t.Errorf("%d reservations and commitments, %d releases", r, u)
	}
	bal := ledger(t, s1.Store())
	for _, acct := range []string{"budget:housing:2025:uncovered", "budget:housing:2026:uncovered"} {
		wantMoney(t, acct, bal[acct], "0.00")
	}
	verifyChains(t, s1.Store())
}

// TestDoubleApprovalAcrossProcesses has two approvers in two processes
// approve the same grant: it is approved and reserved once.
func TestDoubleApprovalAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	s1 := newTestService(t)
	defineHousing(t, s1, "housing", 5)
	appropriate(t, s1, "housing", 2024, "30000000")
	tid := registerTalent(t, s1, "B")
	gid := apply(t, s1, tid, "housing", "600000")
	toNoticeClosed(t, s1, gid)
	s2 := newServiceOver(s1.Store())
	grantState(t, s2, gid)

	must(t)(s1.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: gid}))
	_, err := s2.ApproveGrant(ctx, ApproveGrant{Meta: on(approver2, "2024-01-15"), GrantID: gid})
	wantCode(t, err, ECONFLICT)
	if n := countGrantEvents(t, s1.Store(), TypeBudgetReserved, gid); n != 1 {
		t.Errorf("%d BudgetReserved, want 1", n)
	}
	if n := countGrantEvents(t, s1.Store(), TypeGrantApproved, gid); n != 1 {
		t.Errorf("%d GrantApproved, want 1", n)
	}
	wantMoney(t, "committed", budgetState(t, s2, "housing", 2024).Committed, "240000.00")

	// Concurrently, with distinct commands, through both processes.
	gid2 := apply(t, s1, registerTalent(t, s1, "B"), "housing", "100000")
	toNoticeClosed(t, s1, gid2)
	grantState(t, s2, gid2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, svc := range []*Service{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = svc.ApproveGrant(ctx, ApproveGrant{Meta: on([]Actor{approver, approver2}[i], "2024-01-16"), GrantID: gid2})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Errorf("outcomes %v, %v; want exactly one approval", errs[0], errs[1])
	}
	if n := countGrantEvents(t, s1.Store(), TypeGrantApproved, gid2); n != 1 {
		t.Errorf("%d GrantApproved, want 1", n)
	}
	wantMoney(t, "committed", budgetState(t, newServiceOver(s1.Store()), "housing", 2024).Committed, "280000.00")
	ledger(t, s1.Store())
	verifyChains(t, s1.Store())
}
