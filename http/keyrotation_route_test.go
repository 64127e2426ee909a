package http_test

import (
	"net/http"
	"testing"

	"talentledger/domain"
)

// TestKeyRotationRouteRefusals: each bad rotation request gets a problem
// with a stable code and appends nothing.
func TestKeyRotationRouteRefusals(t *testing.T) {
	e := newTestServer(t, withCipher(cipherFor(t)))
	talent := e.as(clerk1).command(http.StatusCreated, "/v1/talents", map[string]any{"name": "A", "tier": "B", "employer": "E",
		"effective_date": "2024-01-02"})
	gone := e.as(clerk1).command(http.StatusCreated, "/v1/talents", map[string]any{"name": "G", "tier": "B", "employer": "E",
		"effective_date": "2024-01-02"})
	e.as(clerk1).command(http.StatusCreated, "/v1/talents/"+gone+"/erasure", map[string]any{"reason": "asked", "document_ref": "D-1", "effective_date": "2024-01-03"})
	e.as(approver1).command(http.StatusOK, "/v1/talents/"+gone+"/erasure/approve", map[string]any{"effective_date": "2024-01-03"})
	path := "/v1/talents/" + talent + "/key-rotation"
	ok := map[string]any{"reason": "exposed", "effective_date": "2024-02-01"}
	if r := e.as(admin).post(path, ok, "rot-1"); r.status != http.StatusOK {
		t.Fatalf("rotation: %s", r)
	}
	for _, tc := range []struct {
		name, path string
		body       any
		key        string
		status     int
		code       string
	}{
		{"unknown field", path, map[string]any{"reason": "x", "effective_date": "2024-02-01", "colour": "red"}, "", 400, domain.EINVALID},
		{"no reason", path, map[string]any{"effective_date": "2024-02-01"}, "", 400, domain.EINVALID},
		{"not JSON", path, "[", "", 400, domain.EINVALID},
		{"unknown talent", "/v1/talents/t-nobody/key-rotation", ok, "", 404, domain.ENOTFOUND},
		{"erased talent", "/v1/talents/" + gone + "/key-rotation", ok, "", 409, domain.ECONFLICT},
		{"same key, other body", path, map[string]any{"reason": "another", "effective_date": "2024-02-01"}, "rot-1", 409, domain.EIDEMPOTENCYMISMATCH},
	} {
		before := len(e.events())
		var r *response
		if tc.key != "" {
			r = e.as(admin).post(tc.path, tc.body, tc.key)
		} else {
			r = e.as(admin).post(tc.path, tc.body)
		}
		wantProblem(t, r, tc.status, tc.code)
		if n := len(e.events()); n != before {
			t.Errorf("%s: appended %d events", tc.name, n-before)
		}
	}
}
