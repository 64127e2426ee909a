package http_test

import (
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"talentledger/domain"
)

// Who may call what: the README's role table of the HTTP API, one line per
// route. It is the single expected table: TestRoleMatrix fails when the
// server registers a route that is not here, or lacks one that is, and
// runs every route against every role and without a token.
var (
	public  = []string{}                 // no token needed
	anyRole = slices.Clone(domain.Roles) // every role
	admins  = []string{domain.RoleAdmin}
	clerks  = []string{domain.RoleClerk}
	revs    = []string{domain.RoleReviewer}
	apprs   = []string{domain.RoleApprover}
	treas   = []string{domain.RoleTreasurer}
	fms     = []string{domain.RoleFundManager}
	auds    = []string{domain.RoleAuditor}
)

var expectedRoles = map[string][]string{
	// GET /healthz, /readyz, /openapi.json | none
	"GET /healthz":      public,
	"GET /readyz":       public,
	"GET /openapi.json": public,

	// POST /v1/programs | admin; POST /v1/programs/{id}/budgets | approver;
	// GET /v1/programs, /v1/programs/{id}/budgets/{fy} | any
	"POST /v1/programs":                  admins,
	"GET /v1/programs":                   anyRole,
	"GET /v1/programs/{id}":              anyRole,
	"POST /v1/programs/{id}/budgets":     apprs,
	"GET /v1/programs/{id}/budgets/{fy}": anyRole,
	// GET /v1/programs/{id}/budgets/{fy}/commitments | any
	"GET /v1/programs/{id}/budgets/{fy}/commitments": anyRole,
	// POST /v1/programs/{id}/budgets/{fy}/close, /close/confirm | approver
	"POST /v1/programs/{id}/budgets/{fy}/close": apprs,
	// POST /v1/programs/{id}/budgets/{fy}/adjustments, /{aid}/approve | approver
	"POST /v1/programs/{id}/budgets/{fy}/adjustments":               apprs,
	"POST /v1/programs/{id}/budgets/{fy}/adjustments/{aid}/approve": apprs,
	"POST /v1/programs/{id}/budgets/{fy}/close/confirm":             apprs,

	// POST /v1/talents, /v1/talents/{id}/departure | clerk; GET /v1/talents/{id} | any
	"POST /v1/talents":                clerks,
	"GET /v1/talents":                 anyRole,
	"GET /v1/talents/{id}":            anyRole,
	"POST /v1/talents/{id}/departure": clerks,
	// POST /v1/talents/{id}/erasure | clerk; /erasure/approve | approver;
	// POST /v1/talents/{id}/unmask | auditor; GET /v1/erasures | clerk, approver, auditor
	// POST /v1/talents/{id}/key-rotation | admin (keys, as the master key)
	"POST /v1/talents/{id}/key-rotation":    admins,
	"POST /v1/talents/{id}/erasure":         clerks,
	"POST /v1/talents/{id}/erasure/approve": apprs,
	"POST /v1/talents/{id}/unmask":          auds,
	"GET /v1/erasures":                      {domain.RoleClerk, domain.RoleApprover, domain.RoleAuditor},

	// POST /v1/grants | clerk; the lifecycle by role: the talent office
	// (reviewer) reviews and runs the public notice, where a clerk may
	// also record an objection; finance (approver) approves, rejects,
	// terminates and waives; the clerk prepares payments; the treasurer
	// records recoveries. GET /v1/grants… | any; the trail | auditor, approver.
	"POST /v1/grants":                                      clerks,
	"GET /v1/grants":                                       anyRole,
	"GET /v1/grants/{id}":                                  anyRole,
	"POST /v1/grants/{id}/review":                          revs,
	"POST /v1/grants/{id}/notice":                          revs,
	"POST /v1/grants/{id}/notice/objections":               {domain.RoleReviewer, domain.RoleClerk},
	"POST /v1/grants/{id}/notice/objections/{oid}/resolve": revs,
	"POST /v1/grants/{id}/notice/close":                    revs,
	"POST /v1/grants/{id}/approve":                         apprs,
	"POST /v1/grants/{id}/reject":                          apprs,
	"POST /v1/grants/{id}/terminate":                       apprs,
	"POST /v1/grants/{id}/installments/{n}/payments":       clerks,
	"POST /v1/grants/{id}/recoveries":                      treas,
	"POST /v1/grants/{id}/waive":                           apprs,
	"GET /v1/grants/{id}/trail":                            {domain.RoleAuditor, domain.RoleApprover},

	// GET /v1/inbox | clerk, reviewer, approver, treasurer; GET /v1/payments,
	// /v1/installments | any; POST /v1/payments/batch-approve | approver;
	// POST /v1/payments/batch-release | treasurer
	"GET /v1/inbox":                   {domain.RoleClerk, domain.RoleReviewer, domain.RoleApprover, domain.RoleTreasurer},
	"GET /v1/payments":                anyRole,
	"GET /v1/installments":            anyRole,
	"POST /v1/payments/batch-approve": apprs,
	"POST /v1/payments/batch-release": treas,
	// GET /v1/payments/bank-file, /v1/bank/statements[/{id}] | treasurer,
	// approver, auditor; POST /v1/bank/statements | treasurer
	"GET /v1/payments/bank-file":   {domain.RoleTreasurer, domain.RoleApprover, domain.RoleAuditor},
	"POST /v1/bank/statements":     treas,
	"GET /v1/bank/statements":      {domain.RoleTreasurer, domain.RoleApprover, domain.RoleAuditor},
	"GET /v1/bank/statements/{id}": {domain.RoleTreasurer, domain.RoleApprover, domain.RoleAuditor},

	// POST /v1/payments/{id}/approve · /release · /fail · /reverse | approver / treasurer
	"GET /v1/payments/{id}":          anyRole,
	"POST /v1/payments/{id}/approve": apprs,
	"POST /v1/payments/{id}/release": treas,
	"POST /v1/payments/{id}/fail":    treas,
	"POST /v1/payments/{id}/reverse": treas,

	// GET /v1/ledger/balances | approver, auditor
	"GET /v1/ledger/balances": {domain.RoleApprover, domain.RoleAuditor},
	// GET /v1/ledger/subsidiary | approver, auditor
	"GET /v1/ledger/subsidiary": {domain.RoleApprover, domain.RoleAuditor},

	// POST /v1/funds… | fund_manager; GET /v1/funds…, /v1/projects | any
	"POST /v1/funds":                                      fms,
	"GET /v1/funds":                                       anyRole,
	"GET /v1/funds/alerts":                                anyRole,
	"GET /v1/funds/{id}":                                  anyRole,
	"GET /v1/funds/{id}/projects":                         anyRole,
	"POST /v1/funds/{id}/commitments":                     fms,
	"POST /v1/funds/{id}/paid-in":                         fms,
	"POST /v1/funds/{id}/investments":                     fms,
	"POST /v1/funds/{id}/investments/{iid}/tranches":      fms,
	"POST /v1/funds/{id}/investments/{iid}/valuations":    fms,
	"POST /v1/funds/{id}/investments/{iid}/distributions": fms,
	"POST /v1/funds/{id}/investments/{iid}/exit":          fms,
	"POST /v1/funds/{id}/investments/{iid}/write-off":     fms,
	"GET /v1/projects":                                    anyRole,
	"GET /v1/projects/{id}":                               anyRole,
	"GET /v1/reports/budget-execution.xlsx":               {domain.RoleAuditor, domain.RoleApprover},
	"GET /v1/reports/budget-execution.csv":                {domain.RoleAuditor, domain.RoleApprover},
	"GET /v1/reports/clawbacks.xlsx":                      {domain.RoleAuditor, domain.RoleApprover},
	"GET /v1/reports/clawbacks.csv":                       {domain.RoleAuditor, domain.RoleApprover},
	"GET /v1/reports/payments.xlsx":                       {domain.RoleAuditor, domain.RoleApprover},
	"GET /v1/reports/payments.csv":                        {domain.RoleAuditor, domain.RoleApprover},
	"GET /v1/reports/funds.xlsx":                          {domain.RoleAuditor, domain.RoleApprover, domain.RoleFundManager},
	"GET /v1/reports/funds.csv":                           {domain.RoleAuditor, domain.RoleApprover, domain.RoleFundManager},
	"GET /v1/reports/grants.xlsx":                         {domain.RoleAuditor, domain.RoleApprover},
	"GET /v1/reports/journal.xlsx":                        {domain.RoleAuditor, domain.RoleApprover},
	"GET /v1/sectors":                                     anyRole,
	"POST /v1/apartments":                                 {domain.RoleReviewer},
	"GET /v1/apartments":                                  anyRole,
	"GET /v1/apartments/waiting-list":                     anyRole,
	"POST /v1/apartments/applications":                    {domain.RoleClerk},
	"GET /v1/apartments/{id}":                             anyRole,
	"POST /v1/apartments/{id}/allocations":                {domain.RoleReviewer},
	"POST /v1/apartments/allocations/{aid}/vacate":        {domain.RoleClerk},
	"GET /v1/funds/{id}/lps/{lp}/statement":               anyRole,

	// GET /v1/audit/verify, /v1/audit/... | auditor
	"GET /v1/audit/verify":             auds,
	"GET /v1/audit/public-key":         auds,
	"GET /v1/audit/tree-head":          auds,
	"GET /v1/audit/proofs/inclusion":   auds,
	"GET /v1/audit/proofs/consistency": auds,

	// Exports: the auditor exports; finance (approver) reads the same
	// books as the trial balance.
	"GET /v1/export/journal.csv": {domain.RoleAuditor, domain.RoleApprover},
	"GET /v1/export/grants.csv":  {domain.RoleAuditor, domain.RoleApprover},

	// admin (programs, principals; no money authority); the auditor reads
	// everything.
	"POST /v1/principals":                          admins,
	"GET /v1/principals":                           {domain.RoleAdmin, domain.RoleAuditor},
	"GET /v1/principals/{id}":                      {domain.RoleAdmin, domain.RoleAuditor},
	"GET /v1/principals/{id}/trail":                {domain.RoleAdmin, domain.RoleAuditor},
	"POST /v1/principals/{id}/roles":               admins,
	"POST /v1/principals/{id}/roles/{role}/revoke": admins,
	"POST /v1/principals/{id}/rotate":              admins,
	"POST /v1/principals/{id}/revoke":              admins,
	// Four eyes on access: requests, their approval by another admin, and
	// the enrollment, whose code is its credential.
	"POST /v1/principals/{id}/restore":                admins,
	"GET /v1/access-requests":                         {domain.RoleAdmin, domain.RoleAuditor},
	"POST /v1/principals/{id}/requests/{rid}/approve": admins,
	"POST /v1/principals/{id}/requests/{rid}/reject":  admins,
	"POST /v1/enroll":                                 public,
}

// roleHolders maps each role to a test principal holding only it.
var roleHolders = map[string]string{
	domain.RoleAdmin: admin, domain.RoleClerk: clerk1, domain.RoleReviewer: reviewer1, domain.RoleApprover: approver1,
	domain.RoleTreasurer: treasurer1, domain.RoleFundManager: fundManager, domain.RoleAuditor: auditor,
}

var rePathVar = regexp.MustCompile(`\{([a-z]+)\}`)

// pathValues fill a route's variables with values of the right form that
// name nothing, so that an allowed call is refused for its input (400,
// 404, 409) and never touches a real record.
var pathValues = map[string]string{"id": "x0123456789abcdef", "fy": "2024", "n": "1", "oid": "o0123456789abcdef",
	"iid": "i0123456789abcdef", "role": domain.RoleClerk, "rid": "r0123456789abcdef", "aid": "a0123456789abcdef", "lp": "lp_0123456789abcdef"}

// TestRoleMatrix walks the router, so a new route cannot escape, and calls
// every route without a token, with a token nobody holds, and as a holder
// of each role: 401 without a valid token, 403 (forbidden) for a role the
// table does not allow, and neither for one it does.
func TestRoleMatrix(t *testing.T) {
	e := newTestServer(t)
	for _, p := range []string{admin, clerk1, reviewer1, approver1, treasurer1, fundManager, auditor} {
		var n int
		for _, tp := range testPrincipals {
			if tp.id == p {
				n = len(tp.roles)
			}
		}
		if n != 1 {
			t.Fatalf("test principal %s must hold exactly one role", p)
		}
	}

	var walked []string
	err := e.api.Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			t.Errorf("route %s has no method", path)
			return nil
		}
		for _, m := range methods {
			walked = append(walked, m+" "+path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(walked)
	for _, k := range walked {
		if _, ok := expectedRoles[k]; !ok {
			t.Errorf("%s is registered but not in the expected role table (add it here and to the README's role table)", k)
		}
	}
	for k := range expectedRoles {
		if !slices.Contains(walked, k) {
			t.Errorf("%s is in the expected role table but not registered", k)
		}
	}
	// The route table says the same as the router.
	for _, rt := range e.api.Routes() {
		want, ok := expectedRoles[rt.Method+" "+rt.Path]
		if !ok {
			continue
		}
		got := rt.Roles
		if len(got) == 1 && got[0] == "*" {
			got = domain.Roles
		}
		if !sameSet(got, want) {
			t.Errorf("%s %s: the route table allows %v, expected %v", rt.Method, rt.Path, got, want)
		}
	}

	for _, k := range walked {
		allowed, ok := expectedRoles[k]
		if !ok {
			continue
		}
		method, tpl, _ := strings.Cut(k, " ")
		path := rePathVar.ReplaceAllStringFunc(tpl, func(v string) string { return pathValues[v[1:len(v)-1]] })
		var body []byte
		if method == "POST" {
			body = []byte(`{}`)
		}
		call := func(token string) *response {
			r, err := e.send(method, path, request{token: token, body: body})
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			return r
		}
		if len(allowed) == 0 {
			if r := call(""); r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
				t.Errorf("%s without a token: %s, want no authentication", k, r)
			}
			continue
		}
		wantProblem(t, call(""), http.StatusUnauthorized, "unauthenticated")
		wantProblem(t, call(strings.Repeat("ab", 32)), http.StatusUnauthorized, "unauthenticated")
		for _, role := range domain.Roles {
			r := call(e.tokens[roleHolders[role]])
			if slices.Contains(allowed, role) {
				if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
					t.Errorf("%s as %s (allowed): %s", k, role, r)
				}
			} else {
				wantProblem(t, r, http.StatusForbidden, "forbidden")
			}
		}
	}
}

// TestRoleTableRules checks the separation of duties the role table must
// keep: an auditor never writes (but for the record of an unmasking,
// which records what the auditor read), and an admin writes only programs,
// principals and keys (a talent's data key, as the master key), never
// money.
func TestRoleTableRules(t *testing.T) {
	for k, roles := range expectedRoles {
		method, path, _ := strings.Cut(k, " ")
		if method == "GET" {
			continue
		}
		if slices.Contains(roles, domain.RoleAuditor) && k != "POST /v1/talents/{id}/unmask" {
			t.Errorf("%s: an auditor may write", k)
		}
		if slices.Contains(roles, domain.RoleAdmin) && path != "/v1/programs" && !strings.HasPrefix(path, "/v1/principals") &&
			path != "/v1/talents/{id}/key-rotation" {
			t.Errorf("%s: an admin may act on money", k)
		}
		if len(roles) == 0 && k != "POST /v1/enroll" { // an enrollment code is its credential
			t.Errorf("%s: a write without authentication", k)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
