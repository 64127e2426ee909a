package http_test

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"talentledger/projections"
)

// TestProjectsBySector: the sector filter matches without regard to case;
// an unknown sector is refused naming every sector; a known sector with no
// project answers an empty list; GET /v1/sectors lists the sectors.
func TestProjectsBySector(t *testing.T) {
	e := newTestServer(t)
	s := setupFunds(e)
	c := e.as(clerk1)
	type list struct {
		Projects []struct {
			ID     string `json:"id"`
			Sector string `json:"sector"`
		} `json:"projects"`
		Totals struct {
			Projects int `json:"projects"`
		} `json:"totals"`
	}
	for _, q := range []string{"semiconductors", "SemiConductors", "SEMICONDUCTORS", "%20semiconductors%20"} {
		got := fetch[list](c, "/v1/projects?sector="+q)
		if got.Totals.Projects != 1 || len(got.Projects) != 1 || got.Projects[0].ID != s.a {
			t.Errorf("sector=%s: %+v, want project A alone", q, got)
		}
		if got := fetch[list](c, "/v1/funds/dif/projects?sector="+q); len(got.Projects) != 1 {
			t.Errorf("fund projects sector=%s: %d projects, want 1", q, len(got.Projects))
		}
	}
	if got := fetch[list](c, "/v1/projects?sector=new_energy"); got.Totals.Projects != 0 || len(got.Projects) != 0 {
		t.Errorf("sector=new_energy: %+v, want none", got)
	}
	for _, path := range []string{"/v1/projects?sector=tobacco", "/v1/funds/dif/projects?sector=semi"} {
		r := c.get(path)
		wantProblem(t, r, http.StatusBadRequest, "invalid")
		if !strings.Contains(string(r.body), "semiconductors, high_end_equipment, new_materials, biomedicine, new_energy, digital_economy, other") {
			t.Errorf("%s: the problem does not list the sectors: %s", path, r.body)
		}
	}
	sectors := fetch[struct {
		Sectors []struct {
			ID       string `json:"id"`
			NameZH   string `json:"name_zh"`
			Projects int    `json:"projects"`
		} `json:"sectors"`
	}](c, "/v1/sectors")
	counts := map[string]int{}
	for _, x := range sectors.Sectors {
		counts[x.ID] = x.Projects
		if x.NameZH == "" {
			t.Errorf("sector %s has no Chinese name", x.ID)
		}
	}
	if len(sectors.Sectors) != 7 || counts["semiconductors"] != 1 || counts["biomedicine"] != 1 || counts["digital_economy"] != 1 ||
		counts["new_materials"] != 1 || counts["new_energy"] != 0 {
		t.Errorf("sectors %+v", sectors.Sectors)
	}
}

// TestProjectPage: one project with its history and IRR.
func TestProjectPage(t *testing.T) {
	e := newTestServer(t)
	s := setupFunds(e)
	type page struct {
		ID          string `json:"id"`
		Project     string `json:"project"`
		Cost        string `json:"cost"`
		Valuation   string `json:"valuation"`
		Multiple    string `json:"multiple"`
		IRR         string `json:"irr"`
		TrancheList []struct {
			Tranche  int    `json:"tranche"`
			Amount   string `json:"amount"`
			FundedOn string `json:"funded_on"`
		} `json:"tranche_list"`
		Valuations []struct {
			Valuation string `json:"valuation"`
			AsOf      string `json:"as_of"`
		} `json:"valuations"`
		Distributions []struct {
			Kind   string `json:"kind"`
			Amount string `json:"amount"`
		} `json:"distribution_list"`
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	a := fetch[page](e.as(fundManager), "/v1/projects/"+s.a)
	if a.Project != "A" || a.Cost != "30000000.00" || a.Valuation != "45000000.00" || a.Multiple != "1.50" ||
		len(a.TrancheList) != 2 || a.TrancheList[1].Amount != "10000000.00" || a.TrancheList[1].FundedOn != "2023-09-02" ||
		len(a.Valuations) != 1 || a.Valuations[0].AsOf != "2024-03-31" {
		t.Errorf("project A: %+v", a)
	}
	types := []string{}
	for _, ev := range a.Events {
		types = append(types, ev.Type)
	}
	if strings.Join(types, " ") != "InvestmentApproved InvestmentFunded InvestmentFunded ValuationUpdated" {
		t.Errorf("project A events %v", types)
	}
	// B: 10,000,000 on 2023-10-01; 2,000,000 back on 2024-02-01 and
	// 15,000,000 on 2024-04-30: the rate r with
	// −10 + 2/(1+r)^(123/365) + 15/(1+r)^(212/365) = 0.
	b := fetch[page](e.as(fundManager), "/v1/projects/"+s.b)
	if len(b.Distributions) != 2 || b.Distributions[1].Kind != "exit" || b.Distributions[1].Amount != "15000000.00" {
		t.Errorf("project B distributions %+v", b.Distributions)
	}
	wantRate(t, "project B", b.IRR, [][2]any{{"2023-10-01", -10e6}, {"2024-02-01", 2e6}, {"2024-04-30", 15e6}})
	wantProblem(t, e.as(fundManager).get("/v1/projects/i0000000000000000"), http.StatusNotFound, "not_found")
	// As of before the valuation: held at cost.
	early := fetch[page](e.as(fundManager), "/v1/projects/"+s.a+"?as_of=2024-01-31")
	if early.Valuation != "30000000.00" || len(early.Valuations) != 0 {
		t.Errorf("project A as of 2024-01-31: valuation %s with %d valuations, want 30000000.00 and none", early.Valuation, len(early.Valuations))
	}
}

// TestLPStatement: an LP's capital account over a period: opening +
// paid-in − distributions + gain or loss = closing, with its share of each
// distribution and of the NAV by its share of the paid-in.
func TestLPStatement(t *testing.T) {
	e := newTestServer(t)
	setupFunds(e)
	type statement struct {
		LPID    string `json:"lp_id"`
		LP      string `json:"lp"`
		Opening struct {
			Committed     string `json:"committed"`
			PaidIn        string `json:"paid_in"`
			Distributions string `json:"distributions"`
			Balance       string `json:"balance"`
		} `json:"opening"`
		PaidIn        string `json:"paid_in"`
		Distributions string `json:"distributions"`
		GainOrLoss    string `json:"gain_or_loss"`
		Closing       struct {
			Committed string `json:"committed"`
			Unfunded  string `json:"unfunded"`
			Balance   string `json:"balance"`
		} `json:"closing"`
		Movements []struct {
			Date   string `json:"date"`
			Kind   string `json:"kind"`
			Amount string `json:"amount"`
		} `json:"movements"`
		Measures struct {
			DPI  string `json:"dpi"`
			RVPI string `json:"rvpi"`
			TVPI string `json:"tvpi"`
			IRR  string `json:"irr"`
		} `json:"measures"`
	}
	city := projections.LPID("city platform")
	// 2024 to 2024-04-30: opening NAV 50,000,000 (A and B at cost, 10,000,000
	// idle), 60 % of it the city's; 2,000,000 and 15,000,000 distributed;
	// closing NAV 55,000,000 (A at 45,000,000).
	st := fetch[statement](e.as(fundManager), "/v1/funds/dif/lps/"+city+"/statement?from=2024-01-01&to=2024-04-30")
	if st.LP != "city platform" || st.LPID != city || st.Opening.Balance != "30000000.00" || st.Opening.PaidIn != "30000000.00" ||
		st.PaidIn != "0.00" || st.Distributions != "10200000.00" || st.GainOrLoss != "13200000.00" ||
		st.Closing.Balance != "33000000.00" || st.Closing.Unfunded != "30000000.00" || len(st.Movements) != 2 {
		t.Errorf("city platform 2024: %+v", st)
	}
	if st.Measures.DPI != "0.34" || st.Measures.RVPI != "1.10" || st.Measures.TVPI != "1.44" || st.Measures.IRR == "" {
		t.Errorf("city platform measures %+v", st.Measures)
	}
	all := fetch[statement](e.as(auditor), "/v1/funds/dif/lps/"+city+"/statement?from=2023-01-01&to=2024-04-30")
	kinds := []string{}
	for _, m := range all.Movements {
		kinds = append(kinds, m.Date+" "+m.Kind+" "+m.Amount)
	}
	if strings.Join(kinds, "; ") != "2023-01-15 commitment 60000000.00; 2023-02-01 paid_in 30000000.00; 2024-02-01 distribution 1200000.00; 2024-04-30 distribution 9000000.00" ||
		all.Opening.Balance != "0.00" || all.GainOrLoss != "13200000.00" {
		t.Errorf("city platform from the start: %v, opening %s, gain %s", kinds, all.Opening.Balance, all.GainOrLoss)
	}
	for _, c := range []struct{ path, code string }{
		{"/v1/funds/dif/lps/" + city + "/statement?from=2024-05-01&to=2024-04-30", "invalid"},
		{"/v1/funds/dif/lps/" + city + "/statement?from=2024-02-30", "invalid"},
		{"/v1/funds/dif/lps/lp_0000000000000000/statement", "not_found"},
		{"/v1/funds/nofund/lps/" + city + "/statement", "not_found"},
	} {
		status := http.StatusBadRequest
		if c.code == "not_found" {
			status = http.StatusNotFound
		}
		wantProblem(t, e.as(fundManager).get(c.path), status, c.code)
	}
}

// TestDuplicateProjectRefused: a second project under a fund's existing
// name is a conflict, and nothing is appended.
func TestDuplicateProjectRefused(t *testing.T) {
	e := newTestServer(t)
	setupFunds(e)
	body := map[string]any{"committee_ref": "IC-9", "project": " a ", "company": "C", "sector": "biomedicine", "amount": "1.00", "stake_pct": "5"}
	wantProblem(t, e.as(fundManager).post("/v1/funds/dif/investments", body), http.StatusConflict, "conflict")
	body["project"] = "A"
	if r := e.as(fundManager).post("/v1/funds/culture/investments", body); r.status != http.StatusCreated {
		t.Errorf("the name in another fund: %s", r)
	}
}

// wantRate checks a four-decimal rate against flows, computed here apart
// from the ledger's XIRR: their value changes sign within half a unit of
// the rate's last decimal.
func wantRate(t *testing.T, what, got string, flows [][2]any) {
	t.Helper()
	r, err := strconv.ParseFloat(got, 64)
	if err != nil {
		t.Errorf("%s: irr %q is not a number", what, got)
		return
	}
	npv := func(r float64) float64 {
		t0, _ := time.Parse(time.DateOnly, flows[0][0].(string))
		v := 0.0
		for _, f := range flows {
			d, _ := time.Parse(time.DateOnly, f[0].(string))
			v += f[1].(float64) / math.Pow(1+r, d.Sub(t0).Hours()/24/365)
		}
		return v
	}
	if lo, hi := npv(r-0.00005), npv(r+0.00005); lo < 0 || hi > 0 {
		t.Errorf("%s: irr %s does not zero the flows' value (%.2f at −½ bp, %.2f at +½ bp)", what, got, lo, hi)
	}
}
