package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/shopspring/decimal"

	"talentledger/domain"
)

// demoLoader writes the demo data set as history: through a Service made
// for import (domain.WithImport), so that every command is reckoned at its
// own historical date and every event is marked source "import", the
// honest way history enters the ledger. Steps are queued with their dates
// and run in date order (steps of one day in the order queued), so that no
// stream's business dates go backwards. Command IDs are fixed ("demo:N"),
// so the data set, and every ID it creates, is the same on every machine.
type demoLoader struct {
	ctx   context.Context
	svc   *domain.Service
	n     int
	err   error
	steps []demoStep
	// batched counts the payments of the release batch demoBatch.
	batched int
}

type demoStep struct {
	date, what string
	run        func() (domain.Result, error)
	// id receives the ID the step created, for later steps.
	id *string
}

func (d *demoLoader) meta(role, date, doc string) domain.CommandMeta {
	d.n++
	return domain.CommandMeta{
		Actor:         domain.Actor{Principal: "demo-" + role, Role: role},
		CommandID:     fmt.Sprintf("demo:%d", d.n),
		CorrelationID: fmt.Sprintf("demo-%d", d.n),
		EffectiveDate: date,
		DocumentRef:   doc,
	}
}

// at queues a step on date and returns where the ID it creates will be.
func (d *demoLoader) at(date, what string, f func() (domain.Result, error)) *string {
	id := new(string)
	d.steps = append(d.steps, demoStep{date: date, what: what, run: f, id: id})
	return id
}

// run carries out the queued steps in date order, stopping at the first
// that fails.
func (d *demoLoader) run() error {
	sort.SliceStable(d.steps, func(i, j int) bool { return d.steps[i].date < d.steps[j].date })
	for _, st := range d.steps {
		res, err := st.run()
		if err != nil {
			return fmt.Errorf("%s on %s (command %d): %w", st.what, st.date, d.n, err)
		}
		*st.id = res.ID
	}
	return nil
}

func money(s string) domain.Money {
	m, err := domain.ParseMoney(s)
	if err != nil {
		panic(err)
	}
	return m
}

func ptr[T any](v T) *T { return &v }

func pct(ps ...int64) []decimal.Decimal {
	out := make([]decimal.Decimal, len(ps))
	for i, p := range ps {
		out[i] = decimal.NewFromInt(p)
	}
	return out
}

func capsAll(amount string, tiers ...string) map[string]domain.Money {
	m := map[string]domain.Money{}
	for _, t := range tiers {
		m[t] = money(amount)
	}
	return m
}

func monthly(amount string, months int) domain.Schedule {
	a := money(amount)
	return domain.Schedule{MonthlyAmount: &a, Months: months}
}

// demoPrograms are the subsidy programs of fiscal year 2024 and their
// budgets, as in docs/domain.md.
var demoPrograms = []struct {
	def    domain.DefineProgram
	budget string
}{
	{domain.DefineProgram{ProgramID: "housing", Name: "Housing-purchase subsidy (购房补助)", Kind: domain.KindHousingPurchase,
		Caps:     map[string]domain.Money{"A": money("1000000"), "B": money("600000"), "C": money("350000"), "D": money("150000")},
		Schedule: domain.Schedule{Percentages: pct(40, 30, 30), IntervalMonths: 12}, ServiceMonths: 60, NoticeDays: 5,
		DeductKinds: []string{domain.KindRent, domain.KindApartmentRent}, Entitlement: domain.Entitlement{Once: true}}, "30000000"},
	{domain.DefineProgram{ProgramID: "living", Name: "Living allowance (生活补贴), permit category A", Kind: domain.KindLivingAllowance,
		Caps: capsAll("180000", "A", "B", "C", "D"), Schedule: monthly("5000", 36), ServiceMonths: 36, NoticeDays: 5,
		PermitCategories: []string{"A"}, Entitlement: domain.Entitlement{MaxMonths: 36}}, "12000000"},
	{domain.DefineProgram{ProgramID: "rent", Name: "Rent subsidy (租房补贴)", Kind: domain.KindRent,
		Caps: capsAll("60000", "A", "B", "C", "D", "E"), Schedule: monthly("2500", 24),
		Entitlement: domain.Entitlement{MaxMonths: 36, ExclusiveKinds: []string{domain.KindRent, domain.KindApartmentRent}}}, "3000000"},
	{domain.DefineProgram{ProgramID: "transport", Name: "Transport and toll subsidy (交通补助)", Kind: domain.KindTransport,
		Caps: capsAll("18000", "A", "B", "C", "D", "E"), Schedule: monthly("500", 36),
		Entitlement: domain.Entitlement{MaxPerYear: ptr(money("6000"))}}, "1500000"},
	{domain.DefineProgram{ProgramID: "medical", Name: "Supplementary medical insurance (补充医疗保险)", Kind: domain.KindMedicalInsurance,
		Caps: capsAll("12000", "A", "B", "C", "D"), Schedule: domain.Schedule{Percentages: pct(100)},
		Entitlement: domain.Entitlement{MaxPerYear: ptr(money("12000"))}}, "800000"},
	{domain.DefineProgram{ProgramID: "apartment", Name: "Talent-apartment rent discount, 19 apartments (人才公寓租金优惠)", Kind: domain.KindApartmentRent,
		Caps: capsAll("72000", "A", "B", "C", "D", "E"), Schedule: monthly("3000", 24),
		Entitlement: domain.Entitlement{MaxMonths: 36, ExclusiveKinds: []string{domain.KindRent, domain.KindApartmentRent}}}, "2000000"},
}

type demoTalent struct {
	name, permit, tier, employer string
	engineer                     bool
}

// demoTalents mixes permit categories A and B, permanent residents and
// provincial overseas engineers across tiers A–D.
var demoTalents = []demoTalent{
	{"Elena Petrova", "A", "B", "Pinghu Precision Optics Co.", false},
	{"Hans Becker", "A", "C", "Jiaxing Advanced Materials Ltd.", true},
	{"Akira Tanaka", "A", "A", "Zhejiang Semiconductor Equipment Co.", true},
	{"Maria Rossi", "B", "B", "Pinghu Biomedical Park", false},
	{"David Kim", "permanent_resident", "D", "Pinghu New Energy Tech", false},
	{"Sophie Martin", "A", "B", "Pinghu Precision Optics Co.", true},
	{"Lars Nilsson", "A", "A", "Zhejiang Semiconductor Equipment Co.", true},
	{"Priya Sharma", "B", "C", "Pinghu Digital Economy Hub", false},
	{"Carlos Mendes", "A", "C", "Jiaxing Advanced Materials Ltd.", true},
	{"Anna Kowalska", "B", "D", "Pinghu Biomedical Park", false},
	{"Thomas Müller", "A", "B", "Pinghu Intelligent Equipment", true},
	{"Yuki Sato", "permanent_resident", "C", "Pinghu Intelligent Equipment", false},
	{"Olivier Dubois", "A", "A", "Pinghu New Energy Tech", true},
	{"Fatima Al-Sayed", "B", "D", "Pinghu Digital Economy Hub", false},
	{"James O'Connor", "A", "B", "Zhejiang Semiconductor Equipment Co.", true},
	{"Ingrid Larsen", "A", "C", "Pinghu Precision Optics Co.", true},
	{"Marco Bianchi", "B", "D", "Pinghu Logistics Park", false},
	{"Eva Novak", "A", "B", "Pinghu Biomedical Park", true},
	{"Kwame Mensah", "B", "C", "Pinghu New Energy Tech", false},
	{"Lucía García", "permanent_resident", "B", "Jiaxing Advanced Materials Ltd.", false},
	{"Peter Schmidt", "A", "A", "Pinghu Intelligent Equipment", true},
	{"Nadia Haddad", "B", "D", "Pinghu Digital Economy Hub", false},
	{"Robert Chen", "permanent_resident", "C", "Pinghu Precision Optics Co.", true},
	{"Mei Lin Wong", "A", "B", "Zhejiang Semiconductor Equipment Co.", true},
	{"Jonas Weber", "A", "C", "Pinghu Precision Optics Co.", true},
	{"Isabel Costa", "B", "D", "Pinghu Biomedical Park", false},
	{"Viktor Ivanov", "A", "B", "Pinghu New Energy Tech", true},
	{"Hannah Fischer", "B", "C", "Pinghu Intelligent Equipment", false},
	{"Samuel Adeyemi", "A", "D", "Pinghu Digital Economy Hub", false},
	{"Chloé Laurent", "A", "C", "Jiaxing Advanced Materials Ltd.", true},
}

// loadDemo writes the demo data set: docs/domain.md's programs and budgets for
// fiscal year 2024 (and 2025's, appropriated alike, and housing's 2026),
// housing's 2024 closed with a carry-over and a lapse, thirty talents whose
// grants are at every stage, among them one completed, one midway through
// its installments, one rejected, one whose award is reduced by rent
// already received, and the early departure that owes the 220,000.00
// clawback; the funds; the crowd of 500 more talents and their grants
// (demotalents.go); the 19 talent apartments; and the bank's statement
// for one release batch, with mismatches (demobank.go). It is history,
// entered through the import path into the store svc writes to; svc must
// not have read the store yet.
func loadDemo(ctx context.Context, svc *domain.Service) error {
	d := &demoLoader{ctx: ctx, svc: domain.NewService(svc.Store(), domain.WithImport())}
	for _, p := range demoPrograms {
		def := p.def
		d.at("2023-12-01", "define "+def.ProgramID, func() (domain.Result, error) {
			def.Meta = d.meta(domain.RoleAdmin, "2023-12-01", "PHRS-2023-112")
			return d.svc.DefineProgram(ctx, def)
		})
		d.at("2024-01-02", "budget "+def.ProgramID, func() (domain.Result, error) {
			return d.svc.AppropriateBudget(ctx, domain.AppropriateBudget{Meta: d.meta(domain.RoleApprover, "2024-01-02", "PHCZ-2024-001"),
				ProgramID: def.ProgramID, FiscalYear: 2024, Amount: money(p.budget)})
		})
		// 2025 is appropriated as 2024 was; its appropriation covers the
		// installments that 2024's approvals committed to 2025.
		d.at("2025-01-02", "budget 2025 "+def.ProgramID, func() (domain.Result, error) {
			return d.svc.AppropriateBudget(ctx, domain.AppropriateBudget{Meta: d.meta(domain.RoleApprover, "2025-01-02", "PHCZ-2025-001"),
				ProgramID: def.ProgramID, FiscalYear: 2025, Amount: money(p.budget)})
		})
	}
	// Of 2026, only housing is appropriated so far; the other programs'
	// installments falling due in 2026 are forward commitments awaiting
	// the 2026 budget.
	d.at("2026-01-02", "budget 2026 housing", func() (domain.Result, error) {
		return d.svc.AppropriateBudget(ctx, domain.AppropriateBudget{Meta: d.meta(domain.RoleApprover, "2026-01-02", "PHCZ-2026-001"),
			ProgramID: "housing", FiscalYear: 2026, Amount: money("30000000")})
	})
	talents := make([]*string, len(demoTalents))
	for i, t := range demoTalents {
		talents[i] = d.at("2023-12-15", "register "+t.name, func() (domain.Result, error) {
			return d.svc.RegisterTalent(ctx, domain.RegisterTalent{Meta: d.meta(domain.RoleClerk, "2023-12-15", ""),
				Name: t.name, PermitCategory: t.permit, Tier: t.tier, Employer: t.employer, OverseasEngineer: t.engineer})
		})
	}

	// The early departure: tier B, 600,000 approved 2024-01-15, paid
	// 240,000 and 180,000, leaves at month 20 of 60 and owes 220,000.00.
	g := d.approvedGrant(talents[0], "housing", "600000", "2024-01-02", "2024-01-15")
	d.pay(g, 1, "2024-01-15")
	d.pay(g, 2, "2025-01-15")
	d.at("2025-09-15", "departure", func() (domain.Result, error) {
		return d.svc.ReportDeparture(ctx, domain.ReportDeparture{Meta: d.meta(domain.RoleClerk, "2025-09-15", "PHRS-DEP-2025-031"),
			TalentID: *talents[0], DepartureDate: "2025-09-15"})
	})
	leaver := g
	d.at("2025-09-20", "terminate", func() (domain.Result, error) {
		m := d.meta(domain.RoleApprover, "2025-09-20", "PHCZ-TERM-2025-007")
		m.Reason = "left Pinghu before serving 60 months"
		return d.svc.TerminateGrant(ctx, domain.TerminateGrant{Meta: m, GrantID: *leaver})
	})

	// Every step completed: tier C housing, all three installments paid.
	g = d.approvedGrant(talents[1], "housing", "350000", "2024-01-20", "2024-02-01")
	d.pay(g, 1, "2024-02-01")
	d.pay(g, 2, "2025-02-01")
	d.pay(g, 3, "2026-02-01")

	// Midway: tier A housing, two of three installments paid.
	g = d.approvedGrant(talents[2], "housing", "1000000", "2024-02-20", "2024-03-01")
	d.pay(g, 1, "2024-03-01")
	d.pay(g, 2, "2025-03-01")

	// No stacking: six months of rent are deducted from a later housing award.
	g = d.approvedGrant(talents[3], "rent", "60000", "2024-01-05", "2024-01-10")
	for n, date := range []string{"2024-01-10", "2024-02-10", "2024-03-10", "2024-04-10", "2024-05-10", "2024-06-10"} {
		d.pay(g, n+1, date)
	}
	g = d.approvedGrant(talents[3], "housing", "600000", "2024-06-20", "2024-07-01")
	d.pay(g, 1, "2024-07-01")

	// Living allowance for a category-A holder, paid monthly, midway.
	g = d.approvedGrant(talents[5], "living", "180000", "2024-01-08", "2024-01-22")
	for n, date := range []string{"2024-01-22", "2024-02-22", "2024-03-22", "2024-04-22"} {
		d.pay(g, n+1, date)
	}

	// More approved grants, each with its first installment paid; the
	// two apartment grants pay the discount of a unit (see
	// loadDemoApartments).
	var aptGrants []*string
	for _, c := range []struct {
		t                        int
		program, amount, applied string
		approved                 string
	}{
		{6, "housing", "1000000", "2024-03-04", "2024-03-18"},
		{7, "transport", "18000", "2024-02-01", "2024-02-05"},
		{8, "apartment", "72000", "2024-02-01", "2024-02-05"},
		{9, "medical", "12000", "2024-03-01", "2024-03-04"},
		{10, "housing", "600000", "2024-04-01", "2024-04-15"},
		{11, "transport", "18000", "2024-04-01", "2024-04-03"},
		{12, "living", "180000", "2024-04-08", "2024-04-22"},
		{13, "apartment", "72000", "2024-05-06", "2024-05-08"},
		{14, "medical", "12000", "2024-05-06", "2024-05-08"},
		{15, "housing", "350000", "2024-05-06", "2024-05-20"},
	} {
		g := d.approvedGrant(talents[c.t], c.program, c.amount, c.applied, c.approved)
		d.pay(g, 1, c.approved)
		if c.program == "apartment" {
			aptGrants = append(aptGrants, g)
		}
	}

	// Grants still on their way: applied, reviewed, in notice, and one rejected.
	d.apply(talents[16], "transport", "18000", "2024-10-08")
	g = d.apply(talents[17], "housing", "600000", "2024-10-08")
	d.review(g, "2024-10-10", "approve")
	g = d.apply(talents[18], "housing", "350000", "2024-10-09")
	d.review(g, "2024-10-11", "approve")
	d.openNotice(g, "2024-10-14")
	g = d.apply(talents[19], "housing", "600000", "2024-10-09")
	d.review(g, "2024-10-11", "reject")

	// The year-end close of 2024's housing budget (年终结账): two awards
	// approved in December 2024 were not paid before the year ended. One
	// is carried over (结转) to 2025 as carried-over funds; the other
	// lapses (结余) and is committed to 2025's own budget. Both are paid in
	// January 2025 and charged to 2025.
	carried := d.approvedGrant(talents[24], "housing", "350000", "2024-12-02", "2024-12-16")
	lapsed := d.approvedGrant(talents[25], "housing", "150000", "2024-12-02", "2024-12-17")
	d.at("2025-01-06", "request the close of housing 2024", func() (domain.Result, error) {
		m := d.meta(domain.RoleApprover, "2025-01-06", "PHCZ-JZ-2024-003")
		m.Reason = "year-end close of the 2024 housing budget"
		return d.svc.RequestYearEndClose(ctx, domain.YearEndCommand{Meta: m, ProgramID: "housing", FiscalYear: 2024,
			CarryOver: []domain.CarryOver{{GrantID: *carried, Reason: "purchase contract signed on 27 December 2024; paid in January by agreement"}}})
	})
	d.at("2025-01-07", "confirm the close of housing 2024", func() (domain.Result, error) {
		m := d.meta(domain.RoleApprover, "2025-01-07", "PHCZ-JZ-2024-003")
		m.Actor.Principal = "demo-approver2"
		m.Reason = "year-end close of the 2024 housing budget, checked"
		return d.svc.ConfirmYearEndClose(ctx, domain.YearEndCommand{Meta: m, ProgramID: "housing", FiscalYear: 2024})
	})
	d.pay(carried, 1, "2025-01-15")
	d.pay(lapsed, 1, "2025-01-16")

	d.loadDemoFunds()
	crowd := d.loadDemoCrowd()
	d.loadDemoApartments([]*string{talents[8], talents[13]}, aptGrants, crowd)
	// Two overseas engineers receive the HR special fund's award.
	for _, t := range []int{20, 22} {
		g := d.approvedGrant(talents[t], "hr_awards", "200000", "2024-03-04", "2024-03-11")
		d.pay(g, 1, "2024-03-11")
	}
	if err := d.run(); err != nil {
		return err
	}
	return d.importDemoStatement()
}

func (d *demoLoader) apply(talent *string, program, amount, date string) *string {
	return d.at(date, "apply", func() (domain.Result, error) {
		return d.svc.ApplyGrant(d.ctx, domain.ApplyGrant{Meta: d.meta(domain.RoleClerk, date, "PHRS-APP-"+date),
			TalentID: *talent, ProgramID: program, AmountRequested: money(amount)})
	})
}

func (d *demoLoader) review(g *string, date, decision string) {
	d.at(date, "review", func() (domain.Result, error) {
		return d.svc.ReviewGrant(d.ctx, domain.ReviewGrant{Meta: d.meta(domain.RoleReviewer, date, ""), GrantID: *g,
			Decision: decision, Note: "employer verified; documents complete"})
	})
}

func (d *demoLoader) openNotice(g *string, date string) {
	d.at(date, "notice", func() (domain.Result, error) {
		return d.svc.OpenNotice(d.ctx, domain.NoticeCommand{Meta: d.meta(domain.RoleReviewer, date, "PH-GS-"+date), GrantID: *g})
	})
}

// approvedGrant applies, reviews, runs the public notice where the program
// has one (closing it on the first day the calendar allows), and approves
// on the approval date, or on the day the notice closed if that is later.
func (d *demoLoader) approvedGrant(talent *string, program, amount, applied, approved string) *string {
	g := d.apply(talent, program, amount, applied)
	d.review(g, applied, "approve")
	if program == "housing" || program == "living" {
		d.openNotice(g, applied)
		closes := domain.NoticeClosesOn(applied, 5)
		approved = max(approved, closes)
		d.at(closes, "close notice", func() (domain.Result, error) {
			return d.svc.CloseNotice(d.ctx, domain.NoticeCommand{Meta: d.meta(domain.RoleReviewer, closes, ""), GrantID: *g})
		})
	}
	d.at(approved, "approve", func() (domain.Result, error) {
		return d.svc.ApproveGrant(d.ctx, domain.ApproveGrant{Meta: d.meta(domain.RoleApprover, approved, "PHCZ-APR-"+approved), GrantID: *g})
	})
	return g
}

// pay prepares, approves and releases installment n on date; the
// payments released on demoBatchDate are the release batch demoBatch and
// get its references, in the order released.
func (d *demoLoader) pay(g *string, n int, date string) {
	p := d.at(date, "prepare", func() (domain.Result, error) {
		return d.svc.PreparePayment(d.ctx, domain.PreparePayment{Meta: d.meta(domain.RoleClerk, date, ""), GrantID: *g, Installment: n})
	})
	d.at(date, "approve payment", func() (domain.Result, error) {
		return d.svc.ApprovePayment(d.ctx, domain.PaymentCommand{Meta: d.meta(domain.RoleApprover, date, ""), PaymentID: *p})
	})
	d.at(date, "release", func() (domain.Result, error) {
		ref := fmt.Sprintf("ZJRCB-%s-%04d", date, d.n)
		if date == demoBatchDate {
			d.batched++
			ref = fmt.Sprintf("%s-%03d", demoBatch, d.batched)
		}
		return d.svc.ReleasePayment(d.ctx, domain.PaymentCommand{Meta: d.meta(domain.RoleTreasurer, date, ""), PaymentID: *p,
			BankReference: ref})
	})
}
