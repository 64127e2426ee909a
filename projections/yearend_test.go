package projections_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

// TestYearEndCloseViews: the budget views show each year's execution
// with carried-over funds, lapses and the closed mark, and the as-of trial
// balance and budget views for a date before the close are the same
// before and after it.
func TestYearEndCloseViews(t *testing.T) {
	e := newEnv(t)
	approver2 := domain.Actor{Principal: "abe", Role: domain.RoleApprover}
	e.do(e.svc.DefineProgram(e.ctx, domain.DefineProgram{Meta: e.on(e.admin, "2024-01-02"), ProgramID: "rent", Name: "Rent",
		Kind: domain.KindRent, Caps: map[string]domain.Money{"B": e.money("100000")},
		Schedule: domain.Schedule{Percentages: []decimal.Decimal{e.pct("50"), e.pct("50")}, IntervalMonths: 12}, ServiceMonths: 24}))
	e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2024-01-02"), ProgramID: "rent",
		FiscalYear: 2024, Amount: e.money("1000000")}))
	var grants []string
	for i, date := range []string{"2024-12-02", "2024-12-03"} {
		talent := e.do(e.svc.RegisterTalent(e.ctx, domain.RegisterTalent{Meta: e.on(e.clerk, "2024-01-02"), Name: []string{"A", "B"}[i],
			PermitCategory: "A", Tier: "B", Employer: "E"})).ID
		g := e.do(e.svc.ApplyGrant(e.ctx, domain.ApplyGrant{Meta: e.on(e.clerk, "2024-11-01"), TalentID: talent, ProgramID: "rent",
			AmountRequested: e.money("100000")})).ID
		e.do(e.svc.ReviewGrant(e.ctx, domain.ReviewGrant{Meta: e.on(e.reviewer, "2024-11-02"), GrantID: g, Decision: "approve"}))
		e.do(e.svc.ApproveGrant(e.ctx, domain.ApproveGrant{Meta: e.on(e.approver, date), GrantID: g}))
		grants = append(grants, g)
	}
	e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2025-01-02"), ProgramID: "rent",
		FiscalYear: 2025, Amount: e.money("500000")}))

	pt := projections.PointInTime{AsOf: "2024-12-31"}
	snapshot := func() string {
		tb, err := projections.BalancesAt(e.ctx, e.st, pt)
		if err != nil {
			t.Fatal(err)
		}
		tb.Position = ""
		p, err := projections.Replay(e.ctx, e.st, pt.Keep)
		if err != nil {
			t.Fatal(err)
		}
		prog, _ := p.Program("rent")
		out, _ := json.Marshal([]any{tb, prog.Budgets})
		return string(out)
	}
	before := snapshot()

	close := func(a domain.Actor) domain.CommandMeta {
		m := e.on(a, "2025-01-06")
		m.Reason = "year-end close"
		return m
	}
	e.do(e.svc.RequestYearEndClose(e.ctx, domain.YearEndCommand{Meta: close(e.approver), ProgramID: "rent", FiscalYear: 2024,
		CarryOver: []domain.CarryOver{{GrantID: grants[0], Reason: "lease signed in December"}}}))
	e.do(e.svc.ConfirmYearEndClose(e.ctx, domain.YearEndCommand{Meta: close(approver2), ProgramID: "rent", FiscalYear: 2024}))
	if err := e.proj.WaitFor(e.ctx, e.last(), 5*time.Second); err != nil {
		t.Fatal(err)
	}

	if after := snapshot(); after != before {
		t.Errorf("as of 2024-12-31, the books changed with the close:\nbefore %s\n after %s", before, after)
	}
	b24 := e.budget("rent", 2024)
	wantEq(t, "2024 closed", b24.Closed, true)
	wantEq(t, "2024 carried out", b24.CarriedOut.String(), "50000.00")
	wantEq(t, "2024 lapsed", b24.Lapsed.String(), "50000.00")
	wantBudget(t, "2024 after the close", b24, "1000000.00", "0.00", "0.00", "950000.00")
	b25 := e.budget("rent", 2025)
	wantEq(t, "2025 closed", b25.Closed, false)
	wantEq(t, "2025 carried over", b25.CarriedOver.String(), "50000.00")
	// 2025 holds both second installments (100,000), the carried first
	// one (50,000) and the lapsed first one, committed again (50,000).
	wantBudget(t, "2025 after the close", b25, "500000.00", "200000.00", "0.00", "350000.00")
	// 2025's forward commitments, in the order they are covered: the two
	// second installments committed at approval, then the lapsed first one.
	cs := e.proj.Commitments("rent", 2025)
	if len(cs) != 3 {
		t.Fatalf("2025 commitments = %+v, want 3", cs)
	}
	for i, want := range []struct {
		grant      string
		lapsedFrom int
	}{{grants[0], 0}, {grants[1], 0}, {grants[1], 2024}} {
		c := cs[i]
		if c.GrantID != want.grant || c.LapsedFrom != want.lapsedFrom || c.Covered.String() != "50000.00" || c.Flagged {
			t.Errorf("commitment %d = %+v, want grant %s lapsed from %d, 50000.00 covered", i, c, want.grant, want.lapsedFrom)
		}
	}
	// The grants' pages show the first installments charged to 2025 now.
	for _, g := range grants {
		gv, _ := e.proj.Grant(g)
		if y := gv.Installments[0].FiscalYear; y != 2025 {
			t.Errorf("grant %s: installment 1 charged to %d, want 2025", g, y)
		}
	}
	if ids := e.proj.PendingCloses(time.Now().Add(time.Hour)); len(ids) != 0 {
		t.Errorf("pending closes = %v, want none", ids)
	}
	e.wantSound("after the close")
}

// TestPendingForwardCommitments: an approval whose forward commitments,
// appended beside it, are not all in the log is listed for
// reconciliation until they are, in whichever order they arrive.
func TestPendingForwardCommitments(t *testing.T) {
	p := projections.New(nil, nil)
	pos := uint64(0)
	feed := func(e domain.Event) {
		t.Helper()
		pos++
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		ev := &eventstore.Event{Type: e.EventType(), Data: data, Position: eventstore.Position{Commit: pos, Prepare: pos},
			Metadata: eventstore.Metadata{RecordedAt: time.Date(2024, 1, 15, 1, 0, 0, 0, time.UTC)}}
		if err := p.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m := func(s string) domain.Money { v, _ := domain.ParseMoney(s); return v }
	fc := func(fy int) *domain.ForwardCommitted {
		return &domain.ForwardCommitted{ProgramID: "housing", FiscalYear: fy, GrantID: "g1", Amount: m("1"), ApprovedIn: 2024}
	}
	feed(fc(2026)) // one commitment lands before the approval
	feed(&domain.GrantApproved{GrantID: "g1", ProgramID: "housing", FiscalYear: 2024, Amount: m("3"),
		Years: []domain.YearShare{{FiscalYear: 2024, Amount: m("1")}, {FiscalYear: 2025, Amount: m("1")}, {FiscalYear: 2026, Amount: m("1")}}})
	if got := p.PendingGrants(later); len(got) != 1 || got[0] != "g1" {
		t.Errorf("pending = %v, want [g1]", got)
	}
	feed(fc(2025))
	if got := p.PendingGrants(later); len(got) != 0 {
		t.Errorf("pending after both commitments = %v, want none", got)
	}
}
