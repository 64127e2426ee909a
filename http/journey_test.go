package http_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore"
)

// TestClawbackJourney walks docs/domain.md's clawback example over HTTP: a
// tier-B housing award of 600,000.00 approved on 2024-01-15, paid 240,000
// and 180,000, the talent leaving at month 20 of 60, and 220,000.00 due
// back. Every figure is read back from the query endpoints.
func TestClawbackJourney(t *testing.T) {
	e := newTestServer(t)

	e.as(admin).command(http.StatusCreated, "/v1/programs", housingProgram("housing"))
	prog := fetch[programJSON](e.as(clerk1), "/v1/programs/housing")
	wantEqual(t, "caps", len(prog.Caps), 4)
	for tier, want := range map[string]string{"A": "1000000.00", "B": "600000.00", "C": "350000.00", "D": "150000.00"} {
		wantEqual(t, "cap "+tier, prog.Caps[tier], want)
	}
	wantEqual(t, "service months", prog.ServiceMonths, 60)
	wantEqual(t, "notice days", prog.NoticeDays, 5)

	e.as(approver1).command(http.StatusCreated, "/v1/programs/housing/budgets",
		map[string]any{"fiscal_year": 2024, "amount": "30000000.00", "effective_date": "2024-01-02", "document_ref": "PHCZ-2024-001"})
	// The 2025 budget, appropriated in advance, covers the installment
	// falling due in 2025 at approval.
	e.as(approver1).command(http.StatusCreated, "/v1/programs/housing/budgets",
		map[string]any{"fiscal_year": 2025, "amount": "30000000.00", "effective_date": "2024-01-02", "document_ref": "PHCZ-2025-001"})
	talent := e.as(clerk1).command(http.StatusCreated, "/v1/talents", map[string]any{"name": "Elena Petrova", "permit_category": "A",
		"tier": "B", "employer": "Pinghu Precision Optics Co.", "effective_date": "2024-01-02"})

	application := map[string]any{"talent_id": talent, "program_id": "housing", "amount_requested": "600000.00", "effective_date": "2024-01-03"}
	wantProblem(t, e.as(clerk1).post("/v1/grants", application), http.StatusBadRequest, "invalid") // no document_ref
	application["document_ref"] = "PHRS-APP-2024-0007"
	grant := e.as(clerk1).command(http.StatusCreated, "/v1/grants", application)
	g := "/v1/grants/" + grant

	e.as(reviewer1).command(http.StatusOK, g+"/review", map[string]any{"decision": "approve", "note": "employer verified", "effective_date": "2024-01-04"})
	e.as(reviewer1).command(http.StatusOK, g+"/notice", map[string]any{"effective_date": "2024-01-05"}) // a Friday
	// The five working days are Mon 8 – Fri 12; the notice may close from
	// the day after the last of them.
	wantEqual(t, "notice closes on", domain.NoticeClosesOn("2024-01-05", 5), "2024-01-13")
	// By Wed 10 two working days (Mon 8, Tue 9) have run, not five.
	wantProblem(t, e.as(reviewer1).post(g+"/notice/close", map[string]any{"effective_date": "2024-01-10"}), http.StatusConflict, "notice_pending")
	wantProblem(t, e.as(approver1).post(g+"/approve", map[string]any{"effective_date": "2024-01-10"}), http.StatusConflict, "notice_pending")
	// On Fri 12, the fifth working day, the notice is still running.
	wantProblem(t, e.as(reviewer1).post(g+"/notice/close", map[string]any{"effective_date": "2024-01-12"}), http.StatusConflict, "notice_pending")
	e.as(reviewer1).command(http.StatusOK, g+"/notice/close", map[string]any{"effective_date": "2024-01-13"})
	e.as(approver1).command(http.StatusOK, g+"/approve", map[string]any{"effective_date": "2024-01-15", "document_ref": "PHCZ-APR-2024-0003"})

	approved := fetch[grantJSON](e.as(clerk1), g)
	wantEqual(t, "state after approval", approved.State, "approved")
	wantEqual(t, "award", approved.Award, "600000.00")
	wantEqual(t, "fiscal year", approved.FiscalYear, 2024)
	wantInstallments(t, approved.Installments, []installmentJSON{
		{N: 1, Amount: "240000.00", DueDate: "2024-01-15", State: "scheduled"},
		{N: 2, Amount: "180000.00", DueDate: "2025-01-15", State: "scheduled"},
		{N: 3, Amount: "180000.00", DueDate: "2026-01-15", State: "scheduled"},
	})
	b := fetch[budgetJSON](e.as(clerk1), "/v1/programs/housing/budgets/2024")
	// Each year's budget holds the installment falling due in it; 2026,
	// not yet appropriated, holds a forward commitment.
	wantEqual(t, "reserved after approval", b.Reserved, "240000.00")
	wantEqual(t, "available after approval", b.Available, "29760000.00")
	wantEqual(t, "2025 reserved after approval", fetch[budgetJSON](e.as(clerk1), "/v1/programs/housing/budgets/2025").Reserved, "180000.00")

	pay1 := e.pay(grant, 1, "2024-01-15", clerk1, approver2, treasurer1)
	// Installment 2 is not due before 2025-01-15 by the server's clock.
	wantProblem(t, e.as(clerk2).post(g+"/installments/2/payments", map[string]any{"effective_date": "2025-01-14"}), http.StatusConflict, "installment_not_due")
	pay2 := e.pay(grant, 2, "2025-01-15", clerk2, approver1, treasurer2)

	e.as(clerk1).command(http.StatusOK, "/v1/talents/"+talent+"/departure", map[string]any{"departure_date": "2025-09-15", "effective_date": "2025-09-15"})
	e.as(approver1).command(http.StatusOK, g+"/terminate", map[string]any{"reason": "left Pinghu before serving 60 months", "effective_date": "2025-09-15"})

	ended := fetch[grantJSON](e.as(auditor), g)
	wantEqual(t, "state", ended.State, "terminated")
	wantEqual(t, "paid", ended.Paid, "420000.00")
	wantEqual(t, "clawback assessed", ended.Clawback.Assessed, "220000.00")
	wantEqual(t, "clawback outstanding", ended.Clawback.Outstanding, "220000.00")
	wantInstallments(t, ended.Installments, []installmentJSON{
		{N: 1, Amount: "240000.00", DueDate: "2024-01-15", State: "paid", PaymentID: pay1},
		{N: 2, Amount: "180000.00", DueDate: "2025-01-15", State: "paid", PaymentID: pay2},
		{N: 3, Amount: "180000.00", DueDate: "2026-01-15", State: "cancelled"},
	})
	if tm := ended.Termination; tm == nil {
		t.Fatalf("no termination in %+v", ended)
	} else {
		wantEqual(t, "months served", tm.MonthsServed, 20)
		wantEqual(t, "months required", tm.MonthsRequired, 60)
		wantEqual(t, "released", tm.Released, "180000.00")
		wantEqual(t, "departure", tm.DepartureDate, "2025-09-15")
		if !slices.Equal(tm.Cancelled, []int{3}) {
			t.Errorf("cancelled installments = %v, want [3]", tm.Cancelled)
		}
	}
	for i, p := range ended.Payments {
		wantEqual(t, "payment state", p.State, "released")
		people := []string{p.PreparedBy, p.ApprovedBy, p.ReleasedBy}
		if want := [][]string{{clerk1, approver2, treasurer1}, {clerk2, approver1, treasurer2}}[i]; !slices.Equal(people, want) {
			t.Errorf("payment %d by %v, want %v", i+1, people, want)
		}
	}

	b = fetch[budgetJSON](e.as(clerk1), "/v1/programs/housing/budgets/2024")
	wantEqual(t, "appropriated", b.Appropriated, "30000000.00")
	wantEqual(t, "reserved", b.Reserved, "0.00")
	// Each payment is charged to the year of its release.
	wantEqual(t, "budget paid", b.Paid, "240000.00")
	wantEqual(t, "available", b.Available, "29760000.00")
	b25 := fetch[budgetJSON](e.as(clerk1), "/v1/programs/housing/budgets/2025")
	wantEqual(t, "2025 budget paid", b25.Paid, "180000.00")
	wantEqual(t, "2025 reserved", b25.Reserved, "0.00")

	tv := fetch[talentJSON](e.as(clerk1), "/v1/talents/"+talent)
	wantEqual(t, "talent total paid", tv.TotalPaid, "420000.00")
	wantEqual(t, "talent clawback due", tv.ClawbackDue, "220000.00")
	wantEqual(t, "talent departure", tv.DepartureDate, "2025-09-15")

	paidAcct, dueAcct := "talent:"+talent+":paid", "talent:"+talent+":clawback_due"
	wantBalances(t, "after termination", books(e.as(auditor), ""), map[string]string{
		"budget:housing:2024:available":  "29760000.00",
		"budget:housing:2025:available":  "29820000.00",
		"budget:housing:2026:uncovered":  "0.00",
		"budget:housing:2024:encumbered": "0.00",
		paidAcct:                         "200000.00",
		dueAcct:                          "220000.00",
		"treasury:2024:appropriation":    "-30000000.00",
	})

	// Recovery and waiver.
	wantProblem(t, e.as(treasurer1).post(g+"/recoveries", map[string]any{"amount": "220000.01", "bank_reference": "BOC-REC-1"}),
		http.StatusConflict, "conflict")
	e.as(treasurer1).command(http.StatusCreated, g+"/recoveries", map[string]any{"amount": "100000.00", "bank_reference": "BOC-REC-2025-0001", "effective_date": "2025-10-10"})
	wantProblem(t, e.as(approver2).post(g+"/waive", map[string]any{"amount": "20000.00"}), http.StatusBadRequest, "invalid") // no reason
	e.as(approver2).command(http.StatusOK, g+"/waive", map[string]any{"amount": "20000.00", "reason": "hardship, decided by the finance bureau", "effective_date": "2025-10-20"})

	settled := fetch[grantJSON](e.as(clerk1), g)
	wantEqual(t, "recovered", settled.Clawback.Recovered, "100000.00")
	wantEqual(t, "waived", settled.Clawback.Waived, "20000.00")
	wantEqual(t, "outstanding", settled.Clawback.Outstanding, "100000.00")
	tv = fetch[talentJSON](e.as(clerk1), "/v1/talents/"+talent)
	wantEqual(t, "talent clawback due after recovery", tv.ClawbackDue, "100000.00")
	// A recovery books clawback_due → treasury recoveries; a waiver books
	// clawback_due back to paid (the talent keeps it).
	wantBalances(t, "after recovery", books(e.as(approver1), ""), map[string]string{
		"budget:housing:2024:available": "29760000.00",
		paidAcct:                        "220000.00",
		dueAcct:                         "100000.00",
		"treasury:2024:recoveries":      "100000.00",
		"treasury:2024:appropriation":   "-30000000.00",
	})

	// As the books stood at the end of 2024: appropriated 30,000,000.00,
	// installment 1 of 240,000.00 reserved at approval and paid to the
	// talent (available 29,760,000.00, encumbered 0.00); installment 2 was
	// covered by the 2025 budget and installment 3 committed to 2026.
	// Installment 2's payment and the termination belong to 2025.
	appropriated, inst1, inst2 := 30_000_000, 240_000, 180_000
	asOf := books(e.as(auditor), "?as_of=2024-12-31")
	wantEqual(t, "as_of", asOf.AsOf, "2024-12-31")
	wantBalances(t, "as of 2024-12-31", asOf, map[string]string{
		"budget:housing:2024:available":  yuan(appropriated - inst1),
		"budget:housing:2024:encumbered": "0.00",
		"budget:housing:2025:encumbered": yuan(inst2),
		"budget:housing:2026:uncovered":  yuan(inst2),
		paidAcct:                         yuan(inst1),
		"treasury:2024:appropriation":    yuan(-appropriated),
		dueAcct:                          "",
	})
	wantBalances(t, "as of 2023-12-31", books(e.as(auditor), "?as_of=2023-12-31"),
		map[string]string{"treasury:2024:appropriation": ""})

	// The audit trail: every event of the grant and its budget postings,
	// in log order, with intact hashes.
	r := e.as(clerk1).get(g + "/trail")
	wantProblem(t, r, http.StatusForbidden, "forbidden")
	trail := fetch[trailJSON](e.as(auditor), g+"/trail")
	wantEqual(t, "trail grant", trail.GrantID, grant)
	var types []string
	var last eventstore.Position
	for i, ev := range trail.Events {
		name, _, _ := domain.ParseEventType(ev.Type) // the stored type: a type and its version
		types = append(types, name)
		if !ev.HashValid || ev.Hash == "" {
			t.Errorf("trail event %d (%s): hash_valid %v hash %q", i, ev.Type, ev.HashValid, ev.Hash)
		}
		pos, err := eventstore.ParsePosition(ev.Position)
		if err != nil || !last.Before(pos) {
			t.Errorf("trail event %d (%s) at position %q after %s", i, ev.Type, ev.Position, last)
		}
		last = pos
	}
	// The talent's own events that changed the grant are in its trail:
	// the registration, the entitlement it used and gave back, and the
	// departure that ended it.
	wantTypes := []string{"TalentRegistered", "GrantApplied", "GrantReviewed", "PublicNoticeOpened", "PublicNoticeClosed",
		"EntitlementReserved", "BudgetReserved", "ForwardCommitted", "ForwardCommitted", "GrantApproved",
		"PaymentPrepared", "PaymentApproved", "PaymentCharged", "PaymentReleased",
		"PaymentPrepared", "PaymentApproved", "PaymentCharged", "PaymentReleased",
		"TalentDeparted", "GrantTerminated", "ClawbackAssessed", "BudgetReservationReleased", "EntitlementReleased",
		"RecoveryReceived", "RecoveryWaived"}
	// The forward commitments are appended side by side with the
	// approval: the three come in either order.
	if len(types) == len(wantTypes) {
		slices.Sort(types[7:10])
		slices.Sort(wantTypes[7:10])
	}
	if !slices.Equal(types, wantTypes) {
		t.Fatalf("trail types:\n got %v\nwant %v", types, wantTypes)
	}
	whoWhen := func(i int) [4]string {
		ev := trail.Events[i]
		return [4]string{ev.Principal, ev.Role, ev.EffectiveDate, ev.DocumentRef}
	}
	for i, want := range map[int][4]string{
		1:  {clerk1, "clerk", "2024-01-03", "PHRS-APP-2024-0007"},
		4:  {reviewer1, "reviewer", "2024-01-13", ""},
		6:  {approver1, "approver", "2024-01-15", "PHCZ-APR-2024-0003"},
		7:  {approver1, "approver", "2024-01-15", "PHCZ-APR-2024-0003"},
		9:  {approver1, "approver", "2024-01-15", "PHCZ-APR-2024-0003"},
		12: {treasurer1, "treasurer", "2024-01-15", ""},
		13: {treasurer1, "treasurer", "2024-01-15", ""},
		17: {treasurer2, "treasurer", "2025-01-15", ""},
		19: {approver1, "approver", "2025-09-15", ""},
		24: {approver2, "approver", "2025-10-20", ""},
	} {
		if got := whoWhen(i); got != want {
			t.Errorf("trail event %d (%s): principal, role, date, document = %v, want %v", i, types[i], got, want)
		}
	}
	wantEqual(t, "termination reason", trail.Events[19].Reason, "left Pinghu before serving 60 months")
	if dep := trail.Events[18]; dep.Principal != clerk1 || !strings.Contains(string(dep.Data), "2025-09-15") {
		t.Errorf("the departure in the trail: %+v, want clerk1's report of 2025-09-15", dep)
	}
	if ps := trail.Events[13].Postings; len(ps) != 1 || ps[0].Amount != "240000.00" || ps[0].Destination != paidAcct {
		t.Errorf("postings of the first release = %+v", ps)
	}
	fetch[trailJSON](e.as(approver1), g+"/trail") // approvers may read it too

	wantProblem(t, e.as(approver1).get("/v1/audit/verify"), http.StatusForbidden, "forbidden")
	v := fetch[verifyJSON](e.as(auditor), "/v1/audit/verify")
	if !v.OK || v.Events != len(e.events()) || v.FirstMismatch != nil {
		t.Errorf("verify = %+v, want ok over %d events", v, len(e.events()))
	}
}

// yuan formats whole yuan as the API does.
func yuan(n int) string {
	if n < 0 {
		return "-" + yuan(-n)
	}
	return strconv.Itoa(n) + ".00"
}

func wantInstallments(t *testing.T, got, want []installmentJSON) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("installments:\n got %+v\nwant %+v", got, want)
	}
}

type trailJSON struct {
	GrantID string `json:"grant_id"`
	Events  []struct {
		Position      string `json:"position"`
		Stream        string `json:"stream"`
		Type          string `json:"type"`
		Principal     string `json:"principal"`
		Role          string `json:"role"`
		EffectiveDate string `json:"effective_date"`
		Reason        string `json:"reason"`
		DocumentRef   string `json:"document_ref"`
		Postings      []struct {
			Source      string `json:"source"`
			Destination string `json:"destination"`
			Amount      string `json:"amount"`
		} `json:"postings"`
		Data      json.RawMessage `json:"data"`
		Hash      string          `json:"hash"`
		HashValid bool            `json:"hash_valid"`
	} `json:"events"`
}

type verifyJSON struct {
	OK            bool `json:"ok"`
	Events        int  `json:"events"`
	FirstMismatch any  `json:"first_mismatch"`
}
