package projections_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"talentledger/domain"
	"talentledger/projections"
)

// clawbackBooks records a rent program with a 2024 budget of 1,000,000.00,
// one grant of 100,000.00 paid 50,000.00, the talent's departure and the
// termination on 2024-07-20 (25,000.00 due back), and 5,000.00 recovered
// on 2024-08-01.
func clawbackBooks(t *testing.T) (e *env, grant, talent string) {
	e = newEnv(t)
	e.do(e.svc.DefineProgram(e.ctx, domain.DefineProgram{Meta: e.on(e.admin, "2024-01-02"), ProgramID: "rent", Name: "人才租房补贴",
		Kind: domain.KindRent, Caps: map[string]domain.Money{"B": e.money("100000")},
		Schedule: domain.Schedule{Percentages: []decimal.Decimal{e.pct("50"), e.pct("50")}, IntervalMonths: 12}, ServiceMonths: 24}))
	e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2024-01-02"), ProgramID: "rent",
		FiscalYear: 2024, Amount: e.money("1000000")}))
	talent = e.do(e.svc.RegisterTalent(e.ctx, domain.RegisterTalent{Meta: e.on(e.clerk, "2024-01-02"), Name: "王小明",
		PermitCategory: "A", Tier: "B", Employer: "Pinghu Precision Optics Co."})).ID
	grant = e.do(e.svc.ApplyGrant(e.ctx, domain.ApplyGrant{Meta: e.on(e.clerk, "2024-01-03"), TalentID: talent, ProgramID: "rent",
		AmountRequested: e.money("100000")})).ID
	e.do(e.svc.ReviewGrant(e.ctx, domain.ReviewGrant{Meta: e.on(e.reviewer, "2024-01-04"), GrantID: grant, Decision: "approve"}))
	e.do(e.svc.ApproveGrant(e.ctx, domain.ApproveGrant{Meta: e.on(e.approver, "2024-01-15"), GrantID: grant}))
	p := e.do(e.svc.PreparePayment(e.ctx, domain.PreparePayment{Meta: e.on(e.clerk, "2024-01-20"), GrantID: grant, Installment: 1})).ID
	e.do(e.svc.ApprovePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.approver, "2024-01-20"), PaymentID: p}))
	e.do(e.svc.ReleasePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.treasurer, "2024-01-20"), PaymentID: p, BankReference: "ICBC-1"}))
	e.do(e.svc.ReportDeparture(e.ctx, domain.ReportDeparture{Meta: e.on(e.clerk, "2024-07-15"), TalentID: talent, DepartureDate: "2024-07-15"}))
	e.do(e.svc.TerminateGrant(e.ctx, domain.TerminateGrant{Meta: e.on(e.approver, "2024-07-20"), GrantID: grant}))
	e.do(e.svc.RecordRecovery(e.ctx, domain.RecoveryCommand{Meta: e.on(e.treasurer, "2024-08-01"), GrantID: grant, Amount: e.money("5000"),
		BankReference: "ICBC-R1"}))
	if err := e.proj.WaitFor(e.ctx, e.last(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return e, grant, talent
}

// TestClawbackAgeing: a clawback falls in the band of its age on the
// report's date; the bands' bounds are inclusive (90, 180, 365 days).
func TestClawbackAgeing(t *testing.T) {
	e, grant, talent := clawbackBooks(t)
	for _, c := range []struct {
		asOf, bucket string
		age          int
	}{
		{"2024-07-20", "0-90", 0}, {"2024-10-18", "0-90", 90}, {"2024-10-19", "91-180", 91}, {"2025-01-16", "91-180", 180},
		{"2025-01-17", "181-365", 181}, {"2025-07-20", "181-365", 365}, {"2025-07-21", "over_365", 366},
	} {
		cs := e.proj.Clawbacks(c.asOf, false)
		if len(cs) != 1 || cs[0].GrantID != grant || cs[0].TalentID != talent || cs[0].TalentName != "王小明" ||
			cs[0].Assessed.String() != "25000.00" || cs[0].Recovered.String() != "5000.00" || cs[0].Outstanding.String() != "20000.00" ||
			cs[0].AgeDays != c.age || cs[0].Bucket != c.bucket || cs[0].ProgramID != "rent" {
			t.Errorf("as of %s: %+v; want %s, 20000.00 outstanding, %d days, %s", c.asOf, cs, grant, c.age, c.bucket)
		}
	}
	// Recovered in full, it leaves the receivables.
	e.do(e.svc.RecordRecovery(e.ctx, domain.RecoveryCommand{Meta: e.on(e.treasurer, "2024-08-02"), GrantID: grant, Amount: e.money("20000"),
		BankReference: "ICBC-R2"}))
	if err := e.proj.WaitFor(e.ctx, e.last(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if cs := e.proj.Clawbacks("2024-09-01", false); len(cs) != 0 {
		t.Errorf("after full recovery: %+v, want none outstanding", cs)
	}
	if cs := e.proj.Clawbacks("2024-09-01", true); len(cs) != 1 || cs[0].Outstanding.Sign() != 0 {
		t.Errorf("every clawback after full recovery: %+v", cs)
	}
}

// openXLSX writes a report as a workbook and opens it with excelize.
func openXLSX(t *testing.T, r projections.Report, l projections.Lang, h projections.ReportHead) (*excelize.File, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := r.WriteXLSX(context.Background(), &buf, l, h); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, buf.Bytes()
}

// cellFormat is the custom number format of a cell, or "" for none.
func cellFormat(t *testing.T, f *excelize.File, sheet, cell string) string {
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

// TestBudgetExecutionWorkbook opens the budget-execution report with
// excelize: the title names the report, its date and head; the header row
// is Chinese (English with lang en) and frozen; amounts are numbers in
// #,##0.00 and agree with the budget view; the same report twice is the
// same bytes.
func TestBudgetExecutionWorkbook(t *testing.T) {
	e, _, _ := clawbackBooks(t)
	head := projections.ReportHead{AsOf: "2024-12-31", TreeSize: 42, RootHash: "ab12"}
	f, raw := openXLSX(t, e.proj.BudgetExecutionReport(2024), projections.LangZH, head)
	sheet := f.GetSheetName(0)
	rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("rows %q, want title, header and one budget", rows)
	}
	if title := rows[0][0]; !strings.Contains(title, "预算执行情况") || !strings.Contains(title, "2024-12-31") ||
		!strings.Contains(title, "42") || !strings.Contains(title, "ab12") {
		t.Errorf("title %q", title)
	}
	wantHeader := "项目代码 项目名称 预算年度 批复预算 预算总额 已预留 已支付 释放预留 追回 可用余额 执行率（%）"
	if got := strings.Join(rows[1], " "); got != wantHeader {
		t.Errorf("header %q, want %q", got, wantHeader)
	}
	b := e.budget("rent", 2024)
	// The row as the workbook holds it: numbers, read raw.
	want := []string{"rent", "人才租房补贴", "2024", b.Appropriated.String(), b.Appropriated.String(), b.Reserved.String(),
		b.Paid.String(), "", "5000.00", b.Available.String(), b.ExecutionRate}
	for i, w := range want {
		got := rows[2][i]
		if w == "" {
			continue
		}
		gd, err1 := decimal.NewFromString(got)
		wd, err2 := decimal.NewFromString(w)
		if (err1 == nil && err2 == nil && !gd.Equal(wd)) || ((err1 != nil || err2 != nil) && got != w) {
			t.Errorf("column %s: %q, want %s", rows[1][i], got, w)
		}
	}
	for _, cell := range []string{"D3", "G3", "I3", "J3"} {
		if got := cellFormat(t, f, sheet, cell); got != "#,##0.00" {
			t.Errorf("%s: number format %q, want #,##0.00", cell, got)
		}
		if typ, _ := f.GetCellType(sheet, cell); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
			t.Errorf("%s is text, want a number", cell)
		}
	}
	panes, err := f.GetPanes(sheet)
	if err != nil || !panes.Freeze || panes.YSplit != 2 {
		t.Errorf("panes %+v (%v): want the two top rows frozen", panes, err)
	}
	_, again := openXLSX(t, e.proj.BudgetExecutionReport(2024), projections.LangZH, head)
	if !bytes.Equal(raw, again) {
		t.Error("the same report twice is not the same bytes")
	}
	_, other := openXLSX(t, e.proj.BudgetExecutionReport(2024), projections.LangZH, projections.ReportHead{AsOf: "2024-12-31", TreeSize: 43, RootHash: "cd34"})
	if bytes.Equal(raw, other) {
		t.Error("another head gives the same bytes")
	}
	en, _ := openXLSX(t, e.proj.BudgetExecutionReport(2024), projections.LangEN, head)
	enRows, _ := en.GetRows(en.GetSheetName(0))
	if len(enRows) < 2 || enRows[1][0] != "Program" || enRows[1][10] != "Execution rate (%)" || !strings.HasPrefix(enRows[0][0], "Budget execution — as of 2024-12-31") {
		t.Errorf("English rows %q", enRows)
	}
	if got := e.proj.BudgetExecution(2023); len(got) != 0 {
		t.Errorf("2023: %+v, want nothing", got)
	}
	// 2025's share was a forward commitment never covered: its release
	// at the termination released nothing of 2025's budget.
	if got := e.proj.BudgetExecution(2025); len(got) != 1 || got[0].Released.Sign() != 0 {
		t.Errorf("2025: %+v, want one row with nothing released", got)
	}
}

// TestClawbacksWorkbook: dates are dates; the outstanding amount stands in
// the column of its band; a total line sums the bands.
func TestClawbacksWorkbook(t *testing.T) {
	e, grant, _ := clawbackBooks(t)
	f, _ := openXLSX(t, e.proj.ClawbacksReport("2024-12-31"), projections.LangEN, projections.ReportHead{AsOf: "2024-12-31"})
	sheet := f.GetSheetName(0)
	rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[2][0] != grant || rows[3][0] != "合计 Total" {
		t.Fatalf("rows %q", rows)
	}
	// 164 days: the 91–180 band, the 12th column.
	if rows[1][11] != "91–180 days" || rows[2][11] != "20000" || rows[2][10] != "" || rows[3][11] != "20000" || rows[2][9] != "164" {
		t.Errorf("ageing row %q, total %q", rows[2], rows[3])
	}
	if got := cellFormat(t, f, sheet, "E3"); got != "yyyy-mm-dd" {
		t.Errorf("assessed_on format %q, want yyyy-mm-dd", got)
	}
	// 2024-07-20 is day 45493 of Excel's calendar.
	if rows[2][4] != "45493" {
		t.Errorf("assessed_on raw value %q, want the date 45493", rows[2][4])
	}
	var buf bytes.Buffer
	if _, err := e.proj.ClawbacksReport("2024-12-31").WriteCSV(context.Background(), &buf, projections.LangZH, nil); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), projections.BOM))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0][2] != "姓名" || recs[1][2] != "王小明" || recs[1][4] != "2024-07-20" || recs[1][11] != "20000.00" {
		t.Errorf("CSV %q", recs)
	}
}

// TestGrantsRegisterWorkbook: the register's workbook holds the CSV
// export's rows, amounts as numbers.
func TestGrantsRegisterWorkbook(t *testing.T) {
	e, grant, _ := clawbackBooks(t)
	f, _ := openXLSX(t, e.proj.GrantsRegisterReport(), projections.LangZH, projections.ReportHead{AsOf: "2024-12-31"})
	sheet := f.GetSheetName(0)
	rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1][0] != "补助编号" || rows[2][0] != grant {
		t.Fatalf("rows %q", rows)
	}
	paidCol := -1
	for i, k := range projections.GrantsHeader {
		if k == "paid" {
			paidCol = i
		}
	}
	cell, _ := excelize.CoordinatesToCellName(paidCol+1, 3)
	if rows[2][paidCol] != "50000" || cellFormat(t, f, sheet, cell) != "#,##0.00" {
		t.Errorf("paid %q in format %q", rows[2][paidCol], cellFormat(t, f, sheet, cell))
	}
}

// TestBudgetReleased: a reservation released at a termination shows as
// released in its year.
func TestBudgetReleased(t *testing.T) {
	e, _, _ := clawbackBooks(t)
	talent := e.do(e.svc.RegisterTalent(e.ctx, domain.RegisterTalent{Meta: e.on(e.clerk, "2024-08-01"), Name: "Anna Berg",
		PermitCategory: "B", Tier: "B", Employer: "Pinghu Optics"})).ID
	g := e.do(e.svc.ApplyGrant(e.ctx, domain.ApplyGrant{Meta: e.on(e.clerk, "2024-08-02"), TalentID: talent, ProgramID: "rent",
		AmountRequested: e.money("60000")})).ID
	e.do(e.svc.ReviewGrant(e.ctx, domain.ReviewGrant{Meta: e.on(e.reviewer, "2024-08-03"), GrantID: g, Decision: "approve"}))
	e.do(e.svc.ApproveGrant(e.ctx, domain.ApproveGrant{Meta: e.on(e.approver, "2024-08-05"), GrantID: g}))
	e.do(e.svc.ReportDeparture(e.ctx, domain.ReportDeparture{Meta: e.on(e.clerk, "2024-08-10"), TalentID: talent, DepartureDate: "2024-08-10"}))
	e.do(e.svc.TerminateGrant(e.ctx, domain.TerminateGrant{Meta: e.on(e.approver, "2024-08-12"), GrantID: g}))
	if err := e.proj.WaitFor(e.ctx, e.last(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	rows := e.proj.BudgetExecution(2024)
	if len(rows) != 1 || rows[0].Released.String() != "30000.00" || rows[0].Reserved.Sign() != 0 {
		t.Errorf("2024 after terminating an unpaid grant: %+v, want 30000.00 released and nothing reserved", rows)
	}
}
