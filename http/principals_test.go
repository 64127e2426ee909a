package http_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	ledgerhttp "talentledger/http"
)

// requested is the answer to a request for a change of access, and to its
// approval.
type requested struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
	Change    string `json:"change"`
	Status    string `json:"status"`
	Position  string `json:"position"`
	CodeHalf  string `json:"code_half"`
	ExpiresAt string `json:"expires_at"`
}

// issued is the answer to a redeemed enrollment.
type issued struct {
	ID       string `json:"id"`
	Position string `json:"position"`
	Token    string `json:"token"`
}

type principalJSON struct {
	ID     string   `json:"id"`
	Roles  []string `json:"roles"`
	Active bool     `json:"active"`
	Source string   `json:"source"`
}

// request posts, as admin, a request for a change of access, which must
// be accepted.
func (e *testEnv) request(path string, body any, key ...string) requested {
	e.t.Helper()
	r := e.as(admin).post(path, body, key...)
	if r.status != http.StatusAccepted {
		e.t.Fatalf("%s: want 202", r)
	}
	req := decodeAs[requested](e.t, r)
	if req.Status != "pending" || !domain.ValidAccessRequestID(req.RequestID) {
		e.t.Fatalf("%s: not a pending request", r)
	}
	return req
}

// approve approves a request as admin2.
func (e *testEnv) approve(req requested, key ...string) requested {
	e.t.Helper()
	r := e.as(admin2).post("/v1/principals/"+req.ID+"/requests/"+req.RequestID+"/approve", `{"reason": "checked"}`, key...)
	if r.status != http.StatusOK {
		e.t.Fatalf("%s: want 200", r)
	}
	return decodeAs[requested](e.t, r)
}

// redeem posts an enrollment code without a token.
func (e *testEnv) redeem(id, code string) *response {
	e.t.Helper()
	return e.anonymous().post("/v1/enroll", map[string]any{"id": id, "code": code})
}

// enroll has admin request a change that issues a token, admin2 approve
// it, and the person redeem the code; the test environment then calls the
// API as that principal.
func (e *testEnv) enroll(path string, body any) issued {
	e.t.Helper()
	req := e.request(path, body)
	ok := e.approve(req)
	if len(req.CodeHalf) != 32 || len(ok.CodeHalf) != 32 {
		e.t.Fatalf("code halves %q and %q", req.CodeHalf, ok.CodeHalf)
	}
	r := e.redeem(req.ID, req.CodeHalf+ok.CodeHalf)
	if r.status != http.StatusCreated {
		e.t.Fatalf("%s: want 201", r)
	}
	is := decodeAs[issued](e.t, r)
	if len(is.Token) != 64 || is.ID != req.ID {
		e.t.Fatalf("%s: no 256-bit token", r)
	}
	e.tokens[is.ID] = is.Token
	return is
}

// enrollVia makes a principal through the service as two admins ("root"
// and "root2") and the person would; it returns the token and the
// positions of the first and the last event.
func enrollVia(t testing.TB, svc *domain.Service, id string, roles ...string) (string, eventstore.Position, eventstore.Position) {
	t.Helper()
	ctx := context.Background()
	req, err := svc.CreatePrincipal(ctx, domain.CreatePrincipal{Meta: domain.CommandMeta{Actor: domain.Actor{Principal: "root", Role: domain.RoleAdmin}},
		PrincipalID: id, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := svc.ApproveAccess(ctx, domain.AccessDecision{Meta: domain.CommandMeta{Actor: domain.Actor{Principal: "root2", Role: domain.RoleAdmin}},
		PrincipalID: id, RequestID: req.RequestID, ActorInFile: true})
	if err != nil {
		t.Fatal(err)
	}
	is, err := svc.Enroll(ctx, domain.Enroll{PrincipalID: id, Code: req.CodeHalf + ok.CodeHalf})
	if err != nil {
		t.Fatal(err)
	}
	return is.Token, req.Position, is.Position
}

// status sends a request with a token and returns the status.
func (e *testEnv) statusWith(token, method, path string, body string) int {
	e.t.Helper()
	rq := request{token: token}
	if body != "" {
		rq.body = []byte(body)
	}
	r, err := e.send(method, path, rq)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.status
}

// TestPrincipalLifecycle requests a principal, has a second admin approve
// it and the person enroll, uses it, changes its roles, rotates its token
// and revokes it: each change is in force from the very next request once
// it is approved (or at once when it takes access away), and the trail
// shows both admins.
func TestPrincipalLifecycle(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	req := e.request("/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"},
		"reason": "joins the talent office", "document_ref": "HR-2024-17"})
	pending := fetch[struct {
		Requests []struct {
			RequestID   string `json:"request_id"`
			PrincipalID string `json:"principal_id"`
			RequestedBy string `json:"requested_by"`
			Reason      string `json:"reason"`
		} `json:"requests"`
	}](e.as(auditor), "/v1/access-requests")
	if len(pending.Requests) != 1 || pending.Requests[0].RequestID != req.RequestID || pending.Requests[0].RequestedBy != admin ||
		pending.Requests[0].Reason != "joins the talent office" {
		t.Errorf("pending requests: %+v", pending.Requests)
	}
	wantProblem(t, e.as(admin).get("/v1/principals/wang.li"), http.StatusNotFound, "not_found")
	wantProblem(t, e.as(admin).post("/v1/principals/wang.li/requests/"+req.RequestID+"/approve", `{}`), http.StatusForbidden, "segregation_of_duties")
	ok := e.approve(req)
	if ok.Status != "approved" || ok.Change != "create" || ok.ExpiresAt == "" {
		t.Errorf("approval %+v", ok)
	}
	r := e.redeem("wang.li", req.CodeHalf+ok.CodeHalf)
	if r.status != http.StatusCreated {
		t.Fatalf("%s: want 201", r)
	}
	first := decodeAs[issued](t, r).Token
	e.tokens["wang.li"] = first
	wantProblem(t, e.redeem("wang.li", req.CodeHalf+ok.CodeHalf), http.StatusConflict, "conflict")

	talent := e.as("wang.li").command(http.StatusCreated, "/v1/talents", map[string]any{"name": "Lars Nilsson", "tier": "A", "employer": "X"})
	g := e.as("wang.li").command(http.StatusCreated, "/v1/grants", map[string]any{"talent_id": talent, "program_id": "transport",
		"amount_requested": "100.00", "document_ref": "D"})
	wantEqual(t, "approve as a clerk", e.statusWith(first, "POST", "/v1/grants/"+g+"/approve", `{}`), http.StatusForbidden)

	// A second role, once approved: the same person may now approve, but
	// never what they entered themself.
	grant := e.request("/v1/principals/wang.li/roles", map[string]any{"role": "approver"})
	wantEqual(t, "approve before the role is approved", e.statusWith(first, "POST", "/v1/grants/"+g+"/approve", `{}`), http.StatusForbidden)
	if ok := e.approve(grant); ok.CodeHalf != "" {
		t.Error("a role grant issued a code half")
	}
	e.as(reviewer1).command(http.StatusOK, "/v1/grants/"+g+"/review", map[string]any{"decision": "approve"})
	wantProblem(t, e.as("wang.li").post("/v1/grants/"+g+"/approve", `{}`), http.StatusForbidden, "segregation_of_duties")

	e.as(admin).command(http.StatusOK, "/v1/principals/wang.li/roles/clerk/revoke", `{"reason": "moved to finance"}`)
	wantEqual(t, "register a talent after the clerk role was revoked",
		e.statusWith(first, "POST", "/v1/talents", `{"name": "A", "tier": "A", "employer": "X"}`), http.StatusForbidden)

	// Rotation: the old token works until the new one is redeemed.
	rot := e.request("/v1/principals/wang.li/rotate", `{}`)
	rotOK := e.approve(rot)
	wantEqual(t, "the old token before redemption", e.statusWith(first, "GET", "/v1/programs", ""), http.StatusOK)
	r = e.redeem("wang.li", rot.CodeHalf+rotOK.CodeHalf)
	if r.status != http.StatusCreated {
		t.Fatalf("%s: want 201", r)
	}
	second := decodeAs[issued](t, r).Token
	wantEqual(t, "the old token right after redemption", e.statusWith(first, "GET", "/v1/programs", ""), http.StatusUnauthorized)
	wantEqual(t, "the new token", e.statusWith(second, "GET", "/v1/programs", ""), http.StatusOK)
	// With revoke_now, at once.
	e.request("/v1/principals/wang.li/rotate", `{"revoke_now": true}`)
	wantEqual(t, "the token after a rotation with revoke_now", e.statusWith(second, "GET", "/v1/programs", ""), http.StatusUnauthorized)
	e.tokens["wang.li"] = e.enroll("/v1/principals/wang.li/rotate", `{}`).Token

	e.as(admin).command(http.StatusOK, "/v1/principals/wang.li/revoke", `{"reason": "left"}`)
	wantEqual(t, "the token right after revocation", e.statusWith(e.tokens["wang.li"], "GET", "/v1/programs", ""), http.StatusUnauthorized)
	wantProblem(t, e.as(admin).post("/v1/principals/wang.li/rotate", `{}`), http.StatusConflict, "conflict")
	wantProblem(t, e.as(admin).post("/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"}}), http.StatusConflict, "conflict")

	v := fetch[principalJSON](e.as(auditor), "/v1/principals/wang.li")
	if v.Active || !slices.Equal(v.Roles, []string{"approver"}) || v.Source != "log" {
		t.Errorf("wang.li: %+v", v)
	}
	// Restored by two admins, with a new enrollment.
	e.enroll("/v1/principals/wang.li/restore", `{"reason": "came back"}`)
	wantEqual(t, "the token after restoration", e.statusWith(e.tokens["wang.li"], "GET", "/v1/programs", ""), http.StatusOK)

	// Every change is an event of the principal's stream, by the admin
	// who made it; no event holds a token or a code half.
	var types []string
	for _, ev := range e.events() {
		for _, secret := range []string{first, second, req.CodeHalf, ok.CodeHalf} {
			if bytes.Contains(ev.Data, []byte(secret)) {
				t.Errorf("event %s %s holds a secret", ev.Stream, ev.Type)
			}
		}
		if ev.Stream == "principal-wang.li" {
			types = append(types, ev.Type)
		}
	}
	wantEqual(t, "events", strings.Join(types, " "), "AccessRequested AccessApproved PrincipalCreated EnrollmentRedeemed "+
		"AccessRequested AccessApproved RoleGranted RoleRevoked AccessRequested AccessApproved EnrollmentRedeemed "+
		"AccessRequested AccessRequested AccessApproved EnrollmentRedeemed PrincipalRevoked "+
		"AccessRequested AccessApproved PrincipalRestored EnrollmentRedeemed")
	trail := fetch[struct {
		Events []struct {
			Type      string `json:"type"`
			Principal string `json:"principal"`
			Reason    string `json:"reason"`
			Document  string `json:"document_ref"`
			HashValid bool   `json:"hash_valid"`
		} `json:"events"`
	}](e.as(auditor), "/v1/principals/wang.li/trail")
	if n := len(trail.Events); n != len(types) {
		t.Fatalf("trail of %d events, want %d", n, len(types))
	}
	if ev := trail.Events[0]; ev.Principal != admin || ev.Reason != "joins the talent office" || ev.Document != "HR-2024-17" {
		t.Errorf("the request in the trail: %+v", ev)
	}
	if ev := trail.Events[1]; ev.Principal != admin2 || ev.Reason != "checked" {
		t.Errorf("the approval in the trail: %+v", ev)
	}
	for _, ev := range trail.Events {
		if !ev.HashValid {
			t.Errorf("trail event %+v", ev)
		}
	}
	verify := fetch[struct {
		OK bool `json:"ok"`
	}](e.as(auditor), "/v1/audit/verify")
	if !verify.OK {
		t.Error("the hash chains do not verify")
	}
}

// TestSecretsShownOnce: a retry with the same Idempotency-Key gets the
// first answer without the code half, the enrollment works once and its
// refusal never shows a token, and no secret is in the log.
func TestSecretsShownOnce(t *testing.T) {
	e := newTestServer(t)
	body := map[string]any{"id": "zhao.min", "roles": []string{"treasurer"}}
	req := e.request("/v1/principals", body, "create-zhao")
	r := e.as(admin).post("/v1/principals", body, "create-zhao")
	if r.status != http.StatusAccepted || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("%s: want a replayed 202", r)
	}
	if again := decodeAs[requested](t, r); again.CodeHalf != "" || again.RequestID != req.RequestID || again.Position != req.Position {
		t.Errorf("replayed %+v, want %+v without the code half", again, req)
	}
	ok := e.approve(req, "approve-zhao")
	r = e.as(admin2).post("/v1/principals/zhao.min/requests/"+req.RequestID+"/approve", `{"reason": "checked"}`, "approve-zhao")
	if again := decodeAs[requested](t, r); r.status != http.StatusOK || again.CodeHalf != "" || again.Position != ok.Position {
		t.Errorf("%s: want the first answer without the code half", r)
	}
	code := req.CodeHalf + ok.CodeHalf
	r = e.redeem("zhao.min", code)
	tok := decodeAs[issued](t, r).Token
	if r.status != http.StatusCreated || tok == "" {
		t.Fatalf("%s: want a token", r)
	}
	// Whatever the retry, the token is not shown again.
	for _, key := range []string{"", "enroll-zhao"} {
		rq := request{body: []byte(`{"id": "zhao.min", "code": "` + code + `"}`)}
		if key != "" {
			rq.header = map[string]string{"Idempotency-Key": key}
		}
		r, err := e.send("POST", "/v1/enroll", rq)
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, r, http.StatusConflict, "conflict")
		if bytes.Contains(r.body, []byte(tok)) {
			t.Error("a refused redemption shows the token")
		}
	}
	for _, ev := range e.events() {
		for _, secret := range []string{tok, req.CodeHalf, ok.CodeHalf} {
			if bytes.Contains(ev.Data, []byte(secret)) || strings.Contains(ev.Metadata.Reason, secret) {
				t.Errorf("event %s %s holds a secret", ev.Stream, ev.Type)
			}
		}
	}
	wantEqual(t, "the token", e.statusWith(tok, "GET", "/v1/programs", ""), http.StatusOK)
}

// TestConcurrentEnrollmentsOneWins: fifty redemptions of one code at once
// over HTTP give exactly one token.
func TestConcurrentEnrollmentsOneWins(t *testing.T) {
	e := newTestServer(t)
	req := e.request("/v1/principals", map[string]any{"id": "li", "roles": []string{"approver"}})
	ok := e.approve(req)
	body := []byte(`{"id": "li", "code": "` + req.CodeHalf + ok.CodeHalf + `"}`)
	var wg sync.WaitGroup
	statuses := make(chan int, 50)
	for range 50 {
		wg.Go(func() {
			r, err := e.send("POST", "/v1/enroll", request{body: body})
			if err != nil {
				t.Error(err)
				return
			}
			statuses <- r.status
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != 1 || count[http.StatusConflict] != 49 {
		t.Errorf("answers %v, want one 201 and 49 409", count)
	}
	var redeemed int
	for _, ev := range e.events() {
		if ev.Type == domain.TypeEnrollmentRedeemed {
			redeemed++
		}
	}
	wantEqual(t, "redemptions in the log", redeemed, 1)
}

// TestPrincipalRules: an admin never gets money authority, an auditor no
// other role, nobody approves their own request, and the principals file
// is changed only in the file.
func TestPrincipalRules(t *testing.T) {
	e := newTestServer(t)
	e.enroll("/v1/principals", map[string]any{"id": "ops.admin", "roles": []string{"admin"}})
	e.enroll("/v1/principals", map[string]any{"id": "li.clerk", "roles": []string{"clerk"}})
	grant := e.request("/v1/principals/li.clerk/roles", map[string]any{"role": "reviewer"})
	approve := "/v1/principals/li.clerk/requests/" + grant.RequestID + "/approve"
	for _, c := range []struct {
		name   string
		who    string
		path   string
		body   any
		status int
		code   string
	}{
		{"admin with a money role", admin, "/v1/principals", map[string]any{"id": "x", "roles": []string{"admin", "approver"}}, 403, "segregation_of_duties"},
		{"auditor with another role", admin, "/v1/principals", map[string]any{"id": "x", "roles": []string{"auditor", "clerk"}}, 403, "segregation_of_duties"},
		{"an admin grants themself a money role", "ops.admin", "/v1/principals/ops.admin/roles", map[string]any{"role": "treasurer"}, 403, "segregation_of_duties"},
		{"a money role for an admin", admin, "/v1/principals/ops.admin/roles", map[string]any{"role": "clerk"}, 403, "segregation_of_duties"},
		{"admin for a clerk", admin, "/v1/principals/li.clerk/roles", map[string]any{"role": "admin"}, 403, "segregation_of_duties"},
		{"the same request twice", admin2, "/v1/principals/li.clerk/roles", map[string]any{"role": "reviewer"}, 409, "conflict"},
		{"the requester approves", admin, approve, `{}`, 403, "segregation_of_duties"},
		{"a clerk approves", clerk1, approve, `{}`, 403, "forbidden"},
		{"an auditor approves", auditor, approve, `{}`, 403, "forbidden"},
		{"a request that is not", admin2, "/v1/principals/li.clerk/requests/r0123456789abcdef/approve", `{}`, 404, "not_found"},
		{"a request of another principal", admin2, "/v1/principals/ops.admin/requests/" + grant.RequestID + "/approve", `{}`, 404, "not_found"},
		{"an admin revokes themself", "ops.admin", "/v1/principals/ops.admin/revoke", `{}`, 409, "conflict"},
		{"an admin drops their own admin role", "ops.admin", "/v1/principals/ops.admin/roles/admin/revoke", `{}`, 409, "conflict"},
		{"the only role", admin, "/v1/principals/li.clerk/roles/clerk/revoke", `{}`, 409, "conflict"},
		{"an unknown role", admin, "/v1/principals/li.clerk/roles/root/revoke", `{}`, 400, "invalid"},
		{"an id of the principals file", admin, "/v1/principals", map[string]any{"id": clerk1, "roles": []string{"clerk"}}, 409, "conflict"},
		{"revoking a principal of the file", "ops.admin", "/v1/principals/" + admin + "/revoke", `{}`, 409, "conflict"},
		{"rotating a principal of the file", admin, "/v1/principals/" + auditor + "/rotate", `{}`, 409, "conflict"},
		{"restoring an active principal", admin, "/v1/principals/li.clerk/restore", `{}`, 409, "conflict"},
		{"a bad id", admin, "/v1/principals", map[string]any{"id": "Wang Li", "roles": []string{"clerk"}}, 400, "invalid"},
		{"no roles", admin, "/v1/principals", map[string]any{"id": "x"}, 400, "invalid"},
		{"an unknown principal", admin, "/v1/principals/nobody/rotate", `{}`, 404, "not_found"},
		{"a clerk creates a principal", li, "/v1/principals", map[string]any{"id": "x", "roles": []string{"clerk"}}, 403, "forbidden"},
		{"an auditor creates a principal", auditor, "/v1/principals", map[string]any{"id": "x", "roles": []string{"clerk"}}, 403, "forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.lastPosition()
			wantProblem(t, e.as(c.who).post(c.path, c.body), c.status, c.code)
			if after := e.lastPosition(); after != before {
				t.Errorf("the log moved from %s to %s", before, after)
			}
		})
	}
	// Enrollment refusals write nothing and say nothing of who exists.
	for _, c := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"a wrong code", `{"id": "li.clerk", "code": "` + strings.Repeat("ab", 32) + `"}`, 401, "unauthenticated"},
		{"nobody", `{"id": "nobody", "code": "` + strings.Repeat("ab", 32) + `"}`, 401, "unauthenticated"},
		{"a principal of the file", `{"id": "` + clerk1 + `", "code": "` + strings.Repeat("ab", 32) + `"}`, 401, "unauthenticated"},
		{"half a code", `{"id": "li.clerk", "code": "` + strings.Repeat("ab", 16) + `"}`, 400, "invalid"},
		{"upper-case hex", `{"id": "li.clerk", "code": "` + strings.Repeat("AB", 32) + `"}`, 400, "invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.lastPosition()
			wantProblem(t, e.anonymous().post("/v1/enroll", c.body), c.status, c.code)
			if after := e.lastPosition(); after != before {
				t.Errorf("the log moved from %s to %s", before, after)
			}
		})
	}
	// An admin created through the API approves what another asked, and
	// never acts on money.
	e.as("ops.admin").command(http.StatusOK, approve, `{}`)
	if p := fetch[principalJSON](e.as(auditor), "/v1/principals/li.clerk"); !slices.Equal(p.Roles, []string{"clerk", "reviewer"}) {
		t.Errorf("li.clerk after the approval: %+v", p)
	}
	wantEqual(t, "an API admin approves a payment", e.statusWith(e.tokens["ops.admin"], "POST", "/v1/payments/g0123456789abcdef-1-1/approve", `{}`), http.StatusForbidden)
}

const li = "li.clerk"

// TestPrincipalReads: admins and auditors see every principal, from the
// file and from the log, and never a token or its hash.
func TestPrincipalReads(t *testing.T) {
	e := newTestServer(t)
	is := e.enroll("/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk", "reviewer"}})
	for _, who := range []string{admin, auditor} {
		r := e.as(who).get("/v1/principals")
		if r.status != http.StatusOK {
			t.Fatalf("%s as %s: want 200", r, who)
		}
		for id, tok := range e.tokens {
			if bytes.Contains(r.body, []byte(tok)) || bytes.Contains(r.body, []byte(ledgerhttp.HashToken(tok))) {
				t.Errorf("the list shows %s's token or its hash", id)
			}
		}
		if bytes.Contains(r.body, []byte("token_sha256")) {
			t.Errorf("the list has a token_sha256 field")
		}
		list := decodeAs[struct {
			Principals []principalJSON `json:"principals"`
			Admins     int             `json:"admins"`
			FourEyes   string          `json:"four_eyes"`
		}](t, r)
		if len(list.Principals) != len(testPrincipals)+1 {
			t.Errorf("%d principals listed, want %d", len(list.Principals), len(testPrincipals)+1)
		}
		if list.Admins != 2 || list.FourEyes != "" {
			t.Errorf("admins %d, four_eyes %q; want 2 and none", list.Admins, list.FourEyes)
		}
		i := slices.IndexFunc(list.Principals, func(p principalJSON) bool { return p.ID == is.ID })
		if i < 0 || list.Principals[i].Source != "log" || !list.Principals[i].Active || !slices.Equal(list.Principals[i].Roles, []string{"clerk", "reviewer"}) {
			t.Errorf("wang.li listed as %+v", list.Principals)
		}
		if i := slices.IndexFunc(list.Principals, func(p principalJSON) bool { return p.ID == clerk1 }); i < 0 || list.Principals[i].Source != "file" {
			t.Errorf("clerk1 not listed from the file: %+v", list.Principals)
		}
	}
	if p := fetch[principalJSON](e.as(admin), "/v1/principals/"+approver1); p.Source != "file" || !slices.Equal(p.Roles, []string{"approver"}) {
		t.Errorf("approver1: %+v", p)
	}
	wantProblem(t, e.as(admin).get("/v1/principals/nobody"), http.StatusNotFound, "not_found")
	wantProblem(t, e.as(clerk1).get("/v1/principals"), http.StatusForbidden, "forbidden")
	wantProblem(t, e.as(clerk1).get("/v1/access-requests"), http.StatusForbidden, "forbidden")
}

// TestPrincipalTokensNeverLogged: issuing, rotating and using tokens
// leaves neither a token, its hash nor a code half in the log output.
func TestPrincipalTokensNeverLogged(t *testing.T) {
	var buf syncBuffer
	e := newTestServer(t, withLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	req := e.request("/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"}}, "log-create")
	e.as(admin).post("/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"}}, "log-create")
	ok := e.approve(req)
	is := decodeAs[issued](t, e.redeem("wang.li", req.CodeHalf+ok.CodeHalf))
	e.redeem("wang.li", req.CodeHalf+ok.CodeHalf)
	e.tokens["wang.li"] = is.Token
	e.as("wang.li").get("/v1/programs")
	rot := e.enroll("/v1/principals/wang.li/rotate", `{}`)
	e.statusWith(is.Token, "GET", "/v1/programs", "")
	e.as("wang.li").get("/v1/principals")
	e.as(admin).post("/v1/principals/wang.li/revoke", `{}`)
	e.statusWith(rot.Token, "GET", "/v1/programs", "")
	e.close()
	out := buf.Bytes()
	if !bytes.Contains(out, []byte("POST /v1/enroll")) || !bytes.Contains(out, []byte(`"principal":"wang.li"`)) {
		t.Fatalf("the log misses the requests:\n%s", out)
	}
	for _, secret := range []string{is.Token, rot.Token, ledgerhttp.HashToken(is.Token), ledgerhttp.HashToken(rot.Token), req.CodeHalf, ok.CodeHalf} {
		if bytes.Contains(out, []byte(secret)) {
			t.Errorf("the log holds a token, its hash or a code half")
		}
	}
}

// reHexSecret finds what could be a token or a code half in an answer.
var reHexSecret = regexp.MustCompile(`[0-9a-f]{32,}`)

// TestLoneAdminGetsNoMoneyToken: with one admin in the principals file,
// no sequence of the admin's calls (create, grant a role, rotate, revoke
// and restore, approve their own requests, retry with Idempotency-Keys)
// yields a working token: every secret-looking string in every answer,
// and every pair of them as an enrollment code, is tried against every
// route, and the log holds no change that gives access. The server says
// that changes wait for a second admin.
func TestLoneAdminGetsNoMoneyToken(t *testing.T) {
	var buf syncBuffer
	e := newTestServer(t, withoutPrincipals(admin2), withLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	// Principals of the log made earlier by two admins since gone: the
	// lone admin may act on them too.
	people := map[string]string{}
	for id, role := range map[string]string{"li": domain.RoleClerk, "wu": domain.RoleApprover, "old.admin": domain.RoleAdmin} {
		tok, _, last := enrollVia(t, e.svc, id, role)
		e.seen(last)
		people[id] = tok
	}
	// old.admin is an admin of the log; revoked at once, the lone admin is
	// alone.
	e.as(admin).command(http.StatusOK, "/v1/principals/old.admin/revoke", `{}`)
	e.api.LogAccessState()
	if !bytes.Contains(buf.Bytes(), []byte("only one admin")) {
		t.Errorf("no warning of a single admin in the log:\n%s", buf.Bytes())
	}
	list := fetch[struct {
		Admins   int    `json:"admins"`
		FourEyes string `json:"four_eyes"`
	}](e.as(admin), "/v1/principals")
	if list.Admins != 1 || !strings.Contains(list.FourEyes, "second admin") {
		t.Errorf("GET /v1/principals: admins %d, four_eyes %q", list.Admins, list.FourEyes)
	}

	var answers [][]byte
	var requests []requested
	call := func(path string, body any, key ...string) {
		t.Helper()
		r := e.as(admin).post(path, body, key...)
		if r.status >= 500 {
			t.Fatalf("%s", r)
		}
		answers = append(answers, r.body)
		if r.status == http.StatusAccepted {
			requests = append(requests, decodeAs[requested](t, r))
		}
	}
	for _, role := range domain.Roles {
		id := "new." + strings.ReplaceAll(role, "_", "-")
		call("/v1/principals", map[string]any{"id": id, "roles": []string{role}}, "create-"+id)
		call("/v1/principals", map[string]any{"id": id, "roles": []string{role}}, "create-"+id) // a retry
		call("/v1/principals/li/roles", map[string]any{"role": role})
		call("/v1/principals/wu/roles", map[string]any{"role": role}, "grant-"+role)
		call("/v1/principals/"+id+"/rotate", `{}`)
	}
	call("/v1/principals/li/rotate", `{}`)
	call("/v1/principals/li/rotate", `{"revoke_now": true}`)
	call("/v1/principals/wu/rotate", `{}`, "rotate-wu")
	call("/v1/principals/wu/rotate", `{}`, "rotate-wu")
	call("/v1/principals/wu/revoke", `{}`)
	call("/v1/principals/wu/restore", `{}`, "restore-wu")
	call("/v1/principals/wu/restore", `{}`, "restore-wu")
	call("/v1/principals/old.admin/restore", `{}`)
	call("/v1/principals/"+admin+"/rotate", `{}`)
	for _, req := range requests {
		for _, verb := range []string{"approve", "approve", "reject"} {
			call("/v1/principals/"+req.ID+"/requests/"+req.RequestID+"/"+verb, `{}`, verb+"-"+req.RequestID)
		}
	}
	// The same requests again after the rejections, approved at once.
	call("/v1/principals/li/rotate", `{}`)
	call("/v1/principals", map[string]any{"id": "new.treasurer", "roles": []string{"treasurer"}})
	for _, req := range requests[len(requests)-2:] {
		call("/v1/principals/"+req.ID+"/requests/"+req.RequestID+"/approve", `{}`)
	}
	for _, path := range []string{"/v1/principals", "/v1/access-requests", "/v1/principals/li", "/v1/principals/wu"} {
		answers = append(answers, e.as(admin).get(path).body)
	}
	if len(requests) < 20 {
		t.Fatalf("only %d requests were accepted", len(requests))
	}

	// Every secret-looking string of every answer, and every ordered pair
	// of them as an enrollment code for every principal named.
	found := map[string]bool{}
	for _, a := range answers {
		for _, s := range reHexSecret.FindAllString(string(a), -1) {
			found[s] = true
		}
	}
	var halves, candidates []string
	for s := range found {
		candidates = append(candidates, s)
		if len(s) == 32 {
			halves = append(halves, s)
		}
	}
	if len(halves) < 10 {
		t.Fatalf("only %d code halves in the answers", len(halves))
	}
	ids := []string{"li", "wu", "old.admin", admin}
	for _, role := range domain.Roles {
		ids = append(ids, "new."+strings.ReplaceAll(role, "_", "-"))
	}
	for _, id := range ids {
		for _, a := range halves {
			for _, b := range halves {
				r := e.redeem(id, a+b)
				if r.status == http.StatusCreated {
					t.Errorf("the lone admin enrolled %s", id)
					candidates = append(candidates, decodeAs[issued](t, r).Token)
				}
			}
		}
	}
	// Every pair as a bearer token: authentication comes before the role
	// check, so a 401 on a route any role may call means it is nobody's.
	for _, a := range halves {
		for _, b := range halves {
			if got := e.statusWith(a+b, "GET", "/v1/programs", ""); got != http.StatusUnauthorized {
				t.Fatalf("two code halves as a token: %d, want 401", got)
			}
		}
	}
	// Every route, with every string of the answers as a bearer token.
	routes := walkRoutes(t, e.api)
	for _, tok := range candidates {
		for _, k := range routes {
			method, tpl, _ := strings.Cut(k, " ")
			if len(expectedRoles[k]) == 0 {
				continue // no authentication: /v1/enroll was tried above
			}
			path := rePathVar.ReplaceAllStringFunc(tpl, func(v string) string { return pathValues[v[1:len(v)-1]] })
			if got := e.statusWith(tok, method, path, `{}`); got != http.StatusUnauthorized {
				t.Fatalf("%s with a string from the admin's answers: %d, want 401", k, got)
			}
		}
	}
	// The log holds no change that gives access, and the people's own
	// tokens: li's ended with revoke_now, wu's with the revocation.
	for _, ev := range e.events() {
		if !strings.HasPrefix(ev.Stream, "principal-") || ev.Metadata.Principal != admin {
			continue
		}
		switch ev.Type {
		case domain.TypeAccessApproved, domain.TypePrincipalCreated, domain.TypeRoleGranted, domain.TypePrincipalRestored, domain.TypeEnrollmentRedeemed:
			t.Errorf("the lone admin wrote %s to %s", ev.Type, ev.Stream)
		}
	}
	for id, want := range map[string]int{"li": http.StatusUnauthorized, "wu": http.StatusUnauthorized} {
		wantEqual(t, id+"'s token", e.statusWith(people[id], "GET", "/v1/programs", ""), want)
	}
}

// TestPrincipalsFile checks the rules the bootstrap file must follow.
func TestPrincipalsFile(t *testing.T) {
	hash := ledgerhttp.HashToken("x")
	for _, c := range []struct {
		name string
		ps   []ledgerhttp.Principal
		ok   bool
	}{
		{"valid", []ledgerhttp.Principal{{ID: "root", Roles: []string{"admin"}, TokenSHA256: hash}}, true},
		{"admin with a money role", []ledgerhttp.Principal{{ID: "root", Roles: []string{"admin", "treasurer"}, TokenSHA256: hash}}, false},
		{"auditor with another role", []ledgerhttp.Principal{{ID: "a", Roles: []string{"auditor", "clerk"}, TokenSHA256: hash}}, false},
		{"no role", []ledgerhttp.Principal{{ID: "a", TokenSHA256: hash}}, false},
		{"unknown role", []ledgerhttp.Principal{{ID: "a", Roles: []string{"root"}, TokenSHA256: hash}}, false},
		{"upper-case id", []ledgerhttp.Principal{{ID: "Root", Roles: []string{"admin"}, TokenSHA256: hash}}, false},
		{"id with a space", []ledgerhttp.Principal{{ID: "wang li", Roles: []string{"clerk"}, TokenSHA256: hash}}, false},
		{"short hash", []ledgerhttp.Principal{{ID: "a", Roles: []string{"clerk"}, TokenSHA256: hash[:10]}}, false},
		{"twice", []ledgerhttp.Principal{{ID: "a", Roles: []string{"clerk"}, TokenSHA256: hash}, {ID: "a", Roles: []string{"clerk"}, TokenSHA256: ledgerhttp.HashToken("y")}}, false},
		{"shared token", []ledgerhttp.Principal{{ID: "a", Roles: []string{"clerk"}, TokenSHA256: hash}, {ID: "b", Roles: []string{"clerk"}, TokenSHA256: hash}}, false},
	} {
		_, err := ledgerhttp.NewPrincipals(c.ps)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok %v", c.name, err, c.ok)
		}
	}
	if _, err := ledgerhttp.NewPrincipals([]ledgerhttp.Principal{{ID: "root", Roles: []string{domain.RoleAdmin, domain.RoleClerk}, TokenSHA256: hash}}); err == nil || !strings.Contains(err.Error(), "root") {
		t.Errorf("the error does not name the principal: %v", err)
	}
}

// TestPrincipalChangesWaitForTheReadModels: a change of access answers
// only once the read models, which authenticate, hold it. With the read
// models stopped the change is recorded but answered 504; once they run,
// a change is in force when it is answered.
func TestPrincipalChangesWaitForTheReadModels(t *testing.T) {
	e := newTestServer(t, withoutProjector())
	before := e.lastPosition()
	r := e.as(admin).post("/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"}})
	wantProblem(t, r, http.StatusGatewayTimeout, "timeout")
	if e.lastPosition() == before {
		t.Error("the request was not recorded")
	}
	e.startProjector()
	waitReady(t, e)
	is := e.enroll("/v1/principals", map[string]any{"id": "zhao", "roles": []string{"clerk"}})
	wantEqual(t, "the new token", e.statusWith(is.Token, "GET", "/v1/programs", ""), http.StatusOK)
}

// TestPrincipalTrail: a principal's changes are trail-able like money: each
// event with who, why and its hash checked, and, from a server that signs,
// a proof that it is in the signed tree head.
func TestPrincipalTrail(t *testing.T) {
	api, token, _ := signingServer(t)
	get := func(path string, v any) {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatal(err)
		}
	}
	var key struct {
		PublicKey []byte `json:"public_key"`
	}
	get("/v1/audit/public-key", &key)
	var trail struct {
		Events []struct {
			Stream    string                `json:"stream"`
			Version   int64                 `json:"version"`
			EventID   string                `json:"event_id"`
			Type      string                `json:"type"`
			Principal string                `json:"principal"`
			Role      string                `json:"role"`
			Hash      string                `json:"hash"`
			HashValid bool                  `json:"hash_valid"`
			LeafIndex *uint64               `json:"leaf_index"`
			Proof     []auditproof.HexBytes `json:"proof"`
		} `json:"events"`
		TreeHead *auditproof.TreeHead `json:"tree_head"`
	}
	get("/v1/principals/a/trail", &trail)
	if len(trail.Events) != 4 || trail.TreeHead == nil {
		t.Fatalf("trail: %+v", trail)
	}
	want := []struct{ typ, by, role string }{{domain.TypeAccessRequested, "root", domain.RoleAdmin},
		{domain.TypeAccessApproved, "root2", domain.RoleAdmin}, {domain.TypePrincipalCreated, "root2", domain.RoleAdmin},
		{domain.TypeEnrollmentRedeemed, "a", domain.RoleClerk}}
	if err := auditproof.VerifyTreeHead(ed25519.PublicKey(key.PublicKey), *trail.TreeHead); err != nil {
		t.Fatal(err)
	}
	for i, ev := range trail.Events {
		if ev.Type != want[i].typ || ev.Principal != want[i].by || ev.Role != want[i].role || !ev.HashValid || ev.LeafIndex == nil {
			t.Errorf("event %+v", ev)
			continue
		}
		id, err := eventstore.ParseEventID(ev.EventID)
		if err != nil {
			t.Fatal(err)
		}
		leaf := auditproof.LeafHash(&eventstore.Event{ID: id, Stream: ev.Stream, Version: eventstore.Version(ev.Version), Metadata: eventstore.Metadata{Hash: ev.Hash}})
		if err := auditproof.VerifyInclusion(*trail.TreeHead, *ev.LeafIndex, leaf, ev.Proof); err != nil {
			t.Errorf("%s %d: %v", ev.Stream, ev.Version, err)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/principals/nobody/trail", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	api.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Errorf("trail of nobody: %d", rec.Code)
	}
}
