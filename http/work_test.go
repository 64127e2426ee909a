package http_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

type inboxQueueJSON struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Items []struct {
		GrantID     string `json:"grant_id"`
		PaymentID   string `json:"payment_id"`
		Installment int    `json:"installment"`
		TalentName  string `json:"talent_name"`
		Since       string `json:"since"`
		DaysOverdue int    `json:"days_overdue"`
		Action      string `json:"action"`
		Reason      string `json:"reason"`
	} `json:"items"`
	SegregatedCount int `json:"segregated_count"`
	Segregated      []struct {
		GrantID   string `json:"grant_id"`
		PaymentID string `json:"payment_id"`
		Reason    string `json:"reason"`
	} `json:"segregated"`
}

type inboxJSON struct {
	Today  string           `json:"today"`
	Queues []inboxQueueJSON `json:"queues"`
}

// queue returns the inbox's queue by name, failing when it is absent.
func (in inboxJSON) queue(t *testing.T, name string) (count int, items []string, segregated []string) {
	t.Helper()
	for _, q := range in.Queues {
		if q.Name == name {
			for _, it := range q.Items {
				id := it.PaymentID
				if id == "" {
					id = it.GrantID
				}
				items = append(items, id)
			}
			for _, it := range q.Segregated {
				id := it.PaymentID
				if id == "" {
					id = it.GrantID
				}
				if it.Reason == "" {
					t.Errorf("%s: segregated item %s without a reason", name, id)
				}
				segregated = append(segregated, id)
			}
			if len(q.Segregated) != q.SegregatedCount {
				t.Errorf("%s: %d segregated listed, count %d", name, len(q.Segregated), q.SegregatedCount)
			}
			return q.Count, items, segregated
		}
	}
	t.Fatalf("inbox has no queue %s: %+v", name, in)
	return 0, nil, nil
}

func hasQueue(in inboxJSON, name string) bool {
	return slices.ContainsFunc(in.Queues, func(q inboxQueueJSON) bool {
		return q.Name == name
	})
}

// TestInboxFollowsTheGrant walks grants through review, the public notice
// and approval: each step's item is in the inbox of the role that takes
// it, and leaves it once taken. What the principal entered or reviewed is
// listed apart, with the reason, for that principal alone.
func TestInboxFollowsTheGrant(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	a := e.registerTalent("王小明", "B")
	b := e.registerTalent("Sophie Martin", "B")
	mine := e.apply(clerkReviewer, a, "housing", "100000.00", "2024-01-08")
	other := e.apply(clerk1, b, "housing", "100000.00", "2024-01-08")

	n, items, seg := fetch[inboxJSON](e.as(clerkReviewer), "/v1/inbox").queue(t, "applications_to_review")
	if n != 1 || !slices.Equal(items, []string{other}) || !slices.Equal(seg, []string{mine}) {
		t.Errorf("clerk-reviewer's review queue: %d %v apart %v; want %s, and %s apart", n, items, seg, other, mine)
	}
	n, items, _ = fetch[inboxJSON](e.as(reviewer1), "/v1/inbox").queue(t, "applications_to_review")
	if n != 2 || !slices.Equal(items, []string{mine, other}) {
		t.Errorf("reviewer1's review queue: %d %v, want both", n, items)
	}
	if in := fetch[inboxJSON](e.as(clerk1), "/v1/inbox"); hasQueue(in, "applications_to_review") || !hasQueue(in, "installments_due") {
		t.Errorf("a clerk's inbox has the clerk's queues only: %+v", in)
	}

	for _, g := range []string{mine, other} {
		e.review(g, "2024-01-08")
		e.as(reviewer1).command(http.StatusOK, "/v1/grants/"+g+"/notice", map[string]any{"effective_date": "2024-01-08"})
	}
	// Five working days from Monday 2024-01-08: it may close on the 16th.
	e.clock.setDate("2024-01-15")
	if n, _, _ := fetch[inboxJSON](e.as(reviewer1), "/v1/inbox").queue(t, "notices_ready_to_close"); n != 0 {
		t.Errorf("notices ready to close on 2024-01-15: %d, want 0 (the notice has run 4 working days)", n)
	}
	e.clock.setDate("2024-01-16")
	if n, _, _ := fetch[inboxJSON](e.as(reviewer1), "/v1/inbox").queue(t, "notices_ready_to_close"); n != 2 {
		t.Errorf("notices ready to close on 2024-01-16: %d, want 2", n)
	}
	for _, g := range []string{mine, other} {
		e.as(reviewer1).command(http.StatusOK, "/v1/grants/"+g+"/notice/close", map[string]any{"effective_date": "2024-01-16"})
	}
	n, items, seg = fetch[inboxJSON](e.as(reviewerApprover), "/v1/inbox").queue(t, "grants_to_approve")
	if n != 2 || len(seg) != 0 {
		t.Errorf("grants to approve for a reviewer-approver who touched neither: %d %v apart %v", n, items, seg)
	}
	n, _, seg = fetch[inboxJSON](e.as(clerkApprover), "/v1/inbox").queue(t, "grants_to_approve")
	if n != 2 || len(seg) != 0 {
		t.Errorf("grants to approve for clerkApprover: %d apart %v", n, seg)
	}
	// The clerk-reviewer entered one and reviewed none: approving is not
	// theirs at all (no approver role), so the queue is not shown.
	if hasQueue(fetch[inboxJSON](e.as(clerkReviewer), "/v1/inbox"), "grants_to_approve") {
		t.Error("a principal without the approver role is shown grants to approve")
	}
	e.as(approver1).command(http.StatusOK, "/v1/grants/"+other+"/approve", map[string]any{"effective_date": "2024-01-16"})
	n, items, _ = fetch[inboxJSON](e.as(approver2), "/v1/inbox").queue(t, "grants_to_approve")
	if n != 1 || !slices.Equal(items, []string{mine}) {
		t.Errorf("after one approval: %d %v, want only %s", n, items, mine)
	}
	// The approved grant's first installment is due at once.
	in := fetch[inboxJSON](e.as(clerk1), "/v1/inbox")
	if n, items, _ := in.queue(t, "installments_due"); n != 1 || items[0] != other {
		t.Errorf("installments due: %d %v, want %s's first", n, items, other)
	}
	e.clock.setDate("2024-01-26")
	in = fetch[inboxJSON](e.as(clerk1), "/v1/inbox")
	i := slices.IndexFunc(in.Queues, func(q inboxQueueJSON) bool { return q.Name == "installments_due" })
	if q := in.Queues[i]; len(q.Items) != 1 || q.Items[0].DaysOverdue != 10 || q.Items[0].Installment != 1 || q.Items[0].Since != "2024-01-16" {
		t.Errorf("ten days later: %+v, want installment 1, due 2024-01-16, 10 days overdue", q.Items)
	}
}

type batchJSON struct {
	Batch   string `json:"batch"`
	Results []struct {
		PaymentID     string `json:"payment_id"`
		Status        int    `json:"status"`
		BankReference string `json:"bank_reference"`
		Problem       *struct {
			Code string `json:"code"`
		} `json:"problem"`
	} `json:"results"`
	Succeeded int    `json:"succeeded"`
	Refused   int    `json:"refused"`
	Position  string `json:"position"`
}

type paymentsJSON struct {
	Payments []struct {
		ID            string `json:"id"`
		State         string `json:"state"`
		TalentName    string `json:"talent_name"`
		Amount        string `json:"amount"`
		BankReference string `json:"bank_reference"`
		ApprovedBy    string `json:"approved_by"`
	} `json:"payments"`
	Total      int    `json:"total"`
	NextCursor string `json:"next_cursor"`
}

// TestBatchesJudgeEachPayment approves and releases payments in batches:
// each item is judged on its own by the same checks as a single command
// (the approver who prepared one is refused that one alone), a retried
// batch appends nothing, and the register lists the payments by state and
// amount, page by page.
func TestBatchesJudgeEachPayment(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "50000.00"), "1000000.00")
	var grants []string
	for i, amt := range []string{"10000.00", "20000.00", "30000.00"} {
		grants = append(grants, e.approvedGrant(e.registerTalent([]string{"Ana", "Ben", "陈静"}[i], "B"), "transport", amt))
	}
	prep := func(who, g string) string {
		return e.as(who).command(http.StatusCreated, "/v1/grants/"+g+"/installments/1/payments", map[string]any{"effective_date": "2024-02-05"})
	}
	p1, p2, p3 := prep(clerk1, grants[0]), prep(clerk1, grants[1]), prep(clerkApprover, grants[2])

	n, items, seg := fetch[inboxJSON](e.as(clerkApprover), "/v1/inbox").queue(t, "payments_to_approve")
	if n != 2 || !slices.Equal(items, []string{p1, p2}) || !slices.Equal(seg, []string{p3}) {
		t.Errorf("payments to approve: %d %v apart %v; want %s %s, and %s apart", n, items, seg, p1, p2, p3)
	}

	r := e.as(clerkApprover).post("/v1/payments/batch-approve", map[string]any{"payment_ids": []string{p1, p2, p3}}, "approve-1")
	if r.status != http.StatusMultiStatus {
		t.Fatalf("%s: want 207", r)
	}
	ba := decodeAs[batchJSON](t, r)
	if ba.Succeeded != 2 || ba.Refused != 1 || ba.Results[2].Problem == nil || ba.Results[2].Problem.Code != "segregation_of_duties" ||
		ba.Results[0].Status != 200 || ba.Results[1].Status != 200 || ba.Results[2].Status != 403 {
		t.Errorf("batch approve: %+v; want p1, p2 approved and p3 refused for segregation of duties", ba)
	}
	before := e.lastPosition()
	again := e.as(clerkApprover).post("/v1/payments/batch-approve", map[string]any{"payment_ids": []string{p1, p2, p3}}, "approve-1")
	if again.status != http.StatusMultiStatus || string(again.body) != string(r.body) {
		t.Errorf("retried batch: %s, want the first answer", again)
	}
	if e.lastPosition() != before {
		t.Error("a retried batch appended")
	}
	// The same payments under another key: each is judged again, on the
	// payment's state now.
	ba = decodeAs[batchJSON](t, e.as(approver1).post("/v1/payments/batch-approve", map[string]any{"payment_ids": []string{p1, p3}}, "approve-2"))
	if ba.Succeeded != 1 || ba.Results[0].Problem == nil || ba.Results[0].Problem.Code != "conflict" || ba.Results[1].Status != 200 {
		t.Errorf("second batch: %+v; want p1 refused (already approved) and p3 approved", ba)
	}

	wantProblem(t, e.as(treasurer1).post("/v1/payments/batch-release", map[string]any{"payment_ids": []string{}}), 400, "invalid")
	wantProblem(t, e.as(treasurer1).post("/v1/payments/batch-release", map[string]any{"payment_ids": []string{p1, p1}}), 400, "invalid")
	many := make([]string, 101)
	for i := range many {
		many[i] = p1 + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	wantProblem(t, e.as(treasurer1).post("/v1/payments/batch-release", map[string]any{"payment_ids": many}), 400, "invalid")
	wantProblem(t, e.as(approver1).post("/v1/payments/batch-release", map[string]any{"payment_ids": []string{p1}}), 403, "forbidden")

	r = e.as(treasurer1).post("/v1/payments/batch-release", map[string]any{"payment_ids": []string{p1, p2, p3}, "effective_date": "2024-02-06"}, "release-1")
	rel := decodeAs[batchJSON](t, r)
	if rel.Succeeded != 3 || rel.Batch == "" {
		t.Fatalf("batch release: %s", r)
	}
	for i, it := range rel.Results {
		if want := rel.Batch + "-00" + string(rune('1'+i)); it.BankReference != want {
			t.Errorf("item %d: bank reference %q, want %q", i, it.BankReference, want)
		}
	}

	reg := fetch[paymentsJSON](e.as(auditor), "/v1/payments?state=RELEASED&limit=2")
	if reg.Total != 3 || len(reg.Payments) != 2 || reg.NextCursor == "" || reg.Payments[0].ID != p1 || reg.Payments[1].ID != p2 {
		t.Fatalf("released, first page: %+v", reg)
	}
	next := fetch[paymentsJSON](e.as(auditor), "/v1/payments?state=released&limit=2&cursor="+reg.NextCursor)
	if len(next.Payments) != 1 || next.Payments[0].ID != p3 || next.NextCursor != "" || next.Payments[0].TalentName != "陈静" {
		t.Errorf("released, second page: %+v", next)
	}
	if got := fetch[paymentsJSON](e.as(auditor), "/v1/payments?min_amount=15000&max_amount=25000"); got.Total != 1 || got.Payments[0].ID != p2 {
		t.Errorf("amount between 15000 and 25000: %+v, want %s", got, p2)
	}
	if got := fetch[paymentsJSON](e.as(auditor), "/v1/payments?released_from=2024-02-07"); got.Total != 0 {
		t.Errorf("released from 2024-02-07: %+v, want none", got)
	}
	wantProblem(t, e.as(auditor).get("/v1/payments?min_amount=30000&max_amount=100"), 400, "invalid")
	wantProblem(t, e.as(auditor).get("/v1/payments?cursor=zz"), 400, "invalid")
	wantProblem(t, e.as(auditor).get("/v1/payments?status=released"), 400, "unknown_parameter")
}

// TestExamplesFollowTheirSchemas checks every JSON example of the API
// description against the schema beside it, so an example never shows a
// shape the API does not answer.
func TestExamplesFollowTheirSchemas(t *testing.T) {
	e := newTestServer(t)
	d := getDoc(t, e.api)
	n := 0
	for _, k := range walkRoutes(t, e.api) {
		method, tpl, _ := strings.Cut(k, " ")
		op := d.op(method, tpl)
		var contents []any
		if rb, ok := op["requestBody"].(map[string]any); ok {
			contents = append(contents, rb["content"])
		}
		for _, r := range op["responses"].(map[string]any) {
			contents = append(contents, r.(map[string]any)["content"])
		}
		for _, c := range contents {
			js, _ := c.(map[string]any)["application/json"].(map[string]any)
			if ex, ok := js["example"]; ok {
				n++
				for _, msg := range d.check(js["schema"], ex, k+" example") {
					t.Error(msg)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no JSON example found")
	}
}
