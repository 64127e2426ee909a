package domain

import (
	"context"
	"testing"
)

func TestSegregationOfDuties(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000") // entered by clerk carl

	// The clerk who entered the application may not review it, even when
	// also holding the reviewer role.
	_, err := s.ReviewGrant(ctx, ReviewGrant{Meta: on(as(clerk, RoleReviewer), "2024-01-04"), GrantID: gid, Decision: "approve"})
	wantCode(t, err, ESEGREGATION)
	toNoticeClosed(t, s, gid) // reviewed by rita

	// The approver may be neither the entering clerk nor the reviewer.
	_, err = s.ApproveGrant(ctx, ApproveGrant{Meta: on(as(clerk, RoleApprover), "2024-01-15"), GrantID: gid})
	wantCode(t, err, ESEGREGATION)
	_, err = s.ApproveGrant(ctx, ApproveGrant{Meta: on(as(reviewer, RoleApprover), "2024-01-15"), GrantID: gid})
	wantCode(t, err, ESEGREGATION)
	if n := countEvents(t, s.Store(), TypeBudgetReserved); n != 0 {
		t.Fatalf("a refused approval reserved budget: %d BudgetReserved", n)
	}
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: gid}))

	// Whoever prepares a payment may not approve it.
	p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk2, "2024-01-15"), GrantID: gid, Installment: 1}))
	_, err = s.ApprovePayment(ctx, PaymentCommand{Meta: on(as(clerk2, RoleApprover), "2024-01-15"), PaymentID: p.ID})
	wantCode(t, err, ESEGREGATION)
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver2, "2024-01-15"), PaymentID: p.ID}))

	// Whoever approves or prepares it may not release it.
	_, err = s.ReleasePayment(ctx, PaymentCommand{Meta: on(as(approver2, RoleTreasurer), "2024-01-15"), PaymentID: p.ID, BankReference: "B1"})
	wantCode(t, err, ESEGREGATION)
	_, err = s.ReleasePayment(ctx, PaymentCommand{Meta: on(as(clerk2, RoleTreasurer), "2024-01-15"), PaymentID: p.ID, BankReference: "B1"})
	wantCode(t, err, ESEGREGATION)
	must(t)(s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, "2024-01-15"), PaymentID: p.ID, BankReference: "B1"}))

	// Whoever released it may not reverse it.
	_, err = s.ReversePayment(ctx, PaymentCommand{Meta: on(treasurer, "2024-01-16"), PaymentID: p.ID, Reason: "wrong account"})
	wantCode(t, err, ESEGREGATION)
	must(t)(s.ReversePayment(ctx, PaymentCommand{Meta: on(treasurer2, "2024-01-16"), PaymentID: p.ID, Reason: "wrong account"}))

	// Every refusal above wrote nothing: one of each step in the log.
	for typ, want := range map[string]int{TypeGrantReviewed: 1, TypeGrantApproved: 1, TypePaymentApproved: 1,
		TypePaymentReleased: 1, TypePaymentReversed: 1} {
		if n := countEvents(t, s.Store(), typ); n != want {
			t.Errorf("%d %s events, want %d", n, typ, want)
		}
	}
}

// TestRoles runs every command under every role it does not allow: each is
// refused as forbidden and writes nothing. The commands name real records,
// so that without the role check they would go through or fail otherwise.
func TestRoles(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	tid, gid := approvedHousing(t, s)
	p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2024-01-15"), GrantID: gid, Installment: 1}))
	pid := p.ID

	// Another grant, left in notice, for the notice and objection commands.
	gid2 := apply(t, s, tid, "housing", "100000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: gid2, Decision: "approve"}))
	must(t)(s.OpenNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-05"), GrantID: gid2}))
	obj := must(t)(s.RaiseObjection(ctx, RaiseObjection{Meta: on(reviewer, "2024-01-08"), GrantID: gid2, Summary: "doubt"}))
	gid3 := apply(t, s, tid, "housing", "100000")

	date := "2024-01-20"
	commands := []struct {
		name    string
		allowed []string
		run     func(m CommandMeta) error
	}{
		{"DefineProgram", []string{RoleAdmin}, func(m CommandMeta) error {
			_, err := s.DefineProgram(ctx, DefineProgram{Meta: m, ProgramID: "other", Name: "Other", Kind: KindRent,
				Caps: housingCaps(t), Schedule: housingSchedule(t)})
			return err
		}},
		{"AppropriateBudget", []string{RoleApprover}, func(m CommandMeta) error {
			_, err := s.AppropriateBudget(ctx, AppropriateBudget{Meta: m, ProgramID: "housing", FiscalYear: 2025, Amount: Yuan(1)})
			return err
		}},
		{"RegisterTalent", []string{RoleClerk}, func(m CommandMeta) error {
			_, err := s.RegisterTalent(ctx, RegisterTalent{Meta: m, Name: "N", Tier: "B", Employer: "E"})
			return err
		}},
		{"ReportDeparture", []string{RoleClerk}, func(m CommandMeta) error {
			_, err := s.ReportDeparture(ctx, ReportDeparture{Meta: m, TalentID: tid, DepartureDate: "2024-06-01"})
			return err
		}},
		{"ApplyGrant", []string{RoleClerk}, func(m CommandMeta) error {
			m.DocumentRef = "DOC"
			_, err := s.ApplyGrant(ctx, ApplyGrant{Meta: m, TalentID: tid, ProgramID: "housing", AmountRequested: Yuan(1)})
			return err
		}},
		{"ReviewGrant", []string{RoleReviewer}, func(m CommandMeta) error {
			_, err := s.ReviewGrant(ctx, ReviewGrant{Meta: m, GrantID: gid3, Decision: "approve"})
			return err
		}},
		{"OpenNotice", []string{RoleReviewer}, func(m CommandMeta) error {
			_, err := s.OpenNotice(ctx, NoticeCommand{Meta: m, GrantID: gid3})
			return err
		}},
		{"RaiseObjection", []string{RoleReviewer, RoleClerk}, func(m CommandMeta) error {
			_, err := s.RaiseObjection(ctx, RaiseObjection{Meta: m, GrantID: gid2, Summary: "s"})
			return err
		}},
		{"ResolveObjection", []string{RoleReviewer}, func(m CommandMeta) error {
			_, err := s.ResolveObjection(ctx, ResolveObjection{Meta: m, GrantID: gid2, ObjectionID: obj.ID, Resolution: "r"})
			return err
		}},
		{"CloseNotice", []string{RoleReviewer}, func(m CommandMeta) error {
			_, err := s.CloseNotice(ctx, NoticeCommand{Meta: m, GrantID: gid2})
			return err
		}},
		{"RejectGrant", []string{RoleApprover}, func(m CommandMeta) error {
			_, err := s.RejectGrant(ctx, RejectGrant{Meta: m, GrantID: gid3, Reason: "r"})
			return err
		}},
		{"ApproveGrant", []string{RoleApprover}, func(m CommandMeta) error {
			_, err := s.ApproveGrant(ctx, ApproveGrant{Meta: m, GrantID: gid3})
			return err
		}},
		{"PreparePayment", []string{RoleClerk}, func(m CommandMeta) error {
			_, err := s.PreparePayment(ctx, PreparePayment{Meta: m, GrantID: gid, Installment: 2})
			return err
		}},
		{"ApprovePayment", []string{RoleApprover}, func(m CommandMeta) error {
			_, err := s.ApprovePayment(ctx, PaymentCommand{Meta: m, PaymentID: pid})
			return err
		}},
		{"ReleasePayment", []string{RoleTreasurer}, func(m CommandMeta) error {
			_, err := s.ReleasePayment(ctx, PaymentCommand{Meta: m, PaymentID: pid, BankReference: "B"})
			return err
		}},
		{"FailPayment", []string{RoleTreasurer}, func(m CommandMeta) error {
			_, err := s.FailPayment(ctx, PaymentCommand{Meta: m, PaymentID: pid, Reason: "r"})
			return err
		}},
		{"ReversePayment", []string{RoleTreasurer}, func(m CommandMeta) error {
			_, err := s.ReversePayment(ctx, PaymentCommand{Meta: m, PaymentID: pid, Reason: "r"})
			return err
		}},
		{"TerminateGrant", []string{RoleApprover}, func(m CommandMeta) error {
			_, err := s.TerminateGrant(ctx, TerminateGrant{Meta: m, GrantID: gid})
			return err
		}},
		{"RecordRecovery", []string{RoleTreasurer}, func(m CommandMeta) error {
			_, err := s.RecordRecovery(ctx, RecoveryCommand{Meta: m, GrantID: gid, Amount: Yuan(1), BankReference: "B"})
			return err
		}},
		{"WaiveRecovery", []string{RoleApprover}, func(m CommandMeta) error {
			m.Reason = "r"
			_, err := s.WaiveRecovery(ctx, RecoveryCommand{Meta: m, GrantID: gid, Amount: Yuan(1)})
			return err
		}},
	}
	before := countEvents(t, s.Store())
	refused := 0
	for _, c := range commands {
		for _, role := range Roles {
			if contains(c.allowed, role) {
				continue
			}
			// A fresh principal, so no maker-checker rule can be what refuses.
			err := c.run(on(Actor{"someone-" + role, role}, date))
			if ErrorCode(err) != EFORBIDDEN {
				t.Errorf("%s as %s: %v, want forbidden", c.name, role, err)
			}
			refused++
		}
	}
	if refused < 100 {
		t.Fatalf("only %d refusals tried", refused)
	}
	if after := countEvents(t, s.Store()); after != before {
		t.Errorf("refused commands wrote %d events", after-before)
	}

	// No principal, or a role that does not exist, is unauthenticated.
	for _, a := range []Actor{{"", RoleApprover}, {"x", ""}, {"x", "root"}, {"x", "system"}} {
		_, err := s.ApproveGrant(ctx, ApproveGrant{Meta: on(a, date), GrantID: gid3})
		wantCode(t, err, EUNAUTHENTICATED)
	}
}

func TestPublicNotice(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	approve := func(date string) error {
		_, err := s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, date), GrantID: gid})
		return err
	}

	// Before any review, approval is not possible.
	wantCode(t, approve("2024-01-03"), ECONFLICT)
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: gid, Decision: "approve"}))
	// Reviewed but the notice has not run.
	wantCode(t, approve("2024-01-04"), ENOTICEPENDING)
	must(t)(s.OpenNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-05"), GrantID: gid})) // a Friday
	// In notice: approval waits, whatever the date.
	wantCode(t, approve("2024-01-08"), ENOTICEPENDING)
	wantCode(t, approve("2024-03-01"), ENOTICEPENDING)
	// Four working days later (over a weekend) the notice is still young.
	_, err := s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-11"), GrantID: gid})
	wantCode(t, err, ENOTICEPENDING)

	// An objection keeps it open even once the days have run.
	obj := must(t)(s.RaiseObjection(ctx, RaiseObjection{Meta: on(clerk2, "2024-01-09"), GrantID: gid, Summary: "not employed locally"}))
	_, err = s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-15"), GrantID: gid})
	wantCode(t, err, ENOTICEPENDING)
	wantCode(t, approve("2024-01-15"), ENOTICEPENDING)

	// Dismissed, the notice can close, and then approval goes through.
	must(t)(s.ResolveObjection(ctx, ResolveObjection{Meta: on(reviewer, "2024-01-15"), GrantID: gid, ObjectionID: obj.ID, Upheld: false, Resolution: "employment confirmed"}))
	_, err = s.ResolveObjection(ctx, ResolveObjection{Meta: on(reviewer, "2024-01-15"), GrantID: gid, ObjectionID: obj.ID, Resolution: "again"})
	wantCode(t, err, ENOTFOUND)
	must(t)(s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-15"), GrantID: gid}))
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-16"), GrantID: gid}))
	if st := grantState(t, s, gid).state; st != GrantStateApproved {
		t.Fatalf("state = %s, want approved", st)
	}
}

func TestNoticeClosesAfterExactlyNoticeDays(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: gid, Decision: "approve"}))
	must(t)(s.OpenNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-05"), GrantID: gid}))
	// Opened Friday 2024-01-05, it runs 8, 9, 10, 11 and 12 January: on
	// the 12th it has run four working days, from the 13th five.
	_, err := s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-12"), GrantID: gid})
	wantCode(t, err, ENOTICEPENDING)
	must(t)(s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-13"), GrantID: gid}))
	if st := grantState(t, s, gid).state; st != GrantStateNoticeClosed {
		t.Fatalf("state = %s, want notice_closed", st)
	}
}

func TestUpheldObjectionRejects(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: gid, Decision: "approve"}))
	must(t)(s.OpenNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-05"), GrantID: gid}))
	obj := must(t)(s.RaiseObjection(ctx, RaiseObjection{Meta: on(reviewer, "2024-01-08"), GrantID: gid, Summary: "false documents"}))
	must(t)(s.ResolveObjection(ctx, ResolveObjection{Meta: on(reviewer, "2024-01-10"), GrantID: gid, ObjectionID: obj.ID, Upheld: true, Resolution: "documents forged"}))
	if st := grantState(t, s, gid).state; st != GrantStateRejected {
		t.Fatalf("state = %s, want rejected", st)
	}
	_, err := s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-15"), GrantID: gid})
	wantCode(t, err, ECONFLICT)
	_, err = s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-16"), GrantID: gid})
	wantCode(t, err, ECONFLICT)
	if n := countEvents(t, s.Store(), TypeBudgetReserved, TypeGrantApproved); n != 0 {
		t.Errorf("%d approval events after an upheld objection", n)
	}
}

func TestReviewRejects(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 0)
	appropriate(t, s, "housing", 2024, "30000000")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: gid, Decision: "reject", Note: "incomplete"}))
	if st := grantState(t, s, gid).state; st != GrantStateRejected {
		t.Fatalf("state = %s, want rejected", st)
	}
	_, err := s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: gid})
	wantCode(t, err, ECONFLICT)

	// Without notice days a favourable review is enough.
	gid2 := apply(t, s, tid, "housing", "600000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: gid2, Decision: "approve"}))
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: gid2}))
}

func TestCapAndBudget(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	// Approval reserves the 2024 share, the first 40 % of each award.
	appropriate(t, s, "housing", 2024, "400000")
	tB := registerTalent(t, s, "B")
	tA := registerTalent(t, s, "A")

	// Requested above the tier-B cap of 600,000.
	g1 := apply(t, s, tB, "housing", "600000.01")
	toNoticeClosed(t, s, g1)
	_, err := s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: g1})
	wantCode(t, err, ECAPEXCEEDED)
	// An award above the cap is refused too; at the cap it passes.
	over := money(t, "600000.01")
	_, err = s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: g1, Award: &over})
	wantCode(t, err, ECAPEXCEEDED)
	if n := countEvents(t, s.Store(), TypeBudgetReserved); n != 0 {
		t.Fatalf("a refused approval reserved budget")
	}
	atCap := money(t, "600000")
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: g1, Award: &atCap}))
	wantMoney(t, "approved amount", grantState(t, s, g1).approval.Amount, "600000.00")

	// Tier A's cap is higher, but only 160,000 is left in 2024: 40 % of
	// 400,000.05 is 160,000.02.
	g2 := apply(t, s, tA, "housing", "400000.05")
	toNoticeClosed(t, s, g2)
	_, err = s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: g2})
	wantCode(t, err, EINSUFFICIENTFUNDS)
	// Exactly what is left fits.
	rest := money(t, "400000")
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-16"), GrantID: g2, Award: &rest}))
	b := budgetState(t, s, "housing", 2024)
	wantMoney(t, "available", b.Available, "0.00")
	// Approved in 2025 by the server's clock, a grant is charged to 2025,
	// which has no budget at all; the refusal appends nothing.
	g3 := apply(t, s, registerTalent(t, s, "C"), "housing", "100000")
	toNoticeClosed(t, s, g3)
	before := countEvents(t, s.Store())
	_, err = s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2025-01-15"), GrantID: g3})
	wantCode(t, err, EINSUFFICIENTFUNDS)
	if after := countEvents(t, s.Store()); after != before {
		t.Errorf("a refused approval appended %d events", after-before)
	}

	// Amounts taken as input are checked.
	neg := money(t, "-1")
	_, err = s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: g1, Award: &neg})
	wantCode(t, err, EINVALID)
	_, err = s.AppropriateBudget(ctx, AppropriateBudget{Meta: on(approver, "2024-01-15"), ProgramID: "housing", FiscalYear: 2024, Amount: neg})
	wantCode(t, err, EINVALID)
	_, err = s.ApplyGrant(ctx, ApplyGrant{Meta: onDoc(clerk, "2024-01-15"), TalentID: tB, ProgramID: "housing", AmountRequested: Zero})
	wantCode(t, err, EINVALID)
	// A tier without a cap is not eligible.
	tE := registerTalent(t, s, "E")
	_, err = s.ApplyGrant(ctx, ApplyGrant{Meta: onDoc(clerk, "2024-01-15"), TalentID: tE, ProgramID: "housing", AmountRequested: Yuan(1)})
	wantCode(t, err, ENOTELIGIBLE)
}
