package http_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// TestYearEndCloseOverHTTP closes 2024 through the API: one approver
// requests the close with a carry-over, the same one may not confirm it,
// another does; the budget views mark the year closed and show the
// carried-over funds in 2025, and 2024 takes no more appropriations.
func TestYearEndCloseOverHTTP(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("quick", "50000.00"), "1000000.00")
	g := e.reviewedGrant(clerk1, e.registerTalent("Elena Petrova", "B"), "quick", "50000.00")
	e.as(approver1).command(http.StatusOK, "/v1/grants/"+g+"/approve", map[string]any{"effective_date": "2024-12-20"})

	close := "/v1/programs/quick/budgets/2024/close"
	body := map[string]any{"reason": "year-end close 2024", "document_ref": "PHCZ-JZ-2024", "effective_date": "2025-01-06",
		"carry_over": []map[string]any{{"grant_id": g, "reason": "paid in January by agreement"}}}
	e.as(approver1).command(http.StatusOK, close, body)
	wantProblem(t, e.as(approver1).post(close+"/confirm", map[string]any{"effective_date": "2025-01-06"}), http.StatusForbidden, "segregation_of_duties")
	wantProblem(t, e.as(clerk1).post(close+"/confirm", map[string]any{"effective_date": "2025-01-06"}), http.StatusForbidden, "forbidden")
	e.as(approver2).command(http.StatusOK, close+"/confirm", map[string]any{"effective_date": "2025-01-06"})
	wantProblem(t, e.as(approver2).post(close+"/confirm", map[string]any{"effective_date": "2025-01-07"}), http.StatusConflict, "year_closed")
	wantProblem(t, e.as(approver1).post("/v1/programs/quick/budgets",
		map[string]any{"fiscal_year": 2024, "amount": "1.00", "effective_date": "2025-01-07"}), http.StatusConflict, "year_closed")

	type budget struct {
		Closed      bool   `json:"closed"`
		CarriedOut  string `json:"carried_out"`
		CarriedOver string `json:"carried_over"`
		Reserved    string `json:"reserved"`
	}
	b24 := fetch[budget](e.as(auditor), "/v1/programs/quick/budgets/2024")
	b25 := fetch[budget](e.as(auditor), "/v1/programs/quick/budgets/2025")
	wantEqual(t, "2024 closed", b24.Closed, true)
	wantEqual(t, "2024 carried out", b24.CarriedOut, "50000.00")
	wantEqual(t, "2025 closed", b25.Closed, false)
	wantEqual(t, "2025 carried over", b25.CarriedOver, "50000.00")
	wantEqual(t, "2025 reserved", b25.Reserved, "50000.00")

	// The grant's trail shows the close and the carry-over, confirmed by
	// the second approver, with the request's document and the reason.
	var seen []string
	for _, ev := range fetch[trailJSON](e.as(auditor), "/v1/grants/"+g+"/trail").Events {
		if ev.Type == "YearEndClosed" || ev.Type == "BudgetCarriedOver" {
			var data struct {
				Reason      string `json:"reason"`
				DocumentRef string `json:"document_ref"`
			}
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ev.Type+" "+ev.Principal+" "+data.DocumentRef+" "+data.Reason)
		}
	}
	if want := []string{"YearEndClosed " + approver2 + " PHCZ-JZ-2024 year-end close 2024",
		"BudgetCarriedOver " + approver2 + " PHCZ-JZ-2024 paid in January by agreement"}; !slices.Equal(seen, want) {
		t.Errorf("trail of the close = %v, want %v", seen, want)
	}

	// Paid in 2025 from the carried-over funds.
	e.pay(g, 1, "2025-01-10", clerk1, approver2, treasurer1)
	b25 = fetch[budget](e.as(auditor), "/v1/programs/quick/budgets/2025")
	wantEqual(t, "2025 reserved after the payment", b25.Reserved, "0.00")
}

// TestBudgetAdjustmentsOverHTTP transfers money between two programs'
// 2024 budgets: requested by one approver, approved by another, never
// more than is available.
func TestBudgetAdjustmentsOverHTTP(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("quick", "50000.00"), "100000.00")
	e.setupProgram(quickProgram("other", "50000.00"), "100000.00")
	path := "/v1/programs/quick/budgets/2024/adjustments"
	body := map[string]any{"kind": "transfer", "amount": "100000.01", "to_program": "other", "reason": "reallocation",
		"document_ref": "PHCZ-TZ-1", "effective_date": "2024-06-01"}
	wantProblem(t, e.as(approver1).post(path, body), http.StatusUnprocessableEntity, "insufficient_funds")
	body["amount"] = "40000.00"
	id := e.as(approver1).command(http.StatusCreated, path, body)
	approve := path + "/" + id + "/approve"
	wantProblem(t, e.as(approver1).post(approve, map[string]any{"effective_date": "2024-06-02"}), http.StatusForbidden, "segregation_of_duties")
	e.as(approver2).command(http.StatusOK, approve, map[string]any{"effective_date": "2024-06-02"})
	type budget struct {
		Adjustments string `json:"adjustments"`
		Available   string `json:"available"`
	}
	q := fetch[budget](e.as(auditor), "/v1/programs/quick/budgets/2024")
	o := fetch[budget](e.as(auditor), "/v1/programs/other/budgets/2024")
	wantEqual(t, "quick adjustments", q.Adjustments, "-40000.00")
	wantEqual(t, "quick available", q.Available, "60000.00")
	wantEqual(t, "other adjustments", o.Adjustments, "40000.00")
	wantEqual(t, "other available", o.Available, "140000.00")
}
