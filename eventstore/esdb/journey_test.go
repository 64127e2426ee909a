package esdb_test

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
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/esdb"
	"talentledger/eventstore/esdb/esdbtest"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// ledger is the whole ledger (domain service, read models fed by the
// server's $all subscription, HTTP API) on the esdb backend, for one test.
type ledger struct {
	t      *testing.T
	srv    *httptest.Server
	tokens map[string]string // principal → bearer token
	// pos is the position of the last command's answer; every query
	// passes it as min_position, so it reads what was just written even
	// though the read models are fed asynchronously.
	pos eventstore.Position
}

// journeyPrincipals are the people of the journey. Each payment step is
// taken by someone else, as the four-eyes rules demand.
var journeyPrincipals = map[string]string{
	"admin":      domain.RoleAdmin,
	"clerk1":     domain.RoleClerk,
	"clerk2":     domain.RoleClerk,
	"reviewer":   domain.RoleReviewer,
	"approver1":  domain.RoleApprover,
	"approver2":  domain.RoleApprover,
	"treasurer1": domain.RoleTreasurer,
	"treasurer2": domain.RoleTreasurer,
	"auditor":    domain.RoleAuditor,
}

// newLedger connects to srv through the real client and serves the API
// on loopback. Everything stops when the test ends.
func newLedger(t *testing.T, srv *esdbtest.Server) *ledger {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := esdb.New(ctx, srv.URL(), esdb.WithLogger(log))
	if err != nil {
		t.Fatalf("esdb.New: %v", err)
	}
	proj := projections.New(store, log)
	svc := domain.NewService(store, domain.WithImport(), domain.WithLogger(log))

	l := &ledger{t: t, tokens: map[string]string{}}
	var ps []ledgerhttp.Principal
	for id, role := range journeyPrincipals {
		tok := ledgerhttp.NewToken()
		l.tokens[id] = tok
		ps = append(ps, ledgerhttp.Principal{ID: id, Roles: []string{role}, TokenSHA256: ledgerhttp.HashToken(tok)})
	}
	principals, err := ledgerhttp.NewPrincipals(ps)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	api := ledgerhttp.New(ledgerhttp.Config{Service: svc, Projector: proj, Principals: principals, Logger: log})

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proj.Run(runCtx) }()
	l.srv = httptest.NewServer(api)
	t.Cleanup(func() {
		l.srv.Close()
		stop()
		if err := <-done; err != nil && runCtx.Err() == nil {
			t.Errorf("projector: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return l
}

// send does one request as principal and returns the status and body.
func (l *ledger) send(method, path, principal string, body any) (int, []byte) {
	l.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			l.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, l.srv.URL+path, rd)
	if err != nil {
		l.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+l.tokens[principal])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.srv.Client().Do(req)
	if err != nil {
		l.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		l.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// command posts a command that must answer want, and returns the ID it
// answered. It keeps the answer's position for the queries that follow.
func (l *ledger) command(principal string, want int, path string, body any) string {
	l.t.Helper()
	status, b := l.send("POST", path, principal, body)
	if status != want {
		l.t.Fatalf("POST %s as %s: %d %s, want %d", path, principal, status, b, want)
	}
	var a struct {
		ID       string `json:"id"`
		Position string `json:"position"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		l.t.Fatalf("POST %s: %v in %s", path, err, b)
	}
	pos, err := eventstore.ParsePosition(a.Position)
	if err != nil {
		l.t.Fatalf("POST %s: position %q: %v", path, a.Position, err)
	}
	if !l.pos.Before(pos) {
		l.t.Fatalf("POST %s: position %s does not follow %s", path, pos, l.pos)
	}
	l.pos = pos
	return a.ID
}

// query gets path as principal, at least as recent as the last command,
// and decodes the answer into v.
func (l *ledger) query(principal, path string, v any) {
	l.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	path += sep + "min_position=" + l.pos.String()
	status, b := l.send("GET", path, principal, nil)
	if status != http.StatusOK {
		l.t.Fatalf("GET %s as %s: %d %s", path, principal, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		l.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// pay prepares, approves and releases installment n, each step by a
// different person, and returns the payment's ID.
func (l *ledger) pay(grant string, n int, date, clerk, approver, treasurer string) string {
	l.t.Helper()
	p := l.command(clerk, http.StatusCreated, fmt.Sprintf("/v1/grants/%s/installments/%d/payments", grant, n),
		map[string]any{"effective_date": date})
	l.command(approver, http.StatusOK, "/v1/payments/"+p+"/approve", map[string]any{"effective_date": date})
	l.command(treasurer, http.StatusOK, "/v1/payments/"+p+"/release",
		map[string]any{"bank_reference": fmt.Sprintf("ZJRCB-%s-%d", date, n), "effective_date": date})
	return p
}

// TestClawbackJourney walks docs/domain.md's clawback example over HTTP with
// the ledger on the EventStoreDB backend: a tier-B housing award of
// 600,000.00 paid 240,000.00 and 180,000.00, the talent leaving at month
// 20 of 60, and 220,000.00 due back. Every command goes through the real
// client to the test server, and every figure is read back from read
// models fed by its $all subscription.
func TestClawbackJourney(t *testing.T) {
	srv := esdbtest.New(t)
	l := newLedger(t, srv)

	l.command("admin", http.StatusCreated, "/v1/programs", map[string]any{
		"id": "housing", "name": "Housing-purchase subsidy (购房补助)", "kind": "housing_purchase",
		"caps":           map[string]string{"A": "1000000.00", "B": "600000.00", "C": "350000.00", "D": "150000.00"},
		"schedule":       map[string]any{"percentages": []int{40, 30, 30}, "interval_months": 12},
		"service_months": 60, "notice_days": 5, "effective_date": "2024-01-01", "document_ref": "PHRS-2023-112"})
	l.command("approver1", http.StatusCreated, "/v1/programs/housing/budgets", map[string]any{
		"fiscal_year": 2024, "amount": "30000000.00", "effective_date": "2024-01-02", "document_ref": "PHCZ-2024-001"})
	// 2025's budget, appropriated in advance, covers the installment due
	// in 2025; installment 3 is a forward commitment on 2026.
	l.command("approver1", http.StatusCreated, "/v1/programs/housing/budgets", map[string]any{
		"fiscal_year": 2025, "amount": "30000000.00", "effective_date": "2024-01-02", "document_ref": "PHCZ-2025-001"})
	talent := l.command("clerk1", http.StatusCreated, "/v1/talents", map[string]any{
		"name": "Elena Petrova", "permit_category": "A", "tier": "B",
		"employer": "Pinghu Precision Optics Co.", "effective_date": "2024-01-02"})
	grant := l.command("clerk1", http.StatusCreated, "/v1/grants", map[string]any{
		"talent_id": talent, "program_id": "housing", "amount_requested": "600000.00",
		"document_ref": "PHRS-APP-2024-0007", "effective_date": "2024-01-03"})
	g := "/v1/grants/" + grant
	l.command("reviewer", http.StatusOK, g+"/review", map[string]any{"decision": "approve", "note": "employer verified", "effective_date": "2024-01-04"})
	l.command("reviewer", http.StatusOK, g+"/notice", map[string]any{"effective_date": "2024-01-05"})
	// Friday 5 January plus five working days.
	l.command("reviewer", http.StatusOK, g+"/notice/close", map[string]any{"effective_date": "2024-01-13"})
	l.command("approver1", http.StatusOK, g+"/approve", map[string]any{"effective_date": "2024-01-15", "document_ref": "PHCZ-APR-2024-0003"})

	var b budget
	l.query("clerk1", "/v1/programs/housing/budgets/2024", &b)
	if want := (budget{Appropriated: "30000000.00", Reserved: "240000.00", Paid: "0.00", Available: "29760000.00"}); b != want {
		t.Errorf("budget after approval = %+v, want %+v", b, want)
	}

	pay1 := l.pay(grant, 1, "2024-01-15", "clerk1", "approver2", "treasurer1")
	pay2 := l.pay(grant, 2, "2025-01-15", "clerk2", "approver1", "treasurer2")

	l.command("clerk1", http.StatusOK, "/v1/talents/"+talent+"/departure", map[string]any{"departure_date": "2025-09-15", "effective_date": "2025-09-15"})
	l.command("approver1", http.StatusOK, g+"/terminate", map[string]any{"reason": "left Pinghu before serving 60 months", "effective_date": "2025-09-15"})

	var ended grantView
	l.query("auditor", g, &ended)
	if ended.State != "terminated" {
		t.Errorf("grant state = %q, want terminated", ended.State)
	}
	if ended.Paid != "420000.00" {
		t.Errorf("grant paid = %q, want 420000.00", ended.Paid)
	}
	if ended.Clawback.Assessed != "220000.00" || ended.Clawback.Outstanding != "220000.00" {
		t.Errorf("clawback assessed %q outstanding %q, want 220000.00 both", ended.Clawback.Assessed, ended.Clawback.Outstanding)
	}
	wantInst := []installment{
		{N: 1, Amount: "240000.00", State: "paid", PaymentID: pay1},
		{N: 2, Amount: "180000.00", State: "paid", PaymentID: pay2},
		{N: 3, Amount: "180000.00", State: "cancelled"},
	}
	if !slices.Equal(ended.Installments, wantInst) {
		t.Errorf("installments:\n got %+v\nwant %+v", ended.Installments, wantInst)
	}
	if tm := ended.Termination; tm == nil {
		t.Errorf("no termination in %+v", ended)
	} else if tm.MonthsServed != 20 || tm.MonthsRequired != 60 || tm.Released != "180000.00" || !slices.Equal(tm.Cancelled, []int{3}) {
		t.Errorf("termination = %+v, want 20 of 60 months, installment 3 cancelled, 180000.00 released", *tm)
	}
	wantPeople := [][3]string{{"clerk1", "approver2", "treasurer1"}, {"clerk2", "approver1", "treasurer2"}}
	if len(ended.Payments) != len(wantPeople) {
		t.Errorf("%d payments, want %d", len(ended.Payments), len(wantPeople))
	}
	for i, p := range ended.Payments {
		if got := [3]string{p.PreparedBy, p.ApprovedBy, p.ReleasedBy}; i < len(wantPeople) && (got != wantPeople[i] || p.State != "released") {
			t.Errorf("payment %d: %s by %v, want released by %v", i+1, p.State, got, wantPeople[i])
		}
	}

	l.query("clerk1", "/v1/programs/housing/budgets/2024", &b)
	if want := (budget{Appropriated: "30000000.00", Reserved: "0.00", Paid: "240000.00", Available: "29760000.00"}); b != want {
		t.Errorf("budget after termination = %+v, want %+v", b, want)
	}
	l.query("clerk1", "/v1/programs/housing/budgets/2025", &b)
	if want := (budget{Appropriated: "30000000.00", Reserved: "0.00", Paid: "180000.00", Available: "29820000.00"}); b != want {
		t.Errorf("2025 budget after termination = %+v, want %+v", b, want)
	}

	var tb struct {
		Total      string   `json:"total"`
		Violations []string `json:"violations"`
		Accounts   []struct {
			Account string `json:"account"`
			Balance string `json:"balance"`
		} `json:"accounts"`
	}
	l.query("auditor", "/v1/ledger/balances", &tb)
	if tb.Total != "0.00" || tb.Violations == nil || len(tb.Violations) != 0 {
		t.Errorf("trial balance total %q, violations %v; want 0.00 and none", tb.Total, tb.Violations)
	}
	balances := map[string]string{}
	for _, a := range tb.Accounts {
		balances[a.Account] = a.Balance
	}
	// The talent's own accounts are in the subsidiary ledger; the trial
	// balance holds their control accounts (this talent's alone here).
	var sub struct {
		Accounts []struct {
			Account string `json:"account"`
			Balance string `json:"balance"`
		} `json:"accounts"`
	}
	l.query("auditor", "/v1/ledger/subsidiary?talent="+talent, &sub)
	for _, a := range sub.Accounts {
		balances[a.Account] = a.Balance
	}
	for acct, want := range map[string]string{
		"budget:housing:2024:available":      "29760000.00",
		"budget:housing:2026:uncovered":      "0.00",
		"budget:housing:2024:encumbered":     "0.00",
		"talent:" + talent + ":clawback_due": "220000.00",
		"talent:*:clawback_due":              "220000.00",
		"treasury:2024:appropriation":        "-30000000.00",
	} {
		if got := balances[acct]; got != want {
			t.Errorf("balance of %s = %q, want %q", acct, got, want)
		}
	}

	// The hash chains written through EventStoreDB check out.
	var v struct {
		OK     bool `json:"ok"`
		Events int  `json:"events"`
	}
	l.query("auditor", "/v1/audit/verify", &v)
	if !v.OK || v.Events == 0 {
		t.Errorf("audit verify = %+v, want ok", v)
	}
}

type budget struct {
	Appropriated string `json:"appropriated"`
	Reserved     string `json:"reserved"`
	Paid         string `json:"paid"`
	Available    string `json:"available"`
}

type installment struct {
	N         int    `json:"n"`
	Amount    string `json:"amount"`
	State     string `json:"state"`
	PaymentID string `json:"payment_id"`
}

type grantView struct {
	State        string        `json:"state"`
	Paid         string        `json:"paid"`
	Installments []installment `json:"installments"`
	Payments     []struct {
		State      string `json:"state"`
		PreparedBy string `json:"prepared_by"`
		ApprovedBy string `json:"approved_by"`
		ReleasedBy string `json:"released_by"`
	} `json:"payments"`
	Termination *struct {
		MonthsServed   int    `json:"months_served"`
		MonthsRequired int    `json:"months_required"`
		Cancelled      []int  `json:"cancelled_installments"`
		Released       string `json:"released"`
	} `json:"termination"`
	Clawback struct {
		Assessed    string `json:"assessed"`
		Outstanding string `json:"outstanding"`
	} `json:"clawback"`
}
