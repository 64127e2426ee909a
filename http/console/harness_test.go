package console_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	ledgerhttp "talentledger/http"
	"talentledger/http/console"
	"talentledger/projections"
)

// clock is the ledger's and the console's time, moved by the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// principals of the tests: one per role, a second treasurer, and a clerk
// who is also an approver (to meet segregation of duties).
var testPrincipals = map[string][]string{
	"admin": {domain.RoleAdmin}, "admin2": {domain.RoleAdmin}, "clerk": {domain.RoleClerk}, "reviewer": {domain.RoleReviewer},
	"approver": {domain.RoleApprover}, "treasurer": {domain.RoleTreasurer}, "treasurer2": {domain.RoleTreasurer},
	"fund_manager": {domain.RoleFundManager}, "auditor": {domain.RoleAuditor},
	"clerkapprover": {domain.RoleClerk, domain.RoleApprover},
}

type env struct {
	t       testing.TB
	store   eventstore.Store
	proj    *projections.Projector
	api     *ledgerhttp.Server
	console *console.Console
	srv     *httptest.Server
	clock   *clock
	tokens  map[string]string
	journal string
}

// newEnv assembles the ledger on an in-memory store, the API and the
// console, served together as serve does.
func newEnv(t testing.TB) *env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	store := memstore.New()
	proj := projections.New(store, logger)
	clk := &clock{t: time.Date(2024, 1, 2, 9, 30, 0, 0, domain.CityTime)}
	svc := domain.NewService(store, domain.WithLogger(logger), domain.WithClock(clk.Now))
	tokens := map[string]string{}
	var ps []ledgerhttp.Principal
	for id, roles := range testPrincipals {
		tokens[id] = ledgerhttp.NewToken()
		ps = append(ps, ledgerhttp.Principal{ID: id, Roles: roles, TokenSHA256: ledgerhttp.HashToken(tokens[id])})
	}
	principals, err := ledgerhttp.NewPrincipals(ps)
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	api := ledgerhttp.New(ledgerhttp.Config{Service: svc, Projector: proj, Principals: principals, Logger: logger, AuditKey: key,
		MinPositionWait: 2 * time.Second})
	journal := t.TempDir() + "/signins.jsonl"
	c, err := console.New(console.Config{API: api, Authenticate: api.Authenticate, Projector: proj, Store: store,
		Today: svc.Today, AuditPublicKey: key.Public().(ed25519.PublicKey), Logger: logger, SignInLog: journal, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = proj.Run(ctx)
	}()
	e := &env{t: t, store: store, proj: proj, api: api, console: c, clock: clk, tokens: tokens, journal: journal}
	e.srv = httptest.NewServer(c.Mount(api))
	t.Cleanup(func() {
		e.srv.Close()
		cancel()
		<-done
		c.Close()
		store.Close()
	})
	return e
}

// apiCall makes an API request as principal and returns the answer's
// decoded JSON, failing the test on an unexpected status.
func (e *env) apiCall(principal, method, path string, body any, want int) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+e.tokens[principal])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	if rec.Code != want {
		e.t.Fatalf("%s %s as %s: %d %s, want %d", method, path, principal, rec.Code, rec.Body, want)
	}
	out := map[string]any{}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if p, ok := out["position"].(string); ok {
		pos, err := eventstore.ParsePosition(p)
		if err == nil {
			if err := e.proj.WaitFor(context.Background(), pos, 5*time.Second); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	return out
}

// id posts a command and returns the ID it created.
func (e *env) id(principal, path string, body any) string {
	e.t.Helper()
	out := e.apiCall(principal, "POST", path, body, http.StatusCreated)
	id, _ := out["id"].(string)
	return id
}

func (e *env) do(principal, path string, body any) {
	e.t.Helper()
	e.apiCall(principal, "POST", path, body, http.StatusOK)
}

// seed holds what seedLedger created.
type seed struct {
	zhang, li string // talents
	// noticed is a grant ready for approval; ownEntry one the
	// clerk-approver entered, ready for approval too.
	noticed, ownEntry string
	// paid is an approved grant whose first installment waits to be
	// released, as does the one of paid2.
	paid, paid2 string
	// project is the direct fund's investment.
	project string
}

// seedLedger defines the housing program and its 2024 budget, registers
// talents with Chinese names, and takes grants to the stages the
// journeys start from; establishes a direct-investment fund with a
// project valued once; and registers three talent apartments, one let to
// 张伟 with 李娜 waiting.
func (e *env) seedLedger() seed {
	e.t.Helper()
	var s seed
	e.id("admin", "/v1/programs", map[string]any{"id": "housing", "name": "购房补助", "kind": "housing_purchase",
		"caps":     map[string]string{"A": "1000000.00", "B": "600000.00", "C": "350000.00", "D": "150000.00"},
		"schedule": map[string]any{"percentages": []int{40, 30, 30}, "interval_months": 12}, "service_months": 60, "notice_days": 5,
		"effective_date": "2024-01-01", "document_ref": "PHRS-2023-112"})
	e.id("approver", "/v1/programs/housing/budgets", map[string]any{"fiscal_year": 2024, "amount": "30000000.00", "document_ref": "PHCZ-2024-001"})
	s.zhang = e.id("clerk", "/v1/talents", map[string]any{"name": "张伟", "tier": "B", "employer": "平湖精密光学有限公司"})
	s.li = e.id("clerk", "/v1/talents", map[string]any{"name": "李娜", "tier": "C", "employer": "嘉兴新材料研究院"})
	wang := e.id("clerk", "/v1/talents", map[string]any{"name": "王芳", "tier": "B", "employer": "平湖光电"})
	zhao := e.id("clerk", "/v1/talents", map[string]any{"name": "赵磊", "tier": "C", "employer": "平湖机电"})
	apply := func(by, talent, amount string) string {
		return e.id(by, "/v1/grants", map[string]any{"talent_id": talent, "program_id": "housing", "amount_requested": amount, "document_ref": "PHRS-APP-1"})
	}
	s.noticed = apply("clerk", s.zhang, "600000.00")
	s.ownEntry = apply("clerkapprover", s.li, "350000.00")
	s.paid = apply("clerk", wang, "600000.00")
	s.paid2 = apply("clerk", zhao, "350000.00")
	for _, g := range []string{s.noticed, s.ownEntry, s.paid, s.paid2} {
		e.do("reviewer", "/v1/grants/"+g+"/review", map[string]any{"decision": "approve"})
		e.do("reviewer", "/v1/grants/"+g+"/notice", map[string]any{})
	}
	e.clock.advance(10 * 24 * time.Hour)
	for _, g := range []string{s.noticed, s.ownEntry, s.paid, s.paid2} {
		e.do("reviewer", "/v1/grants/"+g+"/notice/close", map[string]any{})
	}
	for _, g := range []string{s.paid, s.paid2} {
		e.do("approver", "/v1/grants/"+g+"/approve", map[string]any{"document_ref": "PHCZ-APR-1"})
		p := e.id("clerk", "/v1/grants/"+g+"/installments/1/payments", map[string]any{})
		e.do("approver", "/v1/payments/"+p+"/approve", map[string]any{})
	}

	e.id("fund_manager", "/v1/funds", map[string]any{"id": "direct", "name": "平湖产业直投基金", "fund_type": "direct_investment",
		"target": "200000000.00", "term_years": 10, "manager": "平湖投资管理", "effective_date": "2024-01-02", "document_ref": "PHJR-1"})
	e.id("fund_manager", "/v1/funds/direct/commitments", map[string]any{"lp": "平湖市财政局", "amount": "100000000.00"})
	e.id("fund_manager", "/v1/funds/direct/paid-in", map[string]any{"lp": "平湖市财政局", "amount": "60000000.00"})
	inv := e.id("fund_manager", "/v1/funds/direct/investments", map[string]any{"committee_ref": "IC-1", "project": "光刻胶项目",
		"company": "平湖微电子", "sector": "semiconductors", "amount": "40000000.00", "stake_pct": "15"})
	e.do("fund_manager", "/v1/funds/direct/investments/"+inv+"/tranches", map[string]any{"amount": "30000000.00"})
	e.do("fund_manager", "/v1/funds/direct/investments/"+inv+"/valuations", map[string]any{"valuation": "45000000.00"})
	s.project = inv

	for _, u := range []string{"A-101", "A-102", "B-201"} {
		e.id("reviewer", "/v1/apartments", map[string]any{"unit": u, "building": "人才公寓" + u[:1] + "栋", "size_sqm": "68.5",
			"market_rent": "3200.00", "discounted_rent": "1200.00"})
	}
	app := e.id("clerk", "/v1/apartments/applications", map[string]any{"talent_id": s.zhang})
	e.id("clerk", "/v1/apartments/applications", map[string]any{"talent_id": s.li})
	e.id("reviewer", "/v1/apartments/A-101/allocations", map[string]any{"application_id": app, "start_date": e.today(), "end_date": "2026-01-11"})
	return s
}

// today is the ledger's business date.
func (e *env) today() string { return e.clock.Now().In(domain.CityTime).Format("2006-01-02") }

// client is a browser without a browser: a cookie jar and the forms'
// CSRF tokens.
type client struct {
	e    *env
	http *http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (c *client) get(path string) page {
	c.e.t.Helper()
	resp, err := c.http.Get(c.e.srv.URL + path)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return read(c.e.t, resp)
}

func read(t testing.TB, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location"), header: resp.Header}
}

var reCSRF = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf returns the CSRF token of the forms on the page at path.
func (c *client) csrf(path string) string {
	c.e.t.Helper()
	m := reCSRF.FindStringSubmatch(c.get(path).body)
	if m == nil {
		c.e.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// post sends a form as is.
func (c *client) post(path string, form url.Values) page {
	c.e.t.Helper()
	resp, err := c.http.PostForm(c.e.srv.URL+path, form)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return read(c.e.t, resp)
}

// signIn signs in with the principal's token.
func (c *client) signIn(principal string) {
	c.e.t.Helper()
	p := c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "token": {c.e.tokens[principal]}})
	if p.status != http.StatusSeeOther {
		c.e.t.Fatalf("sign-in as %s: %d %s", principal, p.status, text(p.body))
	}
}

var reTags = regexp.MustCompile(`(?s)<[^>]*>`)

// text returns a page's text without its tags, white space squeezed.
func text(body string) string {
	return strings.Join(strings.Fields(html.UnescapeString(reTags.ReplaceAllString(body, " "))), " ")
}

// byID returns the text of the element with id on a page (up to its
// closing tag).
func byID(body, id string) string {
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := body[i:]
	start := strings.Index(rest, ">")
	end := strings.Index(rest, "</")
	if start < 0 || end < start {
		return ""
	}
	return text(rest[start+1 : end])
}

// between returns the part of body from the first from up to the next
// to after it.
func between(body, from, to string) string {
	i := strings.Index(body, from)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], to)
	if j < 0 {
		return body[i:]
	}
	return body[i : i+j]
}

// percentOf writes a rate the API gives as a fraction in percent, as the
// console shows it: "0.2063" is 20.63%.
func percentOf(t testing.TB, rate string) string {
	t.Helper()
	d, err := decimal.NewFromString(rate)
	if err != nil {
		t.Fatalf("rate %q: %v", rate, err)
	}
	return d.Shift(2).StringFixed(2) + "%"
}

// yuan writes an amount the API gives as the console shows it.
func yuan(t testing.TB, amount string) string {
	t.Helper()
	m, err := domain.ParseMoney(amount)
	if err != nil {
		t.Fatalf("amount %q: %v", amount, err)
	}
	intPart, frac, _ := strings.Cut(m.Decimal().Abs().StringFixed(2), ".")
	sign := ""
	if m.Sign() < 0 {
		sign = "-"
	}
	return "¥" + sign + thousands(intPart) + "." + frac
}

// thousands puts a comma between each group of three digits.
func thousands(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	return thousands(digits[:len(digits)-3]) + "," + digits[len(digits)-3:]
}

// registerIDs downloads the grants register workbook at path with the
// client's session and returns the grant IDs of its rows.
func registerIDs(t testing.TB, c *client, path string) map[string]bool {
	t.Helper()
	resp, err := c.http.Get(c.e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return workbookIDs(t, resp.Body)
}

// workbookIDs reads a grants register workbook: a title row, the header
// row, then a row per grant; it returns the grant IDs.
func workbookIDs(t testing.TB, r io.Reader) map[string]bool {
	t.Helper()
	f, err := excelize.OpenReader(r)
	if err != nil {
		t.Fatalf("the register is not a workbook: %v", err)
	}
	defer f.Close()
	rows, err := f.GetRows(f.GetSheetName(0))
	if err != nil || len(rows) < 2 {
		t.Fatalf("the register has %d rows: %v", len(rows), err)
	}
	col := slices.Index(rows[1], "补助编号")
	if col < 0 {
		t.Fatalf("the register's header has no grant ID: %q", rows[1])
	}
	ids := map[string]bool{}
	for _, row := range rows[2:] {
		if col < len(row) && row[col] != "" {
			ids[row[col]] = true
		}
	}
	return ids
}
