package domain

import (
	"context"
	"slices"
	"testing"
)

// defineMonthly defines a program paying monthly for months months, with no
// notice and no service requirement.
func defineMonthly(t *testing.T, s *Service, id, kind, monthly string, months int) {
	t.Helper()
	m := money(t, monthly)
	cap := m.MulRatio(int64(months), 1)
	must(t)(s.DefineProgram(context.Background(), DefineProgram{
		Meta: on(admin, "2024-01-02"), ProgramID: id, Name: id, Kind: kind,
		Caps: map[string]Money{"A": cap, "B": cap}, Schedule: Schedule{MonthlyAmount: &m, Months: months},
	}))
}

// approveDirect takes a grant of a program without notice from application
// to approval on date.
func approveDirect(t *testing.T, s *Service, talentID, program, amount, date string) string {
	t.Helper()
	ctx := context.Background()
	gid := apply(t, s, talentID, program, amount)
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: gid, Decision: "approve"}))
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, date), GrantID: gid}))
	return gid
}

func TestNoStacking(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	s := newServiceOver(st)

	defineMonthly(t, s, "rent", KindRent, "2500", 36)
	appropriate(t, s, "rent", 2024, "3000000")
	defineMonthly(t, s, "transport", KindTransport, "500", 36)
	appropriate(t, s, "transport", 2024, "1500000")
	must(t)(s.DefineProgram(ctx, DefineProgram{
		Meta: on(admin, "2024-01-02"), ProgramID: "housing", Name: "Housing purchase", Kind: KindHousingPurchase,
		Caps: housingCaps(t), Schedule: housingSchedule(t), ServiceMonths: 60, DeductKinds: []string{KindRent},
	}))
	appropriate(t, s, "housing", 2024, "30000000")

	tid := registerTalent(t, s, "B")
	rent := approveDirect(t, s, tid, "rent", "90000", "2024-01-15")
	// Rent approved for another talent does not count.
	other := registerTalent(t, s, "B")
	otherRent := approveDirect(t, s, other, "rent", "90000", "2024-01-15")
	payInstallment(t, s, otherRent, 1, "2024-01-15")
	for n, date := range []string{"2024-01-15", "2024-02-15", "2024-03-15"} {
		payInstallment(t, s, rent, n+1, date)
	}
	if g := grantState(t, s, rent); g.paid.String() != "7500.00" {
		t.Fatalf("rent paid = %s, want 7500.00", g.paid)
	}
	// Transport is paid too, but housing does not deduct it.
	transport := approveDirect(t, s, tid, "transport", "18000", "2024-01-15")
	payInstallment(t, s, transport, 1, "2024-01-15")

	housing := approveDirect(t, s, tid, "housing", "600000", "2024-04-01")
	a := grantState(t, s, housing).approval
	wantMoney(t, "award", a.Award, "600000.00")
	wantMoney(t, "deduction", a.Deduction, "7500.00")
	wantMoney(t, "amount", a.Amount, "592500.00")
	if !slices.Equal(a.DeductedFrom, []string{rent}) {
		t.Errorf("deducted from %v, want [%s]", a.DeductedFrom, rent)
	}
	sum := Zero
	for _, in := range a.Installments {
		sum = sum.Add(in.Amount)
	}
	wantMoney(t, "installments sum", sum, "592500.00")
	wantMoney(t, "first installment", a.Installments[0].Amount, "237000.00")
	b := budgetState(t, s, "housing", 2024)
	// 2024 reserves the first installment; the others are committed to
	// 2025 and 2026.
	wantMoney(t, "housing committed", b.Committed, "237000.00")

	// The other talent's housing award, with nothing of their own paid
	// under rent but one installment, deducts exactly that.
	h2 := approveDirect(t, s, other, "housing", "600000", "2024-04-01")
	wantMoney(t, "other's deduction", grantState(t, s, h2).approval.Deduction, "2500.00")

	// Another process, whose caches know nothing of these grants and which
	// has no read model at all, deducts the same: the deduction is read
	// from the talent's stream and the grants' own streams.
	other2 := newServiceOver(st)
	third := registerTalent(t, s, "B")
	thirdRent := approveDirect(t, s, third, "rent", "90000", "2024-04-01")
	payInstallment(t, s, thirdRent, 1, "2024-04-01")
	payInstallment(t, s, thirdRent, 2, "2024-05-01")
	h3 := approveDirect(t, other2, third, "housing", "600000", "2024-05-02")
	wantMoney(t, "deduction in another process", grantState(t, other2, h3).approval.Deduction, "5000.00")
	ledger(t, st)
}

func TestStackingLeavesNothing(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	s := newServiceOver(st)
	defineMonthly(t, s, "rent", KindRent, "2500", 36)
	appropriate(t, s, "rent", 2024, "3000000")
	must(t)(s.DefineProgram(ctx, DefineProgram{
		Meta: on(admin, "2024-01-02"), ProgramID: "small", Name: "Small", Kind: KindTransport,
		Caps: map[string]Money{"B": money(t, "5000")}, Schedule: Schedule{Percentages: decs(t, "100")}, DeductKinds: []string{KindRent},
	}))
	appropriate(t, s, "small", 2024, "100000")
	tid := registerTalent(t, s, "B")
	rent := approveDirect(t, s, tid, "rent", "90000", "2024-01-15")
	payInstallment(t, s, rent, 1, "2024-01-15")
	payInstallment(t, s, rent, 2, "2024-02-15")
	gid := apply(t, s, tid, "small", "5000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-03-01"), GrantID: gid, Decision: "approve"}))
	_, err := s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-03-01"), GrantID: gid})
	wantCode(t, err, ECONFLICT)
	if n := countGrantEvents(t, st, TypeBudgetReserved, gid); n != 0 {
		t.Errorf("%d reservations for an award with nothing left", n)
	}
}
