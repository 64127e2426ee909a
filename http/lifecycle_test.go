package http_test

import (
	"net/http"
	"sync"
	"testing"

	"talentledger/domain"
)

// race sends the requests at once and returns the answers in order.
func race(t *testing.T, e *testEnv, method string, paths []string, rqs []request) []*response {
	t.Helper()
	out := make([]*response, len(rqs))
	errs := make([]error, len(rqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range rqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = e.send(method, paths[i], rqs[i])
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s %s: %v", method, paths[i], err)
		}
		checkHeaders(t, out[i])
	}
	return out
}

// oneWinner checks that exactly one answer has status win and every other
// is the problem (status, code); it returns the winner.
func oneWinner(t *testing.T, rs []*response, win, status int, code string) *response {
	t.Helper()
	var winner *response
	for _, r := range rs {
		if r.status == win {
			if winner != nil {
				t.Errorf("two winners:\n%s\n%s", winner, r)
			}
			winner = r
			continue
		}
		wantProblem(t, r, status, code)
	}
	if winner == nil {
		t.Fatalf("no request won")
	}
	return winner
}

func countEvents(e *testEnv, typ string) int {
	n := 0
	for _, ev := range e.events() {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// TestConcurrentPaymentSteps races each step of a payment among several
// people, without idempotency keys: each step happens once.
func TestConcurrentPaymentSteps(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	grant := e.approvedGrant(e.registerTalent("Priya Sharma", "C"), "transport", "18000.00")

	const n = 8
	paths := make([]string, n)
	rqs := make([]request, n)
	for i := range rqs {
		paths[i] = "/v1/grants/" + grant + "/installments/1/payments"
		rqs[i] = request{token: e.tokens[[]string{clerk1, clerk2}[i%2]], body: []byte(`{"effective_date":"2024-02-05"}`)}
	}
	prepared := oneWinner(t, race(t, e, "POST", paths, rqs), http.StatusCreated, http.StatusConflict, "conflict")
	pid := decodeAs[answer](t, prepared).ID
	wantEqual(t, "payment id", pid, grant+"-1-1")

	for i := range rqs {
		paths[i] = "/v1/payments/" + pid + "/approve"
		rqs[i] = request{token: e.tokens[[]string{approver1, approver2}[i%2]], body: []byte(`{}`)}
	}
	oneWinner(t, race(t, e, "POST", paths, rqs), http.StatusOK, http.StatusConflict, "conflict")

	for i := range rqs {
		paths[i] = "/v1/payments/" + pid + "/release"
		rqs[i] = request{token: e.tokens[[]string{treasurer1, treasurer2}[i%2]], body: []byte(`{"bank_reference":"ICBC-RACE"}`),
			header: map[string]string{"Idempotency-Key": "release-race-" + string(rune('a'+i))}}
	}
	released := oneWinner(t, race(t, e, "POST", paths, rqs), http.StatusOK, http.StatusConflict, "conflict")
	e.seen(parsePosition(t, decodeAs[answer](t, released).Position))

	wantEqual(t, "PaymentPrepared events", countEvents(e, domain.TypePaymentPrepared), 1)
	wantEqual(t, "PaymentApproved events", countEvents(e, domain.TypePaymentApproved), 1)
	wantEqual(t, "PaymentReleased events", countEvents(e, domain.TypePaymentReleased), 1)
	g := fetch[grantJSON](e.as(auditor), "/v1/grants/"+grant)
	wantEqual(t, "grant state", g.State, "completed")
	wantEqual(t, "grant paid", g.Paid, "18000.00")
	wantEqual(t, "grant due", g.Due, "0.00")
	wantEqual(t, "budget paid", fetch[budgetJSON](e.as(auditor), "/v1/programs/transport/budgets/2024").Paid, "18000.00")
}

// TestFailedAndReversedPayments runs the corrections: a payment the bank
// refused is prepared again as a new attempt; a released payment is
// reversed by a new entry and paid again. The ledger follows each step.
func TestFailedAndReversedPayments(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	talent := e.registerTalent("Carlos Mendes", "C")
	grant := e.as(clerk1).command(http.StatusCreated, "/v1/grants", map[string]any{"talent_id": talent, "program_id": "housing",
		"amount_requested": "350000.00", "document_ref": "PHRS-APP-21", "effective_date": "2024-03-01"})
	g := "/v1/grants/" + grant
	e.as(reviewer1).command(http.StatusOK, g+"/review", map[string]any{"decision": "approve", "effective_date": "2024-03-04"})
	e.as(reviewer1).command(http.StatusOK, g+"/notice", map[string]any{"effective_date": "2024-03-04"})
	// Five working days, Tue 5 – Mon 11: it closes from Tue 12.
	wantEqual(t, "notice closes on", domain.NoticeClosesOn("2024-03-04", 5), "2024-03-12")
	wantProblem(t, e.as(reviewer1).post(g+"/notice/close", map[string]any{"effective_date": "2024-03-11"}), http.StatusConflict, "notice_pending")
	e.as(reviewer1).command(http.StatusOK, g+"/notice/close", map[string]any{"effective_date": "2024-03-12"})
	// Above the tier-C cap of 350,000.00.
	wantProblem(t, e.as(approver1).post(g+"/approve", map[string]any{"award": "350000.01", "effective_date": "2024-03-18"}),
		http.StatusUnprocessableEntity, "cap_exceeded")
	e.as(approver1).command(http.StatusOK, g+"/approve", map[string]any{"effective_date": "2024-03-18"})
	date := map[string]any{"effective_date": "2024-03-18"}

	// The bank refuses the first attempt.
	p1 := e.as(clerk1).command(http.StatusCreated, g+"/installments/1/payments", date)
	e.as(approver2).command(http.StatusOK, "/v1/payments/"+p1+"/approve", date)
	wantProblem(t, e.as(treasurer1).post("/v1/payments/"+p1+"/fail", date), http.StatusBadRequest, "invalid") // no reason
	e.as(treasurer1).command(http.StatusOK, "/v1/payments/"+p1+"/fail", map[string]any{"reason": "account closed", "effective_date": "2024-03-18"})
	wantProblem(t, e.as(treasurer2).post("/v1/payments/"+p1+"/release", map[string]any{"bank_reference": "X"}), http.StatusConflict, "conflict")

	// The second attempt is paid.
	p2 := e.pay(grant, 1, "2024-03-19", clerk2, approver2, treasurer1)
	wantEqual(t, "second attempt", p2, grant+"-1-2")
	paidAcct := "talent:" + talent + ":paid"
	// 2024 holds the first installment, 40 % of 350,000.00.
	wantBalances(t, "after payment", books(e.as(auditor), ""), map[string]string{
		paidAcct:                         "140000.00",
		"budget:housing:2024:encumbered": "0.00",
		"budget:housing:2024:available":  "29860000.00",
	})

	// A reversal by whoever released it is refused; another treasurer may.
	reverse := map[string]any{"reason": "paid to the wrong account", "effective_date": "2024-03-20"}
	wantProblem(t, e.as(treasurer1).post("/v1/payments/"+p2+"/reverse", reverse), http.StatusForbidden, "segregation_of_duties")
	wantProblem(t, e.as(treasurer2).post("/v1/payments/"+p2+"/reverse", map[string]any{}), http.StatusBadRequest, "invalid")
	e.as(treasurer2).command(http.StatusOK, "/v1/payments/"+p2+"/reverse", reverse)
	wantProblem(t, e.as(treasurer2).post("/v1/payments/"+p2+"/reverse", reverse), http.StatusConflict, "conflict")

	v := fetch[grantJSON](e.as(auditor), g)
	wantEqual(t, "paid after reversal", v.Paid, "0.00")
	wantEqual(t, "installment 1 after reversal", v.Installments[0].State, "scheduled")
	b := fetch[budgetJSON](e.as(auditor), "/v1/programs/housing/budgets/2024")
	wantEqual(t, "budget paid after reversal", b.Paid, "0.00")
	wantEqual(t, "budget reserved after reversal", b.Reserved, "140000.00")
	wantEqual(t, "talent paid after reversal", fetch[talentJSON](e.as(auditor), "/v1/talents/"+talent).TotalPaid, "0.00")
	wantBalances(t, "after reversal", books(e.as(auditor), ""), map[string]string{
		paidAcct:                         "0.00",
		"budget:housing:2024:encumbered": "140000.00",
		"budget:housing:2024:available":  "29860000.00",
	})

	// Paid again, as a third attempt; the reversed one stays on record.
	p3 := e.pay(grant, 1, "2024-03-21", clerk1, approver1, treasurer2)
	wantEqual(t, "third attempt", p3, grant+"-1-3")
	v = fetch[grantJSON](e.as(auditor), g)
	wantEqual(t, "paid", v.Paid, "140000.00")
	states := map[string]string{}
	for _, p := range v.Payments {
		states[p.ID] = p.State
	}
	want := map[string]string{p1: "failed", p2: "reversed", p3: "released"}
	for id, s := range want {
		if states[id] != s {
			t.Errorf("payment %s is %q, want %q", id, states[id], s)
		}
	}
	wantEqual(t, "payments", len(states), 3)
	wantEqual(t, "talent paid", fetch[talentJSON](e.as(auditor), "/v1/talents/"+talent).TotalPaid, "140000.00")
	wantBalances(t, "after paying again", books(e.as(auditor), ""), map[string]string{
		paidAcct:                         "140000.00",
		"budget:housing:2024:encumbered": "0.00",
	})

	// A grant with a payment at the bank cannot be terminated; once the
	// bank has answered, it can.
	p4 := e.as(clerk1).command(http.StatusCreated, g+"/installments/2/payments", map[string]any{"effective_date": "2025-03-18"})
	e.as(approver1).command(http.StatusOK, "/v1/payments/"+p4+"/approve", map[string]any{"effective_date": "2025-03-18"})
	e.as(clerk1).command(http.StatusOK, "/v1/talents/"+talent+"/departure", map[string]any{"departure_date": "2025-04-01"})
	terminate := map[string]any{"effective_date": "2025-04-02"}
	wantProblem(t, e.as(approver2).post(g+"/terminate", terminate), http.StatusConflict, "conflict")
	e.as(treasurer1).command(http.StatusOK, "/v1/payments/"+p4+"/fail", map[string]any{"reason": "talent departed"})
	e.as(approver2).command(http.StatusOK, g+"/terminate", terminate)
	// 12 of 60 months served: due = 140,000.00 − 350,000.00 × 12 ÷ 60.
	v = fetch[grantJSON](e.as(auditor), g)
	wantEqual(t, "months served", v.Termination.MonthsServed, 12)
	wantEqual(t, "released", v.Termination.Released, "210000.00")
	wantEqual(t, "clawback", v.Clawback.Assessed, "70000.00")
	b = fetch[budgetJSON](e.as(auditor), "/v1/programs/housing/budgets/2024")
	wantEqual(t, "reserved after termination", b.Reserved, "0.00")
	wantEqual(t, "available after termination", b.Available, "29860000.00")
	wantBalances(t, "after termination", books(e.as(auditor), ""), map[string]string{
		paidAcct:                             "70000.00",
		"talent:" + talent + ":clawback_due": "70000.00",
		"budget:housing:2024:encumbered":     "0.00",
		"budget:housing:2024:available":      "29860000.00",
	})
}

// TestObjectionsHoldTheNotice raises objections during the public notice:
// an open objection holds the notice open; a dismissed one lets it close;
// an upheld one rejects the grant.
func TestObjectionsHoldTheNotice(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	talent := e.registerTalent("Ingrid Larsen", "C")
	noticed := func() string {
		g := e.as(clerk1).command(http.StatusCreated, "/v1/grants", map[string]any{"talent_id": talent, "program_id": "housing",
			"amount_requested": "350000.00", "document_ref": "PHRS-APP-31", "effective_date": "2024-05-06"})
		e.as(reviewer1).command(http.StatusOK, "/v1/grants/"+g+"/review", map[string]any{"decision": "approve", "effective_date": "2024-05-06"})
		e.as(reviewer1).command(http.StatusOK, "/v1/grants/"+g+"/notice", map[string]any{"effective_date": "2024-05-06"})
		return "/v1/grants/" + g
	}
	closeOn := map[string]any{"effective_date": "2024-05-20"}

	g := noticed()
	o := e.as(clerk2).command(http.StatusCreated, g+"/notice/objections", map[string]any{"summary": "employment contract not local"})
	wantProblem(t, e.as(reviewer1).post(g+"/notice/close", closeOn), http.StatusConflict, "notice_pending")
	wantProblem(t, e.as(reviewer2).post(g+"/notice/objections/"+o+"/resolve", map[string]any{"upheld": false}), http.StatusBadRequest, "invalid")
	wantProblem(t, e.as(reviewer2).post(g+"/notice/objections/o0123456789abcdef/resolve", map[string]any{"resolution": "x"}), http.StatusNotFound, "not_found")
	e.as(reviewer2).command(http.StatusOK, g+"/notice/objections/"+o+"/resolve", map[string]any{"upheld": false, "resolution": "contract verified with the employer"})
	e.as(reviewer1).command(http.StatusOK, g+"/notice/close", closeOn)
	e.as(approver1).command(http.StatusOK, g+"/approve", map[string]any{"effective_date": "2024-05-21"})
	v := fetch[grantJSON](e.as(auditor), g)
	wantEqual(t, "state after a dismissed objection", v.State, "approved")

	g = noticed()
	o = e.as(reviewer2).command(http.StatusCreated, g+"/notice/objections", map[string]any{"summary": "already received a subsidy elsewhere"})
	e.as(reviewer1).command(http.StatusOK, g+"/notice/objections/"+o+"/resolve", map[string]any{"upheld": true, "resolution": "confirmed with Jiaxing"})
	wantProblem(t, e.as(reviewer1).post(g+"/notice/close", closeOn), http.StatusConflict, "conflict")
	wantProblem(t, e.as(approver1).post(g+"/approve", map[string]any{"effective_date": "2024-05-21"}), http.StatusConflict, "conflict")
	v = fetch[grantJSON](e.as(auditor), g)
	wantEqual(t, "state after an upheld objection", v.State, "rejected")

	b := fetch[budgetJSON](e.as(auditor), "/v1/programs/housing/budgets/2024")
	wantEqual(t, "reserved", b.Reserved, "140000.00")
	wantEqual(t, "grants reserved", b.Grants, 1)
}
