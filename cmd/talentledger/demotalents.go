package main

import (
	"fmt"

	"github.com/shopspring/decimal"

	"talentledger/domain"
)

// The demo at the city's scale (docs/domain.md): besides the thirty
// talents whose stories the walkthrough follows, demoCrowd more holders of
// foreign work permits, Chinese and foreign names, so that the city counts
// 530 of them; 94 % or more hold category A, B or permanent residence; 55
// are provincial overseas engineers, ten of them at one employer
// (demoEngineerEmployer). A share of them have grants of every program at
// every stage, dated 2025: paid on time, paid for a few months and then
// overdue, in review, in notice, rejected, and two early departures with
// their clawbacks, one recovered in full and one in part.

const (
	// demoCrowd is how many talents the crowd adds to the thirty.
	demoCrowd = 500
	// demoEngineers is the number of provincial overseas engineers.
	demoEngineers = 55
	// demoEngineerEmployer is the employer with ten of them.
	demoEngineerEmployer = "Zhejiang Semiconductor Equipment Co."
)

var (
	surnamesZH = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "高", "罗", "欧阳", "司马"}
	givenZH    = []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "华", "慧", "思远", "嘉怡", "子涵"}
	firstEN    = []string{"Anna", "Ben", "Clara", "Daniel", "Emma", "Felix", "Greta", "Henrik", "Iris", "Jakob", "Kenji", "Laura", "Mateo",
		"Nora", "Oskar", "Paula", "Quentin", "Rosa", "Stefan", "Tara", "Umar", "Vera", "William", "Ximena", "Yusuf", "Zoe"}
	lastEN = []string{"Andersen", "Bauer", "Clarke", "Dubois", "Eriksson", "Ferrari", "Gonzalez", "Hoffmann", "Ito", "Jensen", "Kovacs",
		"Lindqvist", "Moreau", "Nakamura", "Olsen", "Park", "Quinn", "Romano", "Silva", "Tanaka", "Ueda", "Van Dijk", "Wagner", "Yilmaz"}
	crowdEmployers = []string{"Pinghu Precision Optics Co.", "Jiaxing Advanced Materials Ltd.", demoEngineerEmployer, "Pinghu Biomedical Park",
		"Pinghu New Energy Tech", "Pinghu Digital Economy Hub", "Pinghu Intelligent Equipment", "Pinghu Logistics Park",
		"Pinghu Photonics Institute", "Jiaxing Sino-German Robotics", "Pinghu Smart Textiles Co.", "Zhejiang Auto Parts Group",
		"Pinghu Paper Machinery Co.", "Pinghu Port Logistics"}
)

// crowdTalent is the i-th talent of the crowd: its name alternates
// Chinese (one in three) and foreign; one in fifty-ish holds category C.
func crowdTalent(i int) demoTalent {
	name := ""
	if i%3 == 0 {
		name = surnamesZH[(i/3)%len(surnamesZH)] + givenZH[(i/3/len(surnamesZH)+i)%len(givenZH)]
	} else {
		name = firstEN[i%len(firstEN)] + " " + lastEN[(i/len(firstEN)+i)%len(lastEN)]
	}
	permit := []string{"A", "A", "A", "A", "A", "B", "B", "B", "permanent_resident", "permanent_resident"}[i%10]
	if i%50 < 3 {
		permit = "C"
	}
	tier := []string{"B", "C", "D", "D", "E", "C", "D", "E"}[i%8]
	return demoTalent{name: name, permit: permit, tier: tier, employer: crowdEmployers[i%len(crowdEmployers)]}
}

// demoCrowdTalents returns the crowd, with as many engineers as bring the
// city to demoEngineers, the first of them at demoEngineerEmployer until
// it has ten.
func demoCrowdTalents() []demoTalent {
	engineers, atEmployer := 0, 0
	for _, t := range demoTalents {
		if t.engineer {
			engineers++
			if t.employer == demoEngineerEmployer {
				atEmployer++
			}
		}
	}
	out := make([]demoTalent, demoCrowd)
	next := 0
	for i := range out {
		t := crowdTalent(i)
		// Every seventh talent of categories A or permanent residence
		// is an engineer while the count is short.
		if engineers < demoEngineers && i%7 == 4 && (t.permit == "A" || t.permit == "permanent_resident") {
			t.engineer = true
			engineers++
			if atEmployer < 10 {
				t.employer = demoEngineerEmployer
				atEmployer++
			} else {
				// The others spread over the employers, never ten at one.
				for crowdEmployers[next%len(crowdEmployers)] == demoEngineerEmployer {
					next++
				}
				t.employer = crowdEmployers[next%len(crowdEmployers)]
				next++
			}
		}
		out[i] = t
	}
	return out
}

// loadDemoCrowd registers the crowd and writes its grants; it returns
// where the crowd's IDs will be.
func (d *demoLoader) loadDemoCrowd() []*string {
	crowd := demoCrowdTalents()
	ids := make([]*string, len(crowd))
	for i, t := range crowd {
		date := domain.AddDays("2024-03-01", i%300)
		ids[i] = d.at(date, "register "+t.name, func() (domain.Result, error) {
			return d.svc.RegisterTalent(d.ctx, domain.RegisterTalent{Meta: d.meta(domain.RoleClerk, date, fmt.Sprintf("PHRS-REG-%04d", i)),
				Name: t.name, PermitCategory: t.permit, Tier: t.tier, Employer: t.employer, OverseasEngineer: t.engineer})
		})
	}
	// Monthly grants approved in 2025, paid for paidMonths months and
	// then left: the installments after are overdue.
	monthlyGrant := func(i int, program, amount string, paidMonths int) *string {
		applied := domain.AddDays("2025-02-03", i%60)
		approved := domain.AddDays(applied, 10)
		g := d.approvedGrant(ids[i], program, amount, applied, approved)
		approvedOn := max(approved, domain.NoticeClosesOn(applied, 5))
		if program != "living" && program != "housing" {
			approvedOn = approved
		}
		for n := 1; n <= paidMonths; n++ {
			d.pay(g, n, domain.AddMonths(approvedOn, n-1))
		}
		return g
	}
	living := 0
	for i, t := range crowd {
		switch i % 10 {
		case 1: // transport, 500 a month for 36 months
			monthlyGrant(i, "transport", "18000", i%5)
		case 2: // supplementary medical insurance, one payment (tiers A–D)
			if t.tier == "E" {
				continue
			}
			g := d.approvedGrant(ids[i], "medical", "12000", domain.AddDays("2025-03-03", i%40), domain.AddDays("2025-03-10", i%40))
			if i%4 != 0 {
				d.pay(g, 1, domain.AddDays("2025-03-10", i%40))
			}
		case 3: // rent, 2,500 a month for 24 months
			monthlyGrant(i, "rent", "60000", i%7)
		case 4: // living allowance, category A only
			if t.permit == "A" && t.tier != "E" && living < 20 {
				living++
				monthlyGrant(i, "living", "180000", i%6)
			}
		case 6: // housing, tier D (150,000): some paid, the rest on their way
			if t.tier != "D" || i > 300 {
				continue
			}
			applied := domain.AddDays("2025-04-01", i%50)
			switch (i / 10) % 5 {
			case 0, 1:
				g := d.approvedGrant(ids[i], "housing", "150000", applied, domain.AddDays(applied, 14))
				if (i/10)%5 == 0 {
					d.pay(g, 1, domain.AddDays(domain.NoticeClosesOn(applied, 5), 14))
				}
			case 2:
				d.apply(ids[i], "housing", "150000", applied)
			case 3:
				g := d.apply(ids[i], "housing", "150000", applied)
				d.review(g, domain.AddDays(applied, 2), "approve")
			case 4:
				g := d.apply(ids[i], "housing", "150000", applied)
				d.review(g, domain.AddDays(applied, 2), "reject")
			}
		}
	}
	// Two early departures from housing grants, 40 % paid, after six of
	// 60 months: tier D owes 60,000.00 − 150,000.00 × 6 ÷ 60 = 45,000.00
	// and pays it back in full; tier C owes 140,000.00 − 350,000.00 × 6 ÷
	// 60 = 105,000.00 and has paid back 50,000.00 so far.
	for k, c := range []struct {
		i                int
		award, recovered string
	}{{27, "150000", "45000"}, {37, "350000", "50000"}} {
		g := d.approvedGrant(ids[c.i], "housing", c.award, "2025-01-06", "2025-01-20")
		d.pay(g, 1, "2025-01-20")
		leave := "2025-07-20"
		d.at(leave, "departure", func() (domain.Result, error) {
			return d.svc.ReportDeparture(d.ctx, domain.ReportDeparture{Meta: d.meta(domain.RoleClerk, leave, fmt.Sprintf("PHRS-DEP-2025-%03d", 40+k)),
				TalentID: *ids[c.i], DepartureDate: leave})
		})
		d.at("2025-07-25", "terminate", func() (domain.Result, error) {
			m := d.meta(domain.RoleApprover, "2025-07-25", fmt.Sprintf("PHCZ-TERM-2025-%03d", 40+k))
			m.Reason = "left Pinghu before serving 60 months"
			return d.svc.TerminateGrant(d.ctx, domain.TerminateGrant{Meta: m, GrantID: *g})
		})
		d.at("2025-09-01", "recovery", func() (domain.Result, error) {
			return d.svc.RecordRecovery(d.ctx, domain.RecoveryCommand{Meta: d.meta(domain.RoleTreasurer, "2025-09-01", fmt.Sprintf("PHCZ-REC-2025-%03d", 40+k)),
				GrantID: *g, Amount: money(c.recovered), BankReference: fmt.Sprintf("ZJRCB-REC-2025-%03d", 40+k)})
		})
	}
	return ids
}

// demoApartments are the 19 talent apartments: two blocks of the Pinghu
// talent apartments, their sizes and rents.
func demoApartments() []domain.RegisterApartment {
	var out []domain.RegisterApartment
	for i := range 19 {
		block, floor, n := "A", 1+i/4, 1+i%4
		size, market, discounted := "68.50", "4200", "1200"
		if i >= 10 {
			block, floor, n = "B", 1+(i-10)/3, 1+(i-10)%3
			size, market, discounted = "89.00", "5400", "2400"
		}
		out = append(out, domain.RegisterApartment{Unit: fmt.Sprintf("%s-%d%02d", block, floor, n),
			Building: "平湖人才公寓 " + block + " 座 (Pinghu Talent Apartments, Block " + block + ")",
			SizeSqm:  decimalOf(size), MarketRent: money(market), DiscountedRent: money(discounted)})
	}
	return out
}

// loadDemoApartments registers the 19 apartments and lets every one: to
// the two talents of the walkthrough with apartment grants, and to 17 of
// the crowd, each with a grant of the apartment program that pays the
// monthly discount; eight more wait, in the order they applied.
func (d *demoLoader) loadDemoApartments(walkthrough []*string, grants []*string, crowd []*string) {
	units := demoApartments()
	for _, u := range units {
		d.at("2024-01-03", "register apartment "+u.Unit, func() (domain.Result, error) {
			u.Meta = d.meta(domain.RoleReviewer, "2024-01-03", "PHRS-GY-2024-001")
			return d.svc.RegisterApartment(d.ctx, u)
		})
	}
	let := func(unit int, talent, grant *string, applied, start string) {
		app := d.at(applied, "apply for an apartment", func() (domain.Result, error) {
			return d.svc.ApplyApartment(d.ctx, domain.ApplyApartment{Meta: d.meta(domain.RoleClerk, applied, "PHRS-GY-APP-"+applied), TalentID: *talent})
		})
		end := domain.AddDays(domain.AddMonths(start, 24), -1)
		d.at(start, "allocate an apartment", func() (domain.Result, error) {
			return d.svc.AllocateApartment(d.ctx, domain.AllocateApartment{Meta: d.meta(domain.RoleReviewer, start, "PHRS-GY-FP-"+start),
				Unit: units[unit].Unit, ApplicationID: *app, StartDate: start, EndDate: end, GrantID: *grant})
		})
	}
	let(0, walkthrough[0], grants[0], "2024-02-01", "2024-02-05")
	let(1, walkthrough[1], grants[1], "2024-05-06", "2024-05-08")
	for k := range 17 {
		i := 10*k + 5
		applied := domain.AddDays("2025-01-06", 3*k)
		approved := domain.AddDays(applied, 2)
		g := d.approvedGrant(crowd[i], "apartment", "72000", applied, approved)
		for n := 1; n <= k%5; n++ {
			d.pay(g, n, domain.AddMonths(approved, n-1))
		}
		let(2+k, crowd[i], g, applied, approved)
	}
	// The waiting list: eight of the crowd, waiting since spring 2025.
	for k := range 8 {
		i := 10*k + 9
		date := domain.AddDays("2025-04-01", 7*k)
		d.at(date, "apply for an apartment", func() (domain.Result, error) {
			return d.svc.ApplyApartment(d.ctx, domain.ApplyApartment{Meta: d.meta(domain.RoleClerk, date, "PHRS-GY-APP-"+date), TalentID: *crowd[i]})
		})
	}
}

func decimalOf(s string) decimal.Decimal { return decimal.RequireFromString(s) }
