package http_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// TestBadRequests sends requests that must be refused, each with the status
// and code the API promises, and checks that none of them wrote anything.
func TestBadRequests(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	talent := e.registerTalent("Sophie Martin", "B")
	applied := e.as(clerk1).command(http.StatusCreated, "/v1/grants", map[string]any{"talent_id": talent, "program_id": "housing",
		"amount_requested": "600000.00", "document_ref": "PHRS-APP-1", "effective_date": "2024-01-03"})
	approved := e.approvedGrant(talent, "transport", "18000.00")

	apply := func(amount string) string {
		return `{"talent_id": "` + talent + `", "program_id": "housing", "amount_requested": ` + amount + `, "document_ref": "PHRS-APP-2"}`
	}
	const (
		unknownGrant   = "g0123456789abcdef"
		unknownTalent  = "t0123456789abcdef"
		unknownPayment = unknownGrant + "-1-1"
	)
	talentBody := `{"name": "Lars Nilsson", "tier": "A", "employer": "Zhejiang Semiconductor Equipment Co."}`

	cases := []struct {
		name         string
		who          string // principal; "" sends no token
		token        string // sent instead of who's token when set
		method, path string
		body         string
		contentType  string
		header       map[string]string
		status       int
		code         string
	}{
		{name: "malformed JSON", who: clerk1, method: "POST", path: "/v1/talents", body: `{"name": "Lars",`, status: 400, code: "invalid"},
		{name: "not an object", who: clerk1, method: "POST", path: "/v1/talents", body: `["Lars"]`, status: 400, code: "invalid"},
		{name: "two objects", who: clerk1, method: "POST", path: "/v1/talents", body: talentBody + `{}`, status: 400, code: "invalid"},
		{name: "unknown field", who: clerk1, method: "POST", path: "/v1/talents", body: `{"name": "Lars", "tier": "A", "employer": "X", "salary": "1.00"}`, status: 400, code: "invalid"},
		{name: "wrong field type", who: approver1, method: "POST", path: "/v1/programs/housing/budgets", body: `{"fiscal_year": "2024", "amount": "1.00"}`, status: 400, code: "invalid"},
		{name: "negative amount", who: clerk1, method: "POST", path: "/v1/grants", body: apply(`"-600000.00"`), status: 400, code: "invalid"},
		{name: "zero amount", who: clerk1, method: "POST", path: "/v1/grants", body: apply(`"0.00"`), status: 400, code: "invalid"},
		{name: "missing amount", who: clerk1, method: "POST", path: "/v1/grants", body: apply(`null`), status: 400, code: "invalid"},
		{name: "three decimals", who: clerk1, method: "POST", path: "/v1/grants", body: apply(`"600000.001"`), status: 400, code: "invalid"},
		{name: "amount as a JSON number", who: clerk1, method: "POST", path: "/v1/grants", body: apply(`600000.00`), status: 400, code: "invalid"},
		{name: "amount with an exponent", who: clerk1, method: "POST", path: "/v1/grants", body: apply(`"6e5"`), status: 400, code: "invalid"},
		{name: "amount with a plus sign", who: clerk1, method: "POST", path: "/v1/grants", body: apply(`"+600000"`), status: 400, code: "invalid"},
		{name: "amount above 10^13", who: clerk1, method: "POST", path: "/v1/grants", body: apply(`"10000000000000.01"`), status: 400, code: "invalid"},
		{name: "budget above 10^13", who: approver1, method: "POST", path: "/v1/programs/housing/budgets", body: `{"fiscal_year": 2024, "amount": "10000000000001.00"}`, status: 400, code: "invalid"},
		{name: "recovery of a negative amount", who: treasurer1, method: "POST", path: "/v1/grants/" + approved + "/recoveries", body: `{"amount": "-1.00", "bank_reference": "B"}`, status: 400, code: "invalid"},
		{name: "bad effective date", who: clerk1, method: "POST", path: "/v1/talents", body: `{"name": "Lars", "tier": "A", "employer": "X", "effective_date": "2024-02-30"}`, status: 400, code: "invalid"},
		{name: "control character in a name", who: clerk1, method: "POST", path: "/v1/talents", body: `{"name": "Lars\u0007", "tier": "A", "employer": "X"}`, status: 400, code: "invalid"},
		{name: "10 MiB body", who: clerk1, method: "POST", path: "/v1/talents", body: `{"name": "` + strings.Repeat("x", 10<<20) + `"}`, status: 413, code: "payload_too_large"},
		{name: "wrong content type", who: clerk1, method: "POST", path: "/v1/talents", body: talentBody, contentType: "text/plain", status: 415, code: "unsupported_media_type"},
		{name: "form content type", who: clerk1, method: "POST", path: "/v1/talents", body: "name=Lars", contentType: "application/x-www-form-urlencoded", status: 415, code: "unsupported_media_type"},
		{name: "bad Idempotency-Key", who: clerk1, method: "POST", path: "/v1/talents", body: talentBody, header: map[string]string{"Idempotency-Key": strings.Repeat("k", 201)}, status: 400, code: "invalid"},

		{name: "unknown grant", who: clerk1, method: "GET", path: "/v1/grants/" + unknownGrant, status: 404, code: "not_found"},
		{name: "malformed grant id", who: clerk1, method: "GET", path: "/v1/grants/nonsense", status: 404, code: "not_found"},
		{name: "review of an unknown grant", who: reviewer1, method: "POST", path: "/v1/grants/" + unknownGrant + "/review", body: `{"decision": "approve"}`, status: 404, code: "not_found"},
		{name: "approval of an unknown grant", who: approver1, method: "POST", path: "/v1/grants/" + unknownGrant + "/approve", body: `{}`, status: 404, code: "not_found"},
		{name: "trail of an unknown grant", who: auditor, method: "GET", path: "/v1/grants/" + unknownGrant + "/trail", status: 404, code: "not_found"},
		{name: "unknown installment", who: clerk1, method: "POST", path: "/v1/grants/" + approved + "/installments/9/payments", body: `{}`, status: 404, code: "not_found"},
		{name: "unknown talent", who: clerk1, method: "GET", path: "/v1/talents/" + unknownTalent, status: 404, code: "not_found"},
		{name: "application for an unknown talent", who: clerk1, method: "POST", path: "/v1/grants", body: `{"talent_id": "` + unknownTalent + `", "program_id": "housing", "amount_requested": "1.00", "document_ref": "D"}`, status: 404, code: "not_found"},
		{name: "departure of an unknown talent", who: clerk1, method: "POST", path: "/v1/talents/" + unknownTalent + "/departure", body: `{"departure_date": "2025-01-01"}`, status: 404, code: "not_found"},
		{name: "unknown program", who: clerk1, method: "GET", path: "/v1/programs/nope", status: 404, code: "not_found"},
		{name: "budget of an unknown program", who: approver1, method: "POST", path: "/v1/programs/nope/budgets", body: `{"fiscal_year": 2024, "amount": "1.00"}`, status: 404, code: "not_found"},
		{name: "unknown budget year", who: clerk1, method: "GET", path: "/v1/programs/housing/budgets/2031", status: 404, code: "not_found"},
		{name: "application under an unknown program", who: clerk1, method: "POST", path: "/v1/grants", body: `{"talent_id": "` + talent + `", "program_id": "nope", "amount_requested": "1.00", "document_ref": "D"}`, status: 404, code: "not_found"},
		{name: "unknown payment", who: clerk1, method: "GET", path: "/v1/payments/" + unknownPayment, status: 404, code: "not_found"},
		{name: "approval of an unknown payment", who: approver1, method: "POST", path: "/v1/payments/" + unknownPayment + "/approve", body: `{}`, status: 404, code: "not_found"},
		{name: "release of a malformed payment id", who: treasurer1, method: "POST", path: "/v1/payments/nonsense/release", body: `{"bank_reference": "B"}`, status: 404, code: "not_found"},
		{name: "unknown payment of a known grant", who: approver1, method: "POST", path: "/v1/payments/" + approved + "-1-7/approve", body: `{}`, status: 404, code: "not_found"},

		{name: "no token", method: "POST", path: "/v1/talents", body: talentBody, status: 401, code: "unauthenticated"},
		{name: "no token on a query", method: "GET", path: "/v1/programs", status: 401, code: "unauthenticated"},
		{name: "bad token", token: "Bearer " + strings.Repeat("0", 64), method: "GET", path: "/v1/programs", status: 401, code: "unauthenticated"},
		{name: "basic auth", token: "Basic Y2xlcmsxOnNlY3JldA==", method: "GET", path: "/v1/programs", status: 401, code: "unauthenticated"},
		{name: "empty bearer", token: "Bearer ", method: "GET", path: "/v1/programs", status: 401, code: "unauthenticated"},
		{name: "auditor applies", who: auditor, method: "POST", path: "/v1/grants", body: apply(`"1.00"`), status: 403, code: "forbidden"},
		{name: "admin approves", who: admin, method: "POST", path: "/v1/grants/" + applied + "/approve", body: `{}`, status: 403, code: "forbidden"},
		{name: "clerk releases", who: clerk1, method: "POST", path: "/v1/payments/" + unknownPayment + "/release", body: `{"bank_reference": "B"}`, status: 403, code: "forbidden"},
		{name: "treasurer defines a program", who: treasurer1, method: "POST", path: "/v1/programs", body: `{}`, status: 403, code: "forbidden"},
		{name: "fund manager appropriates", who: fundManager, method: "POST", path: "/v1/programs/housing/budgets", body: `{"fiscal_year": 2024, "amount": "1.00"}`, status: 403, code: "forbidden"},
		{name: "clerk reads the trial balance", who: clerk1, method: "GET", path: "/v1/ledger/balances", status: 403, code: "forbidden"},
		{name: "approver verifies the chain", who: approver1, method: "GET", path: "/v1/audit/verify", status: 403, code: "forbidden"},

		{name: "unknown endpoint", who: clerk1, method: "GET", path: "/v1/nothing", status: 404, code: "not_found"},
		{name: "unknown endpoint without a token", method: "GET", path: "/v2/grants", status: 404, code: "not_found"},
		{name: "wrong method", who: clerk1, method: "DELETE", path: "/v1/grants", status: 405, code: "method_not_allowed"},
		{name: "PUT on a program", who: admin, method: "PUT", path: "/v1/programs/housing", body: `{}`, status: 405, code: "method_not_allowed"},
		{name: "GET on a command", who: approver1, method: "GET", path: "/v1/grants/" + applied + "/approve", status: 405, code: "method_not_allowed"},

		{name: "bad min_position", who: clerk1, method: "GET", path: "/v1/programs?min_position=abc", status: 400, code: "invalid"},
		{name: "negative min_position", who: clerk1, method: "GET", path: "/v1/grants/" + applied + "?min_position=-1", status: 400, code: "invalid"},
		{name: "min_position far ahead", who: clerk1, method: "GET", path: "/v1/programs?min_position=99999999", status: 504, code: "timeout"},
		{name: "bad as_of", who: auditor, method: "GET", path: "/v1/ledger/balances?as_of=31.12.2024", status: 400, code: "invalid"},
		{name: "bad limit", who: clerk1, method: "GET", path: "/v1/grants?limit=-1", status: 400, code: "invalid"},
		{name: "clerk reads the subsidiary ledger", who: clerk1, method: "GET", path: "/v1/ledger/subsidiary", status: 403, code: "forbidden"},
		{name: "subsidiary ledger: zero limit", who: auditor, method: "GET", path: "/v1/ledger/subsidiary?limit=0", status: 400, code: "invalid"},
		{name: "subsidiary ledger: a cursor not its own", who: auditor, method: "GET", path: "/v1/ledger/subsidiary?cursor=p3", status: 400, code: "invalid"},
		{name: "subsidiary ledger: a cursor naming no subsidiary account", who: auditor, method: "GET", path: "/v1/ledger/subsidiary?cursor=s" + base64.RawURLEncoding.EncodeToString([]byte("treasury:2024:appropriation")), status: 400, code: "invalid"},
		{name: "subsidiary ledger: unknown control account", who: auditor, method: "GET", path: "/v1/ledger/subsidiary?control=budget:*:available", status: 400, code: "invalid"},
		{name: "subsidiary ledger: bad as_of", who: auditor, method: "GET", path: "/v1/ledger/subsidiary?as_of=2024-13-01", status: 400, code: "invalid"},
		{name: "trial balance takes no detail parameter", who: auditor, method: "GET", path: "/v1/ledger/balances?talent=t1", status: 400, code: "unknown_parameter"},
		{name: "limit above 1000", who: clerk1, method: "GET", path: "/v1/grants?limit=1001", status: 400, code: "invalid"},
		// Zero would lift the bound on the page size altogether.
		{name: "zero limit", who: clerk1, method: "GET", path: "/v1/grants?limit=0", status: 400, code: "invalid"},
		{name: "unknown grant state", who: clerk1, method: "GET", path: "/v1/grants?state=bogus", status: 400, code: "invalid"},
		{name: "status is not the grants filter", who: clerk1, method: "GET", path: "/v1/grants?status=terminated", status: 400, code: "unknown_parameter"},
		{name: "bad fiscal year", who: clerk1, method: "GET", path: "/v1/programs/housing/budgets/20x4", status: 400, code: "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, err := e.store.LastPosition(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			rq := request{contentType: c.contentType, header: map[string]string{}}
			if c.body != "" {
				rq.body = []byte(c.body)
			}
			if c.who != "" {
				rq.token = e.tokens[c.who]
			}
			for k, v := range c.header {
				rq.header[k] = v
			}
			if c.token != "" {
				rq.header["Authorization"] = c.token
			}
			r, err := e.send(c.method, c.path, rq)
			if err != nil {
				t.Fatal(err)
			}
			checkHeaders(t, r)
			wantProblem(t, r, c.status, c.code)
			if c.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			after, err := e.store.LastPosition(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("the log moved from %s to %s", before, after)
			}
		})
	}
}
