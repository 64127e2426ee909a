package http_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// fuzzAPI is a ledger for FuzzAPI: a Pebble store in a temporary
// directory, the read models fed as the server feeds them, an audit key,
// one principal per role, and a few records to aim at.
type fuzzAPI struct {
	api    *ledgerhttp.Server
	store  *pebble.Store
	tokens []string // "" (none), one per role in domain.Roles' order, then a token nobody holds
	// IDs of the records made, by name.
	ids map[string]string
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := pebble.Open(f.TempDir(), pebble.WithLogger(log), pebble.WithCacheSize(8<<20), pebble.WithMemTableSize(4<<20))
	if err != nil {
		f.Fatal(err)
	}
	proj := projections.New(store, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(ctx) }()
	f.Cleanup(func() { cancel(); <-done; store.Close() })
	clock := newServerClock("2024-01-01")
	svc := domain.NewService(store, domain.WithLogger(log), domain.WithClock(clock.Now))
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	z := &fuzzAPI{store: store, tokens: []string{""}, ids: map[string]string{}}
	var ps []ledgerhttp.Principal
	for _, role := range domain.Roles {
		tok := ledgerhttp.NewToken()
		z.tokens = append(z.tokens, tok)
		ps = append(ps, ledgerhttp.Principal{ID: role, Roles: []string{role}, TokenSHA256: ledgerhttp.HashToken(tok)})
	}
	z.tokens = append(z.tokens, ledgerhttp.NewToken())
	principals, err := ledgerhttp.NewPrincipals(ps)
	if err != nil {
		f.Fatal(err)
	}
	z.api = ledgerhttp.New(ledgerhttp.Config{Service: svc, Projector: proj, Principals: principals, Logger: log,
		AuditKey: key, MinPositionWait: 50 * time.Millisecond})

	// Records made with Idempotency-Keys, so their IDs are the same in
	// every run and the seeds can name them.
	step := func(name, role, path, body string) {
		f.Helper()
		clock.follow([]byte(body))
		rec := z.serve(f, "POST", path, z.token(role), "application/json", "seed-"+name, []byte(body))
		if rec.Code >= 300 {
			f.Fatalf("set-up %s: %d %s", name, rec.Code, rec.Body)
		}
		var a struct{ ID, Position string }
		_ = json.Unmarshal(rec.Body.Bytes(), &a)
		z.ids[name] = a.ID
	}
	step("program", domain.RoleAdmin, "/v1/programs", `{"id":"transport","name":"Transport","kind":"transport","caps":{"A":"18000.00","B":"18000.00"},"schedule":{"percentages":[50,50],"interval_months":1},"effective_date":"2024-01-01"}`)
	step("budget", domain.RoleApprover, "/v1/programs/transport/budgets", `{"fiscal_year":2024,"amount":"1000000.00","effective_date":"2024-01-02"}`)
	step("talent", domain.RoleClerk, "/v1/talents", `{"name":"Lars","tier":"B","employer":"X","effective_date":"2024-01-02"}`)
	step("grant", domain.RoleClerk, "/v1/grants", `{"talent_id":"`+z.ids["talent"]+`","program_id":"transport","amount_requested":"18000.00","document_ref":"D","effective_date":"2024-02-01"}`)
	step("review", domain.RoleReviewer, "/v1/grants/"+z.ids["grant"]+"/review", `{"decision":"approve","effective_date":"2024-02-02"}`)
	step("approve", domain.RoleApprover, "/v1/grants/"+z.ids["grant"]+"/approve", `{"effective_date":"2024-02-05"}`)
	step("payment", domain.RoleClerk, "/v1/grants/"+z.ids["grant"]+"/installments/1/payments", `{"effective_date":"2024-02-06"}`)
	step("fund", domain.RoleFundManager, "/v1/funds", `{"id":"dif","name":"DIF","fund_type":"direct_investment","target":"100000000.00","term_years":10,"manager":"M","effective_date":"2023-01-01"}`)
	step("commit", domain.RoleFundManager, "/v1/funds/dif/commitments", `{"lp":"city","amount":"1000000.00","effective_date":"2023-01-02"}`)
	step("paid", domain.RoleFundManager, "/v1/funds/dif/paid-in", `{"lp":"city","amount":"500000.00","effective_date":"2023-01-03"}`)
	step("investment", domain.RoleFundManager, "/v1/funds/dif/investments", `{"committee_ref":"IC","project":"A","company":"A Co.","sector":"semiconductors","amount":"300000.00","stake_pct":"10","effective_date":"2023-02-01"}`)
	step("principal", domain.RoleAdmin, "/v1/principals", `{"id":"fz.user","roles":["clerk"]}`)
	clock.setDate("2024-02-10")
	return z
}

// token returns the token of the principal holding role.
func (z *fuzzAPI) token(role string) string {
	for i, r := range domain.Roles {
		if r == role {
			return z.tokens[i+1]
		}
	}
	return ""
}

func (z *fuzzAPI) serve(tb testing.TB, method, path, token, contentType, key string, body []byte) *httptest.ResponseRecorder {
	req, err := http.NewRequest(method, "http://ledger.test"+path, bytes.NewReader(body))
	if err != nil {
		return nil
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	rec := httptest.NewRecorder()
	z.api.ServeHTTP(rec, req)
	return rec
}

// FuzzAPI sends any method, path, token, content type, Idempotency-Key and
// body to the API. Whatever comes, the answer is a 2xx or a 4xx with a
// problem document, never a 5xx or a panic (a panic would be answered
// 500), and after a 4xx the log has not moved. The one 5xx allowed is 504
// timeout: the request asked to wait for a log position (?min_position)
// the read models have not reached, or a change of access is recorded but
// not yet in force.
func FuzzAPI(f *testing.F) {
	z := newFuzzAPI(f)
	who := func(role string) uint8 {
		for i, r := range domain.Roles {
			if r == role {
				return uint8(i + 1)
			}
		}
		return 0
	}
	g, p, t, inv := z.ids["grant"], z.ids["payment"], z.ids["talent"], z.ids["investment"]
	seeds := []struct {
		method, path, role, key, body string
	}{
		{"GET", "/v1/programs", domain.RoleClerk, "", ""},
		{"GET", "/v1/programs/transport/budgets/2024?as_of=2024-06-30", domain.RoleAuditor, "", ""},
		{"GET", "/v1/grants?state=approved&limit=5&offset=1", domain.RoleClerk, "", ""},
		{"GET", "/v1/grants/" + g + "/trail", domain.RoleAuditor, "", ""},
		{"GET", "/v1/talents/" + t, domain.RoleClerk, "", ""},
		{"GET", "/v1/payments/" + p, domain.RoleTreasurer, "", ""},
		{"GET", "/v1/ledger/balances?recorded_as_of=2030-01-01T00:00:00Z", domain.RoleApprover, "", ""},
		{"GET", "/v1/audit/proofs/inclusion?position=3&tree_size=5", domain.RoleAuditor, "", ""},
		{"GET", "/v1/audit/proofs/consistency?from=2&to=9", domain.RoleAuditor, "", ""},
		{"GET", "/v1/export/journal.csv?from=2024-01-01", domain.RoleAuditor, "", ""},
		{"GET", "/v1/funds/dif/projects?min_position=1", domain.RoleFundManager, "", ""},
		{"GET", "/v1/principals/fz.user", domain.RoleAdmin, "", ""},
		{"POST", "/v1/talents", domain.RoleClerk, "k1", `{"name":"Ann","tier":"A","employer":"Y"}`},
		{"POST", "/v1/grants", domain.RoleClerk, "", `{"talent_id":"` + t + `","program_id":"transport","amount_requested":"0.01","document_ref":"D"}`},
		{"POST", "/v1/payments/" + p + "/approve", domain.RoleApprover, "k2", `{}`},
		{"POST", "/v1/payments/" + p + "/release", domain.RoleTreasurer, "", `{"bank_reference":"B"}`},
		{"POST", "/v1/grants/" + g + "/waive", domain.RoleApprover, "", `{"amount":"1.00"}`},
		{"POST", "/v1/funds/dif/investments/" + inv + "/tranches", domain.RoleFundManager, "", `{"amount":"100000.00"}`},
		{"POST", "/v1/funds/dif/investments/" + inv + "/exit", domain.RoleFundManager, "", `{"proceeds":"1.00","amount":"1.00"}`},
		{"POST", "/v1/programs", domain.RoleAdmin, "", `{"id":"rent","name":"R","kind":"rent","caps":{"A":"1.00"},"schedule":{"monthly_amount":"1.00","months":3}}`},
		{"POST", "/v1/principals", domain.RoleAdmin, "k3", `{"id":"a.b","roles":["auditor"]}`},
		{"POST", "/v1/principals/fz.user/roles", domain.RoleAdmin, "", `{"role":"reviewer"}`},
		{"POST", "/v1/principals/fz.user/rotate", domain.RoleAdmin, "", `{}`},
		{"POST", "/v1/grants/" + g + "/approve", domain.RoleAuditor, "", `{}`},
		{"POST", "/v1/talents", domain.RoleClerk, "", `{"name":"` + strings.Repeat("x", 600) + `"}`},
		{"PUT", "/v1/grants/%2e%2e/x", "", "", `{`},
		{"GET", "/v1/grants/../../etc/passwd", domain.RoleClerk, "", ""},
		{"OPTIONS", "/v1/programs", "", "", ""},
		// Ambiguous bodies: a key twice, in another case, invalid UTF-8,
		// lone surrogates, controls, non-characters and blank names.
		{"POST", "/v1/grants", domain.RoleClerk, "", `{"talent_id":"` + t + `","program_id":"transport","amount_requested":"100.00","AMOUNT_REQUESTED":"55555.00","document_ref":"D"}`},
		{"POST", "/v1/grants", domain.RoleClerk, "", `{"talent_id":"` + t + `","program_id":"transport","amount_requested":"100.00","amount_requested":"55555.00","document_ref":"D"}`},
		{"POST", "/v1/talents", domain.RoleClerk, "", "{\"name\":\"\xff\",\"tier\":\"A\",\"employer\":\"Y\"}"},
		{"POST", "/v1/talents", domain.RoleClerk, "", "{\"name\":\"\xc0\xaf\",\"tier\":\"A\",\"employer\":\"Y\"}"},
		{"POST", "/v1/talents", domain.RoleClerk, "", `{"name":"\ud800","tier":"A","employer":"Y"}`},
		{"POST", "/v1/talents", domain.RoleClerk, "", `{"name":"A\u0085B","tier":"A","employer":"Y"}`},
		{"POST", "/v1/talents", domain.RoleClerk, "", `{"name":"A\uffffB","tier":"A","employer":"Y"}`},
		{"POST", "/v1/talents", domain.RoleClerk, "", `{"name":"   ","tier":"A","employer":"Y"}`},
		{"POST", "/v1/programs", domain.RoleAdmin, "", `{"id":"rent","name":"R","kind":"rent","caps":{"A":"1.00","A":"2.00"},"schedule":{"monthly_amount":"1.00","months":3}}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, who(s.role), "application/json", s.key, []byte(s.body))
	}
	f.Add("POST", "/v1/talents", uint8(len(z.tokens)-1), "text/plain", "", []byte(`{}`))
	f.Add("POST", "/v1/talents", who(domain.RoleClerk), "application/json; charset=utf-16", "", []byte(`{"name":"Ann","tier":"A","employer":"Y"}`))
	f.Add("POST", "/v1/talents", who(domain.RoleClerk), "application/json; charset=latin1", "", []byte(`{"name":"Ann","tier":"A","employer":"Y"}`))
	f.Add("GET", "/readyz", uint8(0), "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path string, who uint8, contentType, key string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		before, err := z.store.LastPosition(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rec := z.serve(t, method, path, z.tokens[int(who)%len(z.tokens)], contentType, key, body)
		if rec == nil {
			return // not an HTTP request at all
		}
		what := fmt.Sprintf("%s %q as %d (%q, key %q) %q → %d %s", method, path, who, contentType, key, body, rec.Code, rec.Body)
		var prob struct {
			Code   string `json:"code"`
			Status int    `json:"status"`
		}
		if rec.Code >= 400 {
			if err := json.Unmarshal(rec.Body.Bytes(), &prob); err != nil || prob.Status != rec.Code || prob.Code == "" {
				t.Fatalf("%s: not a problem document", what)
			}
		}
		switch {
		case rec.Code == http.StatusGatewayTimeout && prob.Code == "timeout":
		case rec.Code >= 500:
			t.Fatalf("%s", what)
		case rec.Code >= 400:
			after, err := z.store.LastPosition(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Fatalf("%s: the log moved from %s to %s", what, before, after)
			}
		case rec.Code < 200:
			t.Fatalf("%s: informational answer", what)
		}
	})
}
