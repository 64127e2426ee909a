package http_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/http/console"
)

// Who may use what in the web console, one line per route. A form's roles
// are those of the API endpoint it calls (TestConsoleRoleMatrix checks
// they match), so the console never widens what a role may do.
var expectedConsoleRoles = map[string][]string{
	"GET /static/{file}": public,
	"GET /login":         public,
	"POST /login":        public, // its token or enrollment code is its credential
	"POST /lang":         public,
	"POST /logout":       anyRole,

	"GET /":                                       anyRole,
	"GET /grants":                                 anyRole,
	"GET /grants/new":                             clerks,
	"POST /talents":                               clerks,
	"POST /grants":                                clerks,
	"GET /grants/{id}":                            anyRole,
	"POST /grants/{id}/review":                    revs,
	"POST /grants/{id}/notice":                    revs,
	"POST /grants/{id}/notice/close":              revs,
	"POST /grants/{id}/approve":                   apprs,
	"POST /grants/{id}/reject":                    apprs,
	"POST /grants/{id}/terminate":                 apprs,
	"POST /grants/{id}/waive":                     apprs,
	"POST /grants/{id}/recoveries":                treas,
	"POST /grants/{id}/installments/{n}/payments": clerks,
	"POST /talents/{id}/departure":                clerks,

	"GET /payments":               {domain.RoleClerk, domain.RoleApprover, domain.RoleTreasurer},
	"POST /payments/batch":        {domain.RoleApprover, domain.RoleTreasurer},
	"POST /payments/{id}/approve": apprs,
	"POST /payments/{id}/release": treas,
	"POST /payments/{id}/fail":    treas,

	"GET /budgets":             anyRole,
	"GET /funds":               anyRole,
	"GET /funds/{id}":          anyRole,
	"GET /funds/{id}/lps/{lp}": anyRole,
	"GET /funds/report/{file}": {domain.RoleAuditor, domain.RoleApprover, domain.RoleFundManager},
	"GET /projects/{id}":       anyRole,
	"GET /apartments":          anyRole,

	"GET /audit":                 auds,
	"GET /audit/download/{file}": {domain.RoleAuditor, domain.RoleApprover},
	"GET /audit/proof":           auds,

	"GET /access":                               {domain.RoleAdmin, domain.RoleAuditor},
	"GET /access/principals/{id}":               {domain.RoleAdmin, domain.RoleAuditor},
	"POST /access/requests/{pid}/{rid}/approve": admins,
	"POST /access/requests/{pid}/{rid}/reject":  admins,
	"POST /access/sessions/{handle}/revoke":     admins,
}

var consolePathValues = map[string]string{"id": "x0123456789abcdef", "n": "1", "file": "none.txt", "pid": "p0123456789",
	"rid": "r0123456789abcdef", "handle": "h0123456789abcdef", "lp": "lp_0123456789abcdef"}

var reConsoleCSRF = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// consoleClient signs in to the console as principal (or stays
// anonymous) and returns a client and its CSRF token.
func consoleClient(t *testing.T, srv *httptest.Server, token string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf := func(path string) string {
		resp, err := hc.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := reConsoleCSRF.FindSubmatch(b)
		if m == nil {
			t.Fatalf("no CSRF token on %s", path)
		}
		return string(m[1])
	}
	tok := csrf("/login")
	if token == "" {
		return hc, tok
	}
	resp, err := hc.PostForm(srv.URL+"/login", url.Values{"csrf": {tok}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("console sign-in: %d", resp.StatusCode)
	}
	return hc, csrf("/")
}

// TestConsoleRoleMatrix walks the console's router, so a new page or form
// cannot escape, and uses every route without a session and as a holder
// of each role: sent to sign in (GET) or 401 (POST) without a session,
// 403 for a role the table does not allow, neither for one it does.
func TestConsoleRoleMatrix(t *testing.T) {
	e := newTestServer(t)
	c, err := console.New(console.Config{API: e.api, Authenticate: e.api.Authenticate, Projector: e.proj})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := httptest.NewServer(c.Mount(e.api))
	defer srv.Close()

	var walked []string
	_ = c.Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, _ := route.GetPathTemplate()
		methods, _ := route.GetMethods()
		for _, m := range methods {
			walked = append(walked, m+" "+path)
		}
		return nil
	})
	sort.Strings(walked)
	for _, k := range walked {
		if _, ok := expectedConsoleRoles[k]; !ok {
			t.Errorf("console route %s is not in the expected role table", k)
		}
	}
	for k := range expectedConsoleRoles {
		if !slices.Contains(walked, k) {
			t.Errorf("console route %s is in the expected role table but not registered", k)
		}
	}
	for _, rt := range c.Routes() {
		k := rt.Method + " " + rt.Path
		got := rt.Roles
		if len(got) == 1 && got[0] == "*" {
			got = domain.Roles
		}
		if want, ok := expectedConsoleRoles[k]; ok && !sameSet(got, want) && !(rt.Roles == nil && len(want) == 0) {
			t.Errorf("%s: the console allows %v, expected %v", k, got, want)
		}
		// A form that calls the API endpoint of the same path allows
		// exactly its roles.
		if api, ok := expectedRoles[rt.Method+" /v1"+rt.Path]; ok && rt.Method == "POST" && !sameSet(expectedConsoleRoles[k], api) {
			t.Errorf("%s allows %v but the API's %s allows %v", k, expectedConsoleRoles[k], "/v1"+rt.Path, api)
		}
	}

	type session struct {
		hc   *http.Client
		csrf string
	}
	sessions := map[string]session{}
	anon, anonCSRF := consoleClient(t, srv, "")
	for _, role := range domain.Roles {
		hc, csrf := consoleClient(t, srv, e.tokens[roleHolders[role]])
		sessions[role] = session{hc, csrf}
	}
	call := func(hc *http.Client, method, path, csrf string) *http.Response {
		t.Helper()
		var resp *http.Response
		var err error
		if method == "POST" {
			resp, err = hc.PostForm(srv.URL+path, url.Values{"csrf": {csrf}})
		} else {
			resp, err = hc.Get(srv.URL + path)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, k := range walked {
		allowed, ok := expectedConsoleRoles[k]
		if !ok {
			continue
		}
		method, tpl, _ := strings.Cut(k, " ")
		path := rePathVar.ReplaceAllStringFunc(tpl, func(v string) string { return consolePathValues[v[1:len(v)-1]] })
		if len(allowed) == 0 {
			// (A sign-in with no token fails, 401: that is its answer, not
			// a want of a session.)
			if r := call(anon, method, path, anonCSRF); r.StatusCode == http.StatusForbidden || strings.HasPrefix(r.Header.Get("Location"), "/login?") {
				t.Errorf("%s without a session: %d, want no sign-in", k, r.StatusCode)
			}
			continue
		}
		r := call(anon, method, path, anonCSRF)
		if method == "GET" && (r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login?")) {
			t.Errorf("%s without a session: %d, want a redirect to sign in", k, r.StatusCode)
		}
		if method == "POST" && r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d, want 401", k, r.StatusCode)
		}
		for _, role := range domain.Roles {
			if k == "POST /logout" {
				continue // it would end the session the other routes use
			}
			s := sessions[role]
			r := call(s.hc, method, path, s.csrf)
			if slices.Contains(allowed, role) {
				if r.StatusCode == http.StatusUnauthorized || r.StatusCode == http.StatusForbidden {
					t.Errorf("%s as %s (allowed): %d", k, role, r.StatusCode)
				}
			} else if r.StatusCode != http.StatusForbidden {
				t.Errorf("%s as %s (not allowed): %d, want 403", k, role, r.StatusCode)
			}
		}
	}
	for k, roles := range expectedConsoleRoles {
		if strings.HasPrefix(k, "POST") && slices.Contains(roles, domain.RoleAuditor) && k != "POST /logout" {
			t.Errorf("%s: an auditor may write", k)
		}
	}
}
