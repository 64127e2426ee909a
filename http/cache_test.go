package http_test

import (
	"bytes"
	"net/http"
	"testing"
)

// TestCachedAnswersFollowTheLog: a query asked twice with nothing between
// gets the same bytes; an event that changes the answer, or a new day for
// an answer reckoned at today, gets a new one at once.
func TestCachedAnswersFollowTheLog(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	const path = "/v1/programs/transport/budgets/2024"
	first := e.as(auditor).get(path)
	again := e.as(auditor).get(path)
	if first.status != http.StatusOK || !bytes.Equal(first.body, again.body) {
		t.Fatalf("%s then %s: want the same answer", first, again)
	}
	if b := decodeAs[budgetJSON](t, first); b.Reserved != "0.00" {
		t.Fatalf("reserved %s before any approval", b.Reserved)
	}

	e.approvedGrant(e.registerTalent("Lucia Romano", "C"), "transport", "18000.00")
	after := e.as(auditor).get(path)
	if b := decodeAs[budgetJSON](t, after); b.Reserved != "18000.00" {
		t.Errorf("after an approval, the budget answers reserved %s, want 18000.00: %s", b.Reserved, after.body)
	}
	// Another role asks the same: the same figures.
	if b := fetch[budgetJSON](e.as(clerk1), path); b.Reserved != "18000.00" {
		t.Errorf("a clerk reads reserved %s, want 18000.00", b.Reserved)
	}

	type funds struct {
		AsOf string `json:"as_of"`
	}
	e.clock.setDate("2024-03-01")
	if f := fetch[funds](e.as(auditor), "/v1/funds"); f.AsOf != "2024-03-01" {
		t.Errorf("fund list as of %s, want the server's date 2024-03-01", f.AsOf)
	}
	e.clock.setDate("2024-03-02")
	if f := fetch[funds](e.as(auditor), "/v1/funds"); f.AsOf != "2024-03-02" {
		t.Errorf("fund list as of %s the next day, want 2024-03-02", f.AsOf)
	}
}

// The trial balance is kept encoded like the other answers: asked twice at
// one position it is the same, and an approval folded since changes it.
func TestCachedTrialBalanceFollowsTheLog(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	type balances struct {
		Position    string `json:"position"`
		TotalDebits string `json:"total_debits"`
	}
	const path = "/v1/ledger/balances"
	first := e.as(auditor).get(path)
	if again := e.as(auditor).get(path); first.status != http.StatusOK || !bytes.Equal(first.body, again.body) {
		t.Fatalf("%s then %s: want the same answer", first, again)
	}
	before := decodeAs[balances](t, first)
	e.approvedGrant(e.registerTalent("Lucia Romano", "C"), "transport", "18000.00")
	after := fetch[balances](e.as(auditor), path)
	if after.Position == before.Position || after.TotalDebits == before.TotalDebits {
		t.Errorf("after an approval the trial balance answers %+v, as before it (%+v)", after, before)
	}
	if other := fetch[balances](e.as(approver1), path); other != after {
		t.Errorf("an approver reads %+v, the auditor %+v", other, after)
	}
}
