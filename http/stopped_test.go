package http_test

import (
	"net/http"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore"
)

// Read models stopped by an event they cannot read (or a damaged views
// store) answer nothing, reads included: what they hold may be wrong.
// Only a stop for an upgrade keeps answering reads (TestRollingUpgrade).
func TestStoppedModelsAnswerNothing(t *testing.T) {
	e := newTestServer(t, withoutProjector())
	if r := e.as(approver1).get("/v1/programs"); r.status != http.StatusOK {
		t.Fatalf("before the stop: %s", r)
	}
	bad := eventstore.Event{Stream: "grant-g1", Type: domain.TypeGrantApplied, Data: []byte(`{"grant_id":`),
		Position: eventstore.Position{Commit: 1, Prepare: 1}}
	if err := e.proj.Apply(&bad); err == nil {
		t.Fatal("an unreadable event did not stop the read models")
	}
	wantProblem(t, e.as(approver1).get("/v1/programs"), http.StatusServiceUnavailable, domain.EUNAVAILABLE)
	wantProblem(t, e.as(approver1).get("/v1/ledger/balances"), http.StatusServiceUnavailable, domain.EUNAVAILABLE)
	before := len(e.events())
	r := e.as(admin).post("/v1/programs", map[string]any{"id": "x"})
	wantProblem(t, r, http.StatusServiceUnavailable, domain.EUNAVAILABLE)
	if n := len(e.events()); n != before {
		t.Errorf("a command appended %d events while the models are stopped", n-before)
	}
	wantProblem(t, e.as(approver1).get("/readyz"), http.StatusServiceUnavailable, domain.EUNAVAILABLE)
}
