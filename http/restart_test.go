package http_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"talentledger/domain"
)

// waitReady polls /readyz until it answers 200.
func waitReady(t testing.TB, e *testEnv) *response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.anonymous().do("GET", "/readyz", nil, nil)
		if r.status == http.StatusOK {
			return r
		}
		wantProblem(t, r, http.StatusServiceUnavailable, "unavailable")
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready in time", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRestartAnswersTheSame runs some commands, reads the figures, closes
// everything, opens the same directory with a new projector and server, and
// gets the very same answers back: the log is the only state.
func TestRestartAnswersTheSame(t *testing.T) {
	e := newTestServer(t)
	dir := e.dir
	e.setupProgram(housingProgram("housing"), "30000000.00")
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	talent := e.registerTalent("Thomas Müller", "B")
	other := e.approvedGrant(talent, "transport", "18000.00")
	e.pay(other, 1, "2024-02-05", clerk1, approver2, treasurer2)
	grant := e.as(clerk1).command(http.StatusCreated, "/v1/grants", map[string]any{"talent_id": talent, "program_id": "housing",
		"amount_requested": "600000.00", "document_ref": "PHRS-APP-11", "effective_date": "2024-04-01"})
	g := "/v1/grants/" + grant
	e.as(reviewer2).command(http.StatusOK, g+"/review", map[string]any{"decision": "approve", "effective_date": "2024-04-02"})
	e.as(reviewer2).command(http.StatusOK, g+"/notice", map[string]any{"effective_date": "2024-04-03"})
	// Qingming: Thu 4 – Sat 6 April are holidays and Sun 7 a working day,
	// so the five working days run Sun 7 – Thu 11.
	wantEqual(t, "notice closes on", domain.NoticeClosesOn("2024-04-03", 5), "2024-04-12")
	e.as(reviewer2).command(http.StatusOK, g+"/notice/close", map[string]any{"effective_date": "2024-04-12"})
	e.as(approver2).command(http.StatusOK, g+"/approve", map[string]any{"effective_date": "2024-04-15"})
	pid := e.as(clerk2).command(http.StatusCreated, g+"/installments/1/payments", map[string]any{"effective_date": "2024-04-15"})
	e.as(approver1).command(http.StatusOK, "/v1/payments/"+pid+"/approve", map[string]any{"effective_date": "2024-04-15"})
	const key = "release-restart-1"
	release := map[string]any{"bank_reference": "ABC-20240415-0042", "effective_date": "2024-04-15"}
	first := e.as(treasurer1).post("/v1/payments/"+pid+"/release", release, key)
	if first.status != http.StatusOK {
		t.Fatalf("%s: want 200", first)
	}

	queries := []struct{ who, path string }{
		{clerk1, "/v1/programs"},
		{clerk1, "/v1/programs/housing/budgets/2024"},
		{clerk1, "/v1/programs/transport/budgets/2024"},
		{clerk1, g},
		{clerk1, "/v1/grants/" + other},
		{clerk1, "/v1/grants?talent=" + talent},
		{clerk1, "/v1/talents/" + talent},
		{clerk1, "/v1/payments/" + pid},
		{auditor, "/v1/ledger/balances"},
		{auditor, "/v1/ledger/balances?as_of=2024-03-31"},
		{auditor, g + "/trail"},
		{auditor, "/v1/audit/verify"},
	}
	read := func(e *testEnv) [][]byte {
		t.Helper()
		// Wait for every event, the idempotency record included.
		e.seen(e.lastPosition())
		var out [][]byte
		for _, q := range queries {
			r := e.as(q.who).get(q.path)
			if r.status != http.StatusOK {
				t.Fatalf("%s: want 200", r)
			}
			out = append(out, r.body)
		}
		return out
	}
	before := read(e)
	b := decodeAs[budgetJSON](t, &response{body: before[1]})
	wantEqual(t, "housing paid before restart", b.Paid, "240000.00")
	wantEqual(t, "housing available before restart", b.Available, "29760000.00")
	last := e.lastPosition()
	e.close()

	e2 := newTestServer(t, inDir(dir))
	waitReady(t, e2)
	if got := e2.lastPosition(); got != last {
		t.Fatalf("log position after restart = %s, want %s", got, last)
	}
	after := read(e2)
	for i, q := range queries {
		if !bytes.Equal(before[i], after[i]) {
			t.Errorf("GET %s changed across the restart:\nbefore %s\n after %s", q.path, before[i], after[i])
		}
	}

	// The idempotency record survives too: a retry after the restart gets
	// the first answer and writes nothing.
	r := e2.as(treasurer1).post("/v1/payments/"+pid+"/release", release, key)
	if r.status != http.StatusOK || !bytes.Equal(r.body, first.body) || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry after restart: %s (replayed %q), want the first answer %s", r, r.header.Get("Idempotent-Replayed"), first.body)
	}
	if got := e2.lastPosition(); got != last {
		t.Errorf("the retry moved the log from %s to %s", last, got)
	}
	// And the ledger carries on.
	e2.as(approver1).command(http.StatusCreated, "/v1/programs/housing/budgets", map[string]any{"fiscal_year": 2024, "amount": "1000000.00", "effective_date": "2024-06-01"})
	b = fetch[budgetJSON](e2.as(clerk1), "/v1/programs/housing/budgets/2024")
	wantEqual(t, "appropriated after restart", b.Appropriated, "31000000.00")
	wantEqual(t, "available after restart", b.Available, "30760000.00")
}
