package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"talentledger/domain"
)

// TestKeyedCommandsAnsweredByTheirEvents runs a grant from application to
// release with an Idempotency-Key on every step, each retried at once and
// again at the end: every retry gets its first answer byte for byte and
// writes nothing, every event of a keyed command carries its request's
// hash, and no command needs a record of its answer besides its events.
func TestKeyedCommandsAnsweredByTheirEvents(t *testing.T) {
	for name, opts := range map[string][]envOption{"one_of_several": nil, "sole_writer": {asSoleWriter()}} {
		t.Run(name, func(t *testing.T) { checkKeyedCommandsAnsweredByTheirEvents(t, newTestServer(t, opts...)) })
	}
}

func checkKeyedCommandsAnsweredByTheirEvents(t *testing.T, e *testEnv) {
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	type step struct {
		who, path string
		body      map[string]any
		status    int
		resp      *response
	}
	var steps []*step
	run := func(who, path string, status int, body map[string]any) string {
		t.Helper()
		s := &step{who: who, path: path, body: body, status: status}
		key := fmt.Sprintf("step-%d", len(steps))
		s.resp = e.as(who).post(path, body, key)
		if s.resp.status != status || s.resp.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("%s: want %d, not replayed", s.resp, status)
		}
		before := e.lastPosition()
		again := e.as(who).post(path, body, key)
		if again.status != status || !bytes.Equal(again.body, s.resp.body) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry of %s: %s (replayed %q), want %s replayed", path, again, again.header.Get("Idempotent-Replayed"), s.resp.body)
		}
		if after := e.lastPosition(); after != before {
			t.Errorf("the retry of %s moved the log from %s to %s", path, before, after)
		}
		steps = append(steps, s)
		return decodeAs[answer](t, s.resp).ID
	}
	talent := run(clerk1, "/v1/talents", http.StatusCreated, map[string]any{"name": "Ingrid Larsen", "tier": "C", "employer": "Pinghu Optics", "effective_date": "2024-01-02"})
	grant := run(clerk1, "/v1/grants", http.StatusCreated, map[string]any{"talent_id": talent, "program_id": "transport",
		"amount_requested": "18000.00", "document_ref": "PHRS-APP-7", "effective_date": "2024-02-01"})
	run(reviewer1, "/v1/grants/"+grant+"/review", http.StatusOK, map[string]any{"decision": "approve", "effective_date": "2024-02-02"})
	run(approver1, "/v1/grants/"+grant+"/approve", http.StatusOK, map[string]any{"effective_date": "2024-02-05"})
	pid := run(clerk2, "/v1/grants/"+grant+"/installments/1/payments", http.StatusCreated, map[string]any{"effective_date": "2024-02-05"})
	run(approver2, "/v1/payments/"+pid+"/approve", http.StatusOK, map[string]any{"effective_date": "2024-02-05"})
	run(treasurer1, "/v1/payments/"+pid+"/release", http.StatusOK, map[string]any{"bank_reference": "ICBC-7", "effective_date": "2024-02-05"})

	last := e.lastPosition()
	for i, s := range steps {
		again := e.as(s.who).post(s.path, s.body, fmt.Sprintf("step-%d", i))
		if again.status != s.status || !bytes.Equal(again.body, s.resp.body) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("late retry of %s: %s, want %s replayed", s.path, again, s.resp.body)
		}
	}
	if got := e.lastPosition(); got != last {
		t.Errorf("the late retries moved the log from %s to %s", last, got)
	}
	keyed := 0
	for _, ev := range e.events() {
		if ev.Type == domain.TypeIdempotencyRecorded {
			t.Errorf("%s recorded in %s: the events carry the answer", ev.Type, ev.Stream)
		}
		if ev.Metadata.RequestHash != "" {
			keyed++
		}
	}
	if keyed == 0 {
		t.Error("no event carries a request hash")
	}
}

// TestRetriesOfAnEarlierBuildsCommands: a log written by a build that kept
// a keyed command's first answer in an idempotency stream, its events
// without a request hash, still answers the command's retries with that
// answer, and refuses the key with another body.
func TestRetriesOfAnEarlierBuildsCommands(t *testing.T) {
	for name, opts := range map[string][]envOption{"one_of_several": nil, "sole_writer": {asSoleWriter()}} {
		t.Run(name, func(t *testing.T) { checkRetriesOfAnEarlierBuildsCommands(t, newTestServer(t, opts...)) })
	}
}

func checkRetriesOfAnEarlierBuildsCommands(t *testing.T, e *testEnv) {
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	grant := e.approvedGrant(e.registerTalent("Kenji Sato", "C"), "transport", "18000.00")
	pid := e.as(clerk1).command(http.StatusCreated, "/v1/grants/"+grant+"/installments/1/payments", map[string]any{"effective_date": "2024-02-05"})
	e.as(approver2).command(http.StatusOK, "/v1/payments/"+pid+"/approve", map[string]any{"effective_date": "2024-02-05"})

	// What the earlier build did: the release under the key's command ID,
	// then its answer in the command's own stream.
	const key = "release-earlier-build"
	path := "/v1/payments/" + pid + "/release"
	body := `{"bank_reference":"ICBC-20240205-9","effective_date":"2024-02-05"}`
	actor := domain.Actor{Principal: treasurer1, Role: domain.RoleTreasurer}
	id := domain.IdempotencyCommandID(treasurer1, key)
	ctx := context.Background()
	res, err := e.svc.ReleasePayment(ctx, domain.PaymentCommand{Meta: domain.CommandMeta{Actor: actor, CommandID: id, EffectiveDate: "2024-02-05"},
		PaymentID: pid, BankReference: "ICBC-20240205-9"})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("POST " + path + "\x00" + body))
	recorded, _ := json.Marshal(map[string]string{"id": res.ID, "position": res.Position.String(), "recorded": "by the earlier build"})
	if _, err := e.svc.RecordIdempotency(ctx, actor, id, domain.IdempotencyRecorded{Key: id, RequestHash: hex.EncodeToString(h[:]),
		Status: http.StatusOK, Response: recorded}); err != nil {
		t.Fatal(err)
	}
	last := e.lastPosition()

	r, err := e.send("POST", path, request{token: e.tokens[treasurer1], body: []byte(body), header: map[string]string{"Idempotency-Key": key}})
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK || !bytes.Equal(bytes.TrimSpace(r.body), recorded) || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry: %s (replayed %q), want the recorded answer %s", r, r.header.Get("Idempotent-Replayed"), recorded)
	}
	wantProblem(t, e.as(treasurer1).post(path, map[string]any{"bank_reference": "ICBC-20240205-10", "effective_date": "2024-02-05"}, key),
		http.StatusConflict, "idempotency_mismatch")
	if got := e.lastPosition(); got != last {
		t.Errorf("the retries moved the log from %s to %s", last, got)
	}
	var releases int
	for _, ev := range e.events() {
		if ev.Type == domain.TypePaymentReleased {
			releases++
		}
	}
	wantEqual(t, "PaymentReleased events", releases, 1)
}
