package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
)

// clerkToken lets tests write through the test servers.
var clerkToken = ledgerhttp.NewToken()

// demoServer runs the app over a Pebble store in dir and returns its base
// URL and the auditor's token; t.Cleanup stops it.
func demoServer(t *testing.T, dir string, load bool) (string, string) {
	t.Helper()
	return keyedServer(t, dir, load, nil)
}

// keyedServer is demoServer with an audit key for signing tree heads.
// With load, dir must be empty: it gets a copy of the demo's log.
func keyedServer(t *testing.T, dir string, load bool, auditKey ed25519.PrivateKey) (string, string) {
	t.Helper()
	if load {
		copyDemo(t, dir)
	}
	store, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return storeServer(t, store, false, auditKey)
}

// storeServer runs the app over store, which it closes when the test ends.
func storeServer(t *testing.T, store eventstore.Store, load bool, auditKey ed25519.PrivateKey) (string, string) {
	t.Helper()
	token := ledgerhttp.NewToken()
	principals, err := ledgerhttp.NewPrincipals([]ledgerhttp.Principal{
		{ID: "auditor", Roles: []string{domain.RoleAuditor}, TokenSHA256: ledgerhttp.HashToken(token)},
		{ID: "clerk", Roles: []string{domain.RoleClerk}, TokenSHA256: ledgerhttp.HashToken(clerkToken)},
	})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := newApp(store, principals, auditKey, log)
	if load {
		if err := loadDemo(context.Background(), a.svc); err != nil {
			t.Fatalf("loadDemo: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, "127.0.0.1:0", func(addr net.Addr) { addrc <- addr }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base := "http://" + addr.String()
	// Wait until the read models have caught up with the log.
	waitReady(t, base, 10*time.Second, func() string { return "" })
	return base, token
}

func getJSON(t *testing.T, base, token, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

type fundsAnswer struct {
	Funds []struct {
		ID            string `json:"id"`
		FundType      string `json:"fund_type"`
		Committed     string `json:"committed"`
		PaidIn        string `json:"paid_in"`
		Invested      string `json:"invested"`
		Distributions string `json:"distributions"`
		WrittenOff    string `json:"written_off"`
		IdleCash      string `json:"idle_cash"`
		IdleSince     string `json:"idle_since"`
		Projects      int    `json:"projects"`
		LPs           []struct {
			LP        string `json:"lp"`
			Committed string `json:"committed"`
		} `json:"lps"`
		Alerts []struct {
			Kind string `json:"kind"`
		} `json:"alerts"`
	} `json:"funds"`
	Totals struct {
		Funds      int    `json:"funds"`
		Projects   int    `json:"projects"`
		Invested   string `json:"invested"`
		WrittenOff string `json:"written_off"`
	} `json:"totals"`
}

type projectsAnswer struct {
	Projects []struct {
		Project      string `json:"project"`
		Sector       string `json:"sector"`
		Cost         string `json:"cost"`
		StakePct     string `json:"stake_pct"`
		ExitProceeds string `json:"exit_proceeds"`
		WrittenOff   string `json:"written_off"`
		Multiple     string `json:"multiple"`
		Status       string `json:"status"`
	} `json:"projects"`
	Totals struct {
		Projects int    `json:"projects"`
		Cost     string `json:"cost"`
		BySector map[string]struct {
			Projects int    `json:"projects"`
			Cost     string `json:"cost"`
		} `json:"by_sector"`
	} `json:"totals"`
}

// TestDemoFigures checks the demo data set's figures over HTTP against
// docs/domain.md: the budgets, the clawback, seven funds, 17 projects totalling
// 360,000,000.00, the 1.8× exit, the 4,000,000 write-off and idle cash; then
// that a restart serves the same views.
func TestDemoFigures(t *testing.T) {
	dir := t.TempDir()
	base, token := demoServer(t, dir, true)
	checkDemoFigures(t, base, token)
}

func TestDemoRestartServesSameViews(t *testing.T) {
	dir := t.TempDir()
	var before fundsAnswer
	var beforeTB map[string]any
	// The sub-test's cleanup stops the first server, and closes its store,
	// before the second opens the directory.
	t.Run("first", func(t *testing.T) {
		base, token := demoServer(t, dir, true)
		getJSON(t, base, token, "/v1/funds?as_of=2026-01-01", &before)
		getJSON(t, base, token, "/v1/ledger/balances", &beforeTB)
	})
	base, token := demoServer(t, dir, false)
	var after fundsAnswer
	var afterTB map[string]any
	getJSON(t, base, token, "/v1/funds?as_of=2026-01-01", &after)
	getJSON(t, base, token, "/v1/ledger/balances", &afterTB)
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(after)
	if string(b1) != string(b2) {
		t.Errorf("fund views differ after restart:\nbefore %s\nafter  %s", b1, b2)
	}
	t1, _ := json.Marshal(beforeTB)
	t2, _ := json.Marshal(afterTB)
	if string(t1) != string(t2) {
		t.Errorf("trial balance differs after restart")
	}
	checkDemoFigures(t, base, token)
}

func checkDemoFigures(t *testing.T, base, token string) {
	t.Helper()
	checkDemoGrants(t, base, token)
	checkDemoStatement(t, base, token)
	// The 19 talent apartments, every one let at the end of 2025, each
	// with the grant that pays its discount; eight talents waiting.
	var apts struct {
		Apartments []struct {
			Unit    string `json:"unit"`
			Current *struct {
				GrantID string `json:"grant_id"`
			} `json:"current"`
		} `json:"apartments"`
		Totals struct {
			Units, Occupied, Waiting int
		} `json:"totals"`
	}
	getJSON(t, base, token, "/v1/apartments?as_of=2025-12-31", &apts)
	if apts.Totals.Units != 19 || apts.Totals.Occupied != 19 || apts.Totals.Waiting != 8 {
		t.Errorf("apartments %+v, want 19 units, all let, 8 waiting", apts.Totals)
	}
	for _, a := range apts.Apartments {
		if a.Current == nil || a.Current.GrantID == "" {
			t.Errorf("apartment %s: no allocation with a grant at the end of 2025", a.Unit)
		}
	}
	// Budgets of fiscal year 2024, as appropriated.
	for program, want := range map[string]string{
		"housing": "30000000.00", "living": "12000000.00", "rent": "3000000.00",
		"transport": "1500000.00", "medical": "800000.00", "apartment": "2000000.00",
	} {
		var b struct {
			Appropriated, Reserved, Paid, Available string
			CarriedOut                              string `json:"carried_out"`
		}
		getJSON(t, base, token, "/v1/programs/"+program+"/budgets/2024", &b)
		if b.Appropriated != want {
			t.Errorf("%s 2024 appropriated = %s, want %s", program, b.Appropriated, want)
		}
		if sum := money(b.Reserved).Add(money(b.Paid)).Add(money(b.Available)).Add(money(b.CarriedOut)); sum.String() != want {
			t.Errorf("%s 2024 reserved + paid + available + carried out = %s, want %s", program, sum, want)
		}
	}
	// Housing's 2024 is closed: one award carried over to 2025 (40 % of
	// 350,000.00), and 2025 paid it from the carried-over funds.
	var h24, h25 struct {
		Closed      bool   `json:"closed"`
		CarriedOut  string `json:"carried_out"`
		CarriedOver string `json:"carried_over"`
		Lapsed      string `json:"lapsed"`
	}
	getJSON(t, base, token, "/v1/programs/housing/budgets/2024", &h24)
	getJSON(t, base, token, "/v1/programs/housing/budgets/2025", &h25)
	if !h24.Closed || h24.CarriedOut != "140000.00" || h24.Lapsed != "60000.00" || h25.Closed || h25.CarriedOver != "140000.00" {
		t.Errorf("housing 2024 %+v, 2025 %+v; want 2024 closed, 140000.00 carried over to 2025, 60000.00 lapsed", h24, h25)
	}
	// The early departure owes exactly 220,000.00.
	var terminated struct {
		Grants []struct {
			ID       string `json:"id"`
			Paid     string `json:"paid"`
			Clawback struct {
				Assessed    string `json:"assessed"`
				Outstanding string `json:"outstanding"`
			} `json:"clawback"`
		} `json:"grants"`
	}
	getJSON(t, base, token, "/v1/grants?state=terminated", &terminated)
	// Three early departures: the worked example, and two of the crowd
	// (45,000.00 recovered in full, 50,000.00 of 105,000.00 so far).
	clawbacks := map[string]string{}
	for _, g := range terminated.Grants {
		clawbacks[g.Paid+" "+g.Clawback.Assessed] = g.Clawback.Outstanding
	}
	if len(terminated.Grants) != 3 || clawbacks["420000.00 220000.00"] != "220000.00" || clawbacks["60000.00 45000.00"] != "0.00" ||
		clawbacks["140000.00 105000.00"] != "55000.00" {
		t.Errorf("terminated grants = %+v, want 420000.00 paid and 220000.00 assessed, and the crowd's two", terminated.Grants)
	} else {
		// The demo is history: its trail says every event was imported.
		var trail struct {
			Events []struct {
				Type, Source string
			} `json:"events"`
		}
		getJSON(t, base, token, "/v1/grants/"+terminated.Grants[0].ID+"/trail", &trail)
		if len(trail.Events) == 0 {
			t.Error("the terminated grant has no trail")
		}
		for _, e := range trail.Events {
			if e.Source != domain.SourceImport {
				t.Errorf("trail event %s has source %q, want import", e.Type, e.Source)
			}
		}
	}
	// No stacking: Maria Rossi's six months of rent, 15,000.00, come off
	// her housing award, read from her own stream as the demo loaded.
	var housing struct {
		Grants []struct {
			Deduction string `json:"deduction"`
		} `json:"grants"`
	}
	getJSON(t, base, token, "/v1/grants?program=housing&limit=100", &housing)
	deducted := 0
	for _, g := range housing.Grants {
		if g.Deduction == "15000.00" {
			deducted++
		}
	}
	if deducted != 1 {
		t.Errorf("%d housing grants with the 15000.00 rent deduction, want 1", deducted)
	}
	var completed struct{ Total int }
	getJSON(t, base, token, "/v1/grants?state=completed", &completed)
	if completed.Total < 1 {
		t.Errorf("no completed grant in the demo")
	}

	var funds fundsAnswer
	getJSON(t, base, token, "/v1/funds?as_of=2026-01-01", &funds)
	if funds.Totals.Funds != 7 || funds.Totals.Projects != 17 {
		t.Errorf("funds, projects = %d, %d; want 7, 17", funds.Totals.Funds, funds.Totals.Projects)
	}
	if funds.Totals.Invested != "360000000.00" {
		t.Errorf("invested at cost = %s, want 360000000.00", funds.Totals.Invested)
	}
	if funds.Totals.WrittenOff != "4000000.00" {
		t.Errorf("written off = %s, want 4000000.00", funds.Totals.WrittenOff)
	}
	special, direct := 0, 0
	for _, f := range funds.Funds {
		switch f.FundType {
		case domain.FundSpecial:
			special++
		case domain.FundDirectInvestment:
			direct++
			if f.Committed != "500000000.00" || f.PaidIn != "400000000.00" || len(f.LPs) != 3 {
				t.Errorf("direct-investment fund committed %s paid in %s with %d LPs; want 500000000.00, 400000000.00, 3", f.Committed, f.PaidIn, len(f.LPs))
			}
			// 400,000,000 paid in − 187,000,000 invested.
			if f.IdleCash != "213000000.00" || f.IdleSince != "2019-07-01" {
				t.Errorf("direct fund idle cash %s since %s; want 213000000.00 since 2019-07-01", f.IdleCash, f.IdleSince)
			}
			if !hasAlert(f.Alerts, "idle_cash") {
				t.Errorf("direct fund: no idle_cash alert for cash idle since 2019")
			}
		}
		if f.ID == "hr" && f.IdleCash != "3000000.00" {
			// 19,000,000 paid in − 14,000,000 invested − 2,000,000 appropriated to a program.
			t.Errorf("hr fund idle cash = %s, want 3000000.00", f.IdleCash)
		}
		// Only the alerts that matter: of the idle cash, the direct fund's
		// 53 % alone is above 20 %; no term ends within 180 days.
		if f.ID != "direct" && hasAlert(f.Alerts, "idle_cash") {
			t.Errorf("%s: an idle_cash alert for %s idle of %s paid in", f.ID, f.IdleCash, f.PaidIn)
		}
		if hasAlert(f.Alerts, "term_ending") {
			t.Errorf("%s: a term_ending alert as of 2026-01-01", f.ID)
		}
	}
	// culture's term ends on 2026-12-01: flagged from 2026-06-04.
	var alerts struct {
		Alerts []struct {
			Kind   string `json:"kind"`
			FundID string `json:"fund_id"`
		} `json:"alerts"`
	}
	getJSON(t, base, token, "/v1/funds/alerts?as_of=2026-06-04", &alerts)
	terms := []string{}
	for _, a := range alerts.Alerts {
		if a.Kind == "term_ending" {
			terms = append(terms, a.FundID)
		}
	}
	if fmt.Sprint(terms) != "[culture]" {
		t.Errorf("term_ending alerts as of 2026-06-04 for %v, want [culture]", terms)
	}
	if special != 6 || direct != 1 {
		t.Errorf("special, direct funds = %d, %d; want 6, 1", special, direct)
	}

	var projects projectsAnswer
	getJSON(t, base, token, "/v1/projects", &projects)
	if projects.Totals.Projects != 17 || projects.Totals.Cost != "360000000.00" {
		t.Errorf("projects %d at cost %s; want 17 at 360000000.00", projects.Totals.Projects, projects.Totals.Cost)
	}
	exits, writeOffs := 0, 0
	for _, p := range projects.Projects {
		switch p.Status {
		case domain.InvestmentExited:
			exits++
			if p.Cost != "20000000.00" || p.ExitProceeds != "36000000.00" || p.Multiple != "1.80" {
				t.Errorf("exit %s: cost %s proceeds %s multiple %s; want 20000000.00, 36000000.00, 1.80", p.Project, p.Cost, p.ExitProceeds, p.Multiple)
			}
		case domain.InvestmentWrittenOff:
			writeOffs++
			if p.WrittenOff != "4000000.00" {
				t.Errorf("write-off %s = %s, want 4000000.00", p.Project, p.WrittenOff)
			}
		}
		if s := money(p.StakePct); s.Cmp(money("3")) < 0 || s.Cmp(money("20")) > 0 {
			t.Errorf("%s stake %s%%, want 3–20%%", p.Project, p.StakePct)
		}
	}
	if exits != 1 || writeOffs != 1 {
		t.Errorf("exits, write-offs = %d, %d; want 1, 1", exits, writeOffs)
	}
	var semis projectsAnswer
	getJSON(t, base, token, "/v1/projects?sector=semiconductors", &semis)
	if got := semis.Totals.BySector["semiconductors"]; got.Projects != len(semis.Projects) || got.Projects != projects.Totals.BySector["semiconductors"].Projects || len(semis.Projects) == 0 {
		t.Errorf("semiconductor filter: %d projects, totals %+v", len(semis.Projects), got)
	}
	for _, p := range semis.Projects {
		if p.Sector != "semiconductors" {
			t.Errorf("sector filter returned %s in %s", p.Project, p.Sector)
		}
	}

	var tb struct {
		Total      string   `json:"total"`
		Violations []string `json:"violations"`
	}
	getJSON(t, base, token, "/v1/ledger/balances", &tb)
	if tb.Total != "0.00" || len(tb.Violations) != 0 {
		t.Errorf("trial balance total %s, violations %v; want 0.00 and none", tb.Total, tb.Violations)
	}
	var verify struct {
		OK bool `json:"ok"`
	}
	getJSON(t, base, token, "/v1/audit/verify", &verify)
	if !verify.OK {
		t.Errorf("hash chains do not verify on the demo data")
	}
}

func hasAlert(alerts []struct {
	Kind string `json:"kind"`
}, kind string) bool {
	for _, a := range alerts {
		if a.Kind == kind {
			return true
		}
	}
	return false
}

// TestDemoScale checks the demo's people against docs/domain.md: 530
// holders of foreign work permits, at least 94 % of category A, B or
// permanent residence; 55 provincial overseas engineers, ten at one
// employer and fewer at every other; Chinese and foreign names.
func TestDemoScale(t *testing.T) {
	all := append(append([]demoTalent{}, demoTalents...), demoCrowdTalents()...)
	if len(all) != 530 {
		t.Errorf("%d talents, want 530", len(all))
	}
	high, engineers, chinese := 0, 0, 0
	byEmployer := map[string]int{}
	names := map[string]bool{}
	for _, tl := range all {
		if tl.permit == "A" || tl.permit == "B" || tl.permit == "permanent_resident" {
			high++
		}
		if tl.engineer {
			engineers++
			byEmployer[tl.employer]++
		}
		for _, r := range tl.name {
			if unicode.Is(unicode.Han, r) {
				chinese++
				break
			}
		}
		names[tl.name] = true
	}
	if high*100 < 94*len(all) {
		t.Errorf("%d of %d hold A, B or permanent residence: below 94 %%", high, len(all))
	}
	if engineers != 55 {
		t.Errorf("%d overseas engineers, want 55", engineers)
	}
	tens := 0
	for e, n := range byEmployer {
		switch {
		case n == 10 && e == demoEngineerEmployer:
			tens++
		case n >= 10:
			t.Errorf("%s has %d engineers, want fewer than 10", e, n)
		}
	}
	if tens != 1 {
		t.Errorf("engineers by employer %v: want 10 at %s", byEmployer, demoEngineerEmployer)
	}
	if chinese < 100 || chinese > len(all)-100 {
		t.Errorf("%d Chinese names of %d: want both Chinese and foreign names in numbers", chinese, len(all))
	}
	if len(names) < 400 {
		t.Errorf("only %d distinct names", len(names))
	}
}

// checkDemoGrants checks that every program has grants, and that some
// installments are overdue: due before 2026-01-01 with no payment.
func checkDemoGrants(t *testing.T, base, token string) {
	t.Helper()
	overdue := 0
	for _, program := range []string{"housing", "living", "rent", "transport", "medical", "apartment"} {
		var gs struct {
			Total  int `json:"total"`
			Grants []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"grants"`
		}
		getJSON(t, base, token, "/v1/grants?program="+program+"&limit=1000", &gs)
		if gs.Total == 0 {
			t.Errorf("no %s grants in the demo", program)
		}
		for _, g := range gs.Grants {
			if g.State != domain.GrantStateApproved {
				continue
			}
			// A list shows summaries: the installments are on the
			// grant's own page.
			var full struct {
				Installments []struct {
					DueDate   string `json:"due_date"`
					PaymentID string `json:"payment_id"`
					State     string `json:"state"`
				} `json:"installments"`
			}
			getJSON(t, base, token, "/v1/grants/"+g.ID, &full)
			for _, in := range full.Installments {
				if in.DueDate < "2026-01-01" && in.PaymentID == "" && in.State != "cancelled" {
					overdue++
				}
			}
		}
	}
	if overdue < 50 {
		t.Errorf("%d installments overdue at the end of 2025, want many", overdue)
	}
}

// TestDemoFundManagerAndAuditor walks two days on the demo: the fund
// manager reads the direct fund's DPI, RVPI, TVPI and IRR and the city
// platform's capital statement; the auditor exports the grants register
// as a workbook and checks it against the API.
func TestDemoFundManagerAndAuditor(t *testing.T) {
	base, token := demoServer(t, t.TempDir(), true)

	var f struct {
		PaidIn        string `json:"paid_in"`
		Distributions string `json:"distributions"`
		NAV           string `json:"nav"`
		DPI, RVPI     string
		TVPI, IRR     string
		LPs           []struct {
			ID  string `json:"id"`
			LP  string `json:"lp"`
			NAV string `json:"nav"`
		} `json:"lps"`
	}
	getJSON(t, base, token, "/v1/funds/direct?as_of=2026-01-01", &f)
	paid, dist, nav := money(f.PaidIn), money(f.Distributions), money(f.NAV)
	ratio := func(a domain.Money) string { return a.Decimal().DivRound(paid.Decimal(), 2).StringFixed(2) }
	if f.DPI != ratio(dist) || f.RVPI != ratio(nav) || f.TVPI != ratio(dist.Add(nav)) {
		t.Errorf("direct fund dpi %s rvpi %s tvpi %s; want %s, %s, %s", f.DPI, f.RVPI, f.TVPI, ratio(dist), ratio(nav), ratio(dist.Add(nav)))
	}
	// The flows of docs/domain.md's direct fund: 280,000,000 paid in on
	// 2019-07-01 and 120,000,000 on 2020-03-02, the exit's 36,000,000 on
	// 2024-06-28, and the NAV on 2026-01-01.
	navF, _ := strconv.ParseFloat(f.NAV, 64)
	flows := []struct {
		date   string
		amount float64
	}{{"2019-07-01", -280e6}, {"2020-03-02", -120e6}, {"2024-06-28", 36e6}, {"2026-01-01", navF}}
	npv := func(r float64) float64 {
		t0, _ := time.Parse(time.DateOnly, flows[0].date)
		v := 0.0
		for _, fl := range flows {
			d, _ := time.Parse(time.DateOnly, fl.date)
			v += fl.amount / math.Pow(1+r, d.Sub(t0).Hours()/24/365)
		}
		return v
	}
	irr, err := strconv.ParseFloat(f.IRR, 64)
	if err != nil || npv(irr-0.00005) < 0 || npv(irr+0.00005) > 0 {
		t.Errorf("direct fund irr %q does not zero its flows", f.IRR)
	}
	if dist.String() != "36000000.00" {
		t.Errorf("direct fund distributions %s, want the exit's 36000000.00", dist)
	}

	var st struct {
		LP      string `json:"lp"`
		Opening struct {
			Balance string `json:"balance"`
		} `json:"opening"`
		PaidIn        string `json:"paid_in"`
		Distributions string `json:"distributions"`
		GainOrLoss    string `json:"gain_or_loss"`
		Closing       struct {
			Balance   string `json:"balance"`
			Committed string `json:"committed"`
		} `json:"closing"`
		Measures struct {
			DPI, RVPI, TVPI, IRR string
		} `json:"measures"`
	}
	getJSON(t, base, token, "/v1/funds/direct/lps/"+f.LPs[0].ID+"/statement?from=2024-01-01&to=2026-01-01", &st)
	if st.LP != "City investment platform" || st.Closing.Committed != "200000000.00" || st.Closing.Balance != f.LPs[0].NAV {
		t.Errorf("city platform statement %+v; want its commitment of 200000000.00 and a closing balance of %s", st, f.LPs[0].NAV)
	}
	if got := money(st.Opening.Balance).Add(money(st.PaidIn)).Sub(money(st.Distributions)).Add(money(st.GainOrLoss)); got.Cmp(money(st.Closing.Balance)) != 0 {
		t.Errorf("opening + paid-in − distributions + gain = %s, closing %s", got, st.Closing.Balance)
	}
	if st.Measures.DPI == "" || st.Measures.IRR == "" {
		t.Errorf("city platform measures %+v", st.Measures)
	}

	// The auditor's register, as a workbook.
	req, _ := http.NewRequest("GET", base+"/v1/reports/grants.xlsx", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("grants.xlsx: %d", resp.StatusCode)
	}
	wb, err := excelize.OpenReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	sheet := wb.GetSheetName(0)
	rows, err := wb.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 3 || !strings.Contains(rows[0][0], "补助登记簿") || rows[1][0] != "补助编号" {
		t.Fatalf("workbook starts %q", rows[:min(3, len(rows))])
	}
	paidCol := slices.Index(rows[1], "已支付")
	if paidCol < 0 {
		t.Fatalf("no 已支付 column in %q", rows[1])
	}
	cell, _ := excelize.CoordinatesToCellName(paidCol+1, 3)
	style, _ := wb.GetCellStyle(sheet, cell)
	if s, err := wb.GetStyle(style); err != nil || s.CustomNumFmt == nil || *s.CustomNumFmt != "#,##0.00" {
		t.Errorf("paid column's number format: %v", err)
	}
	sum := decimal.Zero
	for _, r := range rows[2:] {
		if paidCol < len(r) && r[paidCol] != "" {
			sum = sum.Add(decimal.RequireFromString(r[paidCol]))
		}
	}
	var grants struct {
		Total  int `json:"total"`
		Grants []struct {
			Paid string `json:"paid"`
		} `json:"grants"`
	}
	getJSON(t, base, token, "/v1/grants?limit=1000", &grants)
	want := decimal.Zero
	for _, g := range grants.Grants {
		want = want.Add(money(g.Paid).Decimal())
	}
	if len(rows)-2 != grants.Total || !sum.Equal(want) {
		t.Errorf("workbook: %d grants paid %s; API: %d grants paid %s", len(rows)-2, sum, grants.Total, want)
	}
}

// checkDemoStatement checks the demo's bank statement: release batch
// RB20250214 of ten payments released on 2025-02-14, and the bank's
// statement of it, imported once: eight lines matched, two mismatched
// (booked 50.00 short, the ledger's amount given) and one unmatched (the
// bank's charge); the eight matched payments, and only they, are
// reconciled in it in the payments register. The printed summary says so.
func checkDemoStatement(t *testing.T, base, token string) {
	t.Helper()
	var list struct {
		Statements []struct {
			StatementID string `json:"statement_id"`
			From, To    string
			Lines       int `json:"lines"`
			Matched     int `json:"matched"`
			Mismatched  int `json:"mismatched"`
			Unmatched   int `json:"unmatched"`
		} `json:"statements"`
	}
	getJSON(t, base, token, "/v1/bank/statements", &list)
	if len(list.Statements) != 1 {
		t.Fatalf("statements %+v, want the demo's one", list)
	}
	s := list.Statements[0]
	if s.Lines != 11 || s.Matched != 8 || s.Mismatched != 2 || s.Unmatched != 1 || s.From != "2025-02-14" || s.To != "2025-02-14" {
		t.Errorf("the demo's statement %+v: want 11 lines of 2025-02-14, 8 matched, 2 mismatched, 1 unmatched", s)
	}
	var st struct {
		Lines []struct {
			Reference string  `json:"reference"`
			Amount    string  `json:"amount"`
			Outcome   string  `json:"outcome"`
			PaymentID string  `json:"payment_id"`
			Expected  *string `json:"expected"`
			Note      string  `json:"note"`
		} `json:"lines"`
	}
	getJSON(t, base, token, "/v1/bank/statements/"+s.StatementID, &st)
	matched := map[string]bool{}
	for _, l := range st.Lines {
		switch l.Outcome {
		case "matched":
			matched[l.PaymentID] = true
			if !strings.HasPrefix(l.Reference, "RB20250214-") {
				t.Errorf("matched line %+v is not of the batch", l)
			}
		case "mismatched":
			if l.Expected == nil || !amountIs(t, l.Expected, l.Amount, "50.00") || !strings.Contains(l.Note, "amount") {
				t.Errorf("mismatched line %+v: want the bank's amount 50.00 short of the ledger's, said", l)
			}
		case "unmatched":
			if l.Reference != "ZJRCB-FEE-20250214" || l.Amount != "-20.00" {
				t.Errorf("unmatched line %+v, want the bank's charge", l)
			}
		}
	}
	var reg struct {
		Payments []struct {
			ID            string `json:"id"`
			BankReference string `json:"bank_reference"`
			ReconciledIn  string `json:"reconciled_in"`
		} `json:"payments"`
		Total int `json:"total"`
	}
	getJSON(t, base, token, "/v1/payments?released_from=2025-02-14&released_to=2025-02-14", &reg)
	reconciled := 0
	for _, p := range reg.Payments {
		if !strings.HasPrefix(p.BankReference, "RB20250214-") {
			t.Errorf("payment %+v released on the batch's day is not of the batch", p)
		}
		if (p.ReconciledIn == s.StatementID) != matched[p.ID] || (p.ReconciledIn != "" && p.ReconciledIn != s.StatementID) {
			t.Errorf("payment %+v: reconciled_in %q, matched by the statement %v", p, p.ReconciledIn, matched[p.ID])
		}
		if p.ReconciledIn != "" {
			reconciled++
		}
	}
	if reg.Total != 10 || reconciled != 8 {
		t.Errorf("the batch's day: %d payments, %d reconciled; want 10 and 8", reg.Total, reconciled)
	}
	var help strings.Builder
	printDemoHelp(&help, base, map[string]string{}, t.TempDir())
	if out := help.String(); !strings.Contains(out, "release batch RB20250214") || !strings.Contains(out, "8 lines matched, 2 mismatched") ||
		!strings.Contains(out, "1 unmatched") {
		t.Errorf("the printed summary does not state the statement's figures:\n%s", out)
	}
}

// amountIs reports whether the bank's (signed) amount exceeds the
// ledger's expected amount by diff, compared by value: a payment booked
// diff short.
func amountIs(t *testing.T, expected *string, amount, diff string) bool {
	t.Helper()
	e, err1 := decimal.NewFromString(*expected)
	a, err2 := decimal.NewFromString(amount)
	d, err3 := decimal.NewFromString(diff)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	return a.Sub(e).Equal(d)
}
