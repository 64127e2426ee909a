package projections_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

// workBooks records a ledger with something in every queue of the work
// model: an application to review, a notice to open, payments to approve,
// to release and failed, an installment due, payments released in two
// bank batches (one reversed), a departure, a bank statement reconciled
// against them with a payment released after it, and a year-end close
// that carries an installment over.
func workBooks(t *testing.T) []eventstore.Event {
	b := newBooks(t)
	clerk := func(eff string) domain.CommandMeta { return b.meta("clara", domain.RoleClerk, eff) }
	approver := func(eff string) domain.CommandMeta { return b.meta("alan", domain.RoleApprover, eff) }
	treasurer := func(eff string) domain.CommandMeta { return b.meta("tom", domain.RoleTreasurer, eff) }
	caps := map[string]domain.Money{"A": yuan("100000.00"), "B": yuan("100000.00"), "C": yuan("100000.00"), "D": yuan("100000.00")}

	b.at("2024-01-02 09:00")
	b.must(b.svc.DefineProgram(b.ctx, domain.DefineProgram{Meta: b.meta("ada", domain.RoleAdmin, "2024-01-01"),
		ProgramID: "quick", Name: "One-off subsidy", Kind: "transport", Caps: caps, Schedule: domain.Schedule{Percentages: pct(100)}}))
	b.must(b.svc.DefineProgram(b.ctx, domain.DefineProgram{Meta: b.meta("ada", domain.RoleAdmin, "2024-01-01"),
		ProgramID: "noticed", Name: "Noticed subsidy", Kind: "rent", Caps: caps, Schedule: domain.Schedule{Percentages: pct(100)},
		NoticeDays: 5}))
	b.must(b.svc.AppropriateBudget(b.ctx, domain.AppropriateBudget{Meta: approver("2024-01-02"), ProgramID: "quick", FiscalYear: 2024,
		Amount: yuan("1000000.00")}))
	b.must(b.svc.DefineProgram(b.ctx, domain.DefineProgram{Meta: b.meta("ada", domain.RoleAdmin, "2024-01-01"), ProgramID: "rent",
		Name: "Rent", Kind: domain.KindRent, Caps: caps, Schedule: domain.Schedule{Percentages: pct(50, 50), IntervalMonths: 12},
		ServiceMonths: 24}))
	b.must(b.svc.AppropriateBudget(b.ctx, domain.AppropriateBudget{Meta: approver("2024-01-02"), ProgramID: "rent", FiscalYear: 2024,
		Amount: yuan("500000.00")}))
	var talents []string
	for _, r := range []domain.RegisterTalent{
		{Name: "王小明", PermitCategory: "A", Tier: "A", Employer: "Pinghu Optics", BankAccount: "6222000000000001", BankName: "ICBC Pinghu"},
		{Name: "ＷＡＮＧ Li", PermitCategory: "B", Tier: "B", Employer: "Harbour Labs", OverseasEngineer: true, BankAccount: "6222000000000002",
			BankName: "BOC Pinghu"},
		{Name: "Chen Jie", PermitCategory: "A", Tier: "C", Employer: "Pinghu Optics"},
		{Name: "李娜", PermitCategory: "C", Tier: "D", Employer: "Harbour Labs", BankAccount: "6222000000000004", BankName: "ICBC Pinghu"},
	} {
		r.Meta = clerk("2024-01-02")
		talents = append(talents, b.must(b.svc.RegisterTalent(b.ctx, r)))
	}

	prepare := func(g, date string) string {
		return b.must(b.svc.PreparePayment(b.ctx, domain.PreparePayment{Meta: clerk(date), GrantID: g, Installment: 1}))
	}
	approve := func(p, date string) {
		b.must(b.svc.ApprovePayment(b.ctx, domain.PaymentCommand{Meta: approver(date), PaymentID: p}))
	}
	release := func(p, date, ref string) {
		b.must(b.svc.ReleasePayment(b.ctx, domain.PaymentCommand{Meta: treasurer(date), PaymentID: p, BankReference: ref}))
	}

	b.at("2024-02-01 10:00")
	g1 := b.grant(talents[0], "30000.00", "2024-02-01")
	g2 := b.grant(talents[1], "20000.00", "2024-02-01")
	g3 := b.grant(talents[2], "10000.00", "2024-02-01")
	g4 := b.grant(talents[3], "15000.00", "2024-02-01")
	b.grant(talents[0], "5000.00", "2024-02-01") // its installment stays due
	g7 := b.must(b.svc.ApplyGrant(b.ctx, domain.ApplyGrant{Meta: clerk("2024-02-01"), TalentID: talents[1], ProgramID: "rent",
		AmountRequested: yuan("60000.00")}))
	b.must(b.svc.ReviewGrant(b.ctx, domain.ReviewGrant{Meta: b.meta("rita", domain.RoleReviewer, "2024-02-01"), GrantID: g7,
		Decision: "approve"}))
	b.must(b.svc.ApproveGrant(b.ctx, domain.ApproveGrant{Meta: approver("2024-02-01"), GrantID: g7})) // two years

	b.at("2024-03-01 10:00")
	p1 := prepare(g1, "2024-03-01")
	approve(p1, "2024-03-01")
	release(p1, "2024-03-01", "B1-1")
	p4 := prepare(g4, "2024-03-01")
	approve(p4, "2024-03-01")
	release(p4, "2024-03-01", "B1-2")
	p2 := prepare(g2, "2024-03-01")
	approve(p2, "2024-03-01")
	b.must(b.svc.FailPayment(b.ctx, domain.PaymentCommand{Meta: treasurer("2024-03-01"), PaymentID: p2, Reason: "account closed"}))
	prepare(g3, "2024-03-01") // waits for approval

	b.at("2024-03-20 10:00")
	b.must(b.svc.ReversePayment(b.ctx, domain.PaymentCommand{Meta: b.meta("tess", domain.RoleTreasurer, "2024-03-20"), PaymentID: p4, Reason: "returned by the bank"}))
	b.must(b.svc.ReportDeparture(b.ctx, domain.ReportDeparture{Meta: clerk("2024-03-20"), TalentID: talents[2], DepartureDate: "2024-03-15"}))

	// The March statement, matched as an import matches it.
	p := projections.New(nil, quietLog())
	it := b.store.ReadAll(context.Background(), eventstore.Start)
	for it.Next() {
		ev := it.Event()
		if err := p.Apply(&ev); err != nil {
			t.Fatal(err)
		}
	}
	it.Close()
	sum := sha256.Sum256([]byte("march"))
	st := domain.NewBankStatement(hex.EncodeToString(sum[:]), p.Work().MatchStatement([]projections.StatementEntry{
		{Line: 2, ValueDate: "2024-03-01", Reference: "B1-1", Amount: yuan("-30000.00")},
		{Line: 3, ValueDate: "2024-03-01", Reference: "B1-2", Amount: yuan("-15000.00")},
		{Line: 4, ValueDate: "2024-03-01", Reference: "X-9", Amount: yuan("12.00")},
	}))
	b.at("2024-04-01 10:00")
	b.must(b.svc.ReconcileStatement(b.ctx, domain.ReconcileStatement{Meta: treasurer("2024-04-01"), Statement: st}))

	b.at("2024-04-02 10:00")
	b.must(b.svc.ApplyGrant(b.ctx, domain.ApplyGrant{Meta: clerk("2024-04-02"), TalentID: talents[3], ProgramID: "noticed",
		AmountRequested: yuan("8000.00")})) // to review
	g6 := b.must(b.svc.ApplyGrant(b.ctx, domain.ApplyGrant{Meta: clerk("2024-04-02"), TalentID: talents[1], ProgramID: "noticed",
		AmountRequested: yuan("9000.00")}))
	b.must(b.svc.ReviewGrant(b.ctx, domain.ReviewGrant{Meta: b.meta("rita", domain.RoleReviewer, "2024-04-02"), GrantID: g6,
		Decision: "approve"})) // its notice to open
	p5 := prepare(g4, "2024-04-02")
	approve(p5, "2024-04-02")
	release(p5, "2024-04-02", "B2-1")

	// The year-end close carries the two-year grant's first installment
	// over, long after the grant last changed.
	b.at("2025-01-06 10:00")
	b.must(b.svc.AppropriateBudget(b.ctx, domain.AppropriateBudget{Meta: approver("2025-01-02"), ProgramID: "rent", FiscalYear: 2025,
		Amount: yuan("500000.00")}))
	closing := func(who string) domain.CommandMeta {
		m := b.meta(who, domain.RoleApprover, "2025-01-06")
		m.Reason = "year-end close"
		return m
	}
	b.must(b.svc.RequestYearEndClose(b.ctx, domain.YearEndCommand{Meta: closing("alan"), ProgramID: "rent", FiscalYear: 2024,
		CarryOver: []domain.CarryOver{{GrantID: g7, Reason: "lease signed in December"}}}))
	b.must(b.svc.ConfirmYearEndClose(b.ctx, domain.YearEndCommand{Meta: closing("abe"), ProgramID: "rent", FiscalYear: 2024}))

	var evs []eventstore.Event
	it = b.store.ReadAll(context.Background(), eventstore.Start)
	for it.Next() {
		evs = append(evs, it.Event())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it.Close()
	return evs
}
