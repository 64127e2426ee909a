package http_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

type statementJSON struct {
	ID        string `json:"id"`
	Statement struct {
		StatementID string `json:"statement_id"`
		Lines       []struct {
			Line      int    `json:"line"`
			Reference string `json:"reference"`
			Outcome   string `json:"outcome"`
			Kind      string `json:"kind"`
			PaymentID string `json:"payment_id"`
			GrantID   string `json:"grant_id"`
			Expected  string `json:"expected"`
			Note      string `json:"note"`
		} `json:"lines"`
		Matched    int `json:"matched"`
		Mismatched int `json:"mismatched"`
		Unmatched  int `json:"unmatched"`
	} `json:"statement"`
}

// readBankFile parses a CSV download after its byte-order mark.
func readBankFile(t *testing.T, r *response) [][]string {
	t.Helper()
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("%s: want a CSV file", r)
	}
	body := string(r.body)
	if !strings.HasPrefix(body, "\xEF\xBB\xBF") {
		t.Errorf("%s: no byte-order mark", r)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\xEF\xBB\xBF"))).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	return rows
}

// TestOfficerReconcilesTheBank releases a batch, writes its bank file in
// the default and in a chosen layout, and imports the bank's statement:
// each line is matched to its payment or recovery by reference and
// amount, or listed as mismatched or unmatched with the reason; the same
// statement is not imported twice; a malformed statement is refused with
// its line numbers and nothing is appended.
func TestOfficerReconcilesTheBank(t *testing.T) {
	e := newTestServer(t)
	p := quickProgram("relocation", "50000.00")
	p.ServiceMonths = 12
	e.setupProgram(p, "1000000.00")
	register := func(name, account string) string {
		return e.as(clerk1).command(http.StatusCreated, "/v1/talents", map[string]any{"name": name, "tier": "B", "employer": "Pinghu Optics",
			"bank_account": account, "bank_name": "浙江平湖农村商业银行", "effective_date": "2024-01-02"})
	}
	ana, ben := register("Ana Lima", "6228 4801 0000 0001"), register("陈静", "6228 4801 0000 0002")
	g1, g2 := e.approvedGrant(ana, "relocation", "10000.00"), e.approvedGrant(ben, "relocation", "20000.00")
	var pids []string
	for _, g := range []string{g1, g2} {
		pid := e.as(clerk1).command(http.StatusCreated, "/v1/grants/"+g+"/installments/1/payments", map[string]any{"effective_date": "2024-02-05"})
		e.as(approver1).command(http.StatusOK, "/v1/payments/"+pid+"/approve", map[string]any{"effective_date": "2024-02-05"})
		pids = append(pids, pid)
	}
	rel := decodeAs[batchJSON](t, e.as(treasurer1).post("/v1/payments/batch-release", map[string]any{"payment_ids": pids, "effective_date": "2024-02-06"}, "rel-feb"))
	if rel.Succeeded != 2 {
		t.Fatalf("release: %+v", rel)
	}
	ref1, ref2 := rel.Results[0].BankReference, rel.Results[1].BankReference

	rows := readBankFile(t, e.as(treasurer1).get("/v1/payments/bank-file?batch="+rel.Batch))
	want := [][]string{{"收款人户名", "收款账号", "开户银行", "金额", "业务参考号"},
		{"Ana Lima", "6228 4801 0000 0001", "浙江平湖农村商业银行", "10000.00", ref1},
		{"陈静", "6228 4801 0000 0002", "浙江平湖农村商业银行", "20000.00", ref2}}
	if !equalRows(rows, want) {
		t.Errorf("bank file: %q, want %q", rows, want)
	}
	rows = readBankFile(t, e.as(auditor).get("/v1/payments/bank-file?batch="+rel.Batch+"&columns=reference,amount,payment_id&lang=EN"))
	want = [][]string{{"Reference", "Amount", "Payment ID"}, {ref1, "10000.00", pids[0]}, {ref2, "20000.00", pids[1]}}
	if !equalRows(rows, want) {
		t.Errorf("bank file, chosen columns: %q, want %q", rows, want)
	}
	wantProblem(t, e.as(treasurer1).get("/v1/payments/bank-file?batch="+rel.Batch+"&columns=amount,iban"), 400, "invalid")
	wantProblem(t, e.as(treasurer1).get("/v1/payments/bank-file?batch=RB0000000000"), 404, "not_found")
	wantProblem(t, e.as(treasurer1).get("/v1/payments/bank-file"), 400, "invalid")

	// Ana leaves half-way through her service: a clawback, part of it
	// recovered.
	e.as(clerk1).command(http.StatusOK, "/v1/talents/"+ana+"/departure", map[string]any{"departure_date": "2024-08-05", "effective_date": "2024-08-06"})
	e.as(approver1).command(http.StatusOK, "/v1/grants/"+g1+"/terminate", map[string]any{"effective_date": "2024-08-06"})
	e.as(treasurer1).command(http.StatusCreated, "/v1/grants/"+g1+"/recoveries", map[string]any{"amount": "2000.00", "bank_reference": "REC-0001", "effective_date": "2024-08-10"})

	csvText := "value_date,reference,amount,counterparty\r\n" +
		"2024-02-06," + ref1 + ",-10000.00,Ana Lima\r\n" +
		"2024-02-06," + ref2 + ",-19999.00,陈静\r\n" +
		"2024-08-10,REC-0001,2000.00,Ana Lima\r\n" +
		"2024-08-11,UNKNOWN-9,-5.00,?\r\n" +
		"2024-08-12," + ref1 + ",-10000.00,Ana Lima\r\n"
	csvHeader := map[string]string{"Content-Type": "text/csv", "Idempotency-Key": "stmt-aug"}
	r := e.as(treasurer1).do("POST", "/v1/bank/statements", csvText, csvHeader)
	if r.status != http.StatusCreated {
		t.Fatalf("%s: want 201", r)
	}
	st := decodeAs[statementJSON](t, r)
	type outcome struct{ outcome, kind, id string }
	wantLines := []outcome{{"matched", "payment", pids[0]}, {"mismatched", "payment", pids[1]}, {"matched", "recovery", g1},
		{"unmatched", "", ""}, {"mismatched", "payment", pids[0]}}
	for i, l := range st.Statement.Lines {
		id := l.PaymentID
		if l.Kind == "recovery" {
			id = l.GrantID
		}
		if got := (outcome{l.Outcome, l.Kind, id}); got != wantLines[i] || l.Line != i+2 {
			t.Errorf("line %d: %+v, want %+v", l.Line, got, wantLines[i])
		}
		if l.Outcome != "matched" && l.Note == "" {
			t.Errorf("line %d is %s without a note", l.Line, l.Outcome)
		}
	}
	if st.Statement.Lines[1].Expected != "-20000.00" || !strings.Contains(st.Statement.Lines[4].Note, "line 2") {
		t.Errorf("mismatches say too little: %+v", st.Statement.Lines)
	}
	if st.Statement.Matched != 2 || st.Statement.Mismatched != 2 || st.Statement.Unmatched != 1 {
		t.Errorf("counts: %+v", st.Statement)
	}
	// The same file again: a retry with its key gets the first answer; without, it is refused.
	if again := e.as(treasurer1).do("POST", "/v1/bank/statements", csvText, csvHeader); again.status != 201 || string(again.body) != string(r.body) {
		t.Errorf("retried import: %s", again)
	}
	wantProblem(t, e.as(treasurer1).do("POST", "/v1/bank/statements", csvText, map[string]string{"Content-Type": "text/csv"}), 409, "conflict")

	reg := fetch[struct {
		Payments []struct {
			ID           string `json:"id"`
			ReconciledIn string `json:"reconciled_in"`
		} `json:"payments"`
	}](e.as(auditor), "/v1/payments")
	if reg.Payments[0].ReconciledIn != st.ID || reg.Payments[1].ReconciledIn != "" {
		t.Errorf("register after the statement: %+v, want only %s reconciled in %s", reg.Payments, pids[0], st.ID)
	}
	// A later statement naming the matched payment again is mismatched.
	later := decodeAs[statementJSON](t, e.as(treasurer1).do("POST", "/v1/bank/statements",
		"value_date,reference,amount\n2024-09-01,"+ref1+",-10000.00\n2024-09-01,"+ref2+",-20000.00\n", map[string]string{"Content-Type": "text/csv"}))
	if l := later.Statement.Lines; l[0].Outcome != "mismatched" || !strings.Contains(l[0].Note, st.ID) || l[1].Outcome != "matched" {
		t.Errorf("later statement: %+v", l)
	}
	list := fetch[struct {
		Statements []struct {
			StatementID string `json:"statement_id"`
			Lines       int    `json:"lines"`
		} `json:"statements"`
	}](e.as(auditor), "/v1/bank/statements")
	if len(list.Statements) != 2 || list.Statements[0].Lines != 5 || list.Statements[1].Lines != 2 {
		t.Errorf("statements: %+v", list)
	}
	one := fetch[struct {
		StatementID string `json:"statement_id"`
		Lines       []struct {
			Outcome string `json:"outcome"`
		} `json:"lines"`
	}](e.as(auditor), "/v1/bank/statements/"+st.ID)
	if one.StatementID != st.ID || len(one.Lines) != 5 || one.Lines[3].Outcome != "unmatched" {
		t.Errorf("GET the statement: %+v", one)
	}

	// Malformed: every bad line named, nothing appended.
	before := e.lastPosition()
	bad := "value_date,reference,amount\n2024-13-01,A,-1.00\n2024-09-01,B,-1.00\n2024-09-01,,-1.00\n2024-09-01,C,abc\n2024-09-01,D\n"
	r = e.as(treasurer1).do("POST", "/v1/bank/statements", bad, map[string]string{"Content-Type": "text/csv"})
	wantProblem(t, r, 400, "invalid")
	var prob struct {
		Lines []struct {
			Line   int    `json:"line"`
			Detail string `json:"detail"`
		} `json:"lines"`
	}
	if err := json.Unmarshal(r.body, &prob); err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, l := range prob.Lines {
		lines = append(lines, l.Line)
	}
	if len(lines) != 4 || lines[0] != 2 || lines[1] != 4 || lines[2] != 5 || lines[3] != 6 {
		t.Errorf("malformed lines %v (%+v), want 2, 4, 5, 6", lines, prob.Lines)
	}
	wantProblem(t, e.as(treasurer1).do("POST", "/v1/bank/statements", "date,ref,amount\n2024-09-01,A,-1.00\n", map[string]string{"Content-Type": "text/csv"}), 400, "invalid")
	wantProblem(t, e.as(treasurer1).do("POST", "/v1/bank/statements", "value_date,reference,amount\n", map[string]string{"Content-Type": "text/csv"}), 400, "invalid")
	wantProblem(t, e.as(treasurer1).post("/v1/bank/statements", map[string]any{"lines": []string{}}), 415, "unsupported_media_type")
	if e.lastPosition() != before {
		t.Error("a refused statement appended")
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") {
			return false
		}
	}
	return true
}
