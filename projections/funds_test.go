package projections_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/projections"
)

func (e *env) fm(date string) domain.CommandMeta { return e.on(e.manager, date) }

// establish creates a fund on date with a term and, when limit is not
// empty, a concentration limit.
func (e *env) establish(id, fundType, target string, years int, limit, date string) {
	e.t.Helper()
	c := domain.EstablishFund{Meta: e.fm(date), FundID: id, Name: "Fund " + id, FundType: fundType, Target: e.money(target),
		TermYears: years, Manager: "Pinghu Investment Management"}
	if limit != "" {
		l := e.pct(limit)
		c.ConcentrationLimitPct = &l
	}
	e.do(e.svc.EstablishFund(e.ctx, c))
}

func (e *env) commit(fund, lp, amount, date string) {
	e.t.Helper()
	e.do(e.svc.MakeCommitment(e.ctx, domain.CapitalCommand{Meta: e.fm(date), FundID: fund, LP: lp, Amount: e.money(amount)}))
}

func (e *env) payIn(fund, lp, amount, date string) {
	e.t.Helper()
	e.do(e.svc.PayInCapital(e.ctx, domain.CapitalCommand{Meta: e.fm(date), FundID: fund, LP: lp, Amount: e.money(amount)}))
}

func (e *env) invest(fund, project, sector, amount, stake, date string) string {
	e.t.Helper()
	return e.do(e.svc.ApproveInvestment(e.ctx, domain.ApproveInvestment{Meta: e.fm(date), FundID: fund, CommitteeRef: "IC-" + project,
		Project: project, Company: project + " Co.", Sector: sector, Amount: e.money(amount), StakePct: e.pct(stake)})).ID
}

// act runs an investment command on date.
func (e *env) act(run func(c domain.InvestmentCommand) (domain.Result, error), fund, id, amount, date string) {
	e.t.Helper()
	c := domain.InvestmentCommand{Meta: e.fm(date), FundID: fund, InvestmentID: id}
	if amount != "" {
		c.Amount = e.money(amount)
	}
	e.do(run(c))
}

func (e *env) tranche(fund, id, amount, date string) {
	e.t.Helper()
	e.act(func(c domain.InvestmentCommand) (domain.Result, error) { return e.svc.FundTranche(e.ctx, c) }, fund, id, amount, date)
}

func (e *env) valuation(fund, id, amount, date string) {
	e.t.Helper()
	e.act(func(c domain.InvestmentCommand) (domain.Result, error) { return e.svc.UpdateValuation(e.ctx, c) }, fund, id, amount, date)
}

func (e *env) fund(id, asOf string) projections.FundView {
	e.t.Helper()
	f, ok := e.proj.Fund(id, asOf)
	if !ok {
		e.t.Fatalf("no fund %s", id)
	}
	return f
}

// figures lists a fund's figures by name, as strings, for exact checks.
func figures(f projections.FundView) map[string]string {
	return map[string]string{
		"committed": f.Committed.String(), "paid_in": f.PaidIn.String(), "invested": f.Invested.String(),
		"held_at_cost": f.HeldAtCost.String(), "valuation": f.Valuation.String(), "distributions": f.Distributions.String(),
		"exit_proceeds": f.ExitProceeds.String(), "written_off": f.WrittenOff.String(),
		"appropriated": f.AppropriatedToPrograms.String(), "idle_cash": f.IdleCash.String(), "idle_since": f.IdleSince,
		"moic": f.MOIC, "tvpi": f.TVPI, "projects": fmt.Sprint(f.Projects), "term_end": f.TermEnd,
	}
}

func wantFigures(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s = %q, want %q", what, k, got[k], w)
		}
	}
}

// alerts lists alerts as kind/fund/project.
func alerts(as []projections.Alert) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.Kind+"/"+a.FundID+"/"+a.ProjectID)
	}
	return out
}

func wantAlerts(t *testing.T, what string, got []projections.Alert, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if fmt.Sprint(alerts(got)) != fmt.Sprint(want) {
		t.Errorf("%s: alerts %v, want %v", what, alerts(got), want)
	}
}

// fundSet builds two funds:
//
//   - dif, a direct-investment fund (target 100,000,000, 2023–2033,
//     limit 20%): 60,000,000 + 40,000,000 committed; 30,000,000 paid in on
//     2023-02-01 and 20,000,000 on 2023-08-01; A (semiconductors, 40,000,000
//     approved) funded 30,000,000 and valued 45,000,000; B (biomedicine)
//     funded 10,000,000, distributed 2,000,000 and exited for 15,000,000;
//     C (semiconductors) funded 4,000,000 and written off.
//   - culture, a special fund (target 20,000,000, 2020-06-01 for 5 years,
//     limit 10%): 8,000,000 paid in on 2020-07-01; D (2,000,000.01
//     approved, above the limit) funded 2,000,000; E (2,000,000, at the
//     limit) approved only; 1,000,000 appropriated to a program.
func fundSet(t *testing.T) (e *env, a, b, c, d, ee string) {
	e = newEnv(t)
	e.establish("dif", domain.FundDirectInvestment, "100000000", 10, "", "2023-01-01")
	e.commit("dif", "city platform", "60000000", "2023-01-15")
	e.commit("dif", "social capital", "40000000", "2023-01-15")
	e.payIn("dif", "city platform", "30000000", "2023-02-01")
	e.payIn("dif", "social capital", "20000000", "2023-08-01")
	wantFigures(t, "before investing", figures(e.fund("dif", "")), map[string]string{
		"idle_cash": "50000000.00", "idle_since": "2023-02-01", "moic": "", "tvpi": "1.00"})

	a = e.invest("dif", "A", "semiconductors", "40000000", "15", "2023-08-20")
	e.tranche("dif", a, "30000000", "2023-09-01")
	// The first lot is spent in full: what is idle was paid in on
	// 2023-08-01.
	wantFigures(t, "after the first lot", figures(e.fund("dif", "")), map[string]string{
		"idle_cash": "20000000.00", "idle_since": "2023-08-01"})
	b = e.invest("dif", "B", "biomedicine", "10000000", "5", "2023-09-20")
	e.tranche("dif", b, "10000000", "2023-10-01")
	c = e.invest("dif", "C", "semiconductors", "5000000", "8", "2023-12-01")
	e.tranche("dif", c, "4000000", "2024-01-01")
	e.act(func(x domain.InvestmentCommand) (domain.Result, error) { return e.svc.RecordDistribution(e.ctx, x) }, "dif", b, "2000000", "2024-03-01")
	e.valuation("dif", a, "45000000", "2024-06-30")
	e.act(func(x domain.InvestmentCommand) (domain.Result, error) { return e.svc.CompleteExit(e.ctx, x) }, "dif", b, "15000000", "2024-09-30")
	e.act(func(x domain.InvestmentCommand) (domain.Result, error) { return e.svc.WriteOff(e.ctx, x) }, "dif", c, "", "2024-12-31")

	e.establish("culture", domain.FundSpecial, "20000000", 5, "10", "2020-06-01")
	e.commit("culture", "city platform", "20000000", "2020-06-15")
	e.payIn("culture", "city platform", "8000000", "2020-07-01")
	d = e.invest("culture", "D", "digital_economy", "2000000.01", "20", "2020-07-15")
	ee = e.invest("culture", "E", "new_materials", "2000000", "20", "2020-07-15")
	e.tranche("culture", d, "2000000", "2020-08-01")
	e.do(e.svc.DefineProgram(e.ctx, domain.DefineProgram{Meta: e.on(e.admin, "2024-01-02"), ProgramID: "culture_grant",
		Name: "Culture talent grant", Kind: domain.KindSpecialFundGrant, Caps: map[string]domain.Money{"A": e.money("100000")},
		Schedule: domain.Schedule{Percentages: []decimal.Decimal{e.pct("100")}}, FundingSource: "fund:culture"}))
	e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2024-01-10"), ProgramID: "culture_grant",
		FiscalYear: 2024, Amount: e.money("1000000")}))
	return e, a, b, c, d, ee
}

func TestFundViews(t *testing.T) {
	e, a, b, c, d, ee := fundSet(t)

	dif := e.fund("dif", "2024-07-31")
	wantFigures(t, "dif", figures(dif), map[string]string{
		"committed": "100000000.00", "paid_in": "50000000.00", "invested": "44000000.00", "held_at_cost": "30000000.00",
		"valuation": "45000000.00", "distributions": "17000000.00", "exit_proceeds": "15000000.00", "written_off": "4000000.00",
		"appropriated": "0.00", "idle_cash": "6000000.00", "idle_since": "2023-08-01",
		// (45,000,000 + 17,000,000) ÷ 44,000,000 = 1.409…
		"moic": "1.41",
		// (45,000,000 + 17,000,000 + 6,000,000) ÷ 50,000,000
		"tvpi": "1.36", "projects": "3", "term_end": "2033-01-01",
	})
	if len(dif.LPs) != 2 || dif.LPs[0].LP != "city platform" || dif.LPs[0].Committed.String() != "60000000.00" || dif.LPs[0].PaidIn.String() != "30000000.00" ||
		dif.LPs[1].LP != "social capital" || dif.LPs[1].Committed.String() != "40000000.00" || dif.LPs[1].PaidIn.String() != "20000000.00" {
		t.Errorf("dif LPs %+v", dif.LPs)
	}
	culture := e.fund("culture", "2024-05-31")
	wantFigures(t, "culture", figures(culture), map[string]string{
		"committed": "20000000.00", "paid_in": "8000000.00", "invested": "2000000.00", "held_at_cost": "2000000.00",
		// No valuation recorded: held at cost.
		"valuation": "2000000.00", "distributions": "0.00", "appropriated": "1000000.00",
		"idle_cash": "5000000.00", "idle_since": "2020-07-01", "moic": "1.00",
		// (2,000,000 + 5,000,000) ÷ 8,000,000 = 0.875
		"tvpi": "0.88", "projects": "2", "term_end": "2025-06-01",
	})

	if _, ok := e.proj.Fund("nofund", ""); ok {
		t.Error("Fund(nofund) found")
	}
	funds, totals := e.proj.Funds("2024-07-31")
	if len(funds) != 2 || funds[0].ID != "dif" || funds[1].ID != "culture" {
		t.Fatalf("funds %v, want dif and culture in the order established", funds)
	}
	gotTotals := map[string]string{"funds": fmt.Sprint(totals.Funds), "projects": fmt.Sprint(totals.Projects),
		"target": totals.Target.String(), "committed": totals.Committed.String(), "paid_in": totals.PaidIn.String(),
		"invested": totals.Invested.String(), "valuation": totals.Valuation.String(), "distributions": totals.Distributions.String(),
		"written_off": totals.WrittenOff.String(), "idle_cash": totals.IdleCash.String(), "moic": totals.MOIC, "tvpi": totals.TVPI}
	wantFigures(t, "totals", gotTotals, map[string]string{"funds": "2", "projects": "5", "target": "120000000.00",
		"committed": "120000000.00", "paid_in": "58000000.00", "invested": "46000000.00", "valuation": "47000000.00",
		"distributions": "17000000.00", "written_off": "4000000.00", "idle_cash": "11000000.00",
		// 64 ÷ 46 = 1.391…; 75 ÷ 58 = 1.293…
		"moic": "1.39", "tvpi": "1.29"})

	// Projects, in the order approved, with their multiples.
	ps, pt := e.proj.Projects(projections.ProjectFilter{})
	type row struct{ id, status, cost, valuation, dist, exit, written, multiple string }
	var got []row
	for _, p := range ps {
		got = append(got, row{p.ID, p.Status, p.Cost.String(), p.Valuation.String(), p.Distributions.String(), p.ExitProceeds.String(),
			p.WrittenOff.String(), p.Multiple})
	}
	wantRows := []row{
		{a, "funded", "30000000.00", "45000000.00", "0.00", "0.00", "0.00", "1.50"},
		{b, "exited", "10000000.00", "0.00", "2000000.00", "15000000.00", "0.00", "1.70"},
		{c, "written_off", "4000000.00", "0.00", "0.00", "0.00", "4000000.00", "0.00"},
		{d, "funded", "2000000.00", "2000000.00", "0.00", "0.00", "0.00", "1.00"},
		{ee, "approved", "0.00", "0.00", "0.00", "0.00", "0.00", ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(wantRows) {
		t.Errorf("projects\n got %v\nwant %v", got, wantRows)
	}
	if p := ps[0]; p.FundID != "dif" || p.FundName != "Fund dif" || p.Sector != "semiconductors" || p.StakePct.String() != "15" ||
		p.Approved.String() != "40000000.00" || p.Tranches != 1 || p.ValuationAsOf != "2024-06-30" || p.ApprovedOn != "2023-08-20" {
		t.Errorf("project A %+v", p)
	}
	wantFigures(t, "project totals", map[string]string{"projects": fmt.Sprint(pt.Projects), "approved": pt.Approved.String(),
		"cost": pt.Cost.String(), "valuation": pt.Valuation.String()},
		map[string]string{"projects": "5", "approved": "59000000.01", "cost": "46000000.00", "valuation": "47000000.00"})
	group := func(g *projections.GroupTotal) string {
		if g == nil {
			return "none"
		}
		return fmt.Sprintf("%d %s %s %s", g.Projects, g.Cost, g.Valuation, g.Distributions)
	}
	for k, w := range map[string]string{"semiconductors": "2 34000000.00 45000000.00 0.00", "biomedicine": "1 10000000.00 0.00 17000000.00",
		"digital_economy": "1 2000000.00 2000000.00 0.00", "new_materials": "1 0.00 0.00 0.00"} {
		if g := group(pt.BySector[k]); g != w {
			t.Errorf("by sector %s: %s, want %s", k, g, w)
		}
	}
	for k, w := range map[string]string{"dif": "3 44000000.00 45000000.00 17000000.00", "culture": "2 2000000.00 2000000.00 0.00"} {
		if g := group(pt.ByFund[k]); g != w {
			t.Errorf("by fund %s: %s, want %s", k, g, w)
		}
	}

	for _, c2 := range []struct {
		f    projections.ProjectFilter
		want []string
	}{
		{projections.ProjectFilter{Sector: "semiconductors"}, []string{a, c}},
		{projections.ProjectFilter{FundID: "dif"}, []string{a, b, c}},
		{projections.ProjectFilter{FundID: "culture"}, []string{d, ee}},
		{projections.ProjectFilter{Status: "funded"}, []string{a, d}},
		{projections.ProjectFilter{Status: "approved"}, []string{ee}},
		{projections.ProjectFilter{Sector: "semiconductors", Status: "written_off"}, []string{c}},
		{projections.ProjectFilter{FundID: "culture", Sector: "semiconductors"}, []string{}},
		{projections.ProjectFilter{FundID: "nofund"}, []string{}},
	} {
		ps, pt := e.proj.Projects(c2.f)
		ids := []string{}
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(c2.want) || pt.Projects != len(c2.want) {
			t.Errorf("Projects(%+v) = %v (total %d), want %v", c2.f, ids, pt.Projects, c2.want)
		}
	}

	want := func(pending []string) {
		t.Helper()
		if fmt.Sprint(pending) != "[culture]" {
			t.Errorf("PendingFunds = %v, want [culture]", pending)
		}
	}
	want(e.proj.PendingFunds())
	b2, _ := e.proj.Budget("culture_grant", 2024)
	wantBudget(t, "culture_grant budget", b2, "1000000.00", "0.00", "0.00", "1000000.00")
	tb := e.wantSound("fund set")
	wantEq(t, "dif cash in the ledger", balanceOf(tb, "fund:dif:cash"), "6000000.00")
	wantEq(t, "culture cash in the ledger", balanceOf(tb, "fund:culture:cash"), "5000000.00")
	wantEq(t, "culture in transit", balanceOf(tb, "fund:culture:in_transit"), "0.00")
}

func TestFundAlerts(t *testing.T) {
	e, a, _, _, d, _ := fundSet(t)
	for _, c := range []struct {
		asOf string
		want []string
	}{
		{"", []string{}},
		// dif's idle cash dates from 2023-08-01; culture's from 2020-07-01
		// and its term ends on 2025-06-01.
		{"2020-12-31", []string{"concentration/culture/" + d, "concentration/dif/" + a}},
		{"2021-07-02", []string{"idle_cash/culture/", "concentration/culture/" + d, "concentration/dif/" + a}},
		{"2024-05-31", []string{"idle_cash/culture/", "concentration/culture/" + d, "concentration/dif/" + a}},
		// culture's term ends on 2025-06-01: flagged from 180 days before.
		{"2024-12-02", []string{"idle_cash/culture/", "concentration/culture/" + d, "concentration/dif/" + a}},
		{"2024-12-03", []string{"idle_cash/culture/", "term_ending/culture/", "concentration/culture/" + d, "concentration/dif/" + a}},
		// dif's 6,000,000 idle is 12 % of its paid-in: below 20 %, never
		// flagged.
		{"2025-08-02", []string{"idle_cash/culture/", "term_ending/culture/", "concentration/culture/" + d, "concentration/dif/" + a}},
	} {
		wantAlerts(t, "as of "+c.asOf, e.proj.FundAlerts(c.asOf), c.want...)
	}
	f := e.fund("culture", "2024-12-03")
	for _, al := range f.Alerts {
		var want string
		switch al.Kind {
		case "idle_cash":
			want = "paid-in cash of 5000000.00 has been idle for more than 365 days (since 2020-07-01): above 20% of the paid-in capital of 8000000.00"
		case "term_ending":
			want = "the fund's term ends on 2025-06-01"
		case "concentration":
			want = "D takes 2000000.01, above the limit of 10% of the target (2000000.00)"
		}
		if al.Message != want {
			t.Errorf("%s alert: %q, want %q", al.Kind, al.Message, want)
		}
	}
	for _, al := range e.fund("culture", "2025-07-01").Alerts {
		if al.Kind == "term_ending" && al.Message != "the fund's term ended on 2025-06-01" {
			t.Errorf("term alert after the end: %q", al.Message)
		}
	}
	// An investment above the limit is flagged while it is held, not once
	// it is written off. (dif's history already runs to C's write-off on
	// 2024-12-31, and a fund's business dates never go backwards: F is
	// approved, funded and written off on that day.)
	big := e.invest("dif", "F", "new_energy", "25000000", "20", "2024-12-31")
	wantAlerts(t, "F approved", e.fund("dif", "2024-07-31").Alerts, "concentration/dif/"+a, "concentration/dif/"+big)
	e.tranche("dif", big, "1000000", "2024-12-31")
	e.act(func(x domain.InvestmentCommand) (domain.Result, error) { return e.svc.WriteOff(e.ctx, x) }, "dif", big, "", "2024-12-31")
	wantAlerts(t, "F written off", e.fund("dif", "2024-07-31").Alerts, "concentration/dif/"+a)
	// Investing the idle cash ends the idle alert.
	e.tranche("dif", a, "5000000", "2025-01-01")
	wantFigures(t, "dif fully invested", figures(e.fund("dif", "2025-01-02")), map[string]string{"idle_cash": "0.00", "idle_since": ""})
	wantAlerts(t, "dif fully invested", e.fund("dif", "2025-01-02").Alerts, "concentration/dif/"+a)
}

// TestMultipleRounding: multiples are the exact ratio rounded once to two
// decimals, half away from zero.
func TestMultipleRounding(t *testing.T) {
	e := newEnv(t)
	e.establish("tiny", domain.FundDirectInvestment, "1000000", 10, "", "2024-01-01")
	e.commit("tiny", "LP", "200000", "2024-01-02")
	e.payIn("tiny", "LP", "200000", "2024-01-02")
	x := e.invest("tiny", "X", "other", "100000", "10", "2024-01-03")
	e.tranche("tiny", x, "100000", "2024-01-04")
	for _, c := range []struct{ valuation, multiple string }{
		{"100495.00", "1.00"}, // 1.00495
		{"100500.00", "1.01"}, // 1.005
		{"99499.99", "0.99"},  // 0.9949999
		{"99500.00", "1.00"},  // 0.995
		{"0", "0.00"},
		{"250000", "2.50"},
	} {
		e.valuation("tiny", x, c.valuation, "2024-06-30")
		ps, _ := e.proj.Projects(projections.ProjectFilter{FundID: "tiny"})
		if len(ps) != 1 || ps[0].Multiple != c.multiple || ps[0].Valuation.String() != e.money(c.valuation).String() {
			t.Errorf("valuation %s: projects %+v, want multiple %s", c.valuation, ps, c.multiple)
		}
		if f := e.fund("tiny", ""); f.MOIC != c.multiple {
			t.Errorf("valuation %s: fund MOIC %s, want %s", c.valuation, f.MOIC, c.multiple)
		}
	}
}

// TestIdleSinceFIFO: tranches and appropriations spend the oldest paid-in
// cash first, partly and across lots.
func TestIdleSinceFIFO(t *testing.T) {
	e := newEnv(t)
	e.establish("sci", domain.FundSpecial, "100000000", 10, "", "2022-01-01")
	e.commit("sci", "city platform", "100000000", "2022-01-01")
	for _, l := range [][2]string{{"1000000", "2022-03-01"}, {"2000000", "2022-06-01"}, {"3000000", "2022-09-01"}} {
		e.payIn("sci", "city platform", l[0], l[1])
	}
	x := e.invest("sci", "X", "new_energy", "5000000", "10", "2022-10-01")
	e.do(e.svc.DefineProgram(e.ctx, domain.DefineProgram{Meta: e.on(e.admin, "2022-01-02"), ProgramID: "sci_grant",
		Name: "Sci-tech talent grant", Kind: domain.KindSpecialFundGrant, Caps: map[string]domain.Money{"A": e.money("100000")},
		Schedule: domain.Schedule{Percentages: []decimal.Decimal{e.pct("100")}}, FundingSource: "fund:sci"}))
	steps := []struct {
		what             string
		run              func()
		idle, idleSince  string
		appropriated     string
		invested, alerts string
	}{
		{"part of the first lot", func() { e.tranche("sci", x, "400000", "2022-10-02") }, "5600000.00", "2022-03-01", "0.00", "400000.00", "[]"},
		{"the rest of it, exactly", func() { e.tranche("sci", x, "600000", "2022-10-03") }, "5000000.00", "2022-06-01", "0.00", "1000000.00", "[]"},
		{"an appropriation across two lots", func() {
			e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2023-01-02"), ProgramID: "sci_grant",
				FiscalYear: 2023, Amount: e.money("2500000")}))
			// The budget's half lands after the fund's.
			if err := e.proj.WaitFor(e.ctx, e.last(), 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}, "2500000.00", "2022-09-01", "2500000.00", "1000000.00", "[]"},
		{"everything", func() { e.tranche("sci", x, "2500000", "2023-02-01") }, "0.00", "", "2500000.00", "3500000.00", "[]"},
	}
	for _, s := range steps {
		s.run()
		f := e.fund("sci", "2023-12-31")
		wantFigures(t, s.what, figures(f), map[string]string{"idle_cash": s.idle, "idle_since": s.idleSince,
			"appropriated": s.appropriated, "invested": s.invested})
	}
	// Cash paid in later is idle from its own date.
	e.payIn("sci", "city platform", "100", "2023-03-01")
	f := e.fund("sci", "2024-03-02")
	wantFigures(t, "new cash", figures(f), map[string]string{"idle_cash": "100.00", "idle_since": "2023-03-01"})
	// 100.00 of 6,000,100.00 paid in: far below 20 %, no alert.
	wantAlerts(t, "a little new cash, idle long", f.Alerts)

	// solo: 30 % of its paid-in idle since 2023-03-01; flagged once idle
	// for more than 365 days.
	e.establish("solo", domain.FundDirectInvestment, "10000000", 10, "", "2023-01-01")
	e.commit("solo", "city platform", "1000000", "2023-01-01")
	e.payIn("solo", "city platform", "1000000", "2023-03-01")
	y := e.invest("solo", "Y", "new_energy", "1000000", "10", "2023-03-02")
	e.tranche("solo", y, "700000", "2023-03-02")
	wantAlerts(t, "30 % idle for 365 days", e.fund("solo", "2024-02-29").Alerts)
	wantAlerts(t, "30 % idle for 366 days", e.fund("solo", "2024-03-01").Alerts, "idle_cash/solo/")
	if a := e.fund("solo", "2024-03-01").Alerts; len(a) == 1 && a[0].Message != "paid-in cash of 300000.00 has been idle for more than 365 days (since 2023-03-01): above 20% of the paid-in capital of 1000000.00" {
		t.Errorf("idle alert %q", a[0].Message)
	}
	e.tranche("solo", y, "150000", "2024-03-01")
	wantAlerts(t, "15 % idle", e.fund("solo", "2024-03-01").Alerts)
}

// TestFundAlertThresholds: a fund's own thresholds decide its alerts.
func TestFundAlertThresholds(t *testing.T) {
	e := newEnv(t)
	ten, days, term := 10, 90, 400
	e.do(e.svc.EstablishFund(e.ctx, domain.EstablishFund{Meta: e.fm("2023-01-01"), FundID: "keen", Name: "Keen", FundType: domain.FundSpecial,
		Target: e.money("10000000"), TermYears: 2, Manager: "M", IdleCashPct: &ten, IdleCashDays: &days, TermWarningDays: &term}))
	e.establish("calm", domain.FundSpecial, "10000000", 2, "", "2023-01-01")
	for _, id := range []string{"keen", "calm"} {
		e.commit(id, "city platform", "1000000", "2023-01-01")
		e.payIn(id, "city platform", "1000000", "2023-01-02")
		p := e.invest(id, "P", "new_energy", "1000000", "10", "2023-01-03")
		e.tranche(id, p, "850000", "2023-01-03")
	}
	// 15 % idle since 2023-01-02; the terms end on 2025-01-01.
	wantAlerts(t, "keen after 91 days", e.fund("keen", "2023-04-03").Alerts, "idle_cash/keen/")
	wantAlerts(t, "keen after 90 days", e.fund("keen", "2023-04-02").Alerts)
	wantAlerts(t, "calm after two years", e.fund("calm", "2024-07-01").Alerts)
	wantAlerts(t, "keen 400 days before its end", e.fund("keen", "2023-11-28").Alerts, "idle_cash/keen/", "term_ending/keen/")
	wantAlerts(t, "keen 401 days before its end", e.fund("keen", "2023-11-27").Alerts, "idle_cash/keen/")
	wantAlerts(t, "calm 180 days before its end", e.fund("calm", "2024-07-05").Alerts, "term_ending/calm/")
	wantAlerts(t, "calm 181 days before its end", e.fund("calm", "2024-07-04").Alerts)
	if f := e.fund("calm", "2024-07-04"); f.IdleCashPct != 20 || f.IdleCashDays != 365 || f.TermWarningDays != 180 {
		t.Errorf("calm thresholds %d %d %d, want the defaults 20 365 180", f.IdleCashPct, f.IdleCashDays, f.TermWarningDays)
	}
}
