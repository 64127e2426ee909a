package http_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestHostilePathValues puts malformed, oversized and foreign values in
// every variable of every route, as a role the route allows: each is
// refused as invalid, unknown or in conflict, never answered 5xx, and
// nothing is written.
func TestHostilePathValues(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	values := []string{"a b", "...", "%00", strings.Repeat("x", 300), "名字", "A:B@c", "a" + strings.Repeat("名", 30), "g0123456789abcdef-1-1-1", "-1", "99999999999999999999",
		"%25", "\t", "principal-", "_", "'; DROP TABLE"}
	for _, k := range walkRoutes(t, e.api) {
		method, tpl, _ := strings.Cut(k, " ")
		if !strings.Contains(tpl, "{") {
			continue
		}
		roles := expectedRoles[k]
		if len(roles) == 0 {
			continue
		}
		who := roleHolders[roles[0]]
		for _, v := range values {
			path := rePathVar.ReplaceAllStringFunc(tpl, func(string) string { return url.PathEscape(v) })
			before := e.lastPosition()
			var body []byte
			if method == "POST" {
				body = []byte(`{}`)
			}
			r, err := e.send(method, path, request{token: e.tokens[who], body: body})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains([]int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity}, r.status) {
				t.Errorf("%s as %s: %s", k, who, r)
			}
			if body := string(r.body); strings.Contains(body, `\\x`) || strings.Contains(body, "\uFFFD") {
				t.Errorf("%s: the answer quotes the value cut inside a character", r)
			}
			if after := e.lastPosition(); after != before {
				t.Errorf("%s: the log moved", r)
			}
		}
	}
}
