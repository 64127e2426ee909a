package projections_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"slices"
	"strings"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "",
		"plain":               "plain",
		"=1+2":                "'=1+2",
		"+86 573 8500 0000":   "'+86 573 8500 0000",
		"-2+3":                "'-2+3",
		"@SUM(A1:A9)":         "'@SUM(A1:A9)",
		"\t=1":                "'\t=1",
		"\r=1":                "'\r=1",
		"平湖市=财政局":             "平湖市=财政局",
		"'already quoted":     "'already quoted",
		"budget:q:2024:avail": "budget:q:2024:avail",
	} {
		if got := projections.Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

// countingFlush counts flushes and the bytes w had received at each.
type countingFlush struct {
	w     *bytes.Buffer
	sizes []int
}

func (c *countingFlush) flush() error {
	c.sizes = append(c.sizes, c.w.Len())
	return nil
}

func TestWriteJournalCSV(t *testing.T) {
	b, _, _ := pointInTimeBooks(t)
	var buf bytes.Buffer
	cf := &countingFlush{w: &buf}
	st, err := projections.WriteJournalCSV(b.ctx, &buf, b.store, projections.JournalRange{}, cf.flush)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), projections.BOM+strings.Join(projections.JournalHeader, ",")+"\r\n") {
		t.Fatalf("does not start with the BOM and the header: %q", buf.String()[:80])
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), projections.BOM))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// By hand: budgets 1,000,000 + 200,000; two reservations (80,000 and
	// 50,000), two releases, one reversal; capital 4M + 2M + 1M; two
	// tranches of 1.5M. Commitments, approvals of investments and the
	// rest move no money.
	wantPostings := int64(2 + 2 + 2 + 1 + 3 + 2)
	if st.Postings != wantPostings || st.Rows != 2*wantPostings || int64(len(recs)-1) != st.Rows {
		t.Errorf("postings %d rows %d records %d; want %d, %d, %d", st.Postings, st.Rows, len(recs)-1, wantPostings, 2*wantPostings, 2*wantPostings)
	}
	want := yuan("1200000.00").Add(yuan("130000.00")).Add(yuan("130000.00")).Add(yuan("80000.00")).
		Add(yuan("7000000.00")).Add(yuan("3000000.00"))
	if st.Debits.Cmp(want) != 0 || st.Credits.Cmp(want) != 0 {
		t.Errorf("debits %s credits %s, want %s", st.Debits, st.Credits, want)
	}
	if len(cf.sizes) != 1 || cf.sizes[0] != buf.Len() {
		t.Errorf("flushes at %v bytes; want one, at the end (%d bytes)", cf.sizes, buf.Len())
	}
	// A release's lines name its bank reference, its grant and its
	// talent by ID and name; a budget's appropriation names none.
	col := func(name string) int { return slices.Index(projections.JournalHeader, name) }
	releases, appropriations := 0, 0
	for _, r := range recs[1:] {
		switch r[col("type")] {
		case domain.TypePaymentReleased:
			releases++
			if r[col("bank_reference")] == "" || r[col("grant_id")] == "" || r[col("talent_id")] == "" ||
				(r[col("talent_name")] != "张伟" && r[col("talent_name")] != "李娜") {
				t.Errorf("a release's line lacks what it is about: %q", r)
			}
		case domain.TypeBudgetAppropriated:
			appropriations++
			if r[col("grant_id")] != "" || r[col("talent_name")] != "" || r[col("bank_reference")] != "" {
				t.Errorf("an appropriation's line names a grant or talent: %q", r)
			}
		}
	}
	if releases == 0 || appropriations == 0 {
		t.Errorf("%d release lines and %d appropriation lines, want some of each", releases, appropriations)
	}
	var zh bytes.Buffer
	if _, err := projections.WriteJournalCSVIn(b.ctx, &zh, b.store, projections.JournalRange{}, nil, projections.JournalHeaderZH); err != nil ||
		!strings.HasPrefix(zh.String(), projections.BOM+strings.Join(projections.JournalHeaderZH, ",")+"\r\n") ||
		strings.TrimPrefix(zh.String(), projections.BOM+strings.Join(projections.JournalHeaderZH, ",")) !=
			strings.TrimPrefix(buf.String(), projections.BOM+strings.Join(projections.JournalHeader, ",")) {
		t.Errorf("the journal in Chinese differs from the English but for its header (%v)", err)
	}
	if len(projections.JournalHeaderZH) != len(projections.JournalHeader) || len(projections.GrantsHeaderZH) != len(projections.GrantsHeader) {
		t.Error("a Chinese header has not the English one's columns")
	}
}

// TestWriteJournalCSVFlushes checks that a long export reaches the writer
// in steps, not all at the end.
func TestWriteJournalCSVFlushes(t *testing.T) {
	store := payments(t, 2000)
	var buf bytes.Buffer
	cf := &countingFlush{w: &buf}
	st, err := projections.WriteJournalCSV(context.Background(), &buf, store, projections.JournalRange{}, cf.flush)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 4000 {
		t.Fatalf("rows %d, want 4000", st.Rows)
	}
	// A flush every 512 rows, and one at the end.
	if len(cf.sizes) != 4001/512+1 {
		t.Errorf("%d flushes, want %d", len(cf.sizes), 4001/512+1)
	}
	for i := 1; i < len(cf.sizes); i++ {
		if cf.sizes[i] <= cf.sizes[i-1] {
			t.Errorf("flush %d at %d bytes, after one at %d", i, cf.sizes[i], cf.sizes[i-1])
		}
	}
	if cf.sizes[0] == 0 || cf.sizes[len(cf.sizes)-1] != buf.Len() {
		t.Errorf("flushes at %v, total %d", cf.sizes, buf.Len())
	}
}

type failingWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errDiskFull
	}
	return len(p), nil
}

func TestWriteCSVFailures(t *testing.T) {
	store := payments(t, 2000)
	_, err := projections.WriteJournalCSV(context.Background(), &failingWriter{after: 100 << 10}, store, projections.JournalRange{}, nil)
	if !errors.Is(err, errDiskFull) {
		t.Errorf("journal to a failing writer: %v, want %v", err, errDiskFull)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := projections.WriteJournalCSV(ctx, &bytes.Buffer{}, store, projections.JournalRange{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("journal with a cancelled context: %v", err)
	}
	flushErr := errors.New("client gone")
	if _, err := projections.WriteJournalCSV(context.Background(), &bytes.Buffer{}, store, projections.JournalRange{}, func() error { return flushErr }); !errors.Is(err, flushErr) {
		t.Errorf("journal with a failing flush: %v", err)
	}

	// An event this version cannot decode cannot say what it posts: the
	// export fails rather than leave its lines out.
	if _, err := store.Append(context.Background(), "grant-future", eventstore.Any, eventstore.EventData{
		ID: eventstore.NewEventID(), Type: "PaymentReleasedV9", Data: []byte(`{"amount":"1.00"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.WriteJournalCSV(context.Background(), &bytes.Buffer{}, store, projections.JournalRange{}, nil); err == nil ||
		!strings.Contains(err.Error(), "PaymentReleasedV9") {
		t.Errorf("journal over an unknown event type: %v, want an error naming it", err)
	}
}

func TestParseJournalRange(t *testing.T) {
	for _, ok := range [][2]string{{"", ""}, {"2024-01-01", ""}, {"", "2024-12-31"}, {"2024-01-01", "2024-01-01"}} {
		if _, err := projections.ParseJournalRange(ok[0], ok[1]); err != nil {
			t.Errorf("ParseJournalRange(%q, %q): %v", ok[0], ok[1], err)
		}
	}
	for _, bad := range [][2]string{{"2024-02-30", ""}, {"", "2024/12/31"}, {"2024-12-31", "2024-01-01"}} {
		if _, err := projections.ParseJournalRange(bad[0], bad[1]); err == nil {
			t.Errorf("ParseJournalRange(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestWriteGrantsCSV(t *testing.T) {
	b, _, _ := pointInTimeBooks(t)
	p, err := projections.Replay(b.ctx, b.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := projections.WriteGrantsCSV(b.ctx, &buf, p, nil)
	if err != nil || n != 2 {
		t.Fatalf("WriteGrantsCSV = %d, %v; want 2 grants", n, err)
	}
	want := projections.BOM + strings.Join(projections.GrantsHeader, ",") + "\r\n"
	grants, _ := p.Grants(projections.GrantFilter{})
	for i, g := range grants {
		name, paid, state := "张伟", "0.00", "approved"
		if i == 1 {
			name, paid, state = "李娜", "50000.00", "completed"
		}
		want += strings.Join([]string{g.ID, g.TalentID, name, "quick", state, g.AmountRequested.String(), g.Award.String(), "0.00",
			g.Amount.String(), "2024", g.AppliedOn, g.ApprovedOn, paid, g.Amount.Sub(yuan(paid)).String(),
			"0.00", "0.00", "0.00", "0.00", "DOC-1", "DOC-1"}, ",") + "\r\n"
	}
	if buf.String() != want {
		t.Errorf("register:\n%s\nwant:\n%s", buf.String(), want)
	}
	if _, err := projections.WriteGrantsCSV(b.ctx, &failingWriter{after: 10}, p, nil); !errors.Is(err, errDiskFull) {
		t.Errorf("register to a failing writer: %v", err)
	}
}
