package http_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	ledgerhttp "talentledger/http"
)

// issued is the answer to a command that issues a token.
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

// issue posts a command that must issue a token, and lets the test
// environment call the API as that principal.
func (e *testEnv) issue(status int, path string, body any, key ...string) issued {
	e.t.Helper()
	r := e.as(admin).post(path, body, key...)
	if r.status != status {
		e.t.Fatalf("%s: want %d", r, status)
	}
	is := decodeAs[issued](e.t, r)
	if len(is.Token) != 64 {
		e.t.Fatalf("%s: no 256-bit token", r)
	}
	e.tokens[is.ID] = is.Token
	return is
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

// TestPrincipalLifecycle creates a principal through the API, uses it,
// changes its roles, rotates its token and revokes it: each change is in
// force from the very next request, and each is an event in the log.
func TestPrincipalLifecycle(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	is := e.issue(http.StatusCreated, "/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"},
		"reason": "joins the talent office", "document_ref": "HR-2024-17"})
	wantEqual(t, "id", is.ID, "wang.li")
	first := is.Token

	talent := e.as("wang.li").command(http.StatusCreated, "/v1/talents", map[string]any{"name": "Lars Nilsson", "tier": "A", "employer": "X"})
	g := e.as("wang.li").command(http.StatusCreated, "/v1/grants", map[string]any{"talent_id": talent, "program_id": "transport",
		"amount_requested": "100.00", "document_ref": "D"})
	wantEqual(t, "approve as a clerk", e.statusWith(first, "POST", "/v1/grants/"+g+"/approve", `{}`), http.StatusForbidden)

	// A second role: the same person may now approve, but never what they
	// entered themself.
	e.as(admin).command(http.StatusOK, "/v1/principals/wang.li/roles", map[string]any{"role": "approver"})
	e.as(reviewer1).command(http.StatusOK, "/v1/grants/"+g+"/review", map[string]any{"decision": "approve"})
	wantProblem(t, e.as("wang.li").post("/v1/grants/"+g+"/approve", `{}`), http.StatusForbidden, "segregation_of_duties")

	e.as(admin).command(http.StatusOK, "/v1/principals/wang.li/roles/clerk/revoke", `{"reason": "moved to finance"}`)
	wantEqual(t, "register a talent after the clerk role was revoked",
		e.statusWith(first, "POST", "/v1/talents", `{"name": "A", "tier": "A", "employer": "X"}`), http.StatusForbidden)

	rot := e.issue(http.StatusOK, "/v1/principals/wang.li/rotate", `{}`)
	if rot.Token == first {
		t.Fatal("rotation issued the same token")
	}
	wantEqual(t, "the old token right after rotation", e.statusWith(first, "GET", "/v1/programs", ""), http.StatusUnauthorized)
	wantEqual(t, "the new token", e.statusWith(rot.Token, "GET", "/v1/programs", ""), http.StatusOK)

	e.as(admin).command(http.StatusOK, "/v1/principals/wang.li/revoke", `{"reason": "left"}`)
	wantEqual(t, "the token right after revocation", e.statusWith(rot.Token, "GET", "/v1/programs", ""), http.StatusUnauthorized)
	wantProblem(t, e.as(admin).post("/v1/principals/wang.li/rotate", `{}`), http.StatusConflict, "conflict")
	wantProblem(t, e.as(admin).post("/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"}}), http.StatusConflict, "conflict")

	v := fetch[principalJSON](e.as(auditor), "/v1/principals/wang.li")
	if v.Active || !slices.Equal(v.Roles, []string{"approver"}) || v.Source != "log" {
		t.Errorf("wang.li: %+v", v)
	}

	// Every change is an event of the principal's stream, by the admin,
	// in the hash chain; no event holds a token.
	var types []string
	for _, ev := range e.events() {
		for _, tok := range []string{first, rot.Token} {
			if bytes.Contains(ev.Data, []byte(tok)) {
				t.Errorf("event %s %s holds a token", ev.Stream, ev.Type)
			}
		}
		if ev.Stream != "principal-wang.li" {
			continue
		}
		types = append(types, ev.Type)
		if ev.Metadata.Principal != admin || ev.Metadata.Role != "admin" || ev.Metadata.Hash == "" {
			t.Errorf("%s: metadata %+v", ev.Type, ev.Metadata)
		}
	}
	wantEqual(t, "events", strings.Join(types, " "), "PrincipalCreated RoleGranted RoleRevoked TokenRotated PrincipalRevoked")
	trail := fetch[struct {
		Events []struct {
			Type      string `json:"type"`
			Principal string `json:"principal"`
			Reason    string `json:"reason"`
			HashValid bool   `json:"hash_valid"`
		} `json:"events"`
	}](e.as(auditor), "/v1/principals/wang.li/trail")
	if n := len(trail.Events); n != 5 || trail.Events[0].Reason != "joins the talent office" || trail.Events[4].Reason != "left" {
		t.Errorf("trail: %+v", trail.Events)
	}
	for _, ev := range trail.Events {
		if !ev.HashValid || ev.Principal != admin {
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

// TestPrincipalTokenShownOnce: a retry with the same Idempotency-Key gets
// the first answer without the token, and the token is nowhere in the log.
func TestPrincipalTokenShownOnce(t *testing.T) {
	e := newTestServer(t)
	body := map[string]any{"id": "zhao.min", "roles": []string{"treasurer"}}
	is := e.issue(http.StatusCreated, "/v1/principals", body, "create-zhao")
	r := e.as(admin).post("/v1/principals", body, "create-zhao")
	if r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("%s: want a replayed 201", r)
	}
	again := decodeAs[issued](t, r)
	if again.Token != "" || again.ID != is.ID || again.Position != is.Position {
		t.Errorf("replayed %+v, want %+v without the token", again, is)
	}
	rot := e.issue(http.StatusOK, "/v1/principals/zhao.min/rotate", `{}`, "rotate-zhao")
	r = e.as(admin).post("/v1/principals/zhao.min/rotate", `{}`, "rotate-zhao")
	if again := decodeAs[issued](t, r); r.status != http.StatusOK || again.Token != "" || again.Position != rot.Position {
		t.Errorf("%s: want the first answer without the token", r)
	}
	for _, ev := range e.events() {
		for _, tok := range []string{is.Token, rot.Token} {
			if bytes.Contains(ev.Data, []byte(tok)) || bytes.Contains([]byte(ev.Metadata.Reason), []byte(tok)) {
				t.Errorf("event %s %s holds a token", ev.Stream, ev.Type)
			}
		}
	}
	wantEqual(t, "the rotated token", e.statusWith(rot.Token, "GET", "/v1/programs", ""), http.StatusOK)
	wantEqual(t, "the first token", e.statusWith(is.Token, "GET", "/v1/programs", ""), http.StatusUnauthorized)
}

// TestPrincipalRules: an admin never gets money authority, an auditor no
// other role, and the principals file is changed only in the file.
func TestPrincipalRules(t *testing.T) {
	e := newTestServer(t)
	e.issue(http.StatusCreated, "/v1/principals", map[string]any{"id": "ops.admin", "roles": []string{"admin"}})
	e.issue(http.StatusCreated, "/v1/principals", map[string]any{"id": "li.clerk", "roles": []string{"clerk"}})
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
		{"an admin revokes themself", "ops.admin", "/v1/principals/ops.admin/revoke", `{}`, 409, "conflict"},
		{"an admin drops their own admin role", "ops.admin", "/v1/principals/ops.admin/roles/admin/revoke", `{}`, 409, "conflict"},
		{"the only role", admin, "/v1/principals/li.clerk/roles/clerk/revoke", `{}`, 409, "conflict"},
		{"an unknown role", admin, "/v1/principals/li.clerk/roles/root/revoke", `{}`, 400, "invalid"},
		{"an id of the principals file", admin, "/v1/principals", map[string]any{"id": clerk1, "roles": []string{"clerk"}}, 409, "conflict"},
		{"revoking a principal of the file", "ops.admin", "/v1/principals/" + admin + "/revoke", `{}`, 409, "conflict"},
		{"rotating a principal of the file", admin, "/v1/principals/" + auditor + "/rotate", `{}`, 409, "conflict"},
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
	// An admin created through the API administers, and never acts on
	// money.
	e.issue(http.StatusCreated, "/v1/principals", map[string]any{"id": "wu.approver", "roles": []string{"approver"}})
	wantEqual(t, "an API admin approves a payment", e.statusWith(e.tokens["ops.admin"], "POST", "/v1/payments/g0123456789abcdef-1-1/approve", `{}`), http.StatusForbidden)
}

const li = "li.clerk"

// TestPrincipalReads: admins and auditors see every principal, from the
// file and from the log, and never a token or its hash.
func TestPrincipalReads(t *testing.T) {
	e := newTestServer(t)
	is := e.issue(http.StatusCreated, "/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk", "reviewer"}})
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
		}](t, r).Principals
		if len(list) != len(testPrincipals)+1 {
			t.Errorf("%d principals listed, want %d", len(list), len(testPrincipals)+1)
		}
		i := slices.IndexFunc(list, func(p principalJSON) bool { return p.ID == is.ID })
		if i < 0 || list[i].Source != "log" || !list[i].Active || !slices.Equal(list[i].Roles, []string{"clerk", "reviewer"}) {
			t.Errorf("wang.li listed as %+v", list)
		}
		if i := slices.IndexFunc(list, func(p principalJSON) bool { return p.ID == clerk1 }); i < 0 || list[i].Source != "file" {
			t.Errorf("clerk1 not listed from the file: %+v", list)
		}
	}
	if p := fetch[principalJSON](e.as(admin), "/v1/principals/"+approver1); p.Source != "file" || !slices.Equal(p.Roles, []string{"approver"}) {
		t.Errorf("approver1: %+v", p)
	}
	wantProblem(t, e.as(admin).get("/v1/principals/nobody"), http.StatusNotFound, "not_found")
	wantProblem(t, e.as(clerk1).get("/v1/principals"), http.StatusForbidden, "forbidden")
}

// TestPrincipalTokensNeverLogged: issuing, rotating and using tokens
// leaves neither a token nor its hash in the log output.
func TestPrincipalTokensNeverLogged(t *testing.T) {
	var buf syncBuffer
	e := newTestServer(t, withLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	is := e.issue(http.StatusCreated, "/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"}}, "log-create")
	e.as(admin).post("/v1/principals", map[string]any{"id": "wang.li", "roles": []string{"clerk"}}, "log-create")
	e.as("wang.li").get("/v1/programs")
	rot := e.issue(http.StatusOK, "/v1/principals/wang.li/rotate", `{}`)
	e.statusWith(is.Token, "GET", "/v1/programs", "")
	e.as("wang.li").get("/v1/principals")
	e.as(admin).post("/v1/principals/wang.li/revoke", `{}`)
	e.statusWith(rot.Token, "GET", "/v1/programs", "")
	e.close()
	out := buf.Bytes()
	if !bytes.Contains(out, []byte("POST /v1/principals/{id}/rotate")) || !bytes.Contains(out, []byte(`"principal":"wang.li"`)) {
		t.Fatalf("the log misses the requests:\n%s", out)
	}
	for _, tok := range []string{is.Token, rot.Token} {
		if bytes.Contains(out, []byte(tok)) || bytes.Contains(out, []byte(ledgerhttp.HashToken(tok))) {
			t.Errorf("the log holds a token or its hash")
		}
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
		t.Error("the principal was not recorded")
	}
	e.startProjector()
	waitReady(t, e)
	rot := e.issue(http.StatusOK, "/v1/principals/wang.li/rotate", `{}`)
	wantEqual(t, "the new token", e.statusWith(rot.Token, "GET", "/v1/programs", ""), http.StatusOK)
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
	if len(trail.Events) != 1 || trail.TreeHead == nil {
		t.Fatalf("trail: %+v", trail)
	}
	if err := auditproof.VerifyTreeHead(ed25519.PublicKey(key.PublicKey), *trail.TreeHead); err != nil {
		t.Fatal(err)
	}
	for _, ev := range trail.Events {
		if ev.Type != domain.TypePrincipalCreated || ev.Principal != "root" || ev.Role != domain.RoleAdmin || !ev.HashValid || ev.LeafIndex == nil {
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
