package http_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"talentledger/domain"
)

// caller returns a test principal that may call a route with roles.
func caller(t *testing.T, roles []string) string {
	t.Helper()
	if len(roles) == 0 {
		return ""
	}
	want := roles[0]
	if want == "*" {
		want = domain.RoleAuditor
	}
	for _, id := range []string{clerk1, reviewer1, approver1, treasurer1, admin, auditor, fundManager} {
		for _, p := range testPrincipals {
			if p.id == id && slices.Contains(p.roles, want) {
				return id
			}
		}
	}
	t.Fatalf("no test principal has role %s", want)
	return ""
}

// TestEveryRouteRefusesUnknownParameters sends every route a query
// parameter it does not take: each answers 400 unknown_parameter naming
// it, and nothing is appended. Before, a misspelt filter was ignored and
// the whole list came back as if it had matched.
func TestEveryRouteRefusesUnknownParameters(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	before := e.lastPosition()
	for _, rt := range e.api.Routes() {
		path := rePathVar.ReplaceAllStringFunc(rt.Path, func(v string) string { return pathValues[strings.Trim(v, "{}")] })
		c := e.anonymous()
		if id := caller(t, rt.Roles); id != "" {
			c = e.as(id)
		}
		r := c.do(rt.Method, path+"?statuz=1", nil, nil)
		wantProblem(t, r, 400, "unknown_parameter")
		var p struct {
			Parameter string   `json:"parameter"`
			Allowed   []string `json:"allowed"`
		}
		_ = json.Unmarshal(r.body, &p)
		if p.Parameter != "statuz" {
			t.Errorf("%s %s: the problem names %q, want statuz", rt.Method, rt.Path, p.Parameter)
		}
		if rt.Method == "GET" && strings.HasPrefix(rt.Path, "/v1/") && !slices.Contains(p.Allowed, "min_position") {
			t.Errorf("%s %s: allowed %v lacks min_position, which every query takes", rt.Method, rt.Path, p.Allowed)
		}
	}
	if after := e.lastPosition(); after != before {
		t.Errorf("refused requests appended: position %s → %s", before, after)
	}
}

// TestQueryParametersMeanWhatTheySay: a filter has the name of the field
// it filters, its values match in any case, and a bad value, an empty one
// or one given twice is refused naming the parameter and what it allows.
func TestQueryParametersMeanWhatTheySay(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	talent := e.registerTalent("Sophie Martin", "B")
	g := e.apply(clerk1, talent, "housing", "100000.00", "2024-01-02")
	e.apply(clerk1, e.registerTalent("Lars Nilsson", "B"), "housing", "100000.00", "2024-01-02")
	e.review(g, "2024-01-02")

	type list struct {
		Grants []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"grants"`
		Total int `json:"total"`
	}
	aud := e.as(auditor)
	got := fetch[list](aud, "/v1/grants?state=REVIEWED")
	if got.Total != 1 || len(got.Grants) != 1 || got.Grants[0].ID != g {
		t.Errorf("state=REVIEWED: %+v, want only %s", got, g)
	}
	cases := []struct {
		query, code, param string
		allowed            []string
	}{
		{"status=reviewed", "unknown_parameter", "status", nil},
		{"state=terminatedx", "invalid", "state", domain.GrantStates},
		{"state=", "invalid", "state", domain.GrantStates},
		{"state=applied&state=reviewed", "invalid", "state", nil},
		{"limit=ten", "invalid", "limit", nil},
		{"offset=-1", "invalid", "offset", nil},
		{"min_position=x", "invalid", "min_position", nil},
	}
	for _, c := range cases {
		r := aud.do("GET", "/v1/grants?"+c.query, nil, nil)
		wantProblem(t, r, 400, c.code)
		var p struct {
			Parameter string   `json:"parameter"`
			Allowed   []string `json:"allowed"`
			Detail    string   `json:"detail"`
		}
		_ = json.Unmarshal(r.body, &p)
		if p.Parameter != c.param {
			t.Errorf("?%s: parameter %q, want %q", c.query, p.Parameter, c.param)
		}
		if c.allowed != nil && !slices.Equal(p.Allowed, c.allowed) {
			t.Errorf("?%s: allowed %v, want %v", c.query, p.Allowed, c.allowed)
		}
		if c.code == "unknown_parameter" && !slices.Contains(p.Allowed, "state") {
			t.Errorf("?%s: allowed %v should list state", c.query, p.Allowed)
		}
		if !strings.Contains(p.Detail, c.param) {
			t.Errorf("?%s: detail %q does not name %s", c.query, p.Detail, c.param)
		}
	}
	// Encoded names are names like any other.
	wantProblem(t, aud.do("GET", "/v1/grants?"+url.QueryEscape("sta te")+"=x", nil, nil), 400, "unknown_parameter")
}
