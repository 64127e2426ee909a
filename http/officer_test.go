package http_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestOfficerClearsTheInbox walks a finance bureau's days through the
// inbox alone: each principal takes the items of their queues by calling
// the action each item names (review, open and close the notice, approve
// the grant, prepare the installment), approves and releases the
// payments in batches, writes the bank file and reconciles the bank's
// statement made from it. At the end every queue is empty and every
// payment is released and matched.
func TestOfficerClearsTheInbox(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	for i, name := range []string{"王小明", "Sophie Martin"} {
		tal := e.as(clerk1).command(http.StatusCreated, "/v1/talents", map[string]any{"name": name, "tier": "B", "employer": "Pinghu Optics",
			"bank_account": "6228 4801 0000 000" + string(rune('1'+i)), "bank_name": "浙江平湖农村商业银行", "effective_date": "2024-01-08"})
		e.apply(clerk1, tal, "housing", "100000.00", "2024-01-08")
	}

	// work takes every item of a principal's queue by its action and
	// returns how many it took.
	bodies := map[string]any{"review": map[string]any{"decision": "approve"}}
	work := func(who, queue string) int {
		t.Helper()
		in := fetch[inboxJSON](e.as(who), "/v1/inbox")
		for _, q := range in.Queues {
			if q.Name != queue {
				continue
			}
			if len(q.Items) != q.Count {
				t.Fatalf("%s's %s: %d items shown of %d", who, queue, len(q.Items), q.Count)
			}
			for _, it := range q.Items {
				method, path, _ := strings.Cut(it.Action, " ")
				if method != "POST" || !strings.HasPrefix(path, "/v1/") {
					t.Fatalf("%s: action %q", queue, it.Action)
				}
				body := bodies[path[strings.LastIndex(path, "/")+1:]]
				if body == nil {
					body = map[string]any{}
				}
				if r := e.as(who).post(path, body); r.status >= 300 {
					t.Fatalf("%s's %s: %s", who, queue, r)
				}
			}
			return q.Count
		}
		t.Fatalf("%s has no queue %s", who, queue)
		return 0
	}
	steps := []struct {
		date, who, queue string
		want             int
	}{
		{"2024-01-08", reviewer1, "applications_to_review", 2},
		{"2024-01-08", reviewer1, "notices_to_open", 2},
		{"2024-01-15", reviewer1, "notices_ready_to_close", 0}, // 4 working days
		{"2024-01-16", reviewer1, "notices_ready_to_close", 2},
		{"2024-01-16", approver1, "grants_to_approve", 2},
		{"2024-01-20", clerk1, "installments_due", 2},
	}
	for _, s := range steps {
		e.clock.setDate(s.date)
		if got := work(s.who, s.queue); got != s.want {
			t.Errorf("%s, %s's %s: took %d items, want %d", s.date, s.who, s.queue, got, s.want)
		}
	}

	// Payments, in batches, by whoever did not prepare them.
	ids := func(who, queue string) []string {
		var out []string
		for _, q := range fetch[inboxJSON](e.as(who), "/v1/inbox").Queues {
			if q.Name == queue {
				for _, it := range q.Items {
					out = append(out, it.PaymentID)
				}
			}
		}
		return out
	}
	toApprove := ids(approver2, "payments_to_approve")
	if len(toApprove) != 2 {
		t.Fatalf("payments to approve: %v", toApprove)
	}
	if ba := decodeAs[batchJSON](t, e.as(approver2).post("/v1/payments/batch-approve", map[string]any{"payment_ids": toApprove}, "appr-0120")); ba.Succeeded != 2 {
		t.Fatalf("batch approve: %+v", ba)
	}
	rel := decodeAs[batchJSON](t, e.as(treasurer1).post("/v1/payments/batch-release",
		map[string]any{"payment_ids": ids(treasurer1, "payments_to_release")}, "rel-0120"))
	if rel.Succeeded != 2 {
		t.Fatalf("batch release: %+v", rel)
	}

	// The bank pays what the file says and sends its statement back.
	file := readBankFile(t, e.as(treasurer1).get("/v1/payments/bank-file?batch="+rel.Batch+"&columns=reference,amount"))
	statement := "value_date,reference,amount\n"
	for _, row := range file[1:] {
		statement += "2024-01-21," + row[0] + ",-" + row[1] + "\n"
	}
	r := e.as(treasurer1).do("POST", "/v1/bank/statements", statement, map[string]string{"Content-Type": "text/csv"})
	if st := decodeAs[statementJSON](t, r); st.Statement.Matched != 2 || st.Statement.Mismatched+st.Statement.Unmatched != 0 {
		t.Errorf("statement: %s", r)
	}

	for who, queues := range map[string][]string{
		reviewer1:  {"applications_to_review", "notices_to_open", "notices_ready_to_close"},
		approver1:  {"grants_to_approve", "payments_to_approve", "clawbacks_outstanding"},
		clerk1:     {"installments_due", "failed_payments"},
		treasurer1: {"payments_to_release"},
	} {
		in := fetch[inboxJSON](e.as(who), "/v1/inbox")
		for _, name := range queues {
			if n, items, seg := in.queue(t, name); n != 0 || len(seg) != 0 {
				t.Errorf("at the end of the day %s's %s holds %v, apart %v", who, name, items, seg)
			}
		}
	}
	reg := fetch[paymentsJSON](e.as(auditor), "/v1/payments?state=released")
	if reg.Total != 2 {
		t.Errorf("released payments: %+v", reg)
	}
}
