package projections

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestWorkbookSheets: a report longer than a sheet holds goes on in
// further sheets, each with the title and the header, no row lost.
func TestWorkbookSheets(t *testing.T) {
	defer func(n int) { maxSheetRows = n }(maxSheetRows)
	maxSheetRows = 5 // title, header and three rows a sheet
	r := Report{Name: "n", TitleZH: "数", TitleEN: "Numbers", Columns: columns("amount"),
		Rows: func(_ context.Context, yield func([]string) error) error {
			for i := 1; i <= 7; i++ {
				if err := yield([]string{strconv.Itoa(i) + ".00"}); err != nil {
					return err
				}
			}
			return nil
		}}
	var buf bytes.Buffer
	st, err := r.WriteXLSX(context.Background(), &buf, LangEN, ReportHead{AsOf: "2024-12-31"})
	if err != nil || st.Rows != 7 {
		t.Fatalf("rows %d, %v", st.Rows, err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 3 || got[0] != "Report" || got[1] != "Report 2" || got[2] != "Report 3" {
		t.Fatalf("sheets %v", got)
	}
	var values []string
	for _, sh := range f.GetSheetList() {
		rows, err := f.GetRows(sh, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) < 3 || rows[1][0] != "Amount" || rows[0][0] == "" {
			t.Errorf("sheet %s starts %q", sh, rows)
		}
		for _, r := range rows[2:] {
			values = append(values, r[0])
		}
	}
	if got := len(values); got != 7 || values[0] != "1" || values[6] != "7" {
		t.Errorf("values %v, want 1 to 7", values)
	}
}

// SetPaymentPage sets how many payments EachPayment draws under one hold
// of the lock, for the tests of the package's users; it returns the
// restore.
func SetPaymentPage(n int) (restore func()) {
	old := paymentPage
	paymentPage = n
	return func() { paymentPage = old }
}
