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
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/eventstore/memstore"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// apiDoc is the OpenAPI document as served, with a checker of values
// against its schemas.
type apiDoc struct {
	Paths      map[string]map[string]map[string]any `json:"paths"`
	Components struct {
		Schemas map[string]any `json:"schemas"`
	} `json:"components"`
	ErrorCodes []domain.CodeInfo `json:"x-error-codes"`
}

func getDoc(t *testing.T, h http.Handler) apiDoc {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", rec.Code)
	}
	var d apiDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	return d
}

// op returns an operation, or nil.
func (d apiDoc) op(method, path string) map[string]any {
	return d.Paths[path][strings.ToLower(method)]
}

// bodySchema returns the schema of an operation's request body (request)
// or success answer, and the answer's status.
func (d apiDoc) bodySchema(op map[string]any, request bool) (schema any, status int) {
	if request {
		rb, _ := op["requestBody"].(map[string]any)
		ct, _ := rb["content"].(map[string]any)
		js, ok := ct["application/json"].(map[string]any)
		if !ok {
			js, _ = ct["text/csv"].(map[string]any) // a file upload
		}
		return js["schema"], 0
	}
	rs, _ := op["responses"].(map[string]any)
	for code, r := range rs {
		n, _ := strconv.Atoi(code)
		if n < 200 || n > 299 {
			continue
		}
		ct, _ := r.(map[string]any)["content"].(map[string]any)
		if js, ok := ct["application/json"].(map[string]any); ok {
			return js["schema"], n
		}
		return nil, n
	}
	return nil, 0
}

// check reports where v does not follow schema s.
func (d apiDoc) check(s any, v any, at string) []string {
	sch, _ := s.(map[string]any)
	if ref, ok := sch["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		target, ok := d.Components.Schemas[name]
		if !ok {
			return []string{at + ": dangling $ref " + ref}
		}
		return d.check(target, v, at)
	}
	var errs []string
	if all, ok := sch["allOf"].([]any); ok {
		for _, sub := range all {
			errs = append(errs, d.check(sub, v, at)...)
		}
	}
	var types []string
	switch ty := sch["type"].(type) {
	case string:
		types = []string{ty}
	case []any:
		for _, x := range ty {
			types = append(types, x.(string))
		}
	}
	if len(types) == 0 {
		return errs
	}
	is := func(want ...string) bool {
		for _, w := range want {
			if slices.Contains(types, w) {
				return true
			}
		}
		return false
	}
	switch v := v.(type) {
	case nil:
		if !is("null") {
			errs = append(errs, at+": null where the schema says "+strings.Join(types, "|"))
		}
	case string:
		if !is("string") {
			return append(errs, fmt.Sprintf("%s: string %q where the schema says %v", at, v, types))
		}
		if p, ok := sch["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", at, v, p))
		}
	case float64:
		if !is("number", "integer") || (!is("number") && v != math.Trunc(v)) {
			errs = append(errs, fmt.Sprintf("%s: number %v where the schema says %v", at, v, types))
		}
	case bool:
		if !is("boolean") {
			errs = append(errs, fmt.Sprintf("%s: boolean where the schema says %v", at, types))
		}
	case []any:
		if !is("array") {
			return append(errs, fmt.Sprintf("%s: array where the schema says %v", at, types))
		}
		for i, x := range v {
			errs = append(errs, d.check(sch["items"], x, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case map[string]any:
		if !is("object") {
			return append(errs, fmt.Sprintf("%s: object where the schema says %v", at, types))
		}
		props, _ := sch["properties"].(map[string]any)
		if req, ok := sch["required"].([]any); ok {
			for _, k := range req {
				if _, ok := v[k.(string)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: required field %s missing", at, k))
				}
			}
		}
		for k, x := range v {
			if ps, ok := props[k]; ok {
				errs = append(errs, d.check(ps, x, at+"."+k)...)
				continue
			}
			switch ap := sch["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, at+": undocumented field "+k)
				}
			case map[string]any:
				errs = append(errs, d.check(ap, x, at+"."+k)...)
			}
		}
	}
	return errs
}

// walkRoutes returns "METHOD path" of every route on the router.
func walkRoutes(t *testing.T, api *ledgerhttp.Server) []string {
	t.Helper()
	var out []string
	err := api.Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, _ := route.GetMethods()
		for _, m := range methods {
			out = append(out, m+" "+path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIDescribesEveryRoute: the operations of the document and the
// routes of the router are the same set, and each operation says who may
// call it, what it takes, what it answers and which error codes.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	api, _ := bareServer(t, ledgerhttp.Config{})
	d := getDoc(t, api)
	if !slices.Equal(d.ErrorCodes, domain.Codes) {
		t.Errorf("the document lists the error codes\n%v\nnot domain.Codes\n%v", d.ErrorCodes, domain.Codes)
	}
	listed := map[string]bool{}
	for _, c := range d.ErrorCodes {
		listed[c.Code] = true
	}
	routes := walkRoutes(t, api)
	var documented []string
	for path, ops := range d.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(documented)
	if !slices.Equal(routes, documented) {
		t.Fatalf("router and document differ:\nrouter:   %v\ndocument: %v", routes, documented)
	}
	byRoute := map[string]ledgerhttp.Route{}
	for _, rt := range api.Routes() {
		byRoute[rt.Method+" "+rt.Path] = rt
	}
	for _, k := range routes {
		method, path, _ := strings.Cut(k, " ")
		op := d.op(method, path)
		rt := byRoute[k]
		roles, _ := op["x-roles"].([]any)
		if (rt.Roles == nil) != (roles == nil) || len(roles) != len(rt.Roles) {
			t.Errorf("%s: x-roles %v, route roles %v", k, roles, rt.Roles)
		}
		codes := map[string]bool{}
		for _, c := range op["x-error-codes"].([]any) {
			codes[c.(string)] = true
			if !listed[c.(string)] {
				t.Errorf("%s: error code %s is not in the document's x-error-codes", k, c)
			}
		}
		want := []string{"internal", "unavailable"}
		if rt.Roles != nil {
			want = append(want, "unauthenticated", "forbidden")
		}
		if method == "POST" {
			want = append(want, "invalid", "payload_too_large", "unsupported_media_type", "request_timeout")
			if rt.Roles != nil { // POST /v1/enroll takes no Idempotency-Key
				want = append(want, "idempotency_mismatch")
			}
			if req, _ := d.bodySchema(op, true); req == nil {
				t.Errorf("%s: no request body schema", k)
			}
		}
		for _, c := range want {
			if !codes[c] {
				t.Errorf("%s: error code %s not listed", k, c)
			}
		}
		responses := op["responses"].(map[string]any)
		for code := range responses {
			if n, err := strconv.Atoi(code); err != nil || n < 200 || n > 599 {
				t.Errorf("%s: response %q", k, code)
			}
		}
		if _, status := d.bodySchema(op, false); status == 0 {
			t.Errorf("%s: no success answer", k)
		}
		if strings.Contains(path, "{id}") && !codes["not_found"] {
			t.Errorf("%s: names a record but lists no not_found", k)
		}
	}
}

// TestOpenAPIDescribesTheAnswers runs a small ledger with every kind of
// record, calls every query and a few commands, and checks each answer
// against the schema the document gives for it.
func TestOpenAPIDescribesTheAnswers(t *testing.T) {
	e := newTestServer(t)
	d := getDoc(t, e.api)
	funds := setupFunds(e)
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	checkApartment := e.as(reviewer1).post("/v1/apartments", map[string]any{"unit": "A-101", "building": "Block A", "size_sqm": "68.5",
		"market_rent": "4200.00", "discounted_rent": "1200.00"})
	talent := e.registerTalent("Lars Nilsson", "B")
	g := e.approvedGrant(talent, "transport", "18000.00")
	pid := e.pay(g, 1, "2024-03-01", clerk1, approver2, treasurer1)

	// checkAnswer checks r, an answer to the route tpl.
	checkAnswer := func(method, tpl, who string, r *response) {
		t.Helper()
		s, status := d.bodySchema(d.op(method, tpl), false)
		if r.status != status {
			t.Errorf("%s as %s: status %d, the document says %d", r, who, r.status, status)
			return
		}
		var v any
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Errorf("%s: %v", r, err)
			return
		}
		for _, msg := range d.check(s, v, method+" "+tpl) {
			t.Error(msg)
		}
	}
	post := func(who, tpl, path string, body any) {
		t.Helper()
		checkAnswer("POST", tpl, who, e.as(who).post(path, body))
	}
	create := e.as(admin).post("/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"}})
	checkAnswer("POST", "/v1/principals", admin, create)
	req := decodeAs[requested](t, create)
	approval := e.as(admin2).post("/v1/principals/wang.li/requests/"+req.RequestID+"/approve", `{}`)
	checkAnswer("POST", "/v1/principals/{id}/requests/{rid}/approve", admin2, approval)
	checkAnswer("POST", "/v1/enroll", "", e.anonymous().post("/v1/enroll",
		map[string]any{"id": "wang.li", "code": req.CodeHalf + decodeAs[requested](t, approval).CodeHalf}))
	post(admin, "/v1/principals/{id}/roles", "/v1/principals/wang.li/roles", map[string]any{"role": "reviewer"})
	post(clerk1, "/v1/talents", "/v1/talents", map[string]any{"name": "Anna", "tier": "C", "employer": "X"})
	checkAnswer("POST", "/v1/apartments", reviewer1, checkApartment)

	values := map[string]string{"/v1/programs/{id}": "transport", "/v1/talents/{id}": talent, "/v1/grants/{id}": g,
		"/v1/payments/{id}": pid, "/v1/funds/{id}": "dif", "/v1/principals/{id}": "wang.li", "/v1/projects/{id}": funds.a, "/v1/apartments/{id}": "A-101"}
	fill := func(tpl string) string {
		for prefix, v := range values {
			tpl = strings.Replace(tpl, prefix, strings.Replace(prefix, "{id}", v, 1), 1)
		}
		tpl = strings.Replace(tpl, "{lp}", projections.LPID("city platform"), 1)
		return strings.Replace(tpl, "{fy}", "2024", 1)
	}
	needKey := []string{"/v1/audit/public-key", "/v1/audit/tree-head", "/v1/audit/proofs/inclusion", "/v1/audit/proofs/consistency",
		// A release batch and an imported statement: TestOfficerReconcilesTheBank reads them.
		"/v1/payments/bank-file", "/v1/bank/statements/{id}"}
	for _, k := range walkRoutes(t, e.api) {
		method, tpl, _ := strings.Cut(k, " ")
		if method != "GET" || slices.Contains(needKey, tpl) {
			continue
		}
		op := d.op(method, tpl)
		who := clerk1
		if roles, ok := op["x-roles"].([]any); ok && roles[0] != "*" {
			who = roleHolders[roles[0].(string)]
		}
		paths := []string{fill(tpl)}
		params, _ := op["parameters"].([]any)
		for _, q := range params {
			if q.(map[string]any)["name"] == "as_of" {
				paths = append(paths, fill(tpl)+"?as_of=2024-12-31")
			}
		}
		for _, path := range paths {
			var r *response
			if who == "" {
				r = e.anonymous().get(path)
			} else {
				r = e.as(who).get(path)
			}
			if strings.HasSuffix(tpl, ".csv") {
				if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
					t.Errorf("%s: want CSV", r)
				}
				continue
			}
			if strings.HasSuffix(tpl, ".xlsx") {
				if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" ||
					!bytes.HasPrefix(r.body, []byte("PK\x03\x04")) {
					t.Errorf("%s %s: status %d, %s: want a workbook", method, path, r.status, r.header.Get("Content-Type"))
				}
				continue
			}
			checkAnswer(method, tpl, who, r)
		}
	}

	// The audit answers, from a server that signs.
	api, token, pos := signingServer(t)
	for tpl, path := range map[string]string{"/v1/audit/public-key": "/v1/audit/public-key", "/v1/audit/tree-head": "/v1/audit/tree-head",
		"/v1/audit/proofs/inclusion": "/v1/audit/proofs/inclusion?position=" + pos, "/v1/audit/proofs/consistency": "/v1/audit/proofs/consistency?from=1&to=2",
		"/v1/principals/{id}/trail": "/v1/principals/a/trail"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		checkAnswer("GET", tpl, auditor, &response{status: rec.Code, body: rec.Body.Bytes(), path: path, method: "GET"})
	}
}

// signingServer is an API with an audit key over a log of two events, with
// an auditor; it returns the auditor's token and the first event's
// position.
func signingServer(t *testing.T) (*ledgerhttp.Server, string, string) {
	t.Helper()
	st := memstore.New()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	proj := projections.New(st, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	svc := domain.NewService(st)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	token := ledgerhttp.NewToken()
	ps, err := ledgerhttp.NewPrincipals([]ledgerhttp.Principal{{ID: "auditor", Roles: []string{domain.RoleAuditor}, TokenSHA256: ledgerhttp.HashToken(token)}})
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for _, id := range []string{"a", "b"} {
		_, pos, last := enrollVia(t, svc, id, domain.RoleClerk)
		if first == "" {
			first = pos.String()
		}
		if err := proj.WaitFor(context.Background(), last, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return ledgerhttp.New(ledgerhttp.Config{Service: svc, Projector: proj, Principals: ps, Logger: log, AuditKey: key}), token, first
}

// TestEveryStringFieldIsBounded sends, to every command, each string
// field of its documented body 501 characters long: every one is refused
// as invalid, and nothing is written.
func TestEveryStringFieldIsBounded(t *testing.T) {
	e := newTestServer(t)
	d := getDoc(t, e.api)
	long := strings.Repeat("長", domain.MaxTextLen+1)
	for _, k := range walkRoutes(t, e.api) {
		method, tpl, _ := strings.Cut(k, " ")
		if method != "POST" {
			continue
		}
		op := d.op(method, tpl)
		c := e.anonymous() // POST /v1/enroll
		if roles, ok := op["x-roles"].([]any); ok {
			c = e.as(roleHolders[roles[0].(string)])
		}
		path := rePathVar.ReplaceAllStringFunc(tpl, func(v string) string { return pathValues[v[1:len(v)-1]] })
		s, _ := d.bodySchema(op, true)
		if s.(map[string]any)["type"] == "string" {
			continue // a file upload, bounded as a whole
		}
		props, _ := s.(map[string]any)["properties"].(map[string]any)
		fields := 0
		for name, p := range props {
			ps := p.(map[string]any)
			var body any
			switch ps["type"] {
			case "string":
				body = map[string]any{name: long}
			case "array":
				if items, _ := ps["items"].(map[string]any); items["type"] == "string" {
					body = map[string]any{name: []string{long}}
				}
			}
			if body == nil {
				continue
			}
			fields++
			before := e.lastPosition()
			r := c.post(path, body)
			wantProblem(t, r, http.StatusBadRequest, "invalid")
			if _, hasPattern := ps["pattern"]; !hasPattern && !strings.Contains(string(r.body), name) {
				t.Errorf("%s: the refusal does not name %s", r, name)
			}
			if after := e.lastPosition(); after != before {
				t.Errorf("%s %s: the log moved", k, name)
			}
		}
		if fields == 0 {
			t.Errorf("%s: no string field in the documented body", k)
		}
	}
}
