package http_test

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/projections"
)

const bom = "\xEF\xBB\xBF"

// readCSV checks an export's headers and BOM and returns its records,
// header first.
func readCSV(t *testing.T, r *response, filename string) [][]string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("%s: Content-Type %q", r.path, ct)
	}
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="`+filename+`"` {
		t.Errorf("%s: Content-Disposition %q, want an attachment named %s", r.path, cd, filename)
	}
	// Streamed: flushed as written, so sent chunked, never with a length
	// computed from the whole body.
	if cl := r.header.Get("Content-Length"); cl != "" {
		t.Errorf("%s: Content-Length %s: the export was not streamed", r.path, cl)
	}
	if !bytes.HasPrefix(r.body, []byte(bom)) {
		t.Fatalf("%s: no UTF-8 BOM; starts % x", r.path, r.body[:min(len(r.body), 8)])
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body[len(bom):])).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", r.path, err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: empty", r.path)
	}
	return recs
}

func col(header []string, name string) int {
	for i, h := range header {
		if h == name {
			return i
		}
	}
	panic("no column " + name)
}

// journalLine is one expected line of the journal.
type journalLine struct {
	eventID, position, typ, effective, account, debit, credit string
}

// expectedJournal recomputes the journal from the log: a debit line for the
// destination and a credit line for the source of every posting of every
// event effective in [from, to].
func expectedJournal(t *testing.T, e *testEnv, from, to string) (lines []journalLine, total domain.Money) {
	t.Helper()
	total = domain.Zero
	for _, ev := range e.events() {
		eff := projections.EffectiveDate(&ev)
		if (from != "" && eff < from) || (to != "" && eff > to) {
			continue
		}
		payload, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range domain.Postings(payload) {
			lines = append(lines,
				journalLine{ev.ID.String(), ev.Position.String(), ev.Type, eff, p.Destination, p.Amount.String(), ""},
				journalLine{ev.ID.String(), ev.Position.String(), ev.Type, eff, p.Source, "", p.Amount.String()})
			total = total.Add(p.Amount)
		}
	}
	return lines, total
}

func money(t *testing.T, s string) domain.Money {
	t.Helper()
	m, err := domain.ParseMoney(s)
	if err != nil {
		t.Fatalf("amount %q: %v", s, err)
	}
	return m
}

// checkJournal compares an exported journal with the log's postings.
func checkJournal(t *testing.T, e *testEnv, recs [][]string, from, to string) {
	t.Helper()
	if got, want := strings.Join(recs[0], ","), strings.Join(projections.JournalHeader, ","); got != want {
		t.Fatalf("header %s, want %s", got, want)
	}
	h := recs[0]
	rows := recs[1:]
	want, total := expectedJournal(t, e, from, to)
	if len(rows) != len(want) {
		t.Fatalf("journal from %q to %q: %d lines, want %d", from, to, len(rows), len(want))
	}
	debits, credits := domain.Zero, domain.Zero
	for i, r := range rows {
		got := journalLine{r[col(h, "event_id")], r[col(h, "position")], r[col(h, "type")], r[col(h, "effective_date")],
			r[col(h, "account")], r[col(h, "debit")], r[col(h, "credit")]}
		if got != want[i] {
			t.Errorf("line %d = %+v, want %+v", i+1, got, want[i])
		}
		if d := r[col(h, "debit")]; d != "" {
			debits = debits.Add(money(t, d))
		}
		if c := r[col(h, "credit")]; c != "" {
			credits = credits.Add(money(t, c))
		}
	}
	if debits.Cmp(credits) != 0 || debits.Cmp(total) != 0 {
		t.Errorf("debits %s, credits %s; want both %s", debits, credits, total)
	}
}

func TestExportJournal(t *testing.T) {
	e := newTestServer(t)
	cut, _, _ := pointInTimeLedger(t, e)
	_ = cut
	// A budget whose reason and document carry Chinese text and would be
	// formulas in a spreadsheet.
	e.as(approver1).command(http.StatusCreated, "/v1/programs/q/budgets", map[string]any{"fiscal_year": 2025, "amount": "300000.00",
		"effective_date": "2025-01-02", "reason": "-2+3 补充预算（平湖市财政局）", "document_ref": `=HYPERLINK("http://example.com","平财")`})

	recs := readCSV(t, e.as(auditor).get("/v1/export/journal.csv"), "journal.csv")
	checkJournal(t, e, recs, "", "")
	h := recs[0]
	found := false
	for _, r := range recs[1:] {
		for i, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("column %s holds %q: a formula to a spreadsheet", h[i], cell)
			}
		}
		if r[col(h, "effective_date")] == "2025-01-02" {
			found = true
			wantEqual(t, "reason", r[col(h, "reason")], "'-2+3 补充预算（平湖市财政局）")
			wantEqual(t, "document_ref", r[col(h, "document_ref")], `'=HYPERLINK("http://example.com","平财")`)
			wantEqual(t, "principal", r[col(h, "principal")], approver1)
			wantEqual(t, "role", r[col(h, "role")], "approver")
			wantEqual(t, "stream", r[col(h, "stream")], "budget-q-2025")
		}
		if r[col(h, "type")] == "PaymentReversed" {
			wantEqual(t, "reversal reason", r[col(h, "reason")], "returned by the bank: account closed")
			wantEqual(t, "reversal effective date", r[col(h, "effective_date")], "2024-04-20")
			rec, err := time.Parse(time.RFC3339Nano, r[col(h, "recorded_at")])
			if err != nil || !rec.After(cut) {
				t.Errorf("reversal recorded_at %q, want a time after %s", r[col(h, "recorded_at")], cut)
			}
		}
	}
	if !found {
		t.Error("no line for the 2025 budget")
	}

	// A range of effective dates; both bounds are inclusive.
	for _, rg := range [][2]string{{"2024-03-01", "2024-04-30"}, {"2024-03-10", "2024-03-10"}, {"", "2024-02-05"}, {"2025-01-01", ""}, {"2030-01-01", ""}} {
		q := url.Values{}
		name := "journal"
		if rg[0] != "" {
			q.Set("from", rg[0])
			name += "_from_" + rg[0]
		}
		if rg[1] != "" {
			q.Set("to", rg[1])
			name += "_to_" + rg[1]
		}
		recs := readCSV(t, e.as(approver2).get("/v1/export/journal.csv?"+q.Encode()), name+".csv")
		checkJournal(t, e, recs, rg[0], rg[1])
	}
	// The range 2024-03-10 holds the release of grant 1: one posting.
	if recs := readCSV(t, e.as(auditor).get("/v1/export/journal.csv?from=2024-03-10&to=2024-03-10"), "journal_from_2024-03-10_to_2024-03-10.csv"); len(recs) != 3 {
		t.Errorf("journal of 2024-03-10: %d records, want the header and 2 lines", len(recs))
	}

	for _, q := range []string{"from=2024-02-30", "to=31.12.2024", "from=2024-05-01&to=2024-04-30"} {
		wantProblem(t, e.as(auditor).get("/v1/export/journal.csv?"+q), http.StatusBadRequest, "invalid")
	}
}

func TestExportGrants(t *testing.T) {
	e := newTestServer(t)
	cut, _, _ := pointInTimeLedger(t, e)
	// A talent whose name would run a command in a careless spreadsheet,
	// entered after the cut and dated back to April, with a grant.
	var evil, g3 string
	e.recordedOn("2024-05-10", func() {
		evil = e.as(clerk1).command(http.StatusCreated, "/v1/talents", map[string]any{"name": `=cmd|' /C calc'!A0`, "permit_category": "A",
			"tier": "C", "employer": "Pinghu Precision Optics Co.", "effective_date": "2024-04-25"})
		g3 = e.apply(clerk1, evil, "q", "20000.00", "2024-04-25")
		e.review(g3, "2024-04-26")
	})

	recs := readCSV(t, e.as(auditor).get("/v1/export/grants.csv"), "grants.csv")
	if got, want := strings.Join(recs[0], ","), strings.Join(projections.GrantsHeader, ","); got != want {
		t.Fatalf("header %s, want %s", got, want)
	}
	h := recs[0]
	list := fetch[struct {
		Grants []grantJSON `json:"grants"`
	}](e.as(auditor), "/v1/grants")
	if len(recs)-1 != len(list.Grants) || len(list.Grants) != 3 {
		t.Fatalf("%d register rows, %d grants; want 3", len(recs)-1, len(list.Grants))
	}
	names := map[string]string{}
	for i, g := range list.Grants {
		r := recs[i+1]
		fy := ""
		if g.FiscalYear != 0 {
			fy = "2024"
		}
		for _, c := range []struct{ column, want string }{
			{"grant_id", g.ID}, {"talent_id", g.TalentID}, {"program_id", g.ProgramID}, {"state", g.State},
			{"amount_requested", g.AmountRequested}, {"award", g.Award}, {"amount", g.Amount}, {"fiscal_year", fy},
			{"approved_on", g.ApprovedOn}, {"paid", g.Paid}, {"due", g.Due},
			{"clawback_assessed", g.Clawback.Assessed}, {"clawback_outstanding", g.Clawback.Outstanding},
		} {
			if got := r[col(h, c.column)]; got != c.want {
				t.Errorf("grant %s %s = %q, want %q", g.ID, c.column, got, c.want)
			}
		}
		names[g.ID] = r[col(h, "talent_name")]
	}
	wantEqual(t, "first talent's name", names[list.Grants[0].ID], "张伟")
	wantEqual(t, "second talent's name", names[list.Grants[1].ID], "李娜")
	wantEqual(t, "guarded name", names[g3], `'=cmd|' /C calc'!A0`)
	wantEqual(t, "reviewed grant's fiscal year", recs[3][col(h, "fiscal_year")], "")

	// As of the end of April grant 1 was reversed (paid 0.00, approved
	// again); as recorded by the cut it was paid.
	paidOf := func(query, filename string) (string, string, int) {
		recs := readCSV(t, e.as(approver1).get("/v1/export/grants.csv?"+query), filename)
		return recs[1][col(h, "paid")], recs[1][col(h, "state")], len(recs) - 1
	}
	paid, state, n := paidOf("as_of=2024-04-30", "grants_as_of_2024-04-30.csv")
	if paid != "0.00" || state != domain.GrantStateApproved || n != 3 {
		t.Errorf("as of 2024-04-30: grant 1 paid %s state %s, %d grants; want 0.00 approved, 3", paid, state, n)
	}
	paid, state, n = paidOf("recorded_as_of="+url.QueryEscape(cut.Format(time.RFC3339Nano)), "grants.csv")
	if paid != "80000.00" || state != domain.GrantStateCompleted || n != 2 {
		t.Errorf("recorded by the cut: grant 1 paid %s state %s, %d grants; want 80000.00 completed, 2", paid, state, n)
	}
	wantProblem(t, e.as(auditor).get("/v1/export/grants.csv?as_of=2024-02-30"), http.StatusBadRequest, "invalid")
}

func TestExportRoles(t *testing.T) {
	e := newTestServer(t)
	for _, path := range []string{"/v1/export/journal.csv", "/v1/export/grants.csv"} {
		for _, who := range []string{clerk1, reviewer1, treasurer1, admin, fundManager} {
			wantProblem(t, e.as(who).get(path), http.StatusForbidden, "forbidden")
		}
		wantProblem(t, e.anonymous().get(path), http.StatusUnauthorized, "unauthenticated")
		for _, who := range []string{auditor, approver1} {
			recs := readCSV(t, e.as(who).get(path), strings.TrimPrefix(path, "/v1/export/"))
			if len(recs) != 1 {
				t.Errorf("%s of an empty ledger as %s: %d records, want the header only", path, who, len(recs))
			}
		}
	}
}
