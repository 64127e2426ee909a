package http_test

import (
	"net/http"
	"testing"
)

// TestGrantPositionFollowsItsEvents checks that a grant answers with the
// log position of its own last event, from the application on, so that a
// client holding the grant knows what to pass as min_position.
func TestGrantPositionFollowsItsEvents(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	talent := e.registerTalent("Yuki Sato", "C")

	type withPosition struct {
		Position string `json:"position"`
	}
	r := e.as(clerk1).post("/v1/grants", map[string]any{"talent_id": talent, "program_id": "transport",
		"amount_requested": "18000.00", "document_ref": "PHRS-APP-5", "effective_date": "2024-02-01"})
	if r.status != http.StatusCreated {
		t.Fatalf("%s: want 201", r)
	}
	applied := decodeAs[answer](t, r)
	wantEqual(t, "position after application", fetch[withPosition](e.as(clerk1), "/v1/grants/"+applied.ID).Position, applied.Position)

	r = e.as(reviewer1).post("/v1/grants/"+applied.ID+"/review", map[string]any{"decision": "approve"})
	if r.status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	reviewed := decodeAs[answer](t, r)
	wantEqual(t, "position after review", fetch[withPosition](e.as(clerk1), "/v1/grants/"+applied.ID).Position, reviewed.Position)
}
