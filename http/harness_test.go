package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// The principals every test server knows. Several hold two roles so that
// the maker-checker rules can be tested against one person acting in both.
const (
	clerk1            = "clerk1"
	clerk2            = "clerk2"
	reviewer1         = "reviewer1"
	reviewer2         = "reviewer2"
	approver1         = "approver1"
	approver2         = "approver2"
	treasurer1        = "treasurer1"
	treasurer2        = "treasurer2"
	admin             = "admin"
	admin2            = "admin2" // approves what admin requests
	auditor           = "auditor"
	fundManager       = "fund_manager"
	clerkApprover     = "clerk_approver"
	approverTreasurer = "approver_treasurer"
	clerkReviewer     = "clerk_reviewer"
	reviewerApprover  = "reviewer_approver"
)

var testPrincipals = []struct {
	id    string
	roles []string
}{
	{clerk1, []string{domain.RoleClerk}},
	{clerk2, []string{domain.RoleClerk}},
	{reviewer1, []string{domain.RoleReviewer}},
	{reviewer2, []string{domain.RoleReviewer}},
	{approver1, []string{domain.RoleApprover}},
	{approver2, []string{domain.RoleApprover}},
	{treasurer1, []string{domain.RoleTreasurer}},
	{treasurer2, []string{domain.RoleTreasurer}},
	{admin, []string{domain.RoleAdmin}},
	{admin2, []string{domain.RoleAdmin}},
	{auditor, []string{domain.RoleAuditor}},
	{fundManager, []string{domain.RoleFundManager}},
	{clerkApprover, []string{domain.RoleClerk, domain.RoleApprover}},
	{approverTreasurer, []string{domain.RoleApprover, domain.RoleTreasurer}},
	{clerkReviewer, []string{domain.RoleClerk, domain.RoleReviewer}},
	{reviewerApprover, []string{domain.RoleReviewer, domain.RoleApprover}},
}

// testEnv is one running ledger: a Pebble store in a directory, the domain
// service, the projector fed in a goroutine, and the API behind a real HTTP
// server on loopback. Its clients fail the test that created it, so a test
// using one does not hand it to subtests.
type testEnv struct {
	t      testing.TB
	dir    string
	store  *pebble.Store
	svc    *domain.Service
	proj   *projections.Projector
	api    *ledgerhttp.Server
	srv    *httptest.Server
	tokens map[string]string // principal → bearer token

	ctx     context.Context
	cancel  context.CancelFunc
	runDone chan struct{} // closed when the projector stops; nil until started

	mu sync.Mutex
	// pos is the highest position a command answered with; queries pass it
	// as min_position so every test reads its own writes.
	pos       eventstore.Position
	closeOnce sync.Once
	// abandoned is set when requests are stuck in the server: closing would
	// wait for them forever, so close only stops the projector.
	abandoned bool
	// clock is the server's clock.
	clock *serverClock
}

// serverClock is the fake server clock of a test ledger. A test acts on
// days: a command whose body names an effective_date moves the clock to
// 09:30 in the city on that day first, so that the date is the server's
// today, as the ledger requires of business dates, and every control
// reckoned by the server's clock (the public notice, due dates, the fiscal
// year) sees that day.
type serverClock struct {
	mu sync.Mutex
	t  time.Time
	// held: the clock stays on its day whatever the commands name (see
	// testEnv.recordedOn).
	held bool
}

func newServerClock(date string) *serverClock {
	c := &serverClock{}
	c.setDate(date)
	return c
}

// Now returns the clock's time.
func (c *serverClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// setDate moves the clock to 09:30 in the city on date, if it is one.
func (c *serverClock) setDate(date string) {
	d, err := domain.ParseDate(date)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.t = time.Date(d.Year(), d.Month(), d.Day(), 9, 30, 0, 0, domain.CityTime)
	c.mu.Unlock()
}

// follow moves the clock to the effective_date a command body names,
// unless the clock is held.
func (c *serverClock) follow(body []byte) {
	var b struct {
		EffectiveDate string `json:"effective_date"`
	}
	c.mu.Lock()
	held := c.held
	c.mu.Unlock()
	if !held && json.Unmarshal(body, &b) == nil && b.EffectiveDate != "" {
		c.setDate(b.EffectiveDate)
	}
}

// recordedOn runs f with the server's clock held at 09:30 in the city on
// date: the commands f sends keep the business dates they name (within the
// backdating window) but are recorded on date, as entries made late are.
// The clock follows the commands again afterwards.
func (e *testEnv) recordedOn(date string, f func()) {
	e.t.Helper()
	if _, err := domain.ParseDate(date); err != nil {
		e.t.Fatalf("recordedOn: %v", err)
	}
	e.clock.setDate(date)
	e.clock.mu.Lock()
	e.clock.held = true
	e.clock.mu.Unlock()
	defer func() {
		e.clock.mu.Lock()
		e.clock.held = false
		e.clock.mu.Unlock()
	}()
	f()
}

type envOptions struct {
	dir         string
	logger      *slog.Logger
	wait        time.Duration
	noProjector bool
	// without leaves these test principals out of the principals file.
	without []string
	// soleWriter makes the service its store's sole writer, as serve does
	// on the embedded store: it folds what it proposed, and combines the
	// commands waiting for one stream into one append.
	soleWriter bool
	// cipher seals personal fields (withCipher).
	cipher *domain.Cipher
	// views keeps the read models on disk in this directory (withViews).
	views string
}

// withViews keeps the read models on disk in dir, as serve --views does.
func withViews(dir string) envOption { return func(o *envOptions) { o.views = dir } }

// withCipher seals personal fields with c, as serve does with a master key.
func withCipher(c *domain.Cipher) envOption { return func(o *envOptions) { o.cipher = c } }

// asSoleWriter runs the ledger as serve runs it on the embedded store.
func asSoleWriter() envOption { return func(o *envOptions) { o.soleWriter = true } }

type envOption func(*envOptions)

// inDir opens the store in dir instead of a new temporary directory.
func inDir(dir string) envOption { return func(o *envOptions) { o.dir = dir } }

// withLogger sends every log line (server, service, projector, store) to l.
func withLogger(l *slog.Logger) envOption { return func(o *envOptions) { o.logger = l } }

// withoutPrincipals leaves the named test principals out of the
// principals file.
func withoutPrincipals(ids ...string) envOption { return func(o *envOptions) { o.without = ids } }

// withoutProjector leaves the projector stopped until startProjector.
func withoutProjector() envOption { return func(o *envOptions) { o.noProjector = true } }

// newTestServer starts a ledger on a fresh Pebble store. Everything is shut
// down, and the store closed, when the test ends.
func newTestServer(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	o := envOptions{wait: 200 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.logger == nil {
		// Warnings and errors only, so that a failing test shows what the
		// server complained about.
		o.logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	store, err := pebble.Open(o.dir, pebble.WithLogger(o.logger), pebble.WithCacheSize(8<<20), pebble.WithMemTableSize(4<<20))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	proj := projections.New(store, o.logger)
	if o.views != "" {
		if err := proj.OpenViews(o.views); err != nil {
			store.Close()
			t.Fatalf("open views: %v", err)
		}
	}
	clock := newServerClock("2024-01-02")
	svcOpts := []domain.Option{domain.WithLogger(o.logger), domain.WithClock(clock.Now)}
	if o.soleWriter {
		svcOpts = append(svcOpts, domain.WithSoleWriter())
	}
	if o.cipher != nil {
		svcOpts = append(svcOpts, domain.WithCipher(o.cipher))
	}
	svc := domain.NewService(store, svcOpts...)

	tokens := map[string]string{}
	var ps []ledgerhttp.Principal
	for _, p := range testPrincipals {
		if slices.Contains(o.without, p.id) {
			continue
		}
		tok := ledgerhttp.NewToken()
		tokens[p.id] = tok
		ps = append(ps, ledgerhttp.Principal{ID: p.id, Roles: p.roles, TokenSHA256: ledgerhttp.HashToken(tok)})
	}
	principals, err := ledgerhttp.NewPrincipals(ps)
	if err != nil {
		store.Close()
		t.Fatalf("principals: %v", err)
	}
	api := ledgerhttp.New(ledgerhttp.Config{Service: svc, Projector: proj, Principals: principals,
		Logger: o.logger, MinPositionWait: o.wait})
	ctx, cancel := context.WithCancel(context.Background())
	e := &testEnv{t: t, dir: o.dir, store: store, svc: svc, proj: proj, api: api, tokens: tokens, ctx: ctx, cancel: cancel, clock: clock}
	e.srv = httptest.NewServer(api)
	t.Cleanup(e.close)
	if !o.noProjector {
		e.startProjector()
	}
	return e
}

// startProjector feeds the read models from the log in a goroutine.
func (e *testEnv) startProjector() {
	e.runDone = make(chan struct{})
	go func() {
		defer close(e.runDone)
		if err := e.proj.Run(e.ctx); err != nil && e.ctx.Err() == nil {
			e.t.Errorf("projector stopped: %v", err)
		}
	}()
}

// close stops the server (waiting for requests in flight), the projector
// and the store. It may be called more than once.
func (e *testEnv) close() {
	e.closeOnce.Do(func() {
		if e.abandoned {
			e.cancel()
			return
		}
		e.srv.Close()
		e.cancel()
		if e.runDone != nil {
			<-e.runDone
		}
		if err := e.proj.CloseViews(); err != nil {
			e.t.Errorf("close views: %v", err)
		}
		if err := e.store.Close(); err != nil {
			e.t.Errorf("close store: %v", err)
		}
	})
}

// lastPosition is the store's global log position.
func (e *testEnv) lastPosition() eventstore.Position {
	e.t.Helper()
	p, err := e.store.LastPosition(context.Background())
	if err != nil {
		e.t.Fatalf("last position: %v", err)
	}
	return p
}

// events returns every event of the global log.
func (e *testEnv) events() []eventstore.Event {
	e.t.Helper()
	it := e.store.ReadAll(context.Background(), eventstore.Start)
	defer it.Close()
	var out []eventstore.Event
	for it.Next() {
		out = append(out, it.Event())
	}
	if err := it.Err(); err != nil {
		e.t.Fatalf("read all: %v", err)
	}
	return out
}

func (e *testEnv) seen(pos eventstore.Position) {
	e.mu.Lock()
	if e.pos.Before(pos) {
		e.pos = pos
	}
	e.mu.Unlock()
}

func (e *testEnv) minPosition() eventstore.Position {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pos
}

// response is an answer as received.
type response struct {
	status int
	header http.Header
	body   []byte
	method string
	path   string
}

func (r *response) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.method, r.path, r.status, bytes.TrimSpace(r.body))
}

// problem is an RFC 9457 problem document.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"request_id"`
}

// request is what send needs besides the method and path.
type request struct {
	token       string
	body        []byte
	contentType string
	header      map[string]string
}

// send does one HTTP request without touching the test, so that it can run
// in any goroutine.
func (e *testEnv) send(method, path string, rq request) (*response, error) {
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
		if method == http.MethodPost {
			e.clock.follow(rq.body)
		}
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		return nil, err
	}
	if rq.token != "" {
		req.Header.Set("Authorization", "Bearer "+rq.token)
	}
	if rq.body != nil {
		ct := rq.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &response{status: res.StatusCode, header: res.Header, body: b, method: method, path: path}, nil
}

// checkHeaders reports a response missing the headers every answer carries.
func checkHeaders(t testing.TB, r *response) {
	t.Helper()
	if r.header.Get("X-Request-ID") == "" {
		t.Errorf("%s: no X-Request-ID", r)
	}
	if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", r, got)
	}
}

// client calls the API as one principal.
type client struct {
	t         testing.TB
	e         *testEnv
	principal string
	token     string
}

// as returns a client acting as principal.
func (e *testEnv) as(principal string) *client {
	tok, ok := e.tokens[principal]
	if !ok {
		e.t.Fatalf("unknown principal %s", principal)
	}
	return &client{t: e.t, e: e, principal: principal, token: tok}
}

// anonymous returns a client without a token.
func (e *testEnv) anonymous() *client { return &client{t: e.t, e: e} }

func marshal(t testing.TB, body any) []byte {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("marshal %v: %v", body, err)
	}
	return raw
}

// do sends a request and checks the common headers. It records the
// position of a successful command's answer for later reads.
func (c *client) do(method, path string, body any, header map[string]string) *response {
	c.t.Helper()
	r, err := c.e.send(method, path, request{token: c.token, body: marshal(c.t, body), header: header})
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	checkHeaders(c.t, r)
	if method == "POST" && r.status < 300 {
		var a answer
		if err := json.Unmarshal(r.body, &a); err == nil && a.Position != "" {
			pos, err := eventstore.ParsePosition(a.Position)
			if err != nil {
				c.t.Fatalf("%s: position %q: %v", r, a.Position, err)
			}
			c.e.seen(pos)
		}
	}
	return r
}

// post sends a command, without an Idempotency-Key unless key is given.
func (c *client) post(path string, body any, key ...string) *response {
	c.t.Helper()
	var h map[string]string
	if len(key) > 0 {
		h = map[string]string{"Idempotency-Key": key[0]}
	}
	return c.do("POST", path, body, h)
}

// get sends a query with min_position set to the last position any client
// of the environment was answered, so it sees every earlier write.
func (c *client) get(path string) *response {
	c.t.Helper()
	if pos := c.e.minPosition(); pos != eventstore.Start && strings.HasPrefix(path, "/v1/") {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "min_position=" + pos.String()
	}
	return c.do("GET", path, nil, nil)
}

// answer is a command's answer.
type answer struct {
	ID       string `json:"id"`
	Position string `json:"position"`
}

// command posts a command that must succeed with status want, and returns
// the ID it answered.
func (c *client) command(want int, path string, body any) string {
	c.t.Helper()
	r := c.post(path, body)
	if r.status != want {
		c.t.Fatalf("%s as %s: want %d", r, c.principal, want)
	}
	a := decodeAs[answer](c.t, r)
	if a.Position == "" {
		c.t.Fatalf("%s: no position in the answer", r)
	}
	return a.ID
}

// fetch gets a resource that must exist and decodes it.
func fetch[T any](c *client, path string) T {
	c.t.Helper()
	r := c.get(path)
	if r.status != http.StatusOK {
		c.t.Fatalf("%s as %s: want 200", r, c.principal)
	}
	return decodeAs[T](c.t, r)
}

func decodeAs[T any](t testing.TB, r *response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("%s: decode %T: %v", r, v, err)
	}
	return v
}

// wantProblem checks that r is a problem+json answer with the status and
// code.
func wantProblem(t testing.TB, r *response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d (%s)", r, r.status, status, code)
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s: Content-Type %q, want application/problem+json", r, ct)
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Errorf("%s: not a problem document: %v", r, err)
		return
	}
	if p.Code != code || p.Status != status {
		t.Errorf("%s: code %q status %d, want %q %d", r, p.Code, p.Status, code, status)
	}
	if p.RequestID == "" || p.RequestID != r.header.Get("X-Request-ID") {
		t.Errorf("%s: problem request_id %q, header %q", r, p.RequestID, r.header.Get("X-Request-ID"))
	}
}

// Wire views: the fields the tests read, with amounts as the strings the
// API promises. Decoding fails if an amount arrives as a JSON number.
type budgetJSON struct {
	ProgramID    string `json:"program_id"`
	FiscalYear   int    `json:"fiscal_year"`
	Appropriated string `json:"appropriated"`
	Reserved     string `json:"reserved"`
	Paid         string `json:"paid"`
	Available    string `json:"available"`
	Grants       int    `json:"grants"`
}

type programJSON struct {
	ID            string            `json:"id"`
	Kind          string            `json:"kind"`
	Caps          map[string]string `json:"caps"`
	ServiceMonths int               `json:"service_months"`
	NoticeDays    int               `json:"notice_days"`
	Budgets       []budgetJSON      `json:"budgets"`
}

type installmentJSON struct {
	N         int    `json:"n"`
	Amount    string `json:"amount"`
	DueDate   string `json:"due_date"`
	State     string `json:"state"`
	PaymentID string `json:"payment_id"`
}

type paymentJSON struct {
	ID            string `json:"id"`
	GrantID       string `json:"grant_id"`
	Installment   int    `json:"installment"`
	Amount        string `json:"amount"`
	State         string `json:"state"`
	PreparedBy    string `json:"prepared_by"`
	ApprovedBy    string `json:"approved_by"`
	ReleasedBy    string `json:"released_by"`
	BankReference string `json:"bank_reference"`
	ReleasedOn    string `json:"released_on"`
}

type grantJSON struct {
	ID              string            `json:"id"`
	TalentID        string            `json:"talent_id"`
	ProgramID       string            `json:"program_id"`
	State           string            `json:"state"`
	AmountRequested string            `json:"amount_requested"`
	Award           string            `json:"award"`
	Amount          string            `json:"amount"`
	FiscalYear      int               `json:"fiscal_year"`
	ApprovedOn      string            `json:"approved_on"`
	ServiceMonths   int               `json:"service_months"`
	Installments    []installmentJSON `json:"installments"`
	Payments        []paymentJSON     `json:"payments"`
	Paid            string            `json:"paid"`
	Due             string            `json:"due"`
	Termination     *struct {
		DepartureDate  string `json:"departure_date"`
		MonthsServed   int    `json:"months_served"`
		MonthsRequired int    `json:"months_required"`
		Cancelled      []int  `json:"cancelled_installments"`
		Released       string `json:"released"`
	} `json:"termination"`
	Clawback struct {
		Assessed    string `json:"assessed"`
		Recovered   string `json:"recovered"`
		Waived      string `json:"waived"`
		Outstanding string `json:"outstanding"`
		Formula     string `json:"formula"`
	} `json:"clawback"`
}

type talentJSON struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Tier          string   `json:"tier"`
	DepartureDate string   `json:"departure_date"`
	Grants        []string `json:"grants"`
	TotalAwarded  string   `json:"total_awarded"`
	TotalPaid     string   `json:"total_paid"`
	ClawbackDue   string   `json:"clawback_due"`
	Recovered     string   `json:"recovered"`
	Waived        string   `json:"waived"`
}

type balancesJSON struct {
	AsOf       string        `json:"as_of"`
	Position   string        `json:"position"`
	Accounts   []accountJSON `json:"accounts"`
	Total      string        `json:"total"`
	Violations []string      `json:"violations"`
}

type accountJSON struct {
	Account     string `json:"account"`
	Debits      string `json:"debits"`
	Credits     string `json:"credits"`
	Balance     string `json:"balance"`
	NonNegative bool   `json:"non_negative"`
	Subsidiary  int    `json:"subsidiary_accounts"`
}

// subsidiaryJSON is a page of the subsidiary ledgers.
type subsidiaryJSON struct {
	AsOf       string        `json:"as_of"`
	Position   string        `json:"position"`
	Accounts   []accountJSON `json:"accounts"`
	Limit      int           `json:"limit"`
	NextCursor string        `json:"next_cursor"`
}

func mustMoney(t testing.TB, v string) domain.Money {
	t.Helper()
	m, err := domain.ParseMoney(v)
	if err != nil {
		t.Fatalf("amount %q: %v", v, err)
	}
	return m
}

// books reads the trial balance at control level (GET /v1/ledger/balances
// with query, "" or "?…") and every page of the subsidiary ledgers at the
// same point, three accounts a page, checks that each control account's
// line is the sum of its subsidiary accounts (and, live, counts them) and
// that both answers are at one position, and returns the trial balance in
// detail: the general ledger's accounts and the subsidiary accounts.
func books(c *client, query string) balancesJSON {
	c.t.Helper()
	tb := fetch[balancesJSON](c, "/v1/ledger/balances"+query)
	sep := "?"
	if query != "" {
		sep = "&"
	}
	var subs []accountJSON
	for cursor := ""; ; {
		path := "/v1/ledger/subsidiary" + query + sep + "limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		page := fetch[subsidiaryJSON](c, path)
		if page.Position != tb.Position || page.AsOf != tb.AsOf {
			c.t.Fatalf("%s: at position %s as of %q, the trial balance at %s as of %q", path, page.Position, page.AsOf, tb.Position, tb.AsOf)
		}
		subs = append(subs, page.Accounts...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(subs) > 0 {
		// One talent's accounts, asked by talent: those of the pages.
		talent := domain.SubsidiaryTalent(subs[len(subs)-1].Account)
		var want []string
		for _, a := range subs {
			if domain.SubsidiaryTalent(a.Account) == talent {
				want = append(want, a.Account+" "+a.Balance)
			}
		}
		var got []string
		for _, a := range fetch[subsidiaryJSON](c, "/v1/ledger/subsidiary"+query+sep+"talent="+talent).Accounts {
			got = append(got, a.Account+" "+a.Balance)
		}
		if !slices.Equal(got, want) {
			c.t.Errorf("talent %s's accounts: %v, the pages list %v", talent, got, want)
		}
	}
	sums := map[string][3]domain.Money{}
	counts := map[string]int{}
	for i, a := range subs {
		cn, ok := domain.ControlAccount(a.Account)
		if !ok || i > 0 && subs[i-1].Account >= a.Account {
			c.t.Fatalf("subsidiary ledger: %q out of place", a.Account)
		}
		s := sums[cn]
		for j, v := range []string{a.Debits, a.Credits, a.Balance} {
			s[j] = s[j].Add(mustMoney(c.t, v))
		}
		sums[cn] = s
		counts[cn]++
	}
	detail := tb
	detail.Accounts = nil
	for _, a := range tb.Accounts {
		if !strings.Contains(a.Account, ":*:") {
			detail.Accounts = append(detail.Accounts, a)
			continue
		}
		s := sums[a.Account]
		for j, v := range []string{a.Debits, a.Credits, a.Balance} {
			if s[j].Cmp(mustMoney(c.t, v)) != 0 {
				c.t.Errorf("control account %s: figure %d is %s, its subsidiary accounts sum to %s", a.Account, j, v, s[j])
			}
		}
		if query == "" && a.Subsidiary != counts[a.Account] {
			c.t.Errorf("control account %s counts %d subsidiary accounts, the subsidiary ledger lists %d", a.Account, a.Subsidiary, counts[a.Account])
		}
		delete(sums, a.Account)
	}
	for cn := range sums {
		c.t.Errorf("the subsidiary ledger has accounts of %s, the trial balance no line", cn)
	}
	detail.Accounts = append(detail.Accounts, subs...)
	return detail
}

// balance returns an account's balance, "" if the account is not listed.
func (b balancesJSON) balance(account string) string {
	for _, a := range b.Accounts {
		if a.Account == account {
			return a.Balance
		}
	}
	return ""
}

// wantBalances checks a trial balance sums to zero with no violation, and
// the balances of the named accounts.
func wantBalances(t testing.TB, what string, b balancesJSON, want map[string]string) {
	t.Helper()
	if b.Total != "0.00" {
		t.Errorf("%s: trial balance total = %q, want 0.00", what, b.Total)
	}
	if b.Violations == nil || len(b.Violations) != 0 {
		t.Errorf("%s: violations = %v, want []", what, b.Violations)
	}
	for acct, bal := range want {
		if got := b.balance(acct); got != bal {
			t.Errorf("%s: %s = %q, want %q", what, acct, got, bal)
		}
	}
}

func wantEqual[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// Fixtures built over the API.

// program is a command body defining a program.
type program struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Kind          string            `json:"kind"`
	Caps          map[string]string `json:"caps"`
	Schedule      map[string]any    `json:"schedule"`
	ServiceMonths int               `json:"service_months"`
	NoticeDays    int               `json:"notice_days"`
	DeductKinds   []string          `json:"deduct_kinds,omitempty"`
	EffectiveDate string            `json:"effective_date,omitempty"`
	DocumentRef   string            `json:"document_ref,omitempty"`
}

// housingProgram is docs/domain.md's housing-purchase subsidy.
func housingProgram(id string) program {
	return program{ID: id, Name: "Housing-purchase subsidy (购房补助)", Kind: "housing_purchase",
		Caps:     map[string]string{"A": "1000000.00", "B": "600000.00", "C": "350000.00", "D": "150000.00"},
		Schedule: map[string]any{"percentages": []int{40, 30, 30}, "interval_months": 12}, ServiceMonths: 60, NoticeDays: 5,
		EffectiveDate: "2024-01-01", DocumentRef: "PHRS-2023-112"}
}

// quickProgram pays a whole award at once, with no public notice and no
// service requirement, so that grants get ready for approval in two steps.
func quickProgram(id, cap string) program {
	return program{ID: id, Name: "One-off subsidy " + id, Kind: "transport",
		Caps:     map[string]string{"A": cap, "B": cap, "C": cap, "D": cap},
		Schedule: map[string]any{"percentages": []int{100}}, EffectiveDate: "2024-01-01"}
}

// setupProgram defines a program and appropriates its 2024 budget.
func (e *testEnv) setupProgram(p program, budget string) {
	e.t.Helper()
	e.as(admin).command(http.StatusCreated, "/v1/programs", p)
	e.as(approver1).command(http.StatusCreated, "/v1/programs/"+p.ID+"/budgets",
		map[string]any{"fiscal_year": 2024, "amount": budget, "effective_date": "2024-01-02", "document_ref": "PHCZ-2024-001"})
}

// registerTalent registers a talent as clerk1.
func (e *testEnv) registerTalent(name, tier string) string {
	e.t.Helper()
	return e.as(clerk1).command(http.StatusCreated, "/v1/talents", map[string]any{"name": name, "permit_category": "A",
		"tier": tier, "employer": "Pinghu Precision Optics Co.", "effective_date": "2024-01-02"})
}

// apply enters an application as clerk on date.
func (e *testEnv) apply(clerk, talent, programID, amount, date string) string {
	e.t.Helper()
	return e.as(clerk).command(http.StatusCreated, "/v1/grants", map[string]any{"talent_id": talent, "program_id": programID,
		"amount_requested": amount, "document_ref": "PHRS-APP-1", "effective_date": date})
}

// review reviews a grant favourably as reviewer1 on date.
func (e *testEnv) review(grantID, date string) {
	e.t.Helper()
	e.as(reviewer1).command(http.StatusOK, "/v1/grants/"+grantID+"/review", map[string]any{"decision": "approve", "effective_date": date})
}

// reviewedGrant applies as clerk on 2024-02-01 and reviews favourably as
// reviewer1 on 2024-02-02, on a program without a public notice.
func (e *testEnv) reviewedGrant(clerk, talent, programID, amount string) string {
	e.t.Helper()
	g := e.apply(clerk, talent, programID, amount, "2024-02-01")
	e.review(g, "2024-02-02")
	return g
}

// reviewedGrants is reviewedGrant for each talent, eight commands at a
// time, applied on the day applied and reviewed on the day reviewed: every
// application is entered before any review, so that the server's clock,
// which follows the commands, never turns back under one in flight.
func (e *testEnv) reviewedGrants(clerk, programID, amount string, talents []string, applied, reviewed string) []string {
	e.t.Helper()
	grants := make([]string, len(talents))
	parallel(len(talents), 8, func(i int) { grants[i] = e.apply(clerk, talents[i], programID, amount, applied) })
	parallel(len(grants), 8, func(i int) { e.review(grants[i], reviewed) })
	return grants
}

// approvedGrant is a reviewed grant approved by approver1 on 2024-02-05.
func (e *testEnv) approvedGrant(talent, programID, amount string) string {
	e.t.Helper()
	g := e.reviewedGrant(clerk1, talent, programID, amount)
	e.as(approver1).command(http.StatusOK, "/v1/grants/"+g+"/approve", map[string]any{"effective_date": "2024-02-05"})
	return g
}

// pay prepares, approves and releases installment n, each step by a
// different person, on date.
func (e *testEnv) pay(grantID string, n int, date, clerk, approver, treasurer string) string {
	e.t.Helper()
	pid := e.as(clerk).command(http.StatusCreated, fmt.Sprintf("/v1/grants/%s/installments/%d/payments", grantID, n),
		map[string]any{"effective_date": date})
	e.as(approver).command(http.StatusOK, "/v1/payments/"+pid+"/approve", map[string]any{"effective_date": date})
	e.as(treasurer).command(http.StatusOK, "/v1/payments/"+pid+"/release",
		map[string]any{"bank_reference": "ICBC-" + date + "-" + pid, "effective_date": date})
	return pid
}
