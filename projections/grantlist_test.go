package projections_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/projections"
)

// Grants answers a page and a total without scanning every grant; both
// must be what a scan finds, for every filter, as grants change state.
func TestGrantListPagesAndTotals(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"rent", "transport"} {
		e.do(e.svc.DefineProgram(e.ctx, domain.DefineProgram{Meta: e.on(e.admin, "2024-01-02"), ProgramID: id, Name: id,
			Kind: domain.KindRent, Caps: map[string]domain.Money{"B": e.money("1000")},
			Schedule: domain.Schedule{Percentages: []decimal.Decimal{e.pct("100")}}}))
		e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2024-01-02"), ProgramID: id,
			FiscalYear: 2024, Amount: e.money("1000000")}))
	}
	// A talent per grant: the test is about lists, not about what one
	// talent may receive.
	var talents []string
	for i := range 24 {
		talents = append(talents, e.do(e.svc.RegisterTalent(e.ctx, domain.RegisterTalent{Meta: e.on(e.clerk, "2024-01-02"),
			Name: fmt.Sprintf("T%d", i), Tier: "B", Employer: "E"})).ID)
	}
	// 24 grants across two programs, left at every stage.
	for i := range 24 {
		program := []string{"rent", "transport"}[i%2]
		g := e.do(e.svc.ApplyGrant(e.ctx, domain.ApplyGrant{Meta: e.on(e.clerk, "2024-01-03"), TalentID: talents[i],
			ProgramID: program, AmountRequested: e.money("1000")})).ID
		switch i % 6 {
		case 0:
			continue
		case 1:
			e.do(e.svc.ReviewGrant(e.ctx, domain.ReviewGrant{Meta: e.on(e.reviewer, "2024-01-04"), GrantID: g, Decision: "reject", Note: "no"}))
			continue
		}
		e.do(e.svc.ReviewGrant(e.ctx, domain.ReviewGrant{Meta: e.on(e.reviewer, "2024-01-04"), GrantID: g, Decision: "approve"}))
		if i%6 == 2 {
			continue
		}
		e.do(e.svc.ApproveGrant(e.ctx, domain.ApproveGrant{Meta: e.on(e.approver, "2024-01-20"), GrantID: g}))
		if i%6 == 3 {
			continue
		}
		p := e.do(e.svc.PreparePayment(e.ctx, domain.PreparePayment{Meta: e.on(e.clerk, "2024-01-20"), GrantID: g, Installment: 1})).ID
		e.do(e.svc.ApprovePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.approver, "2024-01-20"), PaymentID: p}))
		e.do(e.svc.ReleasePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.treasurer, "2024-01-20"), PaymentID: p, BankReference: "B"}))
		if i%6 == 5 {
			e.do(e.svc.ReversePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.treasurer2, "2024-01-20"), PaymentID: p, Reason: "wrong account"}))
		}
	}
	if err := e.proj.WaitFor(e.ctx, e.last(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	all, _ := e.proj.Grants(projections.GrantFilter{})
	if len(all) != 24 {
		t.Fatalf("%d grants listed, want 24", len(all))
	}
	states := map[string]bool{}
	for _, g := range all {
		states[g.State] = true
	}
	if len(states) < 5 {
		t.Fatalf("grants in states %v; the test wants more variety", states)
	}
	for _, program := range []string{"", "rent", "transport", "none"} {
		for _, state := range []string{"", domain.GrantStateApplied, domain.GrantStateRejected, domain.GrantStateReviewed,
			domain.GrantStateApproved, domain.GrantStateCompleted} {
			for _, talent := range []string{"", talents[1]} {
				var want []projections.GrantView
				for _, g := range all {
					if (program == "" || g.ProgramID == program) && (state == "" || g.State == state) && (talent == "" || g.TalentID == talent) {
						want = append(want, g)
					}
				}
				for _, page := range [][2]int{{0, 0}, {0, 3}, {2, 3}, {0, 100}, {7, 100}, {100, 5}} {
					f := projections.GrantFilter{ProgramID: program, State: state, TalentID: talent, Offset: page[0], Limit: page[1]}
					got, total := e.proj.Grants(f)
					wantPage := want[min(page[0], len(want)):]
					if page[1] > 0 && len(wantPage) > page[1] {
						wantPage = wantPage[:page[1]]
					}
					if total != len(want) || len(got) != len(wantPage) || (len(got) > 0 && jsonOf(t, got) != jsonOf(t, wantPage)) {
						t.Errorf("%+v: %d grants of %d; want %d of %d", f, len(got), total, len(wantPage), len(want))
					}
				}
			}
		}
	}
}
