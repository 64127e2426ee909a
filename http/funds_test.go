package http_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"talentledger/domain"
)

// Wire views of the fund manager's queries, amounts as strings.
type lpJSON struct {
	LP        string `json:"lp"`
	Committed string `json:"committed"`
	PaidIn    string `json:"paid_in"`
}

type alertJSON struct {
	Kind      string `json:"kind"`
	FundID    string `json:"fund_id"`
	ProjectID string `json:"project_id"`
	Message   string `json:"message"`
}

type fundJSON struct {
	ID                     string      `json:"id"`
	Name                   string      `json:"name"`
	FundType               string      `json:"fund_type"`
	Target                 string      `json:"target"`
	TermYears              int         `json:"term_years"`
	EstablishedOn          string      `json:"established_on"`
	TermEnd                string      `json:"term_end"`
	Committed              string      `json:"committed"`
	PaidIn                 string      `json:"paid_in"`
	Invested               string      `json:"invested"`
	HeldAtCost             string      `json:"held_at_cost"`
	Valuation              string      `json:"valuation"`
	Distributions          string      `json:"distributions"`
	ExitProceeds           string      `json:"exit_proceeds"`
	WrittenOff             string      `json:"written_off"`
	AppropriatedToPrograms string      `json:"appropriated_to_programs"`
	IdleCash               string      `json:"idle_cash"`
	IdleSince              string      `json:"idle_since"`
	MOIC                   string      `json:"moic"`
	TVPI                   string      `json:"tvpi"`
	NAV                    string      `json:"nav"`
	DPI                    string      `json:"dpi"`
	RVPI                   string      `json:"rvpi"`
	IRR                    string      `json:"irr"`
	Projects               int         `json:"projects"`
	LPs                    []lpJSON    `json:"lps"`
	Alerts                 []alertJSON `json:"alerts"`
}

type fundTotalsJSON struct {
	Funds         int    `json:"funds"`
	Projects      int    `json:"projects"`
	Target        string `json:"target"`
	Committed     string `json:"committed"`
	PaidIn        string `json:"paid_in"`
	Invested      string `json:"invested"`
	Valuation     string `json:"valuation"`
	Distributions string `json:"distributions"`
	WrittenOff    string `json:"written_off"`
	IdleCash      string `json:"idle_cash"`
	MOIC          string `json:"moic"`
	TVPI          string `json:"tvpi"`
}

type projectJSON struct {
	ID            string `json:"id"`
	FundID        string `json:"fund_id"`
	Project       string `json:"project"`
	Sector        string `json:"sector"`
	Approved      string `json:"approved"`
	StakePct      string `json:"stake_pct"`
	Cost          string `json:"cost"`
	Tranches      int    `json:"tranches"`
	Valuation     string `json:"valuation"`
	Distributions string `json:"distributions"`
	ExitProceeds  string `json:"exit_proceeds"`
	WrittenOff    string `json:"written_off"`
	Multiple      string `json:"multiple"`
	Status        string `json:"status"`
}

type groupJSON struct {
	Projects      int    `json:"projects"`
	Cost          string `json:"cost"`
	Valuation     string `json:"valuation"`
	Distributions string `json:"distributions"`
}

type projectsJSON struct {
	FundID   string        `json:"fund_id"`
	Projects []projectJSON `json:"projects"`
	Totals   struct {
		Projects  int                  `json:"projects"`
		Approved  string               `json:"approved"`
		Cost      string               `json:"cost"`
		Valuation string               `json:"valuation"`
		BySector  map[string]groupJSON `json:"by_sector"`
		ByFund    map[string]groupJSON `json:"by_fund"`
	} `json:"totals"`
}

// fundSet holds the IDs of the funds' investments.
type fundSet struct {
	a, b, d, unfunded, exited string
}

// establishFund posts a fund as the fund manager.
func (e *testEnv) establishFund(id, fundType, target string, years int, limit, date string) {
	e.t.Helper()
	body := map[string]any{"id": id, "name": "Fund " + id, "fund_type": fundType, "target": target, "term_years": years,
		"manager": "Pinghu Investment Management", "effective_date": date, "document_ref": "PHJR-" + id}
	if limit != "" {
		body["concentration_limit_pct"] = limit
	}
	if got := e.as(fundManager).command(http.StatusCreated, "/v1/funds", body); got != id {
		e.t.Fatalf("fund created as %q, want %q", got, id)
	}
}

// capital commits and pays in for an LP; either may be left out ("").
func (e *testEnv) capital(fund, lp, committed, paidIn, commitDate, paidDate string) {
	e.t.Helper()
	fm := e.as(fundManager)
	if committed != "" {
		fm.command(http.StatusCreated, "/v1/funds/"+fund+"/commitments", map[string]any{"lp": lp, "amount": committed, "effective_date": commitDate})
	}
	if paidIn != "" {
		fm.command(http.StatusCreated, "/v1/funds/"+fund+"/paid-in", map[string]any{"lp": lp, "amount": paidIn, "effective_date": paidDate})
	}
}

// invest records an approved investment and returns its ID.
func (e *testEnv) invest(fund, project, sector, amount, stake, date string) string {
	e.t.Helper()
	return e.as(fundManager).command(http.StatusCreated, "/v1/funds/"+fund+"/investments", map[string]any{"committee_ref": "IC-" + project,
		"project": project, "company": project + " Co.", "sector": sector, "amount": amount, "stake_pct": stake, "effective_date": date})
}

// investmentAct posts one of an investment's commands (tranches,
// valuations, distributions, exit, write-off) with body.
func (e *testEnv) investmentAct(fund, id, action string, body map[string]any) {
	e.t.Helper()
	if got := e.as(fundManager).command(http.StatusOK, "/v1/funds/"+fund+"/investments/"+id+"/"+action, body); got != id {
		e.t.Fatalf("%s answered %q, want %q", action, got, id)
	}
}

// setupFunds creates, over the API, two funds with everything dated before
// 2024-05-31:
//
//   - dif, direct investment, target 100,000,000 from 2023-01-01 for 10
//     years, limit 20%: 60,000,000 + 40,000,000 committed; 30,000,000 paid
//     in on 2023-02-01 and 20,000,000 on 2023-08-01. A (semiconductors,
//     40,000,000 approved, 15%) funded 30,000,000 in two tranches and valued
//     45,000,000; B (biomedicine, 10,000,000, 5%) funded, distributed
//     2,000,000 and exited for 15,000,000.
//   - culture, special, target 20,000,000 from 2020-06-01 for 5 years,
//     limit 10%: 20,000,000 committed, 8,000,000 paid in on 2020-07-01. D
//     (digital economy, 2,000,000.01, 20%) funded 2,000,000; one investment
//     approved and never funded.
func setupFunds(e *testEnv) fundSet {
	e.t.Helper()
	var s fundSet
	e.establishFund("dif", "direct_investment", "100000000.00", 10, "", "2023-01-01")
	e.capital("dif", "city platform", "60000000.00", "", "2023-01-15", "")
	e.capital("dif", "social capital", "40000000.00", "", "2023-01-15", "")
	e.capital("dif", "city platform", "", "30000000.00", "", "2023-02-01")
	e.capital("dif", "social capital", "", "20000000.00", "", "2023-08-01")
	s.a = e.invest("dif", "A", "semiconductors", "40000000.00", "15", "2023-08-20")
	e.investmentAct("dif", s.a, "tranches", map[string]any{"amount": "20000000.00", "effective_date": "2023-09-01"})
	e.investmentAct("dif", s.a, "tranches", map[string]any{"amount": "10000000.00", "effective_date": "2023-09-02"})
	s.b = e.invest("dif", "B", "biomedicine", "10000000.00", "5", "2023-09-20")
	e.investmentAct("dif", s.b, "tranches", map[string]any{"amount": "10000000.00", "effective_date": "2023-10-01"})
	e.investmentAct("dif", s.b, "distributions", map[string]any{"amount": "2000000.00", "effective_date": "2024-02-01"})
	e.investmentAct("dif", s.a, "valuations", map[string]any{"valuation": "45000000.00", "effective_date": "2024-03-31"})
	e.investmentAct("dif", s.b, "exit", map[string]any{"proceeds": "15000000.00", "effective_date": "2024-04-30"})
	s.exited = s.b

	e.establishFund("culture", "special", "20000000.00", 5, "10", "2020-06-01")
	e.capital("culture", "city platform", "20000000.00", "8000000.00", "2020-06-15", "2020-07-01")
	s.d = e.invest("culture", "D", "digital_economy", "2000000.01", "20", "2020-07-15")
	s.unfunded = e.invest("culture", "E", "new_materials", "1000000.00", "10", "2020-07-15")
	e.investmentAct("culture", s.d, "tranches", map[string]any{"amount": "2000000.00", "effective_date": "2020-08-01"})
	// The server's day is the last of the set-up's, so that a command
	// without an effective date comes after everything in it.
	e.clock.setDate("2024-04-30")
	return s
}

func alertList(as []alertJSON) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.Kind+"/"+a.FundID+"/"+a.ProjectID)
	}
	return out
}

// TestFundQueries checks every figure of the fund manager's views of a
// small fund set created over the API.
func TestFundQueries(t *testing.T) {
	e := newTestServer(t)
	s := setupFunds(e)
	fm := e.as(fundManager)

	type list struct {
		Funds  []fundJSON     `json:"funds"`
		Totals fundTotalsJSON `json:"totals"`
		AsOf   string         `json:"as_of"`
	}
	l := fetch[list](fm, "/v1/funds?as_of=2024-06-01")
	wantEqual(t, "as_of", l.AsOf, "2024-06-01")
	if len(l.Funds) != 2 || l.Funds[0].ID != "dif" || l.Funds[1].ID != "culture" {
		t.Fatalf("funds %+v, want dif and culture", l.Funds)
	}
	wantEqual(t, "totals", fmt.Sprintf("%+v", l.Totals), fmt.Sprintf("%+v", fundTotalsJSON{Funds: 2, Projects: 4,
		Target: "120000000.00", Committed: "120000000.00", PaidIn: "58000000.00", Invested: "42000000.00",
		Valuation: "47000000.00", Distributions: "17000000.00", WrittenOff: "0.00", IdleCash: "16000000.00",
		// (47,000,000 + 17,000,000) ÷ 42,000,000 = 1.523…;
		// (47,000,000 + 17,000,000 + 16,000,000) ÷ 58,000,000 = 1.379…
		MOIC: "1.52", TVPI: "1.38"}))

	dif := fetch[fundJSON](fm, "/v1/funds/dif?as_of=2024-06-01")
	wantEqual(t, "dif", fmt.Sprintf("%v %v %v %v %v %v %v %v %v %v %v %v %v %v %v %v %v",
		dif.FundType, dif.Target, dif.EstablishedOn, dif.TermEnd, dif.Committed, dif.PaidIn, dif.Invested, dif.HeldAtCost,
		dif.Valuation, dif.Distributions, dif.ExitProceeds, dif.WrittenOff, dif.IdleCash, dif.IdleSince, dif.MOIC, dif.TVPI, dif.Projects),
		"direct_investment 100000000.00 2023-01-01 2033-01-01 100000000.00 50000000.00 40000000.00 30000000.00 "+
			"45000000.00 17000000.00 15000000.00 0.00 10000000.00 2023-08-01 1.55 1.44 2")
	wantEqual(t, "dif LPs", fmt.Sprint(dif.LPs), "[{city platform 60000000.00 30000000.00} {social capital 40000000.00 20000000.00}]")
	wantEqual(t, "dif measures", fmt.Sprint(dif.NAV, " ", dif.DPI, " ", dif.RVPI, " ", dif.TVPI), "55000000.00 0.34 1.10 1.44")
	wantEqual(t, "dif alerts", fmt.Sprint(alertList(dif.Alerts)), fmt.Sprint([]string{"concentration/dif/" + s.a}))
	culture := fetch[fundJSON](e.as(clerk1), "/v1/funds/culture?as_of=2024-06-01")
	wantEqual(t, "culture", fmt.Sprintf("%v %v %v %v %v %v %v %v %v", culture.FundType, culture.TermEnd, culture.PaidIn,
		culture.Invested, culture.Valuation, culture.IdleCash, culture.IdleSince, culture.MOIC, culture.TVPI),
		"special 2025-06-01 8000000.00 2000000.00 2000000.00 6000000.00 2020-07-01 1.00 1.00")
	wantEqual(t, "culture alerts", fmt.Sprint(alertList(culture.Alerts)),
		fmt.Sprint([]string{"idle_cash/culture/", "concentration/culture/" + s.d}))

	// Without as_of, alerts are reckoned at the server's date (here the
	// test clock's, in 2024), never the wall clock's, by which the culture
	// fund's term has ended.
	serverDay := domain.Today(e.clock.Now())
	now := fetch[fundJSON](e.as(clerk1), "/v1/funds/culture")
	then := fetch[fundJSON](e.as(clerk1), "/v1/funds/culture?as_of="+serverDay)
	wall := fetch[fundJSON](e.as(clerk1), "/v1/funds/culture?as_of="+domain.Today(time.Now()))
	wantEqual(t, "culture's alerts today", fmt.Sprint(now.Alerts), fmt.Sprint(then.Alerts))
	if fmt.Sprint(now.Alerts) == fmt.Sprint(wall.Alerts) {
		t.Errorf("culture's alerts today %v are the wall clock's %v, not the server's %v", now.Alerts, wall.Alerts, then.Alerts)
	}

	p := fetch[projectsJSON](fm, "/v1/funds/dif/projects")
	wantEqual(t, "fund_id", p.FundID, "dif")
	wantEqual(t, "dif projects", fmt.Sprint(p.Projects), fmt.Sprint([]projectJSON{
		{ID: s.a, FundID: "dif", Project: "A", Sector: "semiconductors", Approved: "40000000.00", StakePct: "15", Cost: "30000000.00",
			Tranches: 2, Valuation: "45000000.00", Distributions: "0.00", ExitProceeds: "0.00", WrittenOff: "0.00", Multiple: "1.50", Status: "funded"},
		{ID: s.b, FundID: "dif", Project: "B", Sector: "biomedicine", Approved: "10000000.00", StakePct: "5", Cost: "10000000.00",
			Tranches: 1, Valuation: "0.00", Distributions: "2000000.00", ExitProceeds: "15000000.00", WrittenOff: "0.00", Multiple: "1.70", Status: "exited"},
	}))
	wantEqual(t, "dif project totals", fmt.Sprintf("%d %s %s %s %v", p.Totals.Projects, p.Totals.Approved, p.Totals.Cost,
		p.Totals.Valuation, p.Totals.BySector), "2 50000000.00 40000000.00 45000000.00 "+
		"map[biomedicine:{1 10000000.00 0.00 17000000.00} semiconductors:{1 30000000.00 45000000.00 0.00}]")
	wantEqual(t, "culture's funded projects", fmt.Sprint(projectIDs(fetch[projectsJSON](fm, "/v1/funds/culture/projects?status=funded"))), fmt.Sprint([]string{s.d}))

	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{s.a, s.b, s.d, s.unfunded}},
		{"?sector=semiconductors", []string{s.a}},
		{"?fund=culture", []string{s.d, s.unfunded}},
		{"?status=exited", []string{s.b}},
		{"?status=approved", []string{s.unfunded}},
		{"?fund=dif&status=funded", []string{s.a}},
		{"?sector=digital_economy&fund=culture&status=funded", []string{s.d}},
		{"?sector=biomedicine&fund=culture", []string{}},
		{"?fund=nofund", []string{}},
	} {
		got := fetch[projectsJSON](e.as(auditor), "/v1/projects"+c.query)
		wantEqual(t, "projects"+c.query, fmt.Sprint(projectIDs(got)), fmt.Sprint(c.want))
		wantEqual(t, "projects"+c.query+" total", got.Totals.Projects, len(c.want))
	}
	all := fetch[projectsJSON](e.as(auditor), "/v1/projects")
	wantEqual(t, "all projects", fmt.Sprintf("%s %s %s %v", all.Totals.Approved, all.Totals.Cost, all.Totals.Valuation, all.Totals.ByFund),
		"53000000.01 42000000.00 47000000.00 map[culture:{2 2000000.00 2000000.00 0.00} dif:{2 40000000.00 45000000.00 17000000.00}]")

	type alerts struct {
		AsOf   string      `json:"as_of"`
		Alerts []alertJSON `json:"alerts"`
	}
	for _, c := range []struct {
		asOf string
		want []string
	}{
		{"2024-05-31", []string{"idle_cash/culture/", "concentration/culture/" + s.d, "concentration/dif/" + s.a}},
		// culture's term ends on 2025-06-01: flagged 180 days before.
		{"2024-12-02", []string{"idle_cash/culture/", "concentration/culture/" + s.d, "concentration/dif/" + s.a}},
		{"2024-12-03", []string{"idle_cash/culture/", "term_ending/culture/", "concentration/culture/" + s.d, "concentration/dif/" + s.a}},
		// dif's 10,000,000 idle since 2023-08-01 is exactly 20 % of its
		// paid-in: not above it, not flagged.
		{"2024-08-02", []string{"idle_cash/culture/", "concentration/culture/" + s.d, "concentration/dif/" + s.a}},
	} {
		got := fetch[alerts](fm, "/v1/funds/alerts?as_of="+c.asOf)
		wantEqual(t, "alerts as_of", got.AsOf, c.asOf)
		wantEqual(t, "alerts as of "+c.asOf, fmt.Sprint(alertList(got.Alerts)), fmt.Sprint(c.want))
	}
	got := fetch[alerts](fm, "/v1/funds/alerts?as_of=2024-08-02")
	for _, a := range got.Alerts {
		if a.Kind == "idle_cash" && a.FundID == "culture" &&
			a.Message != "paid-in cash of 6000000.00 has been idle for more than 365 days (since 2020-07-01): above 20% of the paid-in capital of 8000000.00" {
			t.Errorf("culture idle alert %q", a.Message)
		}
	}

	for _, path := range []string{"/v1/funds/nofund", "/v1/funds/nofund/projects", "/v1/funds/No%20Fund"} {
		wantProblem(t, fm.get(path), http.StatusNotFound, "not_found")
	}
	for _, path := range []string{"/v1/funds?as_of=2024-13-01", "/v1/funds/dif?as_of=yesterday", "/v1/funds/alerts?as_of=01.06.2024",
		"/v1/funds/dif/projects?as_of=2024-02-30", "/v1/projects?min_position=abc"} {
		wantProblem(t, fm.get(path), http.StatusBadRequest, "invalid")
	}
	wantProblem(t, e.anonymous().get("/v1/funds"), http.StatusUnauthorized, "unauthenticated")

	// The ledger agrees with the views.
	wantBalances(t, "funds", books(e.as(auditor), ""), map[string]string{
		"fund:dif:cash": "10000000.00", "fund:dif:investments:" + s.a: "30000000.00", "fund:dif:investments:" + s.b: "0.00",
		"fund:dif:distributable": "17000000.00", "fund:dif:gains": "-5000000.00", "fund:dif:income:" + s.b: "-2000000.00",
		"fund:culture:cash": "6000000.00",
	})
}

func projectIDs(p projectsJSON) []string {
	ids := []string{}
	for _, x := range p.Projects {
		ids = append(ids, x.ID)
	}
	return ids
}

// TestFundCommandsRefused sends every fund command malformed, out of its
// rules or by the wrong role: each is refused with its status and code,
// and nothing is written.
func TestFundCommandsRefused(t *testing.T) {
	e := newTestServer(t)
	s := setupFunds(e)
	const unknownInv = "i0123456789abcdef"
	inv := func(fund, id, action string) string { return "/v1/funds/" + fund + "/investments/" + id + "/" + action }
	fundBody := func(target string) string {
		return `{"id": "newfund", "name": "New", "fund_type": "special", "target": ` + target + `, "term_years": 5, "manager": "M"}`
	}
	capital := func(lp, amount string) string { return `{"lp": "` + lp + `", "amount": ` + amount + `}` }
	investment := func(amount, stake, sector string) string {
		return `{"committee_ref": "IC-9", "project": "P", "company": "C", "sector": "` + sector + `", "amount": ` + amount + `, "stake_pct": ` + stake + `}`
	}
	type tc struct {
		name, who, path, body string
		status                int
		code                  string
	}
	cases := []tc{
		{"fund: malformed JSON", fundManager, "/v1/funds", `{"id": "newfund",`, 400, "invalid"},
		{"fund: unknown field", fundManager, "/v1/funds", `{"id": "newfund", "name": "New", "fund_type": "special", "target": "1.00", "term_years": 5, "manager": "M", "colour": "red"}`, 400, "invalid"},
		{"fund: negative target", fundManager, "/v1/funds", fundBody(`"-1.00"`), 400, "invalid"},
		{"fund: zero target", fundManager, "/v1/funds", fundBody(`"0.00"`), 400, "invalid"},
		{"fund: 3-decimal target", fundManager, "/v1/funds", fundBody(`"1000.001"`), 400, "invalid"},
		{"fund: target as a JSON number", fundManager, "/v1/funds", fundBody(`1000`), 400, "invalid"},
		{"fund: unknown type", fundManager, "/v1/funds", `{"id": "newfund", "name": "New", "fund_type": "hedge", "target": "1.00", "term_years": 5, "manager": "M"}`, 400, "invalid"},
		{"fund: no term", fundManager, "/v1/funds", `{"id": "newfund", "name": "New", "fund_type": "special", "target": "1.00", "manager": "M"}`, 400, "invalid"},
		{"fund: concentration limit above 100", fundManager, "/v1/funds", `{"id": "newfund", "name": "New", "fund_type": "special", "target": "1.00", "term_years": 5, "manager": "M", "concentration_limit_pct": "100.5"}`, 400, "invalid"},
		{"fund: id taken", fundManager, "/v1/funds", `{"id": "dif", "name": "New", "fund_type": "special", "target": "1.00", "term_years": 5, "manager": "M"}`, 409, "conflict"},

		{"commitment: malformed JSON", fundManager, "/v1/funds/dif/commitments", `{"lp": `, 400, "invalid"},
		{"commitment: unknown field", fundManager, "/v1/funds/dif/commitments", `{"lp": "X", "amount": "1.00", "share": "1"}`, 400, "invalid"},
		{"commitment: negative", fundManager, "/v1/funds/dif/commitments", capital("X", `"-1.00"`), 400, "invalid"},
		{"commitment: zero", fundManager, "/v1/funds/dif/commitments", capital("X", `"0.00"`), 400, "invalid"},
		{"commitment: 3 decimals", fundManager, "/v1/funds/dif/commitments", capital("X", `"1.001"`), 400, "invalid"},
		{"commitment: JSON number", fundManager, "/v1/funds/dif/commitments", capital("X", `1`), 400, "invalid"},
		{"commitment: no LP", fundManager, "/v1/funds/dif/commitments", capital("", `"1.00"`), 400, "invalid"},
		{"commitment: above the target", fundManager, "/v1/funds/dif/commitments", capital("X", `"0.01"`), 422, "exceeds_target"},
		{"commitment: unknown fund", fundManager, "/v1/funds/nofund/commitments", capital("X", `"1.00"`), 404, "not_found"},

		{"paid-in: malformed JSON", fundManager, "/v1/funds/dif/paid-in", `{"lp": "city platform", "amount": "1.00"`, 400, "invalid"},
		{"paid-in: unknown field", fundManager, "/v1/funds/dif/paid-in", `{"lp": "city platform", "amount": "1.00", "date": "2024-01-01"}`, 400, "invalid"},
		{"paid-in: negative", fundManager, "/v1/funds/dif/paid-in", capital("city platform", `"-0.01"`), 400, "invalid"},
		{"paid-in: zero", fundManager, "/v1/funds/dif/paid-in", capital("city platform", `"0"`), 400, "invalid"},
		{"paid-in: 3 decimals", fundManager, "/v1/funds/dif/paid-in", capital("city platform", `"0.015"`), 400, "invalid"},
		{"paid-in: JSON number", fundManager, "/v1/funds/dif/paid-in", capital("city platform", `0.01`), 400, "invalid"},
		{"paid-in: above the LP's commitment", fundManager, "/v1/funds/dif/paid-in", capital("city platform", `"30000000.01"`), 422, "exceeds_commitment"},
		{"paid-in: LP without a commitment", fundManager, "/v1/funds/dif/paid-in", capital("stranger", `"1.00"`), 422, "exceeds_commitment"},
		{"paid-in: unknown fund", fundManager, "/v1/funds/nofund/paid-in", capital("city platform", `"1.00"`), 404, "not_found"},

		{"investment: malformed JSON", fundManager, "/v1/funds/dif/investments", `{"project": "P"`, 400, "invalid"},
		{"investment: unknown field", fundManager, "/v1/funds/dif/investments", `{"committee_ref": "IC", "project": "P", "company": "C", "sector": "biomedicine", "amount": "1.00", "stake_pct": "5", "valuation": "1.00"}`, 400, "invalid"},
		{"investment: negative", fundManager, "/v1/funds/dif/investments", investment(`"-1.00"`, `"5"`, "biomedicine"), 400, "invalid"},
		{"investment: zero", fundManager, "/v1/funds/dif/investments", investment(`"0.00"`, `"5"`, "biomedicine"), 400, "invalid"},
		{"investment: 3 decimals", fundManager, "/v1/funds/dif/investments", investment(`"1.123"`, `"5"`, "biomedicine"), 400, "invalid"},
		{"investment: JSON number", fundManager, "/v1/funds/dif/investments", investment(`100`, `"5"`, "biomedicine"), 400, "invalid"},
		{"investment: zero stake", fundManager, "/v1/funds/dif/investments", investment(`"1.00"`, `"0"`, "biomedicine"), 400, "invalid"},
		{"investment: stake above 100", fundManager, "/v1/funds/dif/investments", investment(`"1.00"`, `"100.01"`, "biomedicine"), 400, "invalid"},
		{"investment: stake with 3 decimals", fundManager, "/v1/funds/dif/investments", investment(`"1.00"`, `"5.125"`, "biomedicine"), 400, "invalid"},
		{"investment: unknown sector", fundManager, "/v1/funds/dif/investments", investment(`"1.00"`, `"5"`, "tobacco"), 400, "invalid"},
		{"investment: unknown fund", fundManager, "/v1/funds/nofund/investments", investment(`"1.00"`, `"5"`, "biomedicine"), 404, "not_found"},

		{"tranche: malformed JSON", fundManager, inv("dif", s.a, "tranches"), `{"amount": "1.00"]`, 400, "invalid"},
		{"tranche: unknown field", fundManager, inv("dif", s.a, "tranches"), `{"amount": "1.00", "tranche": 3}`, 400, "invalid"},
		{"tranche: the wrong amount field", fundManager, inv("dif", s.a, "tranches"), `{"proceeds": "1.00"}`, 400, "invalid"},
		{"tranche: no amount", fundManager, inv("dif", s.a, "tranches"), `{}`, 400, "invalid"},
		{"tranche: negative", fundManager, inv("dif", s.a, "tranches"), `{"amount": "-1.00"}`, 400, "invalid"},
		{"tranche: zero", fundManager, inv("dif", s.a, "tranches"), `{"amount": "0.00"}`, 400, "invalid"},
		{"tranche: 3 decimals", fundManager, inv("dif", s.a, "tranches"), `{"amount": "1.001"}`, 400, "invalid"},
		{"tranche: JSON number", fundManager, inv("dif", s.a, "tranches"), `{"amount": 1.00}`, 400, "invalid"},
		{"tranche: above the approved amount", fundManager, inv("dif", s.a, "tranches"), `{"amount": "10000000.01"}`, 422, "exceeds_approved"},
		{"tranche: after the exit", fundManager, inv("dif", s.exited, "tranches"), `{"amount": "1.00"}`, 409, "conflict"},
		{"tranche: unknown investment", fundManager, inv("dif", unknownInv, "tranches"), `{"amount": "1.00"}`, 404, "not_found"},
		{"tranche: malformed investment id", fundManager, inv("dif", "nonsense", "tranches"), `{"amount": "1.00"}`, 404, "not_found"},
		{"tranche: another fund's investment", fundManager, inv("dif", s.d, "tranches"), `{"amount": "1.00"}`, 404, "not_found"},
		{"tranche: unknown fund", fundManager, inv("nofund", s.a, "tranches"), `{"amount": "1.00"}`, 404, "not_found"},

		{"valuation: malformed JSON", fundManager, inv("dif", s.a, "valuations"), `{"valuation": }`, 400, "invalid"},
		{"valuation: unknown field", fundManager, inv("dif", s.a, "valuations"), `{"valuation": "1.00", "as_of": "2024-01-01"}`, 400, "invalid"},
		{"valuation: the wrong amount field", fundManager, inv("dif", s.a, "valuations"), `{"amount": "1.00"}`, 400, "invalid"},
		{"valuation: negative", fundManager, inv("dif", s.a, "valuations"), `{"valuation": "-1.00"}`, 400, "invalid"},
		{"valuation: 3 decimals", fundManager, inv("dif", s.a, "valuations"), `{"valuation": "1.001"}`, 400, "invalid"},
		{"valuation: JSON number", fundManager, inv("dif", s.a, "valuations"), `{"valuation": 45000000}`, 400, "invalid"},
		{"valuation: never funded", fundManager, inv("culture", s.unfunded, "valuations"), `{"valuation": "1.00"}`, 409, "conflict"},
		{"valuation: after the exit", fundManager, inv("dif", s.exited, "valuations"), `{"valuation": "1.00"}`, 409, "conflict"},
		{"valuation: unknown investment", fundManager, inv("dif", unknownInv, "valuations"), `{"valuation": "1.00"}`, 404, "not_found"},

		{"distribution: malformed JSON", fundManager, inv("dif", s.a, "distributions"), `amount=1`, 400, "invalid"},
		{"distribution: unknown field", fundManager, inv("dif", s.a, "distributions"), `{"amount": "1.00", "payer": "X"}`, 400, "invalid"},
		{"distribution: negative", fundManager, inv("dif", s.a, "distributions"), `{"amount": "-1.00"}`, 400, "invalid"},
		{"distribution: zero", fundManager, inv("dif", s.a, "distributions"), `{"amount": "0.00"}`, 400, "invalid"},
		{"distribution: 3 decimals", fundManager, inv("dif", s.a, "distributions"), `{"amount": "0.001"}`, 400, "invalid"},
		{"distribution: JSON number", fundManager, inv("dif", s.a, "distributions"), `{"amount": 5}`, 400, "invalid"},
		{"distribution: never funded", fundManager, inv("culture", s.unfunded, "distributions"), `{"amount": "1.00"}`, 409, "conflict"},
		{"distribution: after the exit", fundManager, inv("dif", s.exited, "distributions"), `{"amount": "1.00"}`, 409, "conflict"},
		{"distribution: unknown investment", fundManager, inv("dif", unknownInv, "distributions"), `{"amount": "1.00"}`, 404, "not_found"},

		{"exit: malformed JSON", fundManager, inv("dif", s.a, "exit"), `{"proceeds": "1.00",}`, 400, "invalid"},
		{"exit: unknown field", fundManager, inv("dif", s.a, "exit"), `{"proceeds": "1.00", "buyer": "X"}`, 400, "invalid"},
		{"exit: the wrong amount field", fundManager, inv("dif", s.a, "exit"), `{"amount": "1.00"}`, 400, "invalid"},
		{"exit: negative", fundManager, inv("dif", s.a, "exit"), `{"proceeds": "-1.00"}`, 400, "invalid"},
		{"exit: 3 decimals", fundManager, inv("dif", s.a, "exit"), `{"proceeds": "36000000.001"}`, 400, "invalid"},
		{"exit: JSON number", fundManager, inv("dif", s.a, "exit"), `{"proceeds": 36000000}`, 400, "invalid"},
		{"exit: never funded", fundManager, inv("culture", s.unfunded, "exit"), `{"proceeds": "1.00"}`, 409, "conflict"},
		{"exit: twice", fundManager, inv("dif", s.exited, "exit"), `{"proceeds": "1.00"}`, 409, "conflict"},
		{"exit: unknown investment", fundManager, inv("dif", unknownInv, "exit"), `{"proceeds": "1.00"}`, 404, "not_found"},

		{"write-off: malformed JSON", fundManager, inv("dif", s.a, "write-off"), `{`, 400, "invalid"},
		{"write-off: unknown field", fundManager, inv("dif", s.a, "write-off"), `{"loss": "1.00"}`, 400, "invalid"},
		{"write-off: an amount", fundManager, inv("dif", s.a, "write-off"), `{"amount": "1.00"}`, 400, "invalid"},
		{"write-off: never funded", fundManager, inv("culture", s.unfunded, "write-off"), `{}`, 409, "conflict"},
		{"write-off: after the exit", fundManager, inv("dif", s.exited, "write-off"), `{}`, 409, "conflict"},
		{"write-off: unknown investment", fundManager, inv("dif", unknownInv, "write-off"), `{}`, 404, "not_found"},
		{"write-off: unknown fund", fundManager, inv("nofund", s.a, "write-off"), `{}`, 404, "not_found"},
	}
	// Every route, with a valid body, by every role but the fund manager's.
	valid := []struct{ path, body string }{
		{"/v1/funds", fundBody(`"1000.00"`)},
		{"/v1/funds/newfund/commitments", capital("social capital", `"1.00"`)},
		{"/v1/funds/newfund/paid-in", capital("social capital", `"1.00"`)},
		{"/v1/funds/dif/investments", investment(`"1.00"`, `"5"`, "biomedicine")},
		{inv("dif", s.a, "tranches"), `{"amount": "1.00"}`},
		{inv("dif", s.a, "valuations"), `{"valuation": "1.00"}`},
		{inv("dif", s.a, "distributions"), `{"amount": "1.00"}`},
		{inv("dif", s.a, "exit"), `{"proceeds": "1.00"}`},
		{inv("culture", s.d, "write-off"), `{}`},
	}
	for _, v := range valid {
		for _, who := range []string{clerk1, auditor, admin, approver1, treasurer1, reviewer1, clerkApprover} {
			cases = append(cases, tc{"as " + who + ": " + v.path, who, v.path, v.body, 403, "forbidden"})
		}
		cases = append(cases, tc{"anonymous: " + v.path, "", v.path, v.body, 401, "unauthenticated"})
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.lastPosition()
			r, err := e.send("POST", c.path, request{token: e.tokens[c.who], body: []byte(c.body)})
			if err != nil {
				t.Fatal(err)
			}
			checkHeaders(t, r)
			wantProblem(t, r, c.status, c.code)
			if after := e.lastPosition(); after != before {
				t.Errorf("the log moved from %s to %s", before, after)
			}
		})
	}

	// The valid bodies are accepted from the fund manager, so the refusals
	// above were for the role alone.
	fm := e.as(fundManager)
	wantEqual(t, "fund", fm.command(http.StatusCreated, valid[0].path, valid[0].body), "newfund")
	for _, v := range valid[1:4] {
		fm.command(http.StatusCreated, v.path, v.body)
	}
	for _, v := range valid[4:] {
		fm.command(http.StatusOK, v.path, v.body)
	}
	// The never-funded investment takes its whole approved amount and no
	// more; culture has 5,000,000 of cash left, and a tranche above it is
	// short.
	fm.command(http.StatusOK, inv("culture", s.unfunded, "tranches"), `{"amount": "1000000.00"}`)
	wantProblem(t, fm.post(inv("culture", s.unfunded, "tranches"), `{"amount": "0.01"}`), http.StatusUnprocessableEntity, "exceeds_approved")
	d2 := e.invest("culture", "D2", "new_energy", "6000000.00", "10", "2024-04-30")
	before := e.lastPosition()
	wantProblem(t, fm.post(inv("culture", d2, "tranches"), `{"amount": "5000000.01"}`), http.StatusUnprocessableEntity, "insufficient_funds")
	wantEqual(t, "log after a short tranche", e.lastPosition(), before)
}

// TestConcurrentTranchesOverHTTP posts eight tranches of 500,000 at once
// against a fund with 2,000,000 of cash: four are funded, four refused.
func TestConcurrentTranchesOverHTTP(t *testing.T) {
	e := newTestServer(t)
	e.establishFund("race", "direct_investment", "10000000.00", 10, "", "2024-01-01")
	e.capital("race", "city platform", "2000000.00", "2000000.00", "2024-01-02", "2024-01-03")
	ids := make([]string, 8)
	for i := range ids {
		ids[i] = e.invest("race", fmt.Sprintf("P%d", i), "new_energy", "500000.00", "5", "2024-02-01")
	}
	before := e.lastPosition()
	results := make([]*response, len(ids))
	errs := make([]error, len(ids))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = e.send("POST", "/v1/funds/race/investments/"+id+"/tranches",
				request{token: e.tokens[fundManager], body: []byte(`{"amount": "500000.00", "effective_date": "2024-03-01"}`)})
		}()
	}
	close(start)
	wg.Wait()
	funded, short := 0, 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("tranche %d: %v", i, errs[i])
		}
		switch r.status {
		case http.StatusOK:
			funded++
			e.seen(parsePosition(t, decodeAs[answer](t, r).Position))
		case http.StatusUnprocessableEntity:
			short++
			wantProblem(t, r, http.StatusUnprocessableEntity, "insufficient_funds")
		default:
			t.Errorf("%s: unexpected status", r)
		}
	}
	if funded != 4 || short != 4 {
		t.Fatalf("%d funded and %d refused, want 4 and 4", funded, short)
	}
	if got := e.lastPosition().Commit - before.Commit; got != 4 {
		t.Errorf("the race wrote %d events, want 4", got)
	}
	f := fetch[fundJSON](e.as(fundManager), "/v1/funds/race")
	wantEqual(t, "idle cash", f.IdleCash, "0.00")
	wantEqual(t, "invested", f.Invested, "2000000.00")
	funded = 0
	for _, p := range fetch[projectsJSON](e.as(fundManager), "/v1/funds/race/projects?status=funded").Projects {
		if p.Cost != "500000.00" || p.Tranches != 1 {
			t.Errorf("project %s: cost %s in %d tranches", p.ID, p.Cost, p.Tranches)
		}
		funded++
	}
	wantEqual(t, "funded projects", funded, 4)
	b := books(e.as(auditor), "")
	wantBalances(t, "after the race", b, map[string]string{"fund:race:cash": "0.00", "fund:race:capital:city_platform": "-2000000.00"})
	invested := 0
	for _, a := range b.Accounts {
		if strings.HasPrefix(a.Account, "fund:race:investments:") && a.Balance == "500000.00" {
			invested++
		}
	}
	wantEqual(t, "investment accounts at 500000.00", invested, 4)
}
