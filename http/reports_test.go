package http_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"
)

// TestPaymentsRegisterReport downloads the payments register of a period
// as a workbook and opens it with excelize: the title names the report,
// the period, the as-of date and the tree head the answer's headers give;
// the header row is Chinese (English with ?lang=en) and frozen with the
// title; the rows are the payments GET /v1/payments lists as released in
// the period, in its order, amounts numbers formatted #,##0.00 and dates
// dates; the total line is the sum of those payments' amounts. The CSV
// form has the same rows; the same report twice is the same bytes; a bad
// period is refused and appends nothing.
func TestPaymentsRegisterReport(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("relocation", "50000.00"), "1000000.00")
	var grants []string
	for _, c := range []struct{ name, amount string }{{"Ana Lima", "10000.00"}, {"陈静", "20000.50"}, {"Li Wei", "3000.00"}, {"Omar Haddad", "4000.00"}} {
		grants = append(grants, e.approvedGrant(e.registerTalent(c.name, "B"), "relocation", c.amount))
	}
	// Released in the period: the first two; prepared only: the third;
	// released after the period: the fourth.
	e.pay(grants[0], 1, "2024-02-06", clerk1, approver1, treasurer1)
	e.pay(grants[1], 1, "2024-03-31", clerk1, approver1, treasurer1)
	e.as(clerk1).command(http.StatusCreated, "/v1/grants/"+grants[2]+"/installments/1/payments", map[string]any{"effective_date": "2024-04-01"})
	e.pay(grants[3], 1, "2024-04-02", clerk1, approver1, treasurer1)

	type paymentJSON struct {
		ID            string `json:"id"`
		ReleasedOn    string `json:"released_on"`
		BankReference string `json:"bank_reference"`
		TalentName    string `json:"talent_name"`
		Amount        string `json:"amount"`
	}
	api := fetch[struct {
		Payments []paymentJSON `json:"payments"`
		Total    int           `json:"total"`
	}](e.as(auditor), "/v1/payments?released_from=2024-02-01&released_to=2024-03-31")
	if api.Total != 2 {
		t.Fatalf("GET /v1/payments in the period: %+v, want the two released in it", api)
	}
	var apiTotal decimal.Decimal
	for _, p := range api.Payments {
		apiTotal = apiTotal.Add(decimal.RequireFromString(p.Amount))
	}

	const path = "/v1/reports/payments.xlsx?from=2024-02-01&to=2024-03-31"
	r := e.as(auditor).get(path)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Fatalf("%s: want a workbook", r)
	}
	f, err := excelize.OpenReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheet := f.GetSheetName(0)
	rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2+len(api.Payments)+1 {
		t.Fatalf("rows %q: want title, header, %d payments and the total", rows, len(api.Payments))
	}
	asOf, size, root := r.header.Get("X-Report-As-Of"), r.header.Get("X-Report-Tree-Size"), r.header.Get("X-Report-Root-Hash")
	title := rows[0][0]
	for _, want := range []string{"支付登记簿", "2024-02-01 至 2024-03-31", asOf, "大小 " + size, root} {
		if asOf == "" || size == "" || len(root) != 64 || !strings.Contains(title, want) {
			t.Errorf("title %q does not name %q (as of %q, head %q %q)", title, want, asOf, size, root)
		}
	}
	wantHeader := "支付编号 支付日期 银行流水号 补助编号 期次 项目代码 人才编号 姓名 金额 预算年度 应付日期 状态 制单人 审批人 出纳 对账单"
	if got := strings.Join(rows[1], " "); got != wantHeader {
		t.Errorf("header %q, want %q", got, wantHeader)
	}
	var sheetTotal decimal.Decimal
	for i, p := range api.Payments {
		row, n := rows[2+i], 3+i
		if row[0] != p.ID || row[2] != p.BankReference || row[7] != p.TalentName || row[11] != "released" {
			t.Errorf("row %d %q, want payment %+v", n, row, p)
		}
		amount, err := decimal.NewFromString(row[8])
		if err != nil || !amount.Equal(decimal.RequireFromString(p.Amount)) {
			t.Errorf("row %d: amount %q, want %s", n, row[8], p.Amount)
		}
		sheetTotal = sheetTotal.Add(amount)
		// The release date is a date: a serial number shown yyyy-mm-dd.
		if formatted, _ := f.GetCellValue(sheet, cellName(t, 2, n)); formatted != p.ReleasedOn {
			t.Errorf("row %d: released on %q, want %s", n, formatted, p.ReleasedOn)
		}
		for col, format := range map[int]string{2: "yyyy-mm-dd", 9: "#,##0.00", 11: "yyyy-mm-dd"} {
			cell := cellName(t, col, n)
			if got := customFormat(t, f, sheet, cell); got != format {
				t.Errorf("%s: number format %q, want %s", cell, got, format)
			}
			if typ, _ := f.GetCellType(sheet, cell); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
				t.Errorf("%s is text, want a number", cell)
			}
		}
	}
	last := rows[len(rows)-1]
	total, err := decimal.NewFromString(last[8])
	if last[0] != "合计 Total" || err != nil || !total.Equal(apiTotal) || !total.Equal(sheetTotal) {
		t.Errorf("total line %q, want the sum %s of GET /v1/payments' amounts", last, apiTotal)
	}
	if got := customFormat(t, f, sheet, cellName(t, 9, len(rows))); got != "#,##0.00" {
		t.Errorf("total: number format %q", got)
	}
	panes, err := f.GetPanes(sheet)
	if err != nil || !panes.Freeze || panes.YSplit != 2 {
		t.Errorf("panes %+v (%v): want the title and header frozen", panes, err)
	}
	if again := e.as(auditor).get(path); !bytes.Equal(again.body, r.body) {
		t.Error("the same report with the same head is not the same bytes")
	}

	en := e.as(approver1).get(path + "&lang=en")
	fe, err := excelize.OpenReader(bytes.NewReader(en.body))
	if err != nil {
		t.Fatalf("%s: %v", en, err)
	}
	defer fe.Close()
	enRows, _ := fe.GetRows(fe.GetSheetName(0))
	if len(enRows) < 2 || enRows[1][0] != "Payment ID" || enRows[1][8] != "Amount" ||
		!strings.HasPrefix(enRows[0][0], "Payments register (released 2024-02-01 to 2024-03-31) — as of "+asOf) {
		t.Errorf("English rows %q", enRows)
	}

	csvRows := readBankFile(t, e.as(auditor).get("/v1/reports/payments.csv?from=2024-02-01&to=2024-03-31&lang=en"))
	if len(csvRows) != len(rows)-1 || csvRows[0][0] != "Payment ID" {
		t.Fatalf("CSV %q: want the header, the payments and the total", csvRows)
	}
	for i, p := range api.Payments {
		if csvRows[1+i][0] != p.ID || csvRows[1+i][1] != p.ReleasedOn || csvRows[1+i][8] != p.Amount {
			t.Errorf("CSV row %q, want %+v", csvRows[1+i], p)
		}
	}
	if c := csvRows[len(csvRows)-1]; !decimal.RequireFromString(c[8]).Equal(apiTotal) {
		t.Errorf("CSV total %q, want %s", c, apiTotal)
	}
	// Without from, every payment released up to to; without to, up to
	// the report's date.
	if rows := readBankFile(t, e.as(auditor).get("/v1/reports/payments.csv?to=2024-04-30")); len(rows) != 1+3+1 {
		t.Errorf("up to 2024-04-30: %q, want the three released payments and the total", rows)
	}
	if rows := readBankFile(t, e.as(auditor).get("/v1/reports/payments.csv?from=2024-04-01")); len(rows) != 1+1+1 {
		t.Errorf("from 2024-04-01: %q, want the payment released then and the total", rows)
	}

	before := e.lastPosition()
	for _, c := range []struct{ query, code string }{
		{"from=2024-04-01&to=2024-03-31", "invalid"},
		{"from=2024-13-01", "invalid"},
		{"to=", "invalid"},
		{"released_from=2024-02-01", "unknown_parameter"},
		{"from=2024-02-01&from=2024-03-01", "invalid"},
	} {
		for _, form := range []string{"xlsx", "csv"} {
			wantProblem(t, e.as(auditor).get("/v1/reports/payments."+form+"?"+c.query), http.StatusBadRequest, c.code)
		}
	}
	if e.lastPosition() != before {
		t.Error("a refused report appended")
	}
}

func cellName(t *testing.T, col, row int) string {
	t.Helper()
	c, err := excelize.CoordinatesToCellName(col, row)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// customFormat is the custom number format of a cell, or "" for none.
func customFormat(t *testing.T, f *excelize.File, sheet, cell string) string {
	t.Helper()
	id, err := f.GetCellStyle(sheet, cell)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.CustomNumFmt != nil {
		return *st.CustomNumFmt
	}
	return ""
}
