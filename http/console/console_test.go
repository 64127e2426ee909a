package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/http/console"
	"talentledger/projections"
)

// TestPagesAnswer opens every page as every role, in both languages: each
// answers (200, or 403 for a role it is not for), in the language chosen.
func TestPagesAnswer(t *testing.T) {
	e := newEnv(t)
	s := e.seedLedger()
	pages := map[string][]string{
		"/": nil, "/grants": nil, "/grants?q=张": nil, "/grants/" + s.paid: nil, "/grants/new": {domain.RoleClerk},
		"/payments": {domain.RoleClerk, domain.RoleApprover, domain.RoleTreasurer}, "/budgets": nil, "/funds": nil,
		"/funds/direct": nil, "/funds?unit=wan": nil, "/apartments": nil, "/audit": {domain.RoleAuditor},
		"/access": {domain.RoleAdmin, domain.RoleAuditor},
	}
	for _, who := range []string{"admin", "clerk", "reviewer", "approver", "treasurer", "fund_manager", "auditor"} {
		c := e.client()
		c.signIn(who)
		role := testPrincipals[who][0]
		for path, roles := range pages {
			p := c.get(path)
			want := http.StatusOK
			if roles != nil && !contains(roles, role) {
				want = http.StatusForbidden
			}
			if p.status != want {
				t.Errorf("%s as %s: %d, want %d: %s", path, who, p.status, want, shortText(p.body))
			}
			if !strings.Contains(p.body, `<html lang="zh-CN">`) {
				t.Errorf("%s as %s: not in Chinese by default", path, who)
			}
		}
	}
	// The grant's page shows its talent's name and the award as money is
	// shown: ¥600,000.00.
	c := e.client()
	c.signIn("auditor")
	p := text(c.get("/grants/" + s.paid).body)
	for _, want := range []string{"王芳", "¥600,000.00", "¥240,000.00"} {
		if !strings.Contains(p, want) {
			t.Errorf("grant page lacks %q", want)
		}
	}
	// 万元 on the fund pages: 60,000,000.00 paid in is 6,000.00万元.
	if p := text(c.get("/funds/direct?unit=wan").body); !strings.Contains(p, "6,000.00万元") {
		t.Errorf("fund page in 万元 lacks 6,000.00万元: %s", shortText(p))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func shortText(s string) string {
	s = text(s)
	if len(s) > 400 {
		s = s[:400]
	}
	return s
}

// TestSessionEnds: a session ends after 30 minutes idle, after 8 hours in
// all, at sign-out, and at once when its principal's token is revoked.
func TestSessionEnds(t *testing.T) {
	e := newEnv(t)
	signedIn := func(c *client) bool {
		t.Helper()
		p := c.get("/")
		return p.status == http.StatusOK
	}

	c := e.client()
	c.signIn("auditor")
	e.clock.advance(29 * time.Minute)
	if !signedIn(c) {
		t.Fatal("session ended before 30 minutes idle")
	}
	e.clock.advance(30 * time.Minute)
	if signedIn(c) {
		t.Fatal("session lives after 30 minutes idle")
	}
	if p := c.get("/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login") {
		t.Fatalf("an ended session's page: %d to %q, want a redirect to sign-in", p.status, p.location)
	}

	c = e.client()
	c.signIn("auditor")
	for range 16 { // 16 × 29 min: never idle, 7 h 44 min in all
		e.clock.advance(29 * time.Minute)
		if !signedIn(c) {
			t.Fatal("an active session ended before 8 hours")
		}
	}
	e.clock.advance(20 * time.Minute)
	if signedIn(c) {
		t.Fatal("session lives after 8 hours")
	}

	c = e.client()
	c.signIn("auditor")
	if p := c.post("/logout", url.Values{"csrf": {c.csrf("/")}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", p.status)
	}
	if signedIn(c) {
		t.Fatal("session lives after sign-out")
	}
}

// TestRevokedTokenEndsSession: a principal enrolled through the console
// and signed in loses its session the moment an admin revokes it.
func TestRevokedTokenEndsSession(t *testing.T) {
	e := newEnv(t)
	out := e.apiCall("admin", "POST", "/v1/principals", map[string]any{"id": "clerk9", "roles": []string{domain.RoleClerk}}, http.StatusAccepted)
	half1 := out["code_half"].(string)
	ans := e.apiCall("admin2", "POST", "/v1/principals/clerk9/requests/"+out["request_id"].(string)+"/approve", map[string]any{}, http.StatusOK)
	half2 := ans["code_half"].(string)

	c := e.client()
	p := c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "id": {"clerk9"}, "code": {half1 + half2}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="issued-token"`) {
		t.Fatalf("enrollment sign-in: %d %s", p.status, shortText(p.body))
	}
	if c.get("/").status != http.StatusOK {
		t.Fatal("not signed in after enrollment")
	}
	e.apiCall("admin", "POST", "/v1/principals/clerk9/revoke", map[string]any{"reason": "left"}, http.StatusOK)
	if p := c.get("/"); p.status != http.StatusSeeOther {
		t.Fatalf("after the principal was revoked its session still answers %d", p.status)
	}
	if got := e.lines(t, "session_ended"); !strings.Contains(got, "clerk9") {
		t.Errorf("the journal does not say clerk9's session ended: %s", got)
	}
	// The auditor reads clerk9's trail, each change verified against the
	// signed head.
	a := e.client()
	a.signIn("auditor")
	p = a.get("/access/principals/clerk9")
	events, verified := strings.Count(p.body, `<li class="event">`), strings.Count(p.body, "badge ok verified")
	if p.status != http.StatusOK || events < 3 || verified != events || !strings.Contains(text(p.body), "撤销用户") {
		t.Errorf("clerk9's trail: %d, %d events, %d verified: %s", p.status, events, verified, shortText(p.body))
	}
}

func (e *env) lines(t *testing.T, kind string) string {
	b, err := os.ReadFile(e.journal)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"kind":"`+kind+`"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestCookie: the session cookie is HttpOnly and SameSite=Strict, and
// Secure over TLS.
func TestCookie(t *testing.T) {
	e := newEnv(t)
	tls := httptest.NewTLSServer(e.console.Mount(e.api))
	defer tls.Close()
	for _, srv := range []*httptest.Server{e.srv, tls} {
		hc := srv.Client()
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := hc.Get(srv.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		body := read(t, resp).body
		pre := resp.Cookies()[0]
		form := url.Values{"csrf": {reCSRF.FindStringSubmatch(body)[1]}, "token": {e.tokens["auditor"]}}
		req, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(pre)
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var sess *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "tl_session" {
				sess = ck
			}
		}
		if sess == nil {
			t.Fatalf("%s: no session cookie", srv.URL)
		}
		secure := strings.HasPrefix(srv.URL, "https")
		if !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure != secure {
			t.Errorf("%s: cookie HttpOnly=%v SameSite=%v Secure=%v", srv.URL, sess.HttpOnly, sess.SameSite, sess.Secure)
		}
	}
}

// TestPostsNeedCSRF: every form of the console refuses a POST without its
// CSRF token (or with another session's), and nothing is appended.
func TestPostsNeedCSRF(t *testing.T) {
	e := newEnv(t)
	s := e.seedLedger()
	c := e.client()
	c.signIn("clerkapprover")
	other := e.client()
	other.signIn("clerkapprover")
	foreign := other.csrf("/")
	before, _ := e.store.LastPosition(t.Context())
	for _, rt := range e.console.Routes() {
		if rt.Method != "POST" {
			continue
		}
		path := strings.NewReplacer("{id}", s.noticed, "{n}", "1", "{pid}", "x", "{rid}", "y", "{handle}", "z").Replace(rt.Path)
		for _, form := range []url.Values{{"decision": {"approve"}, "token": {e.tokens["auditor"]}}, {"csrf": {foreign}}} {
			p := c.post(path, form)
			if p.status != http.StatusForbidden || !strings.Contains(p.body, `data-code="csrf"`) && !strings.Contains(p.body, `data-code="forbidden"`) {
				t.Errorf("POST %s without its CSRF token: %d %s", path, p.status, shortText(p.body))
			}
		}
	}
	after, _ := e.store.LastPosition(t.Context())
	if after != before {
		t.Errorf("refused forms appended: log moved from %s to %s", before, after)
	}
}

// TestSignInJournal: sign-ins, failed sign-ins (with the client's address)
// and sign-outs are recorded, kept across a restart, and listed on the
// audit page; a flood of failures from one address is throttled.
func TestSignInJournal(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	csrf := c.csrf("/login")
	if p := c.post("/login", url.Values{"csrf": {csrf}, "token": {strings.Repeat("ab", 32)}}); p.status != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %d", p.status)
	}
	c.signIn("clerk")
	c.post("/logout", url.Values{"csrf": {c.csrf("/")}})
	for kind, who := range map[string]string{"sign_in_failed": `"addr":"127.0.0.1:`, "sign_in": `"principal":"clerk"`, "sign_out": `"principal":"clerk"`} {
		if got := e.lines(t, kind); !strings.Contains(got, who) {
			t.Errorf("journal lacks %s with %s: %q", kind, who, got)
		}
	}
	a := e.client()
	a.signIn("auditor")
	page := text(a.get("/audit").body)
	for _, want := range []string{"登录失败", "退出", "clerk"} {
		if !strings.Contains(page, want) {
			t.Errorf("the audit page's sign-in history lacks %q", want)
		}
	}
	// Reopened, the journal still lists them.
	c2, err := console.New(console.Config{API: e.api, Authenticate: e.api.Authenticate, Projector: e.proj, SignInLog: e.journal + ".copy"})
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	b, _ := os.ReadFile(e.journal)
	if err := os.WriteFile(e.journal+".copy", append(b, []byte(`{"time":"2024-01-0`)...), 0o600); err != nil {
		t.Fatal(err)
	}
	c3, err := console.New(console.Config{API: e.api, Authenticate: e.api.Authenticate, Projector: e.proj, SignInLog: e.journal + ".copy"})
	if err != nil {
		t.Fatalf("a torn last line (a crash mid-write) must not stop the console: %v", err)
	}
	c3.Close()
	if err := os.WriteFile(e.journal+".copy", append([]byte("garbage\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := console.New(console.Config{API: e.api, Authenticate: e.api.Authenticate, Projector: e.proj, SignInLog: e.journal + ".copy"}); err == nil {
		t.Fatal("a damaged journal was accepted")
	}

	// Ten failures a minute from one address are recorded; then it is
	// refused without trying.
	f := e.client()
	csrf = f.csrf("/login")
	codes := map[int]int{}
	for range 12 {
		codes[f.post("/login", url.Values{"csrf": {csrf}, "token": {"nope"}}).status]++
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("12 failed sign-ins in a minute were all tried: %v", codes)
	}
}

// TestConsoleAddsNoAuthority: what the API refuses, the console refuses
// with the same code, in words: a clerk-approver approving the
// application they entered is refused for segregation of duties; the
// button was shown disabled with the reason.
func TestConsoleAddsNoAuthority(t *testing.T) {
	e := newEnv(t)
	s := e.seedLedger()
	c := e.client()
	c.signIn("clerkapprover")
	page := c.get("/grants/" + s.ownEntry).body
	if !strings.Contains(page, "disabled") || !strings.Contains(text(page), "此申请由您录入，不能由您办理") {
		t.Errorf("the approve button is not disabled with its reason: %s", shortText(page))
	}
	p := c.post("/grants/"+s.ownEntry+"/approve", url.Values{"csrf": {c.csrf("/")}})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, `data-code="segregation_of_duties"`) {
		t.Fatalf("approving one's own entry: %d %s", p.status, shortText(p.body))
	}
	if !strings.Contains(text(p.body), "不相容职务分离") {
		t.Errorf("the refusal is not said in words: %s", shortText(p.body))
	}
	if g, _ := e.proj.Grant(s.ownEntry); g.State != domain.GrantStateNoticeClosed {
		t.Errorf("the refused approval changed the grant to %s", g.State)
	}
}

// TestMount: the console answers its own paths; the API's, and paths of
// neither, go to the API, which answers them in JSON.
func TestMount(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for path, want := range map[string]string{"/healthz": "application/json", "/v1/programs": "application/problem+json",
		"/metrics": "application/problem+json", "/login": "text/html; charset=utf-8", "/static/console.css": "text/css; charset=utf-8"} {
		p := c.get(path)
		if got := p.header.Get("Content-Type"); got != want {
			t.Errorf("GET %s: %d %s, want %s", path, p.status, got, want)
		}
	}
	if csp := c.get("/login").header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("the console's CSP: %q", csp)
	}
}

// TestDepartureAndClawback: the clerk reports the talent's departure and
// the approver terminates the grant through the console's forms; the
// grant page then shows the clawback the ledger assessed.
func TestDepartureAndClawback(t *testing.T) {
	e := newEnv(t)
	s := e.seedLedger()
	g, _ := e.proj.Grant(s.paid)
	e.do("treasurer", "/v1/payments/"+g.Payments[0].ID+"/release", map[string]any{"bank_reference": "B-1"})
	clerk := e.client()
	clerk.signIn("clerk")
	page := "/grants/" + s.paid
	p := clerk.post("/talents/"+g.TalentID+"/departure", url.Values{"csrf": {clerk.csrf(page)}, "departure_date": {"2024-01-12"}, "next": {page}})
	if p.status != http.StatusSeeOther || p.location != page {
		t.Fatalf("departure: %d to %q: %s", p.status, p.location, shortText(p.body))
	}
	approver := e.client()
	approver.signIn("approver")
	if p := approver.post(page+"/terminate", url.Values{"csrf": {approver.csrf(page)}, "reason": {"left Pinghu"}}); p.status != http.StatusSeeOther {
		t.Fatalf("terminate: %d %s", p.status, shortText(p.body))
	}
	g, _ = e.proj.Grant(s.paid)
	if g.State != domain.GrantStateTerminated || g.Clawback.Assessed.String() != "240000.00" {
		t.Fatalf("the ledger holds %s, clawback %s", g.State, g.Clawback.Assessed)
	}
	if body := text(approver.get(page).body); !strings.Contains(body, "应追回 ¥240,000.00") {
		t.Errorf("the grant page does not show the clawback: %s", body)
	}
}

// TestConcurrentRequests: one session's requests at once (a page and its
// assets, two tabs) share it safely (run with -race).
func TestConcurrentRequests(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.signIn("clerk")
	done := make(chan int, 20)
	for range 20 {
		go func() {
			resp, err := c.http.Get(e.srv.URL + "/grants")
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	for range 20 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a concurrent request answered %d", code)
		}
	}
}

// TestFundPages: the fund pages show the API's figures and measures for
// the day asked about: a fund's DPI, RVPI, TVPI and IRR, a project's IRR
// and valuation history, an LP's capital statement.
func TestFundPages(t *testing.T) {
	e := newEnv(t)
	s := e.seedLedger()
	// A year on, the project returns cash and is valued again, so that the
	// fund has a rate of return.
	e.clock.advance(365 * 24 * time.Hour)
	e.do("fund_manager", "/v1/funds/direct/investments/"+s.project+"/distributions", map[string]any{"amount": "3000000.00"})
	e.do("fund_manager", "/v1/funds/direct/investments/"+s.project+"/valuations", map[string]any{"valuation": "52000000.00"})
	f := e.apiCall("fund_manager", "GET", "/v1/funds/direct", nil, http.StatusOK)
	if f["irr"] == "" || f["dpi"] == "" {
		t.Fatalf("the API gives the fund no measures: %v", f)
	}
	c := e.client()
	c.signIn("fund_manager")
	page := c.get("/funds/direct").body
	for id, want := range map[string]string{"fund-irr": percentOf(t, f["irr"].(string)), "fund-dpi": f["dpi"].(string) + "×",
		"fund-rvpi": f["rvpi"].(string) + "×", "fund-tvpi": f["tvpi"].(string) + "×", "fund-nav": yuan(t, f["nav"].(string))} {
		if got := byID(page, id); got != want {
			t.Errorf("#%s reads %q, want %q (the API's)", id, got, want)
		}
	}
	if cards := text(c.get("/funds").body); !strings.Contains(cards, percentOf(t, f["irr"].(string))) || !strings.Contains(cards, "半导体") {
		t.Errorf("the fund cards lack the IRR or the sectors: %s", shortText(cards))
	}

	p := e.apiCall("fund_manager", "GET", "/v1/projects/"+s.project, nil, http.StatusOK)
	pp := c.get("/projects/" + s.project)
	if got, want := byID(pp.body, "project-irr"), percentOf(t, p["irr"].(string)); got != want {
		t.Errorf("the project's IRR reads %q, want %q", got, want)
	}
	history := text(between(pp.body, `id="valuations"`, "</table>"))
	vals := p["valuations"].([]any)
	if len(vals) != 2 || !strings.Contains(history, "¥45,000,000.00") || !strings.Contains(history, "¥52,000,000.00") ||
		!strings.Contains(history, vals[1].(map[string]any)["as_of"].(string)) {
		t.Errorf("the valuation history reads %q; the ledger holds %v", history, vals)
	}

	lp := f["lps"].([]any)[0].(map[string]any)["id"].(string)
	st := e.apiCall("fund_manager", "GET", "/v1/funds/direct/lps/"+lp+"/statement?from=2024-01-01&to="+e.today(), nil, http.StatusOK)
	sp := c.get("/funds/direct/lps/" + lp + "?from=2024-01-01&to=" + e.today())
	closing := st["closing"].(map[string]any)["balance"].(string)
	if got := byID(sp.body, "st-closing"); got != yuan(t, closing) {
		t.Errorf("the statement's closing balance reads %q, want %s", got, closing)
	}
	if got := byID(sp.body, "st-distributions"); got != yuan(t, st["distributions"].(string)) {
		t.Errorf("the statement's distributions read %q, want %s", got, st["distributions"])
	}
	// A bad date is the API's refusal, in words.
	if bad := c.get("/funds/direct/lps/" + lp + "?from=2024-13-01"); bad.status != http.StatusBadRequest {
		t.Errorf("a statement from 2024-13-01: %d", bad.status)
	}
}

// TestApartmentsPage: the register shows every unit, who holds each
// until when, and the waiting list in order.
func TestApartmentsPage(t *testing.T) {
	e := newEnv(t)
	e.seedLedger()
	c := e.client()
	c.signIn("treasurer")
	p := c.get("/apartments").body
	for id, want := range map[string]string{"ap-units": "3", "ap-occupied": "1", "ap-vacant": "2", "ap-waiting": "1"} {
		if got := byID(p, id); got != want {
			t.Errorf("#%s reads %q, want %s", id, got, want)
		}
	}
	let := text(between(p, `id="unit-A-101"`, "</tr>"))
	if !strings.Contains(let, "张伟") || !strings.Contains(let, "2026-01-11") || !strings.Contains(let, "¥2,000.00") {
		t.Errorf("A-101 reads %q", let)
	}
	if w := text(between(p, `id="waiting-list"`, "</table>")); !strings.Contains(w, "1 李娜") {
		t.Errorf("the waiting list reads %q", w)
	}
	// The day before the letting, the unit was free.
	if p := c.get("/apartments?as_of=2024-01-02").body; byID(p, "ap-occupied") != "0" {
		t.Errorf("on 2024-01-02 %s units are occupied", byID(p, "ap-occupied"))
	}
}

// TestBudgetsAndDownloads: the budgets page shows the budget-execution
// report's figures, and the auditor downloads the reports as the API
// writes them.
func TestBudgetsAndDownloads(t *testing.T) {
	e := newEnv(t)
	s := e.seedLedger()
	c := e.client()
	c.signIn("auditor")
	row := text(between(c.get("/budgets?fy=2024").body, `id="budget-housing"`, "</tr>"))
	exec := e.proj.BudgetExecution(2024)
	if len(exec) != 1 {
		t.Fatalf("the ledger holds %d budgets for 2024", len(exec))
	}
	for _, want := range []string{"购房补助", yuan(t, exec[0].Budget.String()), yuan(t, exec[0].Reserved.String()), exec[0].ExecutionRate + "%"} {
		if !strings.Contains(row, want) {
			t.Errorf("the housing budget row reads %q, lacking %q", row, want)
		}
	}
	for _, name := range []string{"grants.xlsx", "budget-execution.csv", "clawbacks.xlsx", "funds.csv", "journal.xlsx"} {
		for _, q := range []string{"", "?lang=en"} {
			resp, err := c.http.Get(e.srv.URL + "/audit/download/" + name + q)
			if err != nil {
				t.Fatal(err)
			}
			p := read(t, resp)
			if p.status != http.StatusOK || !strings.Contains(p.header.Get("Content-Disposition"), "attachment") || p.header.Get("X-Report-As-Of") != e.today() ||
				p.header.Get("X-Report-Tree-Size") == "" {
				t.Errorf("%s%s: %d %s", name, q, p.status, p.header.Get("Content-Disposition"))
			}
		}
	}
	// The register's rows are the ledger's grants.
	ids := registerIDs(t, c, "/audit/download/grants.xlsx")
	for _, g := range []string{s.noticed, s.ownEntry, s.paid, s.paid2} {
		if !ids[g] {
			t.Errorf("the grants register lacks %s", g)
		}
	}
	if gs, _ := e.proj.Grants(projections.GrantFilter{}); len(ids) != len(gs) {
		t.Errorf("the register holds %d grants, the ledger %d", len(ids), len(gs))
	}
	// A query the API refuses is shown as its refusal.
	if p := c.get("/audit/download/budget-execution.xlsx?fiscal_year=nineteen"); p.status != http.StatusBadRequest || !strings.Contains(p.body, `data-code="invalid"`) {
		t.Errorf("a bad fiscal year: %d", p.status)
	}
	// The fund manager downloads the fund report, and not the others.
	fm := e.client()
	fm.signIn("fund_manager")
	if p := fm.get("/funds/report/funds.xlsx"); p.status != http.StatusOK {
		t.Errorf("fund report as the fund manager: %d", p.status)
	}
	if p := fm.get("/audit/download/grants.xlsx"); p.status != http.StatusForbidden {
		t.Errorf("grants register as the fund manager: %d", p.status)
	}
}

// TestNewPagesInEnglish: in English, the fund, project, LP-statement,
// apartment and budget pages show no Chinese but the ledger's own data
// (names of funds, projects, talents, programs, buildings).
func TestNewPagesInEnglish(t *testing.T) {
	e := newEnv(t)
	s := e.seedLedger()
	c := e.client()
	c.signIn("auditor")
	if p := c.post("/lang", url.Values{"csrf": {c.csrf("/")}, "lang": {"en"}, "next": {"/"}}); p.status != http.StatusSeeOther {
		t.Fatalf("switching to English: %d", p.status)
	}
	f := e.apiCall("auditor", "GET", "/v1/funds/direct", nil, http.StatusOK)
	lp := f["lps"].([]any)[0].(map[string]any)["id"].(string)
	data := []string{"平湖产业直投基金", "平湖投资管理", "光刻胶项目", "平湖微电子", "平湖市财政局", "购房补助", "张伟", "李娜",
		"人才公寓A栋", "人才公寓B栋"}
	for _, path := range []string{"/funds", "/funds/direct", "/projects/" + s.project, "/funds/direct/lps/" + lp, "/apartments", "/budgets", "/audit"} {
		p := c.get(path)
		if p.status != http.StatusOK || !strings.Contains(p.body, `<html lang="en">`) {
			t.Fatalf("%s in English: %d", path, p.status)
		}
		main := text(between(p.body, "<main", "</main>"))
		for _, d := range data {
			main = strings.ReplaceAll(main, d, "")
		}
		if han := regexp.MustCompile(`\p{Han}+`).FindAllString(main, -1); len(han) > 0 {
			t.Errorf("%s in English still shows %q", path, han)
		}
	}
}
