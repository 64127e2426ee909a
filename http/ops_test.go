package http_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	ledgerhttp "talentledger/http"
)

func TestHealthz(t *testing.T) {
	e := newTestServer(t)
	r := e.anonymous().do("GET", "/healthz", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	wantEqual(t, "status", decodeAs[map[string]string](t, r)["status"], "ok")
}

// TestReadyz checks that the API says it is not ready while the read models
// lag the log, and ready once they have caught up.
func TestReadyz(t *testing.T) {
	e := newTestServer(t, withoutProjector())
	// Commands do not need the read models.
	e.as(admin).command(http.StatusCreated, "/v1/programs", quickProgram("transport", "18000.00"))
	wantProblem(t, e.anonymous().do("GET", "/readyz", nil, nil), http.StatusServiceUnavailable, "unavailable")
	// Nor does a query wait beyond its bound for them.
	wantProblem(t, e.as(clerk1).get("/v1/programs/transport"), http.StatusGatewayTimeout, "timeout")

	e.startProjector()
	r := waitReady(t, e)
	v := decodeAs[map[string]string](t, r)
	wantEqual(t, "status", v["status"], "ready")
	wantEqual(t, "position", v["position"], e.lastPosition().String())
	wantEqual(t, "program kind", fetch[programJSON](e.as(clerk1), "/v1/programs/transport").Kind, "transport")
}

// TestOpenAPIListsEveryRoute checks the API description against the route
// table, both ways.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	e := newTestServer(t)
	r := e.anonymous().do("GET", "/openapi.json", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	doc := decodeAs[openAPIDoc](t, r)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	routes := e.api.Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes", len(routes))
	}
	described := 0
	for _, ops := range doc.Paths {
		described += len(ops)
	}
	if described != len(routes) {
		t.Errorf("the description has %d operations, the route table %d", described, len(routes))
	}
	for _, rt := range routes {
		op, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("%s %s is not described", rt.Method, rt.Path)
			continue
		}
		if op.Summary != rt.Summary {
			t.Errorf("%s %s: summary %q, want %q", rt.Method, rt.Path, op.Summary, rt.Summary)
		}
		if !slices.Equal(op.Roles, rt.Roles) || (rt.Roles != nil) != (op.Security != nil) {
			t.Errorf("%s %s: roles %v security %v, want roles %v", rt.Method, rt.Path, op.Roles, op.Security, rt.Roles)
		}
	}
	// Spot checks against the README's role table.
	for _, want := range []struct{ method, path string }{
		{"POST", "/v1/programs"}, {"POST", "/v1/programs/{id}/budgets"}, {"GET", "/v1/programs/{id}/budgets/{fy}"},
		{"POST", "/v1/talents"}, {"POST", "/v1/talents/{id}/departure"}, {"POST", "/v1/grants/{id}/notice/close"},
		{"POST", "/v1/grants/{id}/installments/{n}/payments"}, {"POST", "/v1/payments/{id}/release"},
		{"POST", "/v1/grants/{id}/waive"}, {"GET", "/v1/grants/{id}/trail"}, {"GET", "/v1/ledger/balances"},
		{"GET", "/v1/audit/verify"}, {"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/openapi.json"},
	} {
		if !slices.ContainsFunc(routes, func(rt ledgerhttp.Route) bool { return rt.Method == want.method && rt.Path == want.path }) {
			t.Errorf("no route %s %s", want.method, want.path)
		}
	}
}

type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Summary  string   `json:"summary"`
		Roles    []string `json:"x-roles"`
		Security []any    `json:"security"`
	} `json:"paths"`
}

var reRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// TestEveryAnswerHasSecurityHeaders checks the headers on answers of every
// kind: success, each class of error, and routes without authentication.
func TestEveryAnswerHasSecurityHeaders(t *testing.T) {
	e := newTestServer(t)
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = ' '
	}
	seen := map[string]bool{}
	for _, c := range []struct {
		method, path string
		rq           request
	}{
		{"GET", "/healthz", request{}},
		{"GET", "/readyz", request{}},
		{"GET", "/openapi.json", request{}},
		{"GET", "/v1/programs", request{token: e.tokens[clerk1]}},
		{"POST", "/v1/programs", request{token: e.tokens[admin], body: marshal(t, quickProgram("rent", "1.00"))}},
		{"POST", "/v1/talents", request{token: e.tokens[clerk1], body: []byte(`{`)}},
		{"POST", "/v1/talents", request{token: e.tokens[clerk1], body: big}},
		{"POST", "/v1/talents", request{token: e.tokens[clerk1], body: []byte(`{}`), contentType: "text/xml"}},
		{"GET", "/v1/programs", request{}},
		{"GET", "/v1/programs", request{token: "nope"}},
		{"POST", "/v1/programs", request{token: e.tokens[auditor], body: []byte(`{}`)}},
		{"GET", "/v1/grants/g0123456789abcdef", request{token: e.tokens[clerk1]}},
		{"GET", "/nowhere", request{}},
		{"PATCH", "/v1/programs", request{token: e.tokens[admin]}},
		{"GET", "/v1/programs?min_position=9999999", request{token: e.tokens[clerk1]}},
	} {
		r, err := e.send(c.method, c.path, c.rq)
		if err != nil {
			t.Fatal(err)
		}
		seen[http.StatusText(r.status)] = true
		checkHeaders(t, r)
		if id := r.header.Get("X-Request-ID"); !reRequestID.MatchString(id) {
			t.Errorf("%s: X-Request-ID %q", r, id)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", r, cc)
		}
	}
	// The list above must have produced every kind of answer.
	for _, s := range []int{200, 201, 400, 401, 403, 404, 405, 413, 415, 504} {
		if !seen[http.StatusText(s)] {
			t.Errorf("no %d answer among the requests", s)
		}
	}

	// A well-formed request ID from the client is kept, so logs can be
	// joined across services; anything else is replaced.
	r, err := e.send("GET", "/healthz", request{header: map[string]string{"X-Request-ID": "client-req-0001"}})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "echoed request id", r.header.Get("X-Request-ID"), "client-req-0001")
	r, err = e.send("GET", "/healthz", request{header: map[string]string{"X-Request-ID": "bad id\twith\"quotes"}})
	if err != nil {
		t.Fatal(err)
	}
	if id := r.header.Get("X-Request-ID"); !reRequestID.MatchString(id) {
		t.Errorf("a malformed client request id came back as %q", id)
	}
}
