package projections

import (
	"context"
	"io"
	"strconv"

	"talentledger/domain"
	"talentledger/eventstore"
)

// columnNames are the Chinese and English headers of the exports'
// columns, by their key.
var columnNames = map[string][2]string{
	"event_id": {"事件编号", "Event ID"}, "position": {"日志位置", "Position"}, "stream": {"流", "Stream"},
	"version": {"版本", "Version"}, "type": {"事件类型", "Event type"}, "principal": {"经办人", "Principal"},
	"role": {"角色", "Role"}, "recorded_at": {"记录时间", "Recorded at"}, "effective_date": {"业务日期", "Effective date"},
	"posting": {"分录号", "Posting"}, "account": {"科目", "Account"}, "debit": {"借方", "Debit"}, "credit": {"贷方", "Credit"},
	"reason": {"事由", "Reason"}, "document_ref": {"文件编号", "Document reference"}, "correlation_id": {"关联编号", "Correlation ID"},
	"bank_reference": {"银行流水号", "Bank reference"},
	"grant_id":       {"补助编号", "Grant ID"}, "talent_id": {"人才编号", "Talent ID"}, "talent_name": {"姓名", "Talent name"},
	"program_id": {"项目代码", "Program"}, "program_name": {"项目名称", "Program name"}, "state": {"状态", "State"},
	"amount_requested": {"申请金额", "Amount requested"}, "award": {"核定金额", "Award"}, "deduction": {"抵扣", "Deduction"},
	"amount": {"金额", "Amount"}, "fiscal_year": {"预算年度", "Fiscal year"}, "applied_on": {"申请日期", "Applied on"},
	"approved_on": {"批准日期", "Approved on"}, "paid": {"已支付", "Paid"}, "due": {"待支付", "Due"},
	"clawback_assessed": {"应追回", "Clawback assessed"}, "clawback_recovered": {"已追回", "Clawback recovered"},
	"clawback_waived": {"已减免", "Clawback waived"}, "clawback_outstanding": {"未追回", "Clawback outstanding"},
	"appropriated": {"批复预算", "Appropriated"}, "budget": {"预算总额", "Budget"}, "reserved": {"已预留", "Reserved"},
	"released": {"释放预留", "Released"}, "recovered": {"追回", "Recovered"}, "available": {"可用余额", "Available"},
	"execution_rate": {"执行率（%）", "Execution rate (%)"},
	"assessed_on":    {"核定日期", "Assessed on"}, "assessed": {"应追回", "Assessed"}, "waived": {"已减免", "Waived"},
	"outstanding": {"未追回余额", "Outstanding"}, "age_days": {"账龄（天）", "Age (days)"},
	"age_0_90": {"0–90天", "0–90 days"}, "age_91_180": {"91–180天", "91–180 days"}, "age_181_365": {"181–365天", "181–365 days"},
	"age_over_365": {"365天以上", "Over 365 days"},
	"level":        {"层级", "Level"}, "fund_id": {"基金代码", "Fund ID"}, "fund_name": {"基金名称", "Fund"},
	"project_id": {"项目编号", "Project ID"}, "project": {"投资项目", "Project"}, "sector": {"行业", "Sector"},
	"stake_pct": {"持股比例（%）", "Stake (%)"}, "committed": {"认缴", "Committed"}, "paid_in": {"实缴", "Paid-in"},
	"cost": {"投资成本", "Cost"}, "valuation": {"估值", "Valuation"}, "distributions": {"分配", "Distributions"},
	"nav": {"净资产值", "NAV"}, "multiple": {"倍数", "Multiple"}, "dpi": {"DPI", "DPI"}, "rvpi": {"RVPI", "RVPI"},
	"tvpi": {"TVPI", "TVPI"}, "irr": {"IRR", "IRR"}, "status": {"状态", "Status"},
	"payment_id": {"支付编号", "Payment ID"}, "installment": {"期次", "Installment"}, "due_date": {"应付日期", "Due date"},
	"released_on": {"支付日期", "Released on"}, "prepared_by": {"制单人", "Prepared by"}, "approved_by": {"审批人", "Approved by"},
	"released_by": {"出纳", "Released by"}, "reconciled_in": {"对账单", "Reconciled in"},
}

// columnKinds types the exports' columns by key; a key not named is text.
var columnKinds = map[string]ColumnKind{
	"position": ColInt, "version": ColInt, "posting": ColInt, "fiscal_year": ColInt, "age_days": ColInt,
	"effective_date": ColDate, "applied_on": ColDate, "approved_on": ColDate, "assessed_on": ColDate,
	"debit": ColMoney, "credit": ColMoney, "amount_requested": ColMoney, "award": ColMoney, "deduction": ColMoney,
	"amount": ColMoney, "paid": ColMoney, "due": ColMoney, "clawback_assessed": ColMoney, "clawback_recovered": ColMoney,
	"clawback_waived": ColMoney, "clawback_outstanding": ColMoney, "appropriated": ColMoney, "budget": ColMoney,
	"reserved": ColMoney, "released": ColMoney, "recovered": ColMoney, "available": ColMoney, "assessed": ColMoney,
	"waived": ColMoney, "outstanding": ColMoney, "age_0_90": ColMoney, "age_91_180": ColMoney, "age_181_365": ColMoney,
	"age_over_365": ColMoney, "committed": ColMoney, "paid_in": ColMoney, "cost": ColMoney, "valuation": ColMoney,
	"distributions": ColMoney, "nav": ColMoney,
	"execution_rate": ColRatio, "stake_pct": ColRatio, "multiple": ColRatio, "dpi": ColRatio, "rvpi": ColRatio,
	"tvpi": ColRatio, "irr": ColRatio,
	"installment": ColInt, "due_date": ColDate, "released_on": ColDate,
}

func columns(keys ...string) []Column {
	out := make([]Column, len(keys))
	for i, k := range keys {
		out[i] = Column{Key: k, ZH: columnNames[k][0], EN: columnNames[k][1], Kind: columnKinds[k]}
	}
	return out
}

// BudgetExecutionRow is one program's budget for one fiscal year, as the
// budget-execution report (预算执行情况) shows it.
type BudgetExecutionRow struct {
	ProgramID    string       `json:"program_id"`
	ProgramName  string       `json:"program_name"`
	FiscalYear   int          `json:"fiscal_year"`
	Appropriated domain.Money `json:"appropriated"`
	// Budget is what the year may spend: appropriated, carried over and
	// adjusted.
	Budget    domain.Money `json:"budget"`
	Reserved  domain.Money `json:"reserved"`
	Paid      domain.Money `json:"paid"`
	Released  domain.Money `json:"released"`
	Recovered domain.Money `json:"recovered"`
	Available domain.Money `json:"available"`
	// ExecutionRate is paid ÷ budget, in percent with two decimals.
	ExecutionRate string `json:"execution_rate"`
}

// BudgetExecution lists every program's budgets, by program in the order
// defined and by fiscal year; fy > 0 keeps that year alone.
func (p *Projector) BudgetExecution(fy int) []BudgetExecutionRow {
	out := []BudgetExecutionRow{}
	for _, prog := range p.Programs() {
		for _, b := range prog.Budgets {
			if fy > 0 && b.FiscalYear != fy {
				continue
			}
			released, recovered := p.reports.BudgetExtras(prog.ID, b.FiscalYear)
			out = append(out, BudgetExecutionRow{ProgramID: prog.ID, ProgramName: prog.Name, FiscalYear: b.FiscalYear,
				Appropriated: b.Appropriated, Budget: b.Appropriated.Add(b.CarriedOver).Add(b.Adjustments),
				Reserved: b.Reserved, Paid: b.Paid, Released: released, Recovered: recovered, Available: b.Available,
				ExecutionRate: b.ExecutionRate})
		}
	}
	return out
}

// BudgetExecutionReport is the budget-execution report (预算执行情况):
// per program and fiscal year (fy > 0 for one year), appropriated, the
// budget (with carry-overs and adjustments), reserved, paid, reservations
// released, clawbacks recovered, available and the execution rate, with a
// total line per fiscal year.
func (p *Projector) BudgetExecutionReport(fy int) Report {
	return Report{Name: "budget_execution", TitleZH: "预算执行情况", TitleEN: "Budget execution",
		Columns: columns("program_id", "program_name", "fiscal_year", "appropriated", "budget", "reserved", "paid",
			"released", "recovered", "available", "execution_rate"),
		Rows: func(ctx context.Context, yield func([]string) error) error {
			rows := p.BudgetExecution(fy)
			for _, r := range rows {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := yield([]string{r.ProgramID, r.ProgramName, strconv.Itoa(r.FiscalYear), r.Appropriated.String(), r.Budget.String(),
					r.Reserved.String(), r.Paid.String(), r.Released.String(), r.Recovered.String(), r.Available.String(), r.ExecutionRate}); err != nil {
					return err
				}
			}
			return nil
		}}
}

// ClawbacksReport is the clawbacks receivable, aged to asOf: one line per
// grant with an outstanding clawback, its outstanding amount in the column
// of its ageing band, and a total line.
func (p *Projector) ClawbacksReport(asOf string) Report {
	return Report{Name: "clawbacks_receivable", TitleZH: "应收追回款账龄分析", TitleEN: "Clawbacks receivable by age",
		Columns: columns("grant_id", "talent_id", "talent_name", "program_id", "assessed_on", "assessed", "recovered",
			"waived", "outstanding", "age_days", "age_0_90", "age_91_180", "age_181_365", "age_over_365"),
		Rows: func(ctx context.Context, yield func([]string) error) error {
			total := map[string]domain.Money{}
			var assessed, recovered, waived, outstanding domain.Money
			for _, c := range p.Clawbacks(asOf, false) {
				if err := ctx.Err(); err != nil {
					return err
				}
				row := []string{c.GrantID, c.TalentID, c.TalentName, c.ProgramID, c.AssessedOn, c.Assessed.String(), c.Recovered.String(),
					c.Waived.String(), c.Outstanding.String(), strconv.Itoa(c.AgeDays), "", "", "", ""}
				for i, b := range AgeingBuckets {
					if b == c.Bucket {
						row[10+i] = c.Outstanding.String()
						total[b] = total[b].Add(c.Outstanding)
					}
				}
				assessed, recovered = assessed.Add(c.Assessed), recovered.Add(c.Recovered)
				waived, outstanding = waived.Add(c.Waived), outstanding.Add(c.Outstanding)
				if err := yield(row); err != nil {
					return err
				}
			}
			return yield([]string{"合计 Total", "", "", "", "", assessed.String(), recovered.String(), waived.String(), outstanding.String(), "",
				total[AgeingBuckets[0]].String(), total[AgeingBuckets[1]].String(), total[AgeingBuckets[2]].String(), total[AgeingBuckets[3]].String()})
		}}
}

// FundReport is the fund report: a line per fund (paid-in, cost,
// valuation, distributions, NAV, DPI, RVPI, TVPI, IRR) followed by a line
// per project of it (stake, cost, valuation, distributions, multiple,
// IRR), as of asOf.
func (p *Projector) FundReport(asOf string) Report {
	return Report{Name: "funds", TitleZH: "基金投资情况", TitleEN: "Funds and projects",
		Columns: columns("level", "fund_id", "fund_name", "project_id", "project", "sector", "stake_pct", "committed", "paid_in",
			"cost", "valuation", "distributions", "nav", "multiple", "dpi", "rvpi", "tvpi", "irr", "status"),
		Rows: func(ctx context.Context, yield func([]string) error) error {
			funds, _ := p.Funds(asOf)
			for _, f := range funds {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := yield([]string{"fund", f.ID, f.Name, "", "", "", "", f.Committed.String(), f.PaidIn.String(), f.Invested.String(),
					f.Valuation.String(), f.Distributions.String(), f.NAV.String(), f.MOIC, f.DPI, f.RVPI, f.TVPI, f.IRR, f.FundType}); err != nil {
					return err
				}
				ps, _ := p.Projects(ProjectFilter{FundID: f.ID, AsOf: asOf})
				for _, pr := range ps {
					if err := yield([]string{"project", f.ID, f.Name, pr.ID, pr.Project, pr.Sector, pr.StakePct.StringFixed(2), "", "",
						pr.Cost.String(), pr.Valuation.String(), pr.Distributions.Add(pr.ExitProceeds).String(), "", pr.Multiple,
						"", "", "", pr.IRR, pr.Status}); err != nil {
						return err
					}
				}
			}
			return nil
		}}
}

// PaymentsRegisterReport is the payments register of a period: every
// payment released from from to to (inclusive; from "" for no lower
// bound), reversed ones too with their state, in the register's order (as
// prepared), the rows of GET /v1/payments?released_from=&released_to=
// drawn from the work model, and a total line summing their amounts.
func (p *Projector) PaymentsRegisterReport(from, to string) Report {
	period := from + " 至 " + to
	periodEN := from + " to " + to
	if from == "" {
		period, periodEN = "截至 "+to, "up to "+to
	}
	return Report{Name: "payments_register", TitleZH: "支付登记簿（支付日期 " + period + "）",
		TitleEN: "Payments register (released " + periodEN + ")",
		Columns: columns("payment_id", "released_on", "bank_reference", "grant_id", "installment", "program_id", "talent_id",
			"talent_name", "amount", "fiscal_year", "due_date", "state", "prepared_by", "approved_by", "released_by", "reconciled_in"),
		Rows: func(ctx context.Context, yield func([]string) error) error {
			var total domain.Money
			f := PaymentFilter{ReleasedFrom: from, ReleasedTo: to}
			if err := p.Work().EachPayment(f, func(r PaymentRow) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if r.ReleasedOn == "" { // neither bound given: released ones only
					return nil
				}
				total = total.Add(r.Amount)
				return yield([]string{r.ID, r.ReleasedOn, r.BankReference, r.GrantID, strconv.Itoa(r.Installment), r.ProgramID,
					r.TalentID, r.TalentName, r.Amount.String(), strconv.Itoa(r.FiscalYear), r.DueDate, r.State, r.PreparedBy,
					r.ApprovedBy, r.ReleasedBy, r.ReconciledIn})
			}); err != nil {
				return err
			}
			return yield([]string{"合计 Total", "", "", "", "", "", "", "", total.String()})
		}}
}

// GrantsRegisterReport is the grants register of the export (GrantsHeader)
// as a report.
func (p *Projector) GrantsRegisterReport() Report {
	return CSVReport("grants", "补助登记簿", "Grants register", GrantsHeader, columnKinds, columnNames,
		func(ctx context.Context, w io.Writer) error {
			_, err := WriteGrantsCSV(ctx, w, p, nil)
			return err
		})
}

// JournalReport is the journal of the export (JournalHeader) over rng as a
// report, read from the log the read side is fed from.
func (p *Projector) JournalReport(rng JournalRange) Report {
	return CSVReport("journal", "记账凭证日记账", "Journal", JournalHeader, columnKinds, columnNames,
		func(ctx context.Context, w io.Writer) error {
			_, err := p.WriteJournal(ctx, w, rng, nil, JournalHeader)
			return err
		})
}

// JournalReportOf is JournalReport over a store of its own (benchmarks
// and tools without a Projector).
func JournalReportOf(store eventstore.Store, rng JournalRange) Report {
	return CSVReport("journal", "记账凭证日记账", "Journal", JournalHeader, columnKinds, columnNames,
		func(ctx context.Context, w io.Writer) error {
			_, err := WriteJournalCSV(ctx, w, store, rng, nil)
			return err
		})
}
