package http_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
)

// parallel runs f(0..n-1) on at most workers goroutines and waits.
func parallel(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// TestConcurrentApprovalsNeverOverdraw sends 50 approvals of 100,000.00 at
// once against a budget of 1,000,000.00: exactly ten fit. Each grant is
// another talent's, so that only the budget limits them.
func TestConcurrentApprovalsNeverOverdraw(t *testing.T) {
	for name, opts := range map[string][]envOption{"one_of_several": nil, "sole_writer": {asSoleWriter()}} {
		t.Run(name, func(t *testing.T) { checkConcurrentApprovalsNeverOverdraw(t, newTestServer(t, opts...)) })
	}
}

func checkConcurrentApprovalsNeverOverdraw(t *testing.T, e *testEnv) {
	e.setupProgram(quickProgram("transport", "100000.00"), "1000000.00")
	const n = 50
	talents := make([]string, n)
	for i := range talents {
		talents[i] = e.registerTalent(fmt.Sprintf("Talent %d", i), "B")
	}
	grants := e.reviewedGrants(clerk1, "transport", "100000.00", talents, "2024-02-01", "2024-02-02")

	before := e.lastPosition()
	results := make([]*response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range grants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = e.send("POST", "/v1/grants/"+grants[i]+"/approve",
				request{token: e.tokens[approver1], body: []byte(`{"effective_date":"2024-03-01"}`)})
		}()
	}
	close(start)
	wg.Wait()

	approved, refused := 0, 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("approve %d: %v", i, errs[i])
		}
		checkHeaders(t, r)
		switch r.status {
		case http.StatusOK:
			approved++
			e.seen(parsePosition(t, decodeAs[answer](t, r).Position))
		case http.StatusUnprocessableEntity:
			refused++
			wantProblem(t, r, http.StatusUnprocessableEntity, "insufficient_funds")
		default:
			t.Errorf("%s: unexpected status", r)
		}
	}
	if approved != 10 || refused != 40 {
		t.Fatalf("%d approved and %d refused, want 10 and 40", approved, refused)
	}
	// Each approval writes the talent's entitlement reservation, the
	// budget reservation and the approval. A refusal reserves no budget;
	// one that lost the race for the budget after reserving the talent's
	// entitlement gives it back, and nothing else is written.
	written := map[string]int{}
	for _, ev := range e.events() {
		if before.Before(ev.Position) {
			name, _, _ := domain.ParseEventType(ev.Type)
			written[name]++ // every version of a type
		}
	}
	wantEqual(t, "GrantApproved events", written[domain.TypeGrantApproved], approved)
	wantEqual(t, "BudgetReserved events", written[domain.TypeBudgetReserved], approved)
	wantEqual(t, "entitlements reserved and not given back", written[domain.TypeEntitlementReserved]-written[domain.TypeEntitlementReleased], approved)
	delete(written, domain.TypeGrantApproved)
	delete(written, domain.TypeBudgetReserved)
	delete(written, domain.TypeEntitlementReserved)
	delete(written, domain.TypeEntitlementReleased)
	if len(written) != 0 {
		t.Errorf("approvals also wrote %v", written)
	}

	b := fetch[budgetJSON](e.as(auditor), "/v1/programs/transport/budgets/2024")
	wantEqual(t, "available", b.Available, "0.00")
	wantEqual(t, "reserved", b.Reserved, "1000000.00")
	wantEqual(t, "paid", b.Paid, "0.00")
	wantEqual(t, "grants reserved", b.Grants, 10)

	type list struct {
		Total int `json:"total"`
	}
	wantEqual(t, "approved grants", fetch[list](e.as(auditor), "/v1/grants?program=transport&state=approved").Total, 10)
	wantEqual(t, "grants still reviewed", fetch[list](e.as(auditor), "/v1/grants?program=transport&state=reviewed").Total, 40)

	wantBalances(t, "after approvals", books(e.as(auditor), ""), map[string]string{
		"budget:transport:2024:available":  "0.00",
		"budget:transport:2024:encumbered": "1000000.00",
		"treasury:2024:appropriation":      "-1000000.00",
	})
}

// TestConcurrentApprovalsOfOneTalent approves many grants of one talent at
// once under a program that deducts benefits already received: each
// approval reads the talent's other grants, and none may wait on another
// for ever. The tier cap bounds the total of all the talent's grants under
// the program: exactly six awards of 100,000.00 fit the tier-B cap of
// 600,000.00, and the other ten are refused.
func TestConcurrentApprovalsOfOneTalent(t *testing.T) {
	for name, opts := range map[string][]envOption{"one_of_several": nil, "sole_writer": {asSoleWriter()}} {
		t.Run(name, func(t *testing.T) { checkConcurrentApprovalsOfOneTalent(t, newTestServer(t, opts...)) })
	}
}

func checkConcurrentApprovalsOfOneTalent(t *testing.T, e *testEnv) {
	rent := quickProgram("rent", "6000.00")
	rent.Kind = "rent"
	e.setupProgram(rent, "3000000.00")
	housing := quickProgram("housing", "600000.00")
	housing.Kind, housing.DeductKinds = "housing_purchase", []string{"rent", "apartment_rent"}
	e.setupProgram(housing, "30000000.00")
	talent := e.registerTalent("Maria Rossi", "B")
	e.pay(e.approvedGrant(talent, "rent", "6000.00"), 1, "2024-02-05", clerk1, approver2, treasurer1)

	const n, fit = 16, 6
	same := make([]string, n)
	for i := range same {
		same[i] = talent
	}
	grants := e.reviewedGrants(clerk1, "housing", "100000.00", same, "2024-02-06", "2024-02-07")
	wantEqual(t, "talent's grants", len(fetch[talentJSON](e.as(clerk1), "/v1/talents/"+talent).Grants), n+1)

	results := make([]*response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range grants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			who := []string{approver1, approver2}[i%2]
			results[i], errs[i] = e.send("POST", "/v1/grants/"+grants[i]+"/approve",
				request{token: e.tokens[who], body: []byte(`{"effective_date":"2024-03-01"}`)})
		}()
	}
	close(start)
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		e.abandoned = true
		t.Fatalf("%d concurrent approvals of one talent's grants did not finish: they wait on each other", n)
	}
	approved := map[string]bool{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("approve %d: %v", i, errs[i])
		}
		checkHeaders(t, r)
		switch r.status {
		case http.StatusOK:
			approved[grants[i]] = true
			e.seen(parsePosition(t, decodeAs[answer](t, r).Position))
		case http.StatusUnprocessableEntity:
			wantProblem(t, r, http.StatusUnprocessableEntity, "entitlement_exhausted")
		default:
			t.Errorf("%s: unexpected status", r)
		}
	}
	if len(approved) != fit {
		t.Fatalf("%d of %d grants approved, want %d", len(approved), n, fit)
	}
	for _, g := range grants {
		v := fetch[grantJSON](e.as(auditor), "/v1/grants/"+g)
		switch {
		case !approved[g]:
			if v.State != "reviewed" || v.Award != "0.00" {
				t.Errorf("refused grant %s: %s award %s, want reviewed without an award", g, v.State, v.Award)
			}
		case v.State != "approved" || v.Award != "100000.00" || v.Amount != "94000.00":
			t.Errorf("grant %s: %s award %s amount %s, want approved 100000.00 less the 6000.00 of rent", g, v.State, v.Award, v.Amount)
		}
	}
	wantEqual(t, "housing reserved", fetch[budgetJSON](e.as(auditor), "/v1/programs/housing/budgets/2024").Reserved, "564000.00")
	// The cap is spent: a seventeenth grant is refused too.
	late := e.reviewedGrants(clerk1, "housing", "10000.00", []string{talent}, "2024-03-01", "2024-03-01")[0]
	wantProblem(t, e.as(approver1).post("/v1/grants/"+late+"/approve", map[string]any{"effective_date": "2024-03-01"}),
		http.StatusUnprocessableEntity, "entitlement_exhausted")
}

// TestReleaseIsPaidOnce retries a release with one Idempotency-Key, ten
// times at once and then three times in turn: the bank is paid once, and
// every retry gets the first answer back without a write.
func TestReleaseIsPaidOnce(t *testing.T) {
	for name, opts := range map[string][]envOption{"one_of_several": nil, "sole_writer": {asSoleWriter()}} {
		t.Run(name, func(t *testing.T) { checkReleaseIsPaidOnce(t, newTestServer(t, opts...)) })
	}
}

func checkReleaseIsPaidOnce(t *testing.T, e *testEnv) {
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	grant := e.approvedGrant(e.registerTalent("Hans Becker", "C"), "transport", "18000.00")
	pid := e.as(clerk1).command(http.StatusCreated, "/v1/grants/"+grant+"/installments/1/payments", map[string]any{"effective_date": "2024-02-05"})
	e.as(approver2).command(http.StatusOK, "/v1/payments/"+pid+"/approve", map[string]any{"effective_date": "2024-02-05"})

	const key = "release-2024-02-05-0001"
	release := request{token: e.tokens[treasurer1], body: []byte(`{"bank_reference": "ICBC-20240205-0001", "effective_date": "2024-02-05"}`),
		header: map[string]string{"Idempotency-Key": key}}
	path := "/v1/payments/" + pid + "/release"

	const n = 10
	results := make([]*response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = e.send("POST", path, release)
		}()
	}
	close(start)
	wg.Wait()

	var first []byte
	replayed := 0
	check := func(r *response) {
		t.Helper()
		checkHeaders(t, r)
		if r.status != http.StatusOK {
			t.Fatalf("%s: want 200", r)
		}
		if first == nil {
			first = r.body
		} else if !bytes.Equal(r.body, first) {
			t.Errorf("answers differ:\n%s\n%s", first, r.body)
		}
		if r.header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("release %d: %v", i, errs[i])
		}
		check(r)
	}
	if replayed != n-1 {
		t.Errorf("%d of %d concurrent answers were replays, want %d", replayed, n, n-1)
	}
	a := decodeAs[answer](t, results[0])
	wantEqual(t, "answered payment", a.ID, pid)
	e.seen(parsePosition(t, a.Position))

	after := e.lastPosition()
	for i := 0; i < 3; i++ {
		replayed = 0
		r, err := e.send("POST", path, release)
		if err != nil {
			t.Fatal(err)
		}
		check(r)
		if replayed != 1 {
			t.Errorf("sequential retry %d: Idempotent-Replayed = %q, want true", i, r.header.Get("Idempotent-Replayed"))
		}
	}
	// White space does not make a different request.
	spaced := release
	spaced.body = []byte(`{"bank_reference":"ICBC-20240205-0001","effective_date":"2024-02-05"}`)
	r, err := e.send("POST", path, spaced)
	if err != nil {
		t.Fatal(err)
	}
	replayed = 0
	check(r)
	wantEqual(t, "replayed with other white space", replayed, 1)
	// The same key with another body is refused.
	other := release
	other.body = []byte(`{"bank_reference": "ICBC-20240205-0002", "effective_date": "2024-02-05"}`)
	r, err = e.send("POST", path, other)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, r, http.StatusConflict, "idempotency_mismatch")
	// The key belongs to its principal: another treasurer's request under
	// it is a new command, refused because the payment is already out.
	wantProblem(t, e.as(treasurer2).post(path, release.body, key), http.StatusConflict, "conflict")
	// And without a key a second release is refused too.
	wantProblem(t, e.as(treasurer2).post(path, release.body), http.StatusConflict, "conflict")
	if got := e.lastPosition(); got != after {
		t.Errorf("log position moved from %s to %s on retries", after, got)
	}

	released := 0
	for _, ev := range e.events() {
		if ev.Type == domain.TypePaymentReleased {
			released++
		}
	}
	wantEqual(t, "PaymentReleased events", released, 1)
	g := fetch[grantJSON](e.as(auditor), "/v1/grants/"+grant)
	wantEqual(t, "grant paid", g.Paid, "18000.00")
	wantEqual(t, "payments", len(g.Payments), 1)
	if len(g.Payments) == 1 {
		p := g.Payments[0]
		wantEqual(t, "payment state", p.State, "released")
		wantEqual(t, "bank reference", p.BankReference, "ICBC-20240205-0001")
		wantEqual(t, "released by", p.ReleasedBy, treasurer1)
	}
	b := fetch[budgetJSON](e.as(auditor), "/v1/programs/transport/budgets/2024")
	wantEqual(t, "budget paid", b.Paid, "18000.00")
	wantEqual(t, "budget available", b.Available, "1482000.00")
}

func parsePosition(t testing.TB, s string) eventstore.Position {
	t.Helper()
	p, err := eventstore.ParsePosition(s)
	if err != nil {
		t.Fatalf("position %q: %v", s, err)
	}
	return p
}

// TestIdempotentCreation retries commands that create things: the retries
// answer with the same IDs and create nothing more, and a key cannot be
// reused with another body, nor on another endpoint of what it created.
func TestIdempotentCreation(t *testing.T) {
	for name, opts := range map[string][]envOption{"one_of_several": nil, "sole_writer": {asSoleWriter()}} {
		t.Run(name, func(t *testing.T) { checkIdempotentCreation(t, newTestServer(t, opts...)) })
	}
}

func checkIdempotentCreation(t *testing.T, e *testEnv) {
	e.setupProgram(quickProgram("transport", "18000.00"), "1500000.00")
	body := map[string]any{"name": "Olivier Dubois", "tier": "A", "employer": "Pinghu New Energy Tech"}

	first := e.as(clerk1).post("/v1/talents", body, "register-dubois")
	if first.status != http.StatusCreated {
		t.Fatalf("%s: want 201", first)
	}
	talent := decodeAs[answer](t, first).ID
	again := e.as(clerk1).post("/v1/talents", body, "register-dubois")
	if again.status != http.StatusCreated || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry: %s, want the first answer %s replayed", again, first.body)
	}
	// Another clerk's key of the same name is another command.
	other := e.as(clerk2).command(http.StatusCreated, "/v1/talents", body)
	if other == talent {
		t.Errorf("two registrations share the ID %s", talent)
	}
	wantEqual(t, "TalentRegistered events", countEvents(e, domain.TypeTalentRegistered), 2)

	// The key answered this registration: another registration under it,
	// or a departure of the talent it registered, is refused rather than
	// answered with the talent, and records nothing.
	renamed := map[string]any{"name": "Olivier Dupont", "tier": "A", "employer": "Pinghu New Energy Tech"}
	wantProblem(t, e.as(clerk1).post("/v1/talents", renamed, "register-dubois"), http.StatusConflict, "idempotency_mismatch")
	wantProblem(t, e.as(clerk1).post("/v1/talents/"+talent+"/departure", map[string]any{"departure_date": "2024-01-31"}, "register-dubois"),
		http.StatusConflict, "idempotency_mismatch")
	wantEqual(t, "TalentRegistered events", countEvents(e, domain.TypeTalentRegistered), 2)
	wantEqual(t, "TalentDeparted events", countEvents(e, domain.TypeTalentDeparted), 0)

	application := map[string]any{"talent_id": talent, "program_id": "transport", "amount_requested": "18000.00", "document_ref": "PHRS-APP-41"}

	const n = 6
	paths := make([]string, n)
	rqs := make([]request, n)
	for i := range rqs {
		paths[i] = "/v1/grants"
		rqs[i] = request{token: e.tokens[clerk1], body: marshal(t, application), header: map[string]string{"Idempotency-Key": "apply-dubois"}}
	}
	rs := race(t, e, "POST", paths, rqs)
	for _, r := range rs {
		if r.status != http.StatusCreated || !bytes.Equal(r.body, rs[0].body) {
			t.Errorf("%s: want 201 %s", r, rs[0].body)
		}
	}
	grant := decodeAs[answer](t, rs[0]).ID
	e.seen(parsePosition(t, decodeAs[answer](t, rs[0]).Position))
	wantEqual(t, "GrantApplied events", countEvents(e, domain.TypeGrantApplied), 1)
	// The same key for another talent's application is refused.
	otherApplication := map[string]any{"talent_id": other, "program_id": "transport", "amount_requested": "18000.00", "document_ref": "PHRS-APP-42"}
	wantProblem(t, e.as(clerk1).post("/v1/grants", otherApplication, "apply-dubois"), http.StatusConflict, "idempotency_mismatch")
	wantEqual(t, "GrantApplied events", countEvents(e, domain.TypeGrantApplied), 1)
	tv := fetch[talentJSON](e.as(clerk1), "/v1/talents/"+talent)
	if len(tv.Grants) != 1 || tv.Grants[0] != grant {
		t.Errorf("talent's grants = %v, want [%s]", tv.Grants, grant)
	}
}
