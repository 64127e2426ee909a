package domain

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"talentledger/eventstore"
)

// grantMoney sums, over every fiscal year a grant's installments are
// charged to, what the budgets hold of it: reserved (covered or not) and
// paid, net of what was released.
func grantMoney(t testing.TB, s *Service, grantID string) Money {
	t.Helper()
	g := grantState(t, s, grantID)
	sum := Zero
	for _, y := range budgetYears(g.approval, Today(s.now())) {
		err := s.repo.view(context.Background(), streamBudget(g.approval.ProgramID, y), newBudget, func(e *entry) error {
			if r := e.agg.(*budget).reservations[grantID]; r != nil {
				sum = sum.Add(r.amount.Sub(r.released))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return sum
}

// wantGrantMoneyAddsUp checks that what the budgets hold of a grant, over
// all years, is its award less its cancelled installments.
func wantGrantMoneyAddsUp(t testing.TB, s *Service, grantID, when string) {
	t.Helper()
	g := grantState(t, s, grantID)
	want := g.approval.Amount
	if g.termination != nil {
		for _, n := range g.termination.Cancelled {
			want = want.Sub(g.approval.Installments[n-1].Amount)
		}
	}
	if got := grantMoney(t, s, grantID); got.Cmp(want) != 0 {
		t.Errorf("%s: the budgets hold %s of grant %s over all years, want %s", when, got, grantID, want)
	}
}

// TestInstallmentsChargedToTheYearTheyFallDue: an approval reserves only
// the current year's installments; later years' are forward commitments,
// covered when their budget can take them, and a payment is charged to
// the budget of the year of its release.
func TestInstallmentsChargedToTheYearTheyFallDue(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	toNoticeClosed(t, s, gid)
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: gid}))

	a := grantState(t, s, gid).approval
	if got := fmt.Sprint(a.Years); got != "[{2024 240000.00 [1]} {2025 180000.00 [2]} {2026 180000.00 [3]}]" {
		t.Errorf("years = %s", got)
	}
	wantMoney(t, "2024 committed", budgetState(t, s, "housing", 2024).Committed, "240000.00")
	bal := ledger(t, s.Store())
	wantMoney(t, "2025 uncovered", bal["budget:housing:2025:uncovered"], "180000.00")
	wantMoney(t, "2026 uncovered", bal["budget:housing:2026:uncovered"], "180000.00")
	wantGrantMoneyAddsUp(t, s, gid, "after approval")

	payInstallment(t, s, gid, 1, "2024-01-15")
	wantMoney(t, "2024 paid", budgetState(t, s, "housing", 2024).Paid, "240000.00")

	// 2025 has no budget: installment 2 is not reserved anywhere it could
	// be paid from, and its release is refused, appending nothing.
	p2 := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2025-01-15"), GrantID: gid, Installment: 2}))
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2025-01-15"), PaymentID: p2.ID}))
	before := countEvents(t, s.Store())
	_, err := s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2025-01-15"), PaymentID: p2.ID, BankReference: "B2"})
	wantCode(t, err, ENOTRESERVED)
	if after := countEvents(t, s.Store()); after != before {
		t.Errorf("a refused release appended %d events", after-before)
	}

	// An appropriation too small for the commitment leaves it flagged.
	must(t)(s.AppropriateBudget(ctx, AppropriateBudget{Meta: on(approver, "2025-01-16"), ProgramID: "housing", FiscalYear: 2025, Amount: money(t, "100000")}))
	b := budgetState(t, s, "housing", 2025)
	wantMoney(t, "2025 uncovered with 100,000 appropriated", b.Uncovered, "180000.00")
	wantMoney(t, "2025 committed with 100,000 appropriated", b.Committed, "0.00")
	_, err = s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2025-01-16"), PaymentID: p2.ID, BankReference: "B2"})
	wantCode(t, err, ENOTRESERVED)
	// Another appropriation covers it.
	must(t)(s.AppropriateBudget(ctx, AppropriateBudget{Meta: on(approver, "2025-01-17"), ProgramID: "housing", FiscalYear: 2025, Amount: money(t, "200000")}))
	b = budgetState(t, s, "housing", 2025)
	wantMoney(t, "2025 uncovered", b.Uncovered, "0.00")
	wantMoney(t, "2025 committed", b.Committed, "180000.00")
	if n := countGrantEvents(t, s.Store(), TypeForwardCommitmentCovered, gid); n != 1 {
		t.Errorf("%d ForwardCommitmentCovered, want 1", n)
	}
	must(t)(s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2025-01-17"), PaymentID: p2.ID, BankReference: "B2"}))
	// Paid in 2025, charged to 2025: 2024's execution shows only 2024's
	// payment.
	wantMoney(t, "2024 paid", budgetState(t, s, "housing", 2024).Paid, "240000.00")
	wantMoney(t, "2025 paid", budgetState(t, s, "housing", 2025).Paid, "180000.00")
	if g := grantState(t, s, gid); g.payments[p2.ID].chargedTo != 2025 {
		t.Errorf("installment 2 charged to %d, want 2025", g.payments[p2.ID].chargedTo)
	}
	bal = ledger(t, s.Store())
	wantMoney(t, "2025 encumbered", bal["budget:housing:2025:encumbered"], "0.00")
	wantMoney(t, "2025 available", bal["budget:housing:2025:available"], "120000.00")
	wantGrantMoneyAddsUp(t, s, gid, "after two payments")
}

// TestLatePaymentIsNotChargedToAnotherYear: an installment falling due in
// 2024 and left unpaid is reserved in 2024; a release in 2025 is charged
// to 2025, which does not hold it, and is refused.
func TestLatePaymentIsNotChargedToAnotherYear(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriateOn(t, s, "housing", 2025, "30000000", "2024-01-02")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	toNoticeClosed(t, s, gid)
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-12-20"), GrantID: gid}))
	p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2024-12-30"), GrantID: gid, Installment: 1}))
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2024-12-31"), PaymentID: p.ID}))
	// The bank pays on 2 January by the server's clock, whatever business
	// date the treasurer records.
	testClock.setDate("2025-01-02")
	_, err := s.ReleasePayment(ctx, PaymentCommand{Meta: CommandMeta{Actor: treasurer, EffectiveDate: "2024-12-31"}, PaymentID: p.ID, BankReference: "B1"})
	wantCode(t, err, ENOTRESERVED)
	wantMoney(t, "2024 paid", budgetState(t, s, "housing", 2024).Paid, "0.00")
	wantMoney(t, "2025 paid", budgetState(t, s, "housing", 2025).Paid, "0.00")
	wantGrantMoneyAddsUp(t, s, gid, "after the refused release")
	ledger(t, s.Store())
}

// TestPaymentChargedByServerClock: an approval backdated over the new year
// charges the installment due in the old year to the new one, and its
// release, backdated too, is charged to the year of the server's date.
func TestPaymentChargedByServerClock(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 0)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriate(t, s, "housing", 2025, "30000000")
	gid := apply(t, s, registerTalent(t, s, "B"), "housing", "600000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-12-20"), GrantID: gid, Decision: "approve"}))
	testClock.setDate("2025-01-02")
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: CommandMeta{Actor: approver, EffectiveDate: "2024-12-30"}, GrantID: gid}))
	p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: CommandMeta{Actor: clerk, EffectiveDate: "2024-12-30"}, GrantID: gid, Installment: 1}))
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: CommandMeta{Actor: approver, EffectiveDate: "2024-12-31"}, PaymentID: p.ID}))
	testClock.setDate("2025-01-03")
	must(t)(s.ReleasePayment(ctx, PaymentCommand{Meta: CommandMeta{Actor: treasurer, EffectiveDate: "2024-12-31"}, PaymentID: p.ID, BankReference: "B1"}))
	if y := grantState(t, s, gid).payments[p.ID].chargedTo; y != 2025 {
		t.Errorf("charged to %d, want 2025, the year of the server's date", y)
	}
	wantMoney(t, "2024 paid", budgetState(t, s, "housing", 2024).Paid, "0.00")
	wantMoney(t, "2025 paid", budgetState(t, s, "housing", 2025).Paid, "240000.00")
	ledger(t, s.Store())
}

// TestForwardCommitmentsCoveredInApprovalOrder: an appropriation covers
// the year's forward commitments in the order the approvals were made, up
// to the first it cannot cover; that one and every later one stay
// flagged, even one small enough to fit, until more is appropriated.
func TestForwardCommitmentsCoveredInApprovalOrder(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	var grants []string
	for i, amount := range []string{"600000", "400000", "40000"} {
		gid := apply(t, s, registerTalent(t, s, "B"), "housing", amount)
		toNoticeClosed(t, s, gid)
		must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, fmt.Sprintf("2024-02-%02d", i+1)), GrantID: gid}))
		grants = append(grants, gid)
	}
	// 2025 shares: 180,000, 120,000 and 12,000. 200,000 covers the first;
	// the second does not fit, so the third waits behind it.
	must(t)(s.AppropriateBudget(ctx, AppropriateBudget{Meta: on(approver, "2024-12-01"), ProgramID: "housing", FiscalYear: 2025, Amount: money(t, "200000")}))
	b := budgetState(t, s, "housing", 2025)
	wantMoney(t, "committed", b.Committed, "180000.00")
	wantMoney(t, "uncovered", b.Uncovered, "132000.00")
	for i, want := range []int{1, 0, 0} {
		if n := countGrantEvents(t, s.Store(), TypeForwardCommitmentCovered, grants[i]); n != want {
			t.Errorf("grant %d: %d ForwardCommitmentCovered, want %d", i+1, n, want)
		}
	}
	// A new approval while earlier commitments are uncovered joins the
	// queue behind them, even though the budget could take it.
	late := apply(t, s, registerTalent(t, s, "B"), "housing", "10000")
	toNoticeClosed(t, s, late)
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-12-02"), GrantID: late}))
	wantMoney(t, "uncovered after a late approval", budgetState(t, s, "housing", 2025).Uncovered, "135000.00")

	must(t)(s.AppropriateBudget(ctx, AppropriateBudget{Meta: on(approver, "2024-12-03"), ProgramID: "housing", FiscalYear: 2025, Amount: money(t, "150000")}))
	b = budgetState(t, s, "housing", 2025)
	wantMoney(t, "committed", b.Committed, "315000.00")
	wantMoney(t, "uncovered", b.Uncovered, "0.00")
	wantMoney(t, "available", b.Available, "35000.00")
	// Once nothing waits, a new approval's commitment is covered at once.
	next := apply(t, s, registerTalent(t, s, "B"), "housing", "10000")
	toNoticeClosed(t, s, next)
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-12-04"), GrantID: next}))
	wantMoney(t, "committed after a covered approval", budgetState(t, s, "housing", 2025).Committed, "318000.00")
	for _, g := range append(grants, late, next) {
		wantGrantMoneyAddsUp(t, s, g, "after the appropriations")
	}
	ledger(t, s.Store())
	verifyChains(t, s.Store())
}

// TestGrantMoneyAddsUpAcrossYears follows one grant through payments in
// two years, a reversal, a termination and a clawback: at every step the
// budgets of all years hold exactly its award less what was cancelled.
func TestGrantMoneyAddsUpAcrossYears(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	tid, gid := approvedHousing(t, s)
	wantGrantMoneyAddsUp(t, s, gid, "after approval")
	p1 := payInstallment(t, s, gid, 1, "2024-01-15")
	wantGrantMoneyAddsUp(t, s, gid, "after the first payment")
	must(t)(s.ReversePayment(ctx, PaymentCommand{Meta: on(treasurer2, "2024-01-16"), PaymentID: p1, Reason: "wrong account"}))
	wantGrantMoneyAddsUp(t, s, gid, "after the reversal")
	wantMoney(t, "2024 paid after the reversal", budgetState(t, s, "housing", 2024).Paid, "0.00")
	payInstallment(t, s, gid, 1, "2024-01-17")
	payInstallment(t, s, gid, 2, "2025-01-15")
	wantGrantMoneyAddsUp(t, s, gid, "after the second payment")
	must(t)(s.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2025-06-01"), TalentID: tid, DepartureDate: "2025-05-31"}))
	must(t)(s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2025-06-02"), GrantID: gid}))
	wantGrantMoneyAddsUp(t, s, gid, "after the termination")
	g := grantState(t, s, gid)
	if got := fmt.Sprint(g.termination.Releases); got != "[{2026 180000.00 [3]}]" {
		t.Errorf("releases = %s", got)
	}
	wantMoney(t, "2026 committed after the termination", budgetState(t, s, "housing", 2026).Committed, "0.00")
	must(t)(s.RecordRecovery(ctx, RecoveryCommand{Meta: on(treasurer, "2025-06-10"), GrantID: gid, Amount: g.outstanding(), BankReference: "R1"}))
	wantGrantMoneyAddsUp(t, s, gid, "after the clawback is recovered")
	ledger(t, s.Store())
	verifyChains(t, s.Store())
}

// TestReleaseInterruptedAfterCharge stops the process between a payment's
// charge to its budget and its release on the grant: Reconcile (or a
// retry) completes the release as the treasurer decided it, once; a
// reversal interrupted the same way is completed too.
func TestReleaseInterruptedAfterCharge(t *testing.T) {
	for _, how := range []string{"reconcile", "retry"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			fs := &faultStore{Store: newTestStore(t)}
			s := newServiceOver(fs)
			_, gid := approvedHousing(t, s)
			p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2024-01-15"), GrantID: gid, Installment: 1}))
			must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2024-01-15"), PaymentID: p.ID}))
			fs.onAppend = failOnce(TypePaymentReleased)
			release := func() (Result, error) {
				return s.ReleasePayment(ctx, PaymentCommand{Meta: withID(on(treasurer, "2024-01-15"), "release-1"), PaymentID: p.ID, BankReference: "B1"})
			}
			if _, err := release(); err == nil {
				t.Fatal("the release did not stop")
			}
			r := newServiceOver(fs.Store)
			wantMoney(t, "paid from the budget after the crash", budgetState(t, r, "housing", 2024).Paid, "240000.00")
			if st := grantState(t, r, gid).payments[p.ID].state; st != PaymentStateApproved {
				t.Fatalf("payment after the crash is %s, want approved", st)
			}
			if how == "reconcile" {
				reconcile(t, r, gid, 1)
				reconcileAgain(t, r, gid)
			} else {
				must(t)(release())
				before := countEvents(t, fs)
				must(t)(release())
				if after := countEvents(t, fs); after != before {
					t.Errorf("a second retry wrote %d events", after-before)
				}
			}
			if n := countGrantEvents(t, fs, TypePaymentReleased, gid); n != 1 {
				t.Errorf("%d PaymentReleased, want 1", n)
			}
			for _, ev := range readAll(t, fs) {
				if ev.Type == TypePaymentReleased && ev.Metadata.Principal != treasurer.Principal {
					t.Errorf("release recorded as %s's, want the treasurer's", ev.Metadata.Principal)
				}
			}
			r2 := newServiceOver(fs)
			if st := grantState(t, r2, gid).payments[p.ID].state; st != PaymentStateReleased {
				t.Errorf("payment is %s, want released", st)
			}

			// A reversal stopped between the budget and the grant.
			fs.onAppend = failOnce(TypePaymentReversed)
			if _, err := r2.ReversePayment(ctx, PaymentCommand{Meta: on(treasurer2, "2024-01-16"), PaymentID: p.ID, Reason: "wrong account"}); err == nil {
				t.Fatal("the reversal did not stop")
			}
			r3 := newServiceOver(fs.Store)
			wantMoney(t, "paid from the budget after the second crash", budgetState(t, r3, "housing", 2024).Paid, "0.00")
			reconcile(t, r3, gid, 1)
			reconcileAgain(t, r3, gid)
			if st := grantState(t, r3, gid).payments[p.ID].state; st != PaymentStateReversed {
				t.Errorf("payment is %s, want reversed", st)
			}
			wantGrantMoneyAddsUp(t, r3, gid, "after reconciling")
			ledger(t, fs)
			verifyChains(t, fs)
		})
	}
}

// TestChargeUndoneWhenTheReleaseCannotBeRecorded: another process failed
// the payment between this one's charge and its release; the charge is
// taken back.
func TestChargeUndoneWhenTheReleaseCannotBeRecorded(t *testing.T) {
	ctx := context.Background()
	fs := &faultStore{Store: newTestStore(t)}
	s1 := newServiceOver(fs)
	_, gid := approvedHousing(t, s1)
	p := must(t)(s1.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2024-01-15"), GrantID: gid, Installment: 1}))
	must(t)(s1.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2024-01-15"), PaymentID: p.ID}))
	s2 := newServiceOver(fs.Store)
	grantState(t, s1, gid) // s1 caches the approved payment
	// Once s1 has charged the budget, s2 fails the payment.
	var failed bool
	fs.onAppend = func(stream string, events []eventstore.EventData) error {
		if !failed && events[0].Type == TypePaymentReleased {
			failed = true
			must(t)(s2.FailPayment(ctx, PaymentCommand{Meta: on(treasurer2, "2024-01-15"), PaymentID: p.ID, Reason: "account closed"}))
		}
		return nil
	}
	_, err := s1.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2024-01-15"), PaymentID: p.ID, BankReference: "B1"})
	wantCode(t, err, ECONFLICT)
	wantMoney(t, "paid from the budget", budgetState(t, newServiceOver(fs.Store), "housing", 2024).Paid, "0.00")
	if n := countGrantEvents(t, fs, TypePaymentChargeReversed, gid); n != 1 {
		t.Errorf("%d PaymentChargeReversed, want 1", n)
	}
	wantGrantMoneyAddsUp(t, newServiceOver(fs.Store), gid, "after the undone charge")
	ledger(t, fs)
}

// TestConcurrentApprovalsAcrossYears: 50 approvals through two processes
// whose current-year shares exceed the budget never overdraw it; every
// approved grant's later shares are recorded as forward commitments,
// covered while the next year's budget lasts and flagged after, none
// dropped.
func TestConcurrentApprovalsAcrossYears(t *testing.T) {
	ctx := context.Background()
	s1 := newTestService(t)
	s2 := newServiceOver(s1.Store())
	must(t)(s1.DefineProgram(ctx, DefineProgram{
		Meta: on(admin, "2024-01-02"), ProgramID: "split", Name: "Split grants", Kind: KindTransport,
		Caps: map[string]Money{"B": money(t, "100000")}, Schedule: Schedule{Percentages: decs(t, "50", "50"), IntervalMonths: 12},
	}))
	// 2024 takes 20 first halves of 50,000; 2025 covers 12 second halves.
	appropriate(t, s1, "split", 2024, "1000000")
	appropriateOn(t, s1, "split", 2025, "600000", "2024-01-02")
	grants := make([]string, 50)
	for i := range grants {
		grants[i] = apply(t, s1, registerTalent(t, s1, "B"), "split", "100000")
		must(t)(s1.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: grants[i], Decision: "approve"}))
	}
	ok := approveAll(t, grants, s1, s2)
	if ok != 20 {
		t.Errorf("%d approvals succeeded, want 20", ok)
	}
	b24 := budgetState(t, s1, "split", 2024)
	wantMoney(t, "2024 available", b24.Available, "0.00")
	b25 := budgetState(t, s1, "split", 2025)
	wantMoney(t, "2025 committed", b25.Committed, "600000.00")
	wantMoney(t, "2025 uncovered", b25.Uncovered, "400000.00")
	if n := countEvents(t, s1.Store(), TypeForwardCommitted); n != 20 {
		t.Errorf("%d forward commitments, want 20", n)
	}
	for _, g := range grants {
		if grantState(t, s1, g).approval != nil {
			wantGrantMoneyAddsUp(t, s1, g, "after the concurrent approvals")
		}
	}
	ledger(t, s1.Store())
	verifyChains(t, s1.Store())
}

// closeMeta is the meta of a year-end close request or confirmation.
func closeMeta(a Actor, date string) CommandMeta {
	m := on(a, date)
	m.Reason, m.DocumentRef = "year-end close of the housing budget", "PHCZ-JZ-"+date
	return m
}

// yearEndBooks sets up housing budgets for 2024 and 2025 and, in December
// 2024, two approved grants whose first installments are due and unpaid
// and one paid: the state a year-end close meets.
func yearEndBooks(t *testing.T, s *Service) (carried, lapsed, paid string) {
	t.Helper()
	ctx := context.Background()
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriateOn(t, s, "housing", 2025, "30000000", "2024-01-02")
	var gs []string
	for _, amount := range []string{"600000", "350000", "150000"} {
		gid := apply(t, s, registerTalent(t, s, "B"), "housing", amount)
		toNoticeClosed(t, s, gid)
		gs = append(gs, gid)
	}
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-12-02"), GrantID: gs[0]}))
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-12-03"), GrantID: gs[1]}))
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-12-04"), GrantID: gs[2]}))
	payInstallment(t, s, gs[2], 1, "2024-12-05")
	return gs[0], gs[1], gs[2]
}

// TestYearEndClose: a year closes only after it ended, on one approver's
// request and another's confirmation; an unpaid reservation is carried
// over as the next year's carried-over funds or lapses and is committed to
// the next year; nothing is reserved in, paid from or appropriated to the
// closed year; and a grant's money adds up over the years throughout.
func TestYearEndClose(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	carried, lapsed, paid := yearEndBooks(t, s)
	req := YearEndCommand{ProgramID: "housing", FiscalYear: 2024,
		CarryOver: []CarryOver{{GrantID: carried, Reason: "the talent's purchase contract was signed on 30 December"}}}

	req.Meta = closeMeta(approver, "2024-12-31")
	_, err := s.RequestYearEndClose(ctx, req)
	wantCode(t, err, ECONFLICT) // the year has not ended
	req.Meta = on(approver, "2025-01-06")
	_, err = s.RequestYearEndClose(ctx, req)
	wantCode(t, err, EINVALID) // no reason or document
	req.Meta = closeMeta(approver, "2025-01-06")
	// Nothing of the paid grant is left to carry over.
	bad := req
	bad.CarryOver = []CarryOver{{GrantID: paid, Reason: "by mistake"}}
	_, err = s.RequestYearEndClose(ctx, bad)
	wantCode(t, err, ECONFLICT)
	must(t)(s.RequestYearEndClose(ctx, req))
	_, err = s.ConfirmYearEndClose(ctx, YearEndCommand{Meta: closeMeta(approver, "2025-01-06"), ProgramID: "housing", FiscalYear: 2024})
	wantCode(t, err, ESEGREGATION)

	// Before the close, 2024 holds the three first installments, one paid:
	// 240,000 + 140,000 + 60,000.
	b := budgetState(t, s, "housing", 2024)
	wantMoney(t, "2024 committed before the close", b.Committed, "440000.00")
	must(t)(s.ConfirmYearEndClose(ctx, YearEndCommand{Meta: closeMeta(approver2, "2025-01-07"), ProgramID: "housing", FiscalYear: 2024}))

	// 2024 keeps what it paid; the lapsed installment's 140,000 is back in
	// its available budget; the carried 240,000 left with its reservation.
	b = budgetState(t, s, "housing", 2024)
	wantMoney(t, "2024 paid", b.Paid, "60000.00")
	wantMoney(t, "2024 available", b.Available, "29700000.00")
	// 2025 shows the carried-over funds, reserved for the same installment;
	// the lapsed installment is committed to 2025 and covered by it. 2025
	// now holds 330,000 of second installments, 240,000 carried over and
	// 140,000 lapsed.
	b25 := budgetState(t, s, "housing", 2025)
	wantMoney(t, "2025 carried over", b25.CarriedOver, "240000.00")
	wantMoney(t, "2025 committed", b25.Committed, "710000.00")
	wantMoney(t, "2025 uncovered", b25.Uncovered, "0.00")
	wantMoney(t, "2025 available", b25.Available, "29530000.00")
	for _, g := range []string{carried, lapsed, paid} {
		wantGrantMoneyAddsUp(t, s, g, "after the close")
	}

	// Nothing more enters or leaves 2024.
	_, err = s.AppropriateBudget(ctx, AppropriateBudget{Meta: on(approver, "2025-01-08"), ProgramID: "housing", FiscalYear: 2024, Amount: money(t, "1")})
	wantCode(t, err, EYEARCLOSED)
	_, err = s.RequestYearEndClose(ctx, YearEndCommand{Meta: closeMeta(approver, "2025-01-08"), ProgramID: "housing", FiscalYear: 2024})
	wantCode(t, err, EYEARCLOSED)
	p := grantState(t, s, paid).installmentPaid[1]
	_, err = s.ReversePayment(ctx, PaymentCommand{Meta: on(treasurer2, "2025-01-08"), PaymentID: p, Reason: "returned"})
	wantCode(t, err, EYEARCLOSED)

	// Both first installments are paid in 2025 and charged to 2025: the
	// carried one from the carried-over funds, the lapsed one from 2025's
	// own budget.
	payInstallment(t, s, carried, 1, "2025-01-10")
	payInstallment(t, s, lapsed, 1, "2025-01-10")
	b25 = budgetState(t, s, "housing", 2025)
	wantMoney(t, "2025 paid", b25.Paid, "380000.00")
	for _, g := range []string{carried, lapsed, paid} {
		wantGrantMoneyAddsUp(t, s, g, "after paying in 2025")
	}
	bal := ledger(t, s.Store())
	wantMoney(t, "2024 encumbered", bal["budget:housing:2024:encumbered"], "0.00")
	verifyChains(t, s.Store())
}

// TestYearEndCloseInterrupted stops the close between the closed year's
// stream and the next year's: a retry of the confirmation, or
// ReconcileCloses, completes it once, and neither a second run nor a
// further retry changes anything.
func TestYearEndCloseInterrupted(t *testing.T) {
	for _, how := range []string{"reconcile", "retry"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			fs := &faultStore{Store: newTestStore(t)}
			s := newServiceOver(fs)
			carried, lapsed, paid := yearEndBooks(t, s)
			must(t)(s.RequestYearEndClose(ctx, YearEndCommand{Meta: closeMeta(approver, "2025-01-06"), ProgramID: "housing", FiscalYear: 2024,
				CarryOver: []CarryOver{{GrantID: carried, Reason: "contract signed"}}}))
			fs.onAppend = failOnce(TypeBudgetCarriedOver)
			confirm := func() (Result, error) {
				return s.ConfirmYearEndClose(ctx, YearEndCommand{Meta: withID(closeMeta(approver2, "2025-01-07"), "close-1"), ProgramID: "housing", FiscalYear: 2024})
			}
			if _, err := confirm(); err == nil {
				t.Fatal("the close did not stop")
			}
			r := newServiceOver(fs.Store)
			if !budgetState(t, r, "housing", 2024).Closed {
				t.Fatal("2024 is not closed after the crash")
			}
			wantMoney(t, "2025 carried over after the crash", budgetState(t, r, "housing", 2025).CarriedOver, "0.00")
			ledger(t, fs) // over-reserved for a moment, never overdrawn
			keys := []BudgetKey{{"housing", 2024}}
			if how == "reconcile" {
				if n, err := r.ReconcileCloses(ctx, keys); err != nil || n != 1 {
					t.Fatalf("ReconcileCloses = %d, %v; want 1", n, err)
				}
			} else {
				must(t)(confirm())
			}
			before := countEvents(t, fs)
			if n, err := r.ReconcileCloses(ctx, keys); err != nil || n != 0 {
				t.Errorf("a second ReconcileCloses = %d, %v; want 0", n, err)
			}
			must(t)(confirm())
			_, err := s.ConfirmYearEndClose(ctx, YearEndCommand{Meta: closeMeta(approver2, "2025-01-07"), ProgramID: "housing", FiscalYear: 2024})
			wantCode(t, err, EYEARCLOSED)
			if after := countEvents(t, fs); after != before {
				t.Errorf("runs after the completion wrote %d events", after-before)
			}
			r2 := newServiceOver(fs.Store)
			wantMoney(t, "2025 carried over", budgetState(t, r2, "housing", 2025).CarriedOver, "240000.00")
			if n := countEvents(t, fs, TypeBudgetCarriedOver); n != 1 {
				t.Errorf("%d BudgetCarriedOver, want 1", n)
			}
			for _, g := range []string{carried, lapsed, paid} {
				wantGrantMoneyAddsUp(t, r2, g, "after the completed close")
			}
			ledger(t, fs)
			verifyChains(t, fs)
		})
	}
}

// TestLapsedInstallmentFlaggedWhenNextYearIsShort: an installment lapsing
// into a year that cannot cover it is flagged there, not dropped; its
// payment is refused until an appropriation covers it. A termination then
// gives back what each year holds, after carry-overs and lapses.
func TestLapsedInstallmentFlaggedWhenNextYearIsShort(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriateOn(t, s, "housing", 2025, "100000", "2024-01-02")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	toNoticeClosed(t, s, gid)
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-12-02"), GrantID: gid}))
	must(t)(s.RequestYearEndClose(ctx, YearEndCommand{Meta: closeMeta(approver, "2025-01-06"), ProgramID: "housing", FiscalYear: 2024}))
	must(t)(s.ConfirmYearEndClose(ctx, YearEndCommand{Meta: closeMeta(approver2, "2025-01-06"), ProgramID: "housing", FiscalYear: 2024}))
	// 2025 (100,000) could not cover the 180,000 second installment, and
	// the lapsed 240,000 queues behind it.
	b25 := budgetState(t, s, "housing", 2025)
	wantMoney(t, "2025 uncovered", b25.Uncovered, "420000.00")
	wantGrantMoneyAddsUp(t, s, gid, "after the lapse")
	p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2025-01-07"), GrantID: gid, Installment: 1}))
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2025-01-07"), PaymentID: p.ID}))
	_, err := s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2025-01-07"), PaymentID: p.ID, BankReference: "B1"})
	wantCode(t, err, ENOTRESERVED)
	must(t)(s.AppropriateBudget(ctx, AppropriateBudget{Meta: on(approver, "2025-01-08"), ProgramID: "housing", FiscalYear: 2025, Amount: money(t, "400000")}))
	must(t)(s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2025-01-08"), PaymentID: p.ID, BankReference: "B1"}))
	wantMoney(t, "2025 paid", budgetState(t, s, "housing", 2025).Paid, "240000.00")
	wantGrantMoneyAddsUp(t, s, gid, "after the payment")

	must(t)(s.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2025-03-01"), TalentID: tid, DepartureDate: "2025-02-28"}))
	must(t)(s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2025-03-02"), GrantID: gid}))
	wantGrantMoneyAddsUp(t, s, gid, "after the termination")
	wantMoney(t, "2025 committed after the termination", budgetState(t, s, "housing", 2025).Committed, "240000.00")
	bal := ledger(t, s.Store())
	wantMoney(t, "2026 uncovered", bal["budget:housing:2026:uncovered"], "0.00")
	verifyChains(t, s.Store())
}

// TestForwardCommitmentInterrupted stops an approval after its
// GrantApproved but before a forward commitment appended beside it:
// Reconcile, or a retry of the approval, records the commitment once.
func TestForwardCommitmentInterrupted(t *testing.T) {
	for _, how := range []string{"reconcile", "retry"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			fs := &faultStore{Store: newTestStore(t)}
			s := newServiceOver(fs)
			defineHousing(t, s, "housing", 5)
			appropriate(t, s, "housing", 2024, "30000000")
			gid := apply(t, s, registerTalent(t, s, "B"), "housing", "600000")
			toNoticeClosed(t, s, gid)
			var once sync.Once
			fs.onAppend = func(stream string, events []eventstore.EventData) error {
				var err error
				if events[0].Type == TypeForwardCommitted && stream == streamBudget("housing", 2026) {
					once.Do(func() { err = errors.New("injected fault: process stopped") })
				}
				return err
			}
			approve := func() (Result, error) {
				return s.ApproveGrant(ctx, ApproveGrant{Meta: withID(on(approver, "2024-01-15"), "approve-1"), GrantID: gid})
			}
			if _, err := approve(); err == nil {
				t.Fatal("the approval did not stop")
			}
			r := newServiceOver(fs.Store)
			if st := grantState(t, r, gid).state; st != GrantStateApproved {
				t.Fatalf("grant is %s after the crash, want approved", st)
			}
			if n := countEvents(t, fs, TypeForwardCommitted); n != 1 {
				t.Fatalf("%d forward commitments after the crash, want 1", n)
			}
			if how == "reconcile" {
				reconcile(t, r, gid, 1)
				reconcileAgain(t, r, gid)
			} else {
				must(t)(approve())
				before := countEvents(t, fs)
				must(t)(approve())
				if after := countEvents(t, fs); after != before {
					t.Errorf("a second retry wrote %d events", after-before)
				}
			}
			if n := countEvents(t, fs, TypeForwardCommitted); n != 2 {
				t.Errorf("%d forward commitments, want 2", n)
			}
			wantGrantMoneyAddsUp(t, newServiceOver(fs.Store), gid, "after the completion")
			ledger(t, fs)
			verifyChains(t, fs)
		})
	}
}

// TestNothingPaidFromAClosedYear: a closed year's budget refuses a charge
// even for an installment it held, and a reservation or an appropriation;
// by the server's clock a release can only be charged to the current
// year, which is never closed, so this is the budget's own last guard.
func TestNothingPaidFromAClosedYear(t *testing.T) {
	b := &budget{}
	b.apply(&BudgetAppropriated{ProgramID: "housing", FiscalYear: 2024, Amount: money(t, "1000")})
	b.apply(&BudgetReserved{ProgramID: "housing", FiscalYear: 2024, GrantID: "g1", TalentID: "t1", Amount: money(t, "100"),
		Approval: GrantApproved{GrantID: "g1", FiscalYear: 2024, Amount: money(t, "100"), Installments: []Installment{{N: 1, Amount: money(t, "100")}}}})
	if err := b.canCharge("g1", 1, money(t, "100")); err != nil {
		t.Fatalf("open year: %v", err)
	}
	b.apply(&YearEndClosed{ProgramID: "housing", FiscalYear: 2024, Carried: []YearEndItem{{GrantID: "g1", Amount: money(t, "100"), Installments: []int{1}}}})
	wantCode(t, b.canCharge("g1", 1, money(t, "100")), EYEARCLOSED)
	_, err := b.appropriation(&BudgetAppropriated{ProgramID: "housing", FiscalYear: 2024, Amount: money(t, "1")})
	wantCode(t, err, EYEARCLOSED)
	wantCode(t, b.adjustable("housing", 2024, AdjustIncrease, money(t, "1")), EYEARCLOSED)
	wantMoney(t, "available after the close", b.available(), "900.00")
}

// TestApprovalRecordedBeforeFiscalYears: an approval recorded before
// installments were charged by year (no years: the whole award reserved
// in its year) still pays in that year and terminates as it did; a close
// of its year is refused while it holds a reservation whose payments the
// budget cannot see, rather than carrying over or lapsing wrong amounts.
func TestApprovalRecordedBeforeFiscalYears(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	toNoticeClosed(t, s, gid)
	crashAfterReservation(t, s, gid, "legacy-approval", "2024-01-15") // an approval as recorded before
	reconcile(t, s, gid, 1)
	a := grantState(t, s, gid).approval
	if a == nil || !a.legacy() {
		t.Fatalf("approval = %+v, want one without years", a)
	}
	wantMoney(t, "2024 committed", budgetState(t, s, "housing", 2024).Committed, "600000.00")
	payInstallment(t, s, gid, 1, "2024-01-15")
	_, err := s.RequestYearEndClose(ctx, YearEndCommand{Meta: closeMeta(approver, "2025-01-06"), ProgramID: "housing", FiscalYear: 2024})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.ConfirmYearEndClose(ctx, YearEndCommand{Meta: closeMeta(approver2, "2025-01-06"), ProgramID: "housing", FiscalYear: 2024})
	wantCode(t, err, ECONFLICT)
	must(t)(s.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2025-01-07"), TalentID: tid, DepartureDate: "2025-01-07"}))
	must(t)(s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2025-01-08"), GrantID: gid}))
	wantMoney(t, "2024 committed after the termination", budgetState(t, s, "housing", 2024).Committed, "240000.00")
	bal := ledger(t, s.Store())
	wantMoney(t, "2024 encumbered", bal["budget:housing:2024:encumbered"], "0.00")
	verifyChains(t, s.Store())
}
