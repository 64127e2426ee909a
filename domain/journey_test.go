package domain

import (
	"context"
	"fmt"
	"testing"
)

// clawbackJourney runs docs/domain.md's clawback example through the service: a
// tier-B award of 600,000 approved on 2024-01-15, paid 240,000 + 180,000,
// the talent leaving on 2025-09-15 (month 20 of 60). It returns the grant.
func clawbackJourney(t *testing.T, s *Service) (talentID, grantID string) {
	t.Helper()
	ctx := context.Background()
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriateOn(t, s, "housing", 2025, "10000000", "2024-01-02")
	talentID = registerTalent(t, s, "B")
	grantID = apply(t, s, talentID, "housing", "600000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: grantID, Decision: "approve"}))
	must(t)(s.OpenNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-05"), GrantID: grantID}))
	must(t)(s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-15"), GrantID: grantID}))
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: grantID}))

	g := grantState(t, s, grantID)
	if g.state != GrantStateApproved {
		t.Fatalf("grant state = %s, want approved", g.state)
	}
	a := g.approval
	wantMoney(t, "award", a.Award, "600000.00")
	wantMoney(t, "amount", a.Amount, "600000.00")
	if a.FiscalYear != 2024 || a.ServiceMonths != 60 || a.ServiceStart != "2024-01-15" || len(a.Installments) != 3 {
		t.Fatalf("approval = %+v", a)
	}
	for i, want := range []struct{ amount, due string }{
		{"240000.00", "2024-01-15"}, {"180000.00", "2025-01-15"}, {"180000.00", "2026-01-15"},
	} {
		if in := a.Installments[i]; in.Amount.String() != want.amount || in.DueDate != want.due {
			t.Errorf("installment %d = %s due %s, want %s due %s", i+1, in.Amount, in.DueDate, want.amount, want.due)
		}
	}
	// Each installment is charged to the year it falls due: 2024 reserves
	// the first; 2025 covers its share at once; 2026, with no budget yet,
	// holds its share as an uncovered forward commitment.
	b := budgetState(t, s, "housing", 2024)
	wantMoney(t, "committed after approval", b.Committed, "240000.00")
	wantMoney(t, "available after approval", b.Available, "29760000.00")
	wantMoney(t, "2025 committed after approval", budgetState(t, s, "housing", 2025).Committed, "180000.00")

	payInstallment(t, s, grantID, 1, "2024-01-15")
	// Installment 2 is not due before 2025-01-15.
	_, err := s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2025-01-14"), GrantID: grantID, Installment: 2})
	wantCode(t, err, ENOTDUE)
	payInstallment(t, s, grantID, 2, "2025-01-15")
	if g := grantState(t, s, grantID); g.paid.String() != "420000.00" {
		t.Fatalf("paid = %s, want 420000.00", g.paid)
	}

	// Termination needs a departure first.
	_, err = s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2025-09-20"), GrantID: grantID})
	wantCode(t, err, ECONFLICT)
	must(t)(s.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2025-09-16"), TalentID: talentID, DepartureDate: "2025-09-15"}))
	// A departed talent's next installment is not paid.
	_, err = s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2026-01-15"), GrantID: grantID, Installment: 3})
	wantCode(t, err, ENOTELIGIBLE)
	must(t)(s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2025-09-20"), GrantID: grantID}))
	return talentID, grantID
}

func TestClawbackJourney(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	talentID, grantID := clawbackJourney(t, s)

	g := grantState(t, s, grantID)
	if g.state != GrantStateTerminated {
		t.Fatalf("grant state = %s, want terminated", g.state)
	}
	term := g.termination
	if term.MonthsServed != 20 || term.MonthsRequired != 60 {
		t.Errorf("served %d of %d months, want 20 of 60", term.MonthsServed, term.MonthsRequired)
	}
	wantMoney(t, "terminated paid", term.Paid, "420000.00")
	wantMoney(t, "released", term.Released, "180000.00")
	if len(term.Cancelled) != 1 || term.Cancelled[0] != 3 {
		t.Errorf("cancelled installments = %v, want [3]", term.Cancelled)
	}
	wantMoney(t, "clawback due", g.clawbackDue, "220000.00")

	// Exactly one ClawbackAssessed, for exactly 220,000.00, in the log.
	var assessed []*ClawbackAssessed
	for _, ev := range readAll(t, s.Store()) {
		if ev.Type == TypeClawbackAssessed {
			p, err := DecodeEvent(ev.Type, ev.Data)
			if err != nil {
				t.Fatal(err)
			}
			assessed = append(assessed, p.(*ClawbackAssessed))
		}
	}
	if len(assessed) != 1 {
		t.Fatalf("%d ClawbackAssessed events, want 1", len(assessed))
	}
	wantMoney(t, "ClawbackAssessed amount", assessed[0].Amount, "220000.00")
	if assessed[0].TalentID != talentID || assessed[0].GrantID != grantID || assessed[0].FiscalYear != 2024 {
		t.Errorf("ClawbackAssessed = %+v", assessed[0])
	}
	if n := countGrantEvents(t, s.Store(), TypeBudgetReservationReleased, grantID); n != 1 {
		t.Errorf("%d reservation releases, want 1", n)
	}

	// Installment 3's forward commitment on 2026 was given back; 2024
	// and 2025 each hold the installment paid in them.
	b := budgetState(t, s, "housing", 2024)
	wantMoney(t, "appropriated", b.Appropriated, "30000000.00")
	wantMoney(t, "committed", b.Committed, "240000.00")
	wantMoney(t, "available", b.Available, "29760000.00")
	wantMoney(t, "2025 committed", budgetState(t, s, "housing", 2025).Committed, "180000.00")

	// Nothing more can be paid on a terminated grant.
	_, err := s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2026-01-15"), GrantID: grantID, Installment: 3})
	if ErrorCode(err) != ECONFLICT && ErrorCode(err) != ENOTELIGIBLE {
		t.Errorf("prepare installment 3 after termination: %v, want conflict or not_eligible", err)
	}
	// A second termination is refused.
	_, err = s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2025-09-21"), GrantID: grantID})
	wantCode(t, err, ECONFLICT)

	// Recovery and waiver.
	must(t)(s.RecordRecovery(ctx, RecoveryCommand{Meta: on(treasurer, "2025-10-10"), GrantID: grantID,
		Amount: money(t, "150000"), BankReference: "BANK-REC-1"}))
	waive := on(approver, "2025-10-20")
	waive.Reason = "hardship, decision 2025-17"
	must(t)(s.WaiveRecovery(ctx, RecoveryCommand{Meta: waive, GrantID: grantID, Amount: money(t, "20000")}))
	wantMoney(t, "outstanding", func() Money { g := grantState(t, s, grantID); return g.outstanding() }(), "50000.00")

	// Neither may exceed what is outstanding.
	_, err = s.RecordRecovery(ctx, RecoveryCommand{Meta: on(treasurer, "2025-10-21"), GrantID: grantID,
		Amount: money(t, "50000.01"), BankReference: "BANK-REC-2"})
	wantCode(t, err, ECONFLICT)
	waive = on(approver, "2025-10-21")
	waive.Reason = "hardship, decision 2025-17"
	_, err = s.WaiveRecovery(ctx, RecoveryCommand{Meta: waive, GrantID: grantID, Amount: money(t, "50000.01")})
	wantCode(t, err, ECONFLICT)
	// A waiver needs a reason; a recovery needs a bank reference.
	_, err = s.WaiveRecovery(ctx, RecoveryCommand{Meta: on(approver, "2025-10-21"), GrantID: grantID, Amount: money(t, "1")})
	wantCode(t, err, EINVALID)
	_, err = s.RecordRecovery(ctx, RecoveryCommand{Meta: on(treasurer, "2025-10-21"), GrantID: grantID, Amount: money(t, "1")})
	wantCode(t, err, EINVALID)

	must(t)(s.RecordRecovery(ctx, RecoveryCommand{Meta: on(treasurer, "2025-11-10"), GrantID: grantID,
		Amount: money(t, "50000"), BankReference: "BANK-REC-3"}))
	if g := grantState(t, s, grantID); !g.outstanding().IsZero() {
		t.Errorf("outstanding = %s, want 0.00", g.outstanding())
	}

	// A fresh service over the same store folds the same state.
	s2 := newServiceOver(s.Store())
	g2 := grantState(t, s2, grantID)
	if g2.state != GrantStateTerminated || g2.clawbackDue.String() != "220000.00" || !g2.outstanding().IsZero() {
		t.Errorf("reloaded grant: state %s, due %s, outstanding %s", g2.state, g2.clawbackDue, g2.outstanding())
	}
	if b2 := budgetState(t, s2, "housing", 2024); b2.Available.String() != "29760000.00" {
		t.Errorf("reloaded budget available = %s", b2.Available)
	}
}

// TestJourneyPostings folds the postings of every event the journey wrote:
// the trial balance sums to zero, no non-negative account ever dips below
// zero, and the accounts agree with the budget and the grant.
func TestJourneyPostings(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	talentID, grantID := clawbackJourney(t, s)
	must(t)(s.RecordRecovery(ctx, RecoveryCommand{Meta: on(treasurer, "2025-10-10"), GrantID: grantID,
		Amount: money(t, "150000"), BankReference: "BANK-REC-1"}))
	waive := on(approver, "2025-10-20")
	waive.Reason = "hardship"
	must(t)(s.WaiveRecovery(ctx, RecoveryCommand{Meta: waive, GrantID: grantID, Amount: money(t, "20000")}))

	bal := ledger(t, s.Store())
	for acct, want := range map[string]string{
		"treasury:2024:appropriation":             "-30000000.00",
		"treasury:2025:appropriation":             "-10000000.00",
		"budget:housing:2024:available":           "29760000.00",
		"budget:housing:2024:encumbered":          "0.00",
		"budget:housing:2025:available":           "9820000.00",
		"budget:housing:2025:encumbered":          "0.00",
		"budget:housing:2026:uncovered":           "0.00", // committed at approval, released at termination
		"budget:housing:2026:forward_commitments": "0.00",
		"talent:" + talentID + ":paid":            "220000.00", // 420,000 paid − 220,000 clawed back + 20,000 waived
		"talent:" + talentID + ":clawback_due":    "50000.00",
		"treasury:2024:recoveries":                "150000.00",
	} {
		wantMoney(t, acct, bal[acct], want)
	}
	if len(bal) != 11 {
		t.Errorf("accounts = %v, want exactly 11", bal)
	}
	b := budgetState(t, s, "housing", 2024)
	if b.Available.Cmp(bal["budget:housing:2024:available"]) != 0 {
		t.Errorf("budget available %s disagrees with the ledger's %s", b.Available, bal["budget:housing:2024:available"])
	}
	// Every money event of the journey posted something.
	posted := map[string]bool{}
	for _, ev := range readAll(t, s.Store()) {
		p, err := DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		if len(Postings(p)) > 0 {
			posted[ev.Type] = true
		}
	}
	for _, typ := range []string{TypeBudgetAppropriated, TypeBudgetReserved, TypeBudgetReservationReleased,
		TypeForwardCommitted, TypePaymentReleased, TypeClawbackAssessed, TypeRecoveryReceived, TypeRecoveryWaived} {
		if !posted[typ] {
			t.Errorf("no %s posted anything", typ)
		}
	}
}

// TestPostingsReversal checks a reversed payment's postings and that the
// installment can be paid again, with the ledger still balanced.
func TestPostingsReversal(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	talentID, grantID := approvedHousing(t, s)
	pid := payInstallment(t, s, grantID, 1, "2024-01-15")
	must(t)(s.ReversePayment(ctx, PaymentCommand{Meta: on(treasurer2, "2024-01-16"), PaymentID: pid, Reason: "wrong account"}))
	if g := grantState(t, s, grantID); !g.paid.IsZero() {
		t.Fatalf("paid after reversal = %s, want 0.00", g.paid)
	}
	bal := ledger(t, s.Store())
	wantMoney(t, "talent paid", bal["talent:"+talentID+":paid"], "0.00")
	wantMoney(t, "encumbered", bal["budget:housing:2024:encumbered"], "240000.00")
	pid2 := payInstallment(t, s, grantID, 1, "2024-01-17")
	if pid2 == pid {
		t.Errorf("the second payment reuses ID %s", pid)
	}
	bal = ledger(t, s.Store())
	wantMoney(t, "talent paid", bal["talent:"+talentID+":paid"], "240000.00")
	wantMoney(t, "encumbered", bal["budget:housing:2024:encumbered"], "0.00")
}

// TestGrantCompletes pays every installment: the grant is completed, and a
// termination after the service months are served claws nothing back.
func TestGrantCompletes(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	tid, gid := approvedHousing(t, s)
	payInstallment(t, s, gid, 1, "2024-01-15")
	payInstallment(t, s, gid, 2, "2025-01-15")
	if st := grantState(t, s, gid).state; st != GrantStateApproved {
		t.Fatalf("state after 2 of 3 = %s, want approved", st)
	}
	p3 := payInstallment(t, s, gid, 3, "2026-01-15")
	if st := grantState(t, s, gid).state; st != GrantStateCompleted {
		t.Fatalf("state after 3 of 3 = %s, want completed", st)
	}
	_, err := s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2026-02-01"), GrantID: gid, Installment: 4})
	wantCode(t, err, ECONFLICT) // a completed grant takes no more payments
	// Reversing the last payment reopens the grant.
	must(t)(s.ReversePayment(ctx, PaymentCommand{Meta: on(treasurer2, "2026-01-20"), PaymentID: p3, Reason: "returned by the bank"}))
	if st := grantState(t, s, gid).state; st != GrantStateApproved {
		t.Fatalf("state after reversal = %s, want approved", st)
	}
	_, err = s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2026-02-01"), GrantID: gid, Installment: 4})
	wantCode(t, err, ENOTFOUND)
	payInstallment(t, s, gid, 3, "2026-02-01")
	if st := grantState(t, s, gid).state; st != GrantStateCompleted {
		t.Fatalf("state after paying again = %s, want completed", st)
	}

	// Leaving after 60 months served owes nothing and releases nothing.
	must(t)(s.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2029-02-01"), TalentID: tid, DepartureDate: "2029-01-15"}))
	before := countEvents(t, s.Store(), TypeBudgetReservationReleased)
	must(t)(s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2029-02-02"), GrantID: gid}))
	g := grantState(t, s, gid)
	if g.state != GrantStateTerminated || g.termination.MonthsServed != 60 || !g.clawbackDue.IsZero() || len(g.termination.Cancelled) != 0 {
		t.Errorf("terminated: state %s, served %d, due %s, cancelled %v", g.state, g.termination.MonthsServed, g.clawbackDue, g.termination.Cancelled)
	}
	if n := countEvents(t, s.Store(), TypeClawbackAssessed); n != 0 {
		t.Errorf("%d ClawbackAssessed with the service served", n)
	}
	if after := countEvents(t, s.Store(), TypeBudgetReservationReleased); after != before {
		t.Errorf("%d releases for a fully paid grant", after-before)
	}
	for fy, want := range map[int]string{2024: "240000.00", 2025: "180000.00", 2026: "180000.00"} {
		wantMoney(t, fmt.Sprint(fy, " committed"), budgetState(t, s, "housing", fy).Committed, want)
	}
	ledger(t, s.Store())
}

// TestCompletedGrantEarlyDeparture terminates a fully paid grant at month
// 30 of 60: half the award is due back, and nothing is released.
func TestCompletedGrantEarlyDeparture(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	tid, gid := approvedHousing(t, s)
	payInstallment(t, s, gid, 1, "2024-01-15")
	payInstallment(t, s, gid, 2, "2025-01-15")
	payInstallment(t, s, gid, 3, "2026-01-15")
	must(t)(s.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2026-07-20"), TalentID: tid, DepartureDate: "2026-07-15"}))
	must(t)(s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2026-07-21"), GrantID: gid}))
	g := grantState(t, s, gid)
	if g.termination.MonthsServed != 30 {
		t.Errorf("served %d months, want 30", g.termination.MonthsServed)
	}
	wantMoney(t, "clawback", g.clawbackDue, "300000.00")
	wantMoney(t, "released", g.termination.Released, "0.00")
	wantMoney(t, "committed", budgetState(t, s, "housing", 2024).Committed, "240000.00")
	ledger(t, s.Store())
}

// TestApprovalReservesInFiscalYearOfApproval approves in 2025: the 2025
// budget reserves the 2025 installment, the 2024 one is untouched, and the
// 2026 and 2027 installments are forward commitments on budgets that do
// not exist yet.
func TestApprovalReservesInFiscalYearOfApproval(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriate(t, s, "housing", 2025, "1000000")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	toNoticeClosed(t, s, gid)
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2025-02-03"), GrantID: gid}))
	a := grantState(t, s, gid).approval
	if a.FiscalYear != 2025 || a.ServiceStart != "2025-02-03" || a.Installments[1].DueDate != "2026-02-03" {
		t.Errorf("approval: fiscal year %d, service start %s, second due %s", a.FiscalYear, a.ServiceStart, a.Installments[1].DueDate)
	}
	wantMoney(t, "2025 committed", budgetState(t, s, "housing", 2025).Committed, "240000.00")
	wantMoney(t, "2024 committed", budgetState(t, s, "housing", 2024).Committed, "0.00")
	payInstallment(t, s, gid, 1, "2025-02-03")
	bal := ledger(t, s.Store())
	wantMoney(t, "2025 encumbered", bal["budget:housing:2025:encumbered"], "0.00")
	wantMoney(t, "2026 uncovered", bal["budget:housing:2026:uncovered"], "180000.00")
	wantMoney(t, "2027 uncovered", bal["budget:housing:2027:uncovered"], "180000.00")
	if _, err := s.Budget(ctx, "housing", 2026); ErrorCode(err) != ENOTFOUND {
		t.Errorf("Budget(2026) = %v, want not_found", err)
	}
}

// TestTerminationWithPaymentInFlight: a payment with the bank blocks the
// termination; a payment only prepared is cancelled with its installment.
func TestTerminationWithPaymentInFlight(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	tid, gid := approvedHousing(t, s)
	payInstallment(t, s, gid, 1, "2024-01-15")
	p2 := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2025-01-15"), GrantID: gid, Installment: 2}))
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2025-01-15"), PaymentID: p2.ID}))
	must(t)(s.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2025-01-20"), TalentID: tid, DepartureDate: "2025-01-16"}))
	_, err := s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver2, "2025-01-21"), GrantID: gid})
	wantCode(t, err, ECONFLICT)
	must(t)(s.FailPayment(ctx, PaymentCommand{Meta: on(treasurer, "2025-01-21"), PaymentID: p2.ID, Reason: "account closed"}))
	must(t)(s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver2, "2025-01-21"), GrantID: gid}))
	g := grantState(t, s, gid)
	if fmt.Sprint(g.termination.Cancelled) != "[2 3]" || g.termination.MonthsServed != 12 {
		t.Errorf("cancelled %v, served %d; want [2 3], 12", g.termination.Cancelled, g.termination.MonthsServed)
	}
	// 240,000 − 600,000 × 12 ÷ 60 = 120,000.
	wantMoney(t, "clawback", g.clawbackDue, "120000.00")
	wantMoney(t, "released", g.termination.Released, "360000.00")
	wantMoney(t, "committed", budgetState(t, s, "housing", 2024).Committed, "240000.00")

	// A prepared payment is cancelled by the termination.
	s2 := newTestService(t)
	tid2, gid2 := approvedHousing(t, s2)
	p := must(t)(s2.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2024-01-15"), GrantID: gid2, Installment: 1}))
	must(t)(s2.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2024-02-01"), TalentID: tid2, DepartureDate: "2024-02-01"}))
	must(t)(s2.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2024-02-02"), GrantID: gid2}))
	if st := grantState(t, s2, gid2).payments[p.ID].state; st != PaymentStateFailed {
		t.Errorf("prepared payment after termination is %s, want failed", st)
	}
	_, err = s2.ApprovePayment(ctx, PaymentCommand{Meta: on(approver2, "2024-02-02"), PaymentID: p.ID})
	wantCode(t, err, ECONFLICT)
	if n := countEvents(t, s2.Store(), TypeClawbackAssessed); n != 0 {
		t.Errorf("%d ClawbackAssessed with nothing paid", n)
	}
	wantMoney(t, "committed", budgetState(t, s2, "housing", 2024).Committed, "0.00")
	ledger(t, s2.Store())
}
