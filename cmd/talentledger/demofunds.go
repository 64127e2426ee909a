package main

import (
	"github.com/shopspring/decimal"

	"talentledger/domain"
)

type demoFund struct {
	id, name, fundType, target string
	termYears                  int
	established                string
	concentrationPct           int64
	lps                        []demoLP
}

type demoLP struct {
	name, committed, paidIn, paidOn string
}

// demoFunds are the six special funds and the direct-investment fund.
var demoFunds = []demoFund{
	{"direct", "Pinghu Direct-Investment Fund (直投基金)", domain.FundDirectInvestment, "500000000", 10, "2019-06-18", 10, []demoLP{
		{"City investment platform", "200000000", "160000000", "2019-07-01"},
		{"Pinghu State-owned Assets Co.", "150000000", "120000000", "2019-07-01"},
		{"Social capital partners", "150000000", "120000000", "2020-03-02"},
	}},
	{"scitech", "Sci-tech Innovation Special Fund (科创专项基金)", domain.FundSpecial, "100000000", 10, "2020-03-16", 35, []demoLP{
		{"Pinghu Finance Bureau", "100000000", "65000000", "2020-04-01"}}},
	{"culture", "Culture Special Fund (文化专项基金)", domain.FundSpecial, "30000000", 9, "2017-12-01", 35, []demoLP{
		{"Pinghu Finance Bureau", "30000000", "13000000", "2018-01-15"}}},
	{"hr", "Human Resources Special Fund (人力资源专项基金)", domain.FundSpecial, "30000000", 8, "2021-05-10", 35, []demoLP{
		{"Pinghu Finance Bureau", "30000000", "19000000", "2021-06-01"}}},
	{"manufacturing", "Advanced Manufacturing Special Fund (先进制造专项基金)", domain.FundSpecial, "80000000", 10, "2020-09-01", 35, []demoLP{
		{"Pinghu Finance Bureau", "80000000", "50000000", "2020-10-08"}}},
	{"digital", "Digital Economy Special Fund (数字经济专项基金)", domain.FundSpecial, "60000000", 10, "2021-01-18", 35, []demoLP{
		{"Pinghu Finance Bureau", "60000000", "42000000", "2021-02-01"}}},
	{"open", "Open Economy Special Fund (开放型经济专项基金)", domain.FundSpecial, "30000000", 10, "2021-08-02", 35, []demoLP{
		{"Pinghu Finance Bureau", "30000000", "18000000", "2021-09-01"}}},
}

type demoProject struct {
	fund, project, company, sector, amount string
	stake                                  int64
	funded                                 string
}

// demoProjects are the 17 projects in the foreign high-end talent
// innovation cluster, 360,000,000.00 in all.
var demoProjects = []demoProject{
	{"direct", "Wafer-level optics line", "Pinghu Precision Optics Co.", "semiconductors", "50000000", 12, "2020-05-11"},
	{"direct", "Power-semiconductor packaging", "Zhejiang Semiconductor Equipment Co.", "semiconductors", "40000000", 10, "2020-08-17"},
	{"direct", "Industrial robot joints", "Pinghu Intelligent Equipment", "high_end_equipment", "35000000", 15, "2021-03-22"},
	{"direct", "Carbon-fibre composites", "Jiaxing Advanced Materials Ltd.", "new_materials", "30000000", 18, "2021-07-05"},
	{"direct", "Solid-state battery pilot", "Pinghu New Energy Tech", "new_energy", "20000000", 20, "2020-11-09"},
	{"direct", "Cold-chain logistics platform", "Pinghu Logistics Park", "digital_economy", "12000000", 8, "2022-04-18"},
	{"scitech", "mRNA vaccine adjuvants", "Pinghu Biomedical Park", "biomedicine", "30000000", 9, "2021-02-08"},
	{"scitech", "Lithography motion stages", "Zhejiang Semiconductor Equipment Co.", "semiconductors", "25000000", 6, "2021-09-13"},
	{"culture", "Digital heritage studio", "Pinghu Digital Economy Hub", "digital_economy", "6000000", 15, "2019-04-15"},
	{"culture", "Bio-based printing inks", "Jiaxing Advanced Materials Ltd.", "new_materials", "5000000", 5, "2019-10-21"},
	{"hr", "Rare-earth-free magnets", "Jiaxing Advanced Materials Ltd.", "new_materials", "4000000", 12, "2021-10-11"},
	{"hr", "Surgical robotics", "Pinghu Biomedical Park", "biomedicine", "10000000", 7, "2022-03-14"},
	{"manufacturing", "Five-axis machining centres", "Pinghu Intelligent Equipment", "high_end_equipment", "25000000", 11, "2021-04-19"},
	{"manufacturing", "Hydrogen fuel-cell stacks", "Pinghu New Energy Tech", "new_energy", "18000000", 9, "2022-01-17"},
	{"digital", "Industrial IoT platform", "Pinghu Digital Economy Hub", "digital_economy", "20000000", 10, "2021-06-07"},
	{"digital", "Medical imaging AI", "Pinghu Biomedical Park", "biomedicine", "15000000", 3, "2022-05-23"},
	{"open", "Cross-border e-commerce hub", "Pinghu Logistics Park", "digital_economy", "15000000", 14, "2022-02-21"},
}

// loadDemoFunds writes the funds: commitments, paid-in capital, the 17
// projects (each funded in one or two tranches), some valuations, the 1.8×
// exit and the 4,000,000 write-off, and a special-fund grant program
// financed by the human resources fund.
func (d *demoLoader) loadDemoFunds() {
	ctx := d.ctx
	for _, f := range demoFunds {
		limit := decimal.NewFromInt(f.concentrationPct)
		d.at(f.established, "establish "+f.id, func() (domain.Result, error) {
			return d.svc.EstablishFund(ctx, domain.EstablishFund{Meta: d.meta(domain.RoleFundManager, f.established, "PHCZ-FUND-"+f.id),
				FundID: f.id, Name: f.name, FundType: f.fundType, Target: money(f.target), TermYears: f.termYears,
				Manager: "Pinghu Industrial Investment Management Co.", ConcentrationLimitPct: &limit})
		})
		for _, lp := range f.lps {
			d.at(f.established, "commit", func() (domain.Result, error) {
				return d.svc.MakeCommitment(ctx, domain.CapitalCommand{Meta: d.meta(domain.RoleFundManager, f.established, ""),
					FundID: f.id, LP: lp.name, Amount: money(lp.committed)})
			})
			d.at(lp.paidOn, "pay in", func() (domain.Result, error) {
				return d.svc.PayInCapital(ctx, domain.CapitalCommand{Meta: d.meta(domain.RoleFundManager, lp.paidOn, ""),
					FundID: f.id, LP: lp.name, Amount: money(lp.paidIn)})
			})
		}
	}
	ids := make([]*string, len(demoProjects))
	for i, p := range demoProjects {
		ids[i] = d.at(p.funded, "approve investment", func() (domain.Result, error) {
			return d.svc.ApproveInvestment(ctx, domain.ApproveInvestment{Meta: d.meta(domain.RoleFundManager, p.funded, ""),
				FundID: p.fund, CommitteeRef: "IC-" + p.funded, Project: p.project, Company: p.company, Sector: p.sector,
				Amount: money(p.amount), StakePct: decimal.NewFromInt(p.stake)})
		})
		// Larger investments are funded in two tranches, six months apart.
		total := money(p.amount)
		tranches := []domain.Money{total}
		if total.Cmp(money("20000000")) > 0 {
			first := total.MulRatio(3, 5)
			tranches = []domain.Money{first, total.Sub(first)}
		}
		for n, amount := range tranches {
			date := domain.AddMonths(p.funded, 6*n)
			d.at(date, "tranche", func() (domain.Result, error) {
				return d.svc.FundTranche(ctx, domain.InvestmentCommand{Meta: d.meta(domain.RoleFundManager, date, ""),
					FundID: p.fund, InvestmentID: *ids[i], Amount: amount})
			})
		}
	}
	inv := func(i int, date string, f func(domain.InvestmentCommand) (domain.Result, error), amount string) {
		d.at(date, "investment event", func() (domain.Result, error) {
			c := domain.InvestmentCommand{Meta: d.meta(domain.RoleFundManager, date, "PH-VAL-"+date), FundID: demoProjects[i].fund, InvestmentID: *ids[i]}
			if amount != "" {
				c.Amount = money(amount)
			}
			return f(c)
		})
	}
	// The solid-state battery pilot: 20,000,000 in, 36,000,000 back (1.8×).
	inv(4, "2024-06-28", func(c domain.InvestmentCommand) (domain.Result, error) { return d.svc.CompleteExit(ctx, c) }, "36000000")
	// The rare-earth-free magnets: written off, 4,000,000.
	inv(10, "2024-09-30", func(c domain.InvestmentCommand) (domain.Result, error) { return d.svc.WriteOff(ctx, c) }, "")
	// Valuations and a distribution.
	inv(0, "2024-12-31", func(c domain.InvestmentCommand) (domain.Result, error) { return d.svc.UpdateValuation(ctx, c) }, "68000000")
	inv(6, "2024-12-31", func(c domain.InvestmentCommand) (domain.Result, error) { return d.svc.UpdateValuation(ctx, c) }, "41500000")
	inv(14, "2024-12-31", func(c domain.InvestmentCommand) (domain.Result, error) { return d.svc.UpdateValuation(ctx, c) }, "17000000")
	inv(12, "2024-11-15", func(c domain.InvestmentCommand) (domain.Result, error) { return d.svc.RecordDistribution(ctx, c) }, "2500000")

	// A special-fund grant: the human resources fund finances awards to
	// provincial overseas engineers.
	d.at("2024-01-05", "define hr_awards", func() (domain.Result, error) {
		return d.svc.DefineProgram(ctx, domain.DefineProgram{Meta: d.meta(domain.RoleAdmin, "2024-01-05", "PHRS-2024-004"),
			ProgramID: "hr_awards", Name: "Overseas engineer awards (省海外工程师奖励), HR special fund", Kind: domain.KindSpecialFundGrant,
			Caps: capsAll("200000", "A", "B", "C", "D"), Schedule: domain.Schedule{Percentages: pct(50, 50), IntervalMonths: 12},
			ServiceMonths: 24, FundingSource: "fund:hr"})
	})
	d.at("2024-01-08", "budget hr_awards", func() (domain.Result, error) {
		return d.svc.AppropriateBudget(ctx, domain.AppropriateBudget{Meta: d.meta(domain.RoleApprover, "2024-01-08", "PHCZ-2024-019"),
			ProgramID: "hr_awards", FiscalYear: 2024, Amount: money("2000000")})
	})
}
