package http_test

import (
	"net/http"
	"testing"
)

// TestSegregationOfDuties checks maker-checker over HTTP with principals who
// hold two roles: each may act in either, but never on both sides of the
// same item. Every refusal writes nothing, and the item stays open for
// someone else.
func TestSegregationOfDuties(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	// Each case is another talent's grant: the tier cap bounds all of one
	// talent's grants under the program, and this test is not about it.
	talents := map[string]string{}
	for _, name := range []string{"Akira Tanaka", "Yuki Sato", "Kenji Ito", "Hana Kato", "Ren Mori"} {
		talents[name] = e.registerTalent(name, "A")
	}

	refused := func(r *response) {
		t.Helper()
		wantProblem(t, r, http.StatusForbidden, "segregation_of_duties")
	}
	unchanged := func(what string, f func()) {
		t.Helper()
		before := e.lastPosition()
		f()
		if after := e.lastPosition(); after != before {
			t.Errorf("%s: log moved from %s to %s", what, before, after)
		}
	}
	date := map[string]any{"effective_date": "2024-02-05"}

	// Preparer approves own payment.
	{
		g := e.approvedGrant(talents["Akira Tanaka"], "transport", "18000.00")
		pid := e.as(clerkApprover).command(http.StatusCreated, "/v1/grants/"+g+"/installments/1/payments", date)
		unchanged("self-approval", func() { refused(e.as(clerkApprover).post("/v1/payments/"+pid+"/approve", date)) })
		e.as(approver1).command(http.StatusOK, "/v1/payments/"+pid+"/approve", date)
	}

	// Approver releases own approval.
	{
		g := e.approvedGrant(talents["Yuki Sato"], "transport", "18000.00")
		pid := e.as(clerk1).command(http.StatusCreated, "/v1/grants/"+g+"/installments/1/payments", date)
		e.as(approverTreasurer).command(http.StatusOK, "/v1/payments/"+pid+"/approve", date)
		release := map[string]any{"bank_reference": "ICBC-1", "effective_date": "2024-02-05"}
		unchanged("self-release", func() { refused(e.as(approverTreasurer).post("/v1/payments/"+pid+"/release", release)) })
		e.as(treasurer1).command(http.StatusOK, "/v1/payments/"+pid+"/release", release)
		p := fetch[paymentJSON](e.as(auditor), "/v1/payments/"+pid)
		wantEqual(t, "state", p.State, "released")
		wantEqual(t, "approved by", p.ApprovedBy, approverTreasurer)
		wantEqual(t, "released by", p.ReleasedBy, treasurer1)
	}

	// Clerk approves own application.
	{
		g := e.reviewedGrant(clerkApprover, talents["Kenji Ito"], "transport", "18000.00")
		unchanged("approving own entry", func() { refused(e.as(clerkApprover).post("/v1/grants/"+g+"/approve", date)) })
		e.as(approver1).command(http.StatusOK, "/v1/grants/"+g+"/approve", date)
	}

	// Reviewer approves own review.
	{
		g := e.as(clerk1).command(http.StatusCreated, "/v1/grants", map[string]any{"talent_id": talents["Hana Kato"], "program_id": "transport",
			"amount_requested": "18000.00", "document_ref": "PHRS-APP-9", "effective_date": "2024-02-01"})
		e.as(reviewerApprover).command(http.StatusOK, "/v1/grants/"+g+"/review", map[string]any{"decision": "approve", "effective_date": "2024-02-02"})
		unchanged("approving own review", func() { refused(e.as(reviewerApprover).post("/v1/grants/"+g+"/approve", date)) })
		e.as(approver2).command(http.StatusOK, "/v1/grants/"+g+"/approve", date)
	}

	// Clerk reviews own application.
	{
		g := e.as(clerkReviewer).command(http.StatusCreated, "/v1/grants", map[string]any{"talent_id": talents["Ren Mori"], "program_id": "transport",
			"amount_requested": "18000.00", "document_ref": "PHRS-APP-10", "effective_date": "2024-02-01"})
		review := map[string]any{"decision": "approve", "effective_date": "2024-02-02"}
		unchanged("reviewing own entry", func() { refused(e.as(clerkReviewer).post("/v1/grants/"+g+"/review", review)) })
		e.as(reviewer1).command(http.StatusOK, "/v1/grants/"+g+"/review", review)
		wantEqual(t, "state", fetch[grantJSON](e.as(auditor), "/v1/grants/"+g).State, "reviewed")
	}
}
