package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/projections"
)

// TestPaymentsRegisterOfAPeriod: the payments register report of a
// period lists, page after page of the model, exactly the payments the
// register (Payments) lists as released in the period, in its order, and
// its total line sums their amounts; a payment prepared but not released
// is not in it, nor one released outside the period; an error of the
// writer stops the drawing and is returned.
func TestPaymentsRegisterOfAPeriod(t *testing.T) {
	defer projections.SetPaymentPage(3)()
	e := newEnv(t)
	monthly := e.money("2500")
	e.do(e.svc.DefineProgram(e.ctx, domain.DefineProgram{Meta: e.on(e.admin, "2024-01-02"), ProgramID: "rent", Name: "人才租房补贴",
		Kind: domain.KindRent, Caps: map[string]domain.Money{"B": e.money("60000")},
		Schedule: domain.Schedule{MonthlyAmount: &monthly, Months: 24}}))
	e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2024-01-02"), ProgramID: "rent",
		FiscalYear: 2024, Amount: e.money("1000000")}))
	var grants []string
	for _, name := range []string{"王小明", "Ana Lima", "Omar Haddad"} {
		talent := e.do(e.svc.RegisterTalent(e.ctx, domain.RegisterTalent{Meta: e.on(e.clerk, "2024-01-02"), Name: name,
			PermitCategory: "A", Tier: "B", Employer: "Pinghu Precision Optics Co."})).ID
		g := e.do(e.svc.ApplyGrant(e.ctx, domain.ApplyGrant{Meta: e.on(e.clerk, "2024-01-03"), TalentID: talent, ProgramID: "rent",
			AmountRequested: e.money("60000")})).ID
		e.do(e.svc.ReviewGrant(e.ctx, domain.ReviewGrant{Meta: e.on(e.reviewer, "2024-01-04"), GrantID: g, Decision: "approve"}))
		e.do(e.svc.ApproveGrant(e.ctx, domain.ApproveGrant{Meta: e.on(e.approver, "2024-01-15"), GrantID: g}))
		grants = append(grants, g)
	}
	// Each month from January to June, every grant's installment is
	// prepared; the June ones are left unreleased.
	for n, date := range []string{"2024-01-15", "2024-02-15", "2024-03-15", "2024-04-15", "2024-05-15", "2024-06-15"} {
		for _, g := range grants {
			p := e.do(e.svc.PreparePayment(e.ctx, domain.PreparePayment{Meta: e.on(e.clerk, date), GrantID: g, Installment: n + 1})).ID
			if n == 5 {
				continue
			}
			e.do(e.svc.ApprovePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.approver, date), PaymentID: p}))
			e.do(e.svc.ReleasePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.treasurer, date), PaymentID: p, BankReference: "ICBC-" + p}))
		}
	}
	if err := e.proj.WaitFor(e.ctx, e.last(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	f := projections.PaymentFilter{ReleasedFrom: "2024-02-01", ReleasedTo: "2024-05-31", After: -1, Limit: 1000}
	want, total, _ := e.proj.Work().Payments(f)
	if total != 12 {
		t.Fatalf("Payments: %d released from February to May, want 12", total)
	}
	var sum domain.Money
	for _, p := range want {
		sum = sum.Add(p.Amount)
	}
	var got [][]string
	rep := e.proj.PaymentsRegisterReport("2024-02-01", "2024-05-31")
	if err := rep.Rows(context.Background(), func(row []string) error {
		got = append(got, append([]string(nil), row...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want)+1 {
		t.Fatalf("%d rows, want %d payments and the total", len(got), len(want))
	}
	for i, p := range want {
		if got[i][0] != p.ID || got[i][1] != p.ReleasedOn || got[i][2] != p.BankReference || e.money(got[i][8]).Cmp(p.Amount) != 0 {
			t.Errorf("row %d %q, want payment %s released %s", i, got[i], p.ID, p.ReleasedOn)
		}
	}
	if last := got[len(got)-1]; e.money(last[8]).Cmp(sum) != 0 || sum.Cmp(e.money("30000")) != 0 {
		t.Errorf("total line %q, want %s (12 × 2,500.00)", last, sum)
	}
	// The period's bounds are inclusive; none of the June payments, only
	// prepared, is listed without a lower bound.
	var all int
	_ = e.proj.PaymentsRegisterReport("", "2024-12-31").Rows(context.Background(), func([]string) error { all++; return nil })
	if all != 15+1 {
		t.Errorf("up to 2024-12-31: %d rows, want the 15 released and the total", all)
	}
	stop := errors.New("the client went away")
	n := 0
	err := rep.Rows(context.Background(), func([]string) error {
		n++
		if n == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 4 {
		t.Errorf("after the writer's error: %v, %d rows drawn; want the error after 4", err, n)
	}
}
