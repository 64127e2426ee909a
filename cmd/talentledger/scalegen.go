package main

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/eventstore"
)

// The scale generator writes a province's history of talent subsidies and
// funds through the domain service, as live commands on a simulated
// clock: cities with the demo's six programs each, budgets appropriated
// every January, talents arriving day by day and applying for what they
// are eligible for, each grant through review, public notice, approval and
// its installments (monthly allowances paid month by month), some
// rejected, some payments failing and prepared again, departures ending
// grants early with clawbacks recovered or waived; and each city's special
// fund and the province's direct-investment fund taking in capital,
// investing in projects, funding tranches, valuing and distributing.
// Every event is decided by the domain, so the log is valid and replays
// as any other.

// scaleCities are the cities of the province whose programs the log holds.
var scaleCities = []string{"pinghu", "jiaxing", "haining", "tongxiang", "jiashan", "haiyan", "nanhu", "xiuzhou"}

// scaleStart is the first day of the simulated history; it runs until the
// log holds the events asked for or scaleEnd, whichever comes first.
var (
	scaleStart = time.Date(2020, 1, 2, 0, 0, 0, 0, domain.CityTime)
	scaleEnd   = time.Date(2026, 11, 30, 0, 0, 0, 0, domain.CityTime)
)

// scaleCacheSize is how many streams' states the generator's service
// keeps. A grant's stream is touched about once a month over its life and
// read back from the store, its whole stream, when it was evicted; each
// month also touches as many payment streams, and the talents'. By late
// 2022 of the simulated history (5.3 million events of a ten-million
// log) about 100,000 grants pay monthly, and with a cache of 100,000
// states almost every payment read its grant back: the generator slowed
// from about 8,000 to 1,100 events/s, 73 % of its CPU reading streams.
// The states of grants cost up to about 18 KB (decoded schedules), those
// of payments and talents a few KB: writing ten million events, the
// generator's RSS reached 14.5 GB (GOGC=100, GOMEMLIMIT=20GiB).
const scaleCacheSize = 500_000

// scaleEventsPerTalent sets how many talents arrive a day: fewer events
// than a talent's grants make over their lives, so that the log reaches
// the events asked for before scaleEnd.
const scaleEventsPerTalent = 100

type scaleTask struct {
	at   time.Time
	seq  uint64
	run  func() error
	what string
}

type scaleQueue []*scaleTask

func (q scaleQueue) Len() int { return len(q) }
func (q scaleQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q scaleQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *scaleQueue) Push(x any)   { *q = append(*q, x.(*scaleTask)) }
func (q *scaleQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	*q = old[:len(old)-1]
	return t
}

// scaleGrant is what the generator knows of one grant.
type scaleGrant struct {
	id, talent, program, kind string
	// installments is the approved schedule, until approve has queued
	// its payments; count is its length.
	installments  []domain.Installment
	count         int
	paid          int
	serviceMonths int
	// stopped is set when the talent departs: no more payments are
	// prepared, and those under way fail.
	stopped  bool
	clawback domain.Money
}

type scaleTalent struct {
	id, tier string
	grants   []*scaleGrant
	departed bool
}

type scaleFund struct {
	id          string
	lps         []string
	committed   int64 // per LP, yuan
	paidIn      int64 // per LP, yuan
	cash        int64 // paid in and not invested, yuan
	investments []string
}

// scaleSim runs the simulation.
type scaleSim struct {
	ctx    context.Context
	svc    *domain.Service
	store  *scaleStore
	rng    *rand.Rand
	now    time.Time
	q      scaleQueue
	seq    uint64
	target uint64
	// acked counts the events the service appended.
	acked    uint64
	commands uint64
	grants   map[string]*scaleGrant
	talents  int
	funds    []*scaleFund
	perDay   float64
	progress func(acked uint64, day time.Time)
}

// scaleSectors are the sectors the funds invest in.
var scaleSectors = []string{"semiconductors", "high_end_equipment", "new_materials", "new_energy", "digital_economy", "biomedicine"}

// generateScale writes events until the real store holds target of them
// (within one day's commands) and returns the commands run.
func generateScale(ctx context.Context, real eventstore.Store, target uint64, progress func(uint64, time.Time)) (uint64, error) {
	sim := &scaleSim{ctx: ctx, rng: rand.New(rand.NewPCG(16, uint64(target))), target: target,
		grants: map[string]*scaleGrant{}, progress: progress}
	sim.store = newScaleStore(real, sim.peek)
	sim.svc = domain.NewService(sim.store, domain.WithSoleWriter(), domain.WithClock(func() time.Time { return sim.now }),
		domain.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), domain.WithCacheSize(scaleCacheSize))
	days := scaleEnd.Sub(scaleStart).Hours() / 24
	sim.perDay = float64(target) / scaleEventsPerTalent / days
	err := sim.run()
	if derr := sim.store.Drain(); err == nil {
		err = derr
	}
	return sim.commands, err
}

// peek learns what the domain decided from the events it appends.
func (s *scaleSim) peek(stream string, ev *eventstore.EventData) {
	s.acked++
	switch {
	case strings.HasPrefix(ev.Type, "GrantApproved"):
		p, err := domain.DecodeEvent(ev.Type, ev.Data)
		if a, ok := p.(*domain.GrantApproved); err == nil && ok {
			if g := s.grants[a.GrantID]; g != nil {
				g.installments = a.Installments
			}
		}
	case strings.HasPrefix(ev.Type, "ClawbackAssessed"):
		p, err := domain.DecodeEvent(ev.Type, ev.Data)
		if c, ok := p.(*domain.ClawbackAssessed); err == nil && ok {
			if g := s.grants[c.GrantID]; g != nil {
				g.clawback = c.Amount
			}
		}
	}
}

// at queues f at t (in the city's time zone), at an hour of the working
// day.
func (s *scaleSim) at(day time.Time, what string, f func() error) {
	t := time.Date(day.Year(), day.Month(), day.Day(), 9, 0, 0, 0, domain.CityTime).
		Add(time.Duration(s.rng.IntN(8*3600)) * time.Second)
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	heap.Push(&s.q, &scaleTask{at: t, seq: s.seq, run: f, what: what})
}

func (s *scaleSim) run() error {
	s.now = scaleStart.Add(8 * time.Hour)
	if err := s.setup(); err != nil {
		return err
	}
	// Talents arrive every working day; each arrival schedules the rest.
	for d := scaleStart; d.Before(scaleEnd); d = d.AddDate(0, 0, 1) {
		day := d
		s.at(day, "arrivals", func() error {
			n := int(s.perDay)
			if s.rng.Float64() < s.perDay-float64(n) {
				n++
			}
			for range n {
				if err := s.arrive(); err != nil {
					return err
				}
			}
			return nil
		})
		if day.Month() == time.January && day.Day() == 1 {
			// Before the day's first payment, charged to the new year.
			s.seq++
			heap.Push(&s.q, &scaleTask{at: day.Add(8 * time.Hour), seq: s.seq, what: "budgets",
				run: func() error { return s.appropriate(day.Year()) }})
		}
		if day.Day() == 15 && day.Month()%3 == 0 {
			s.at(day, "funds", func() error { return s.fundQuarter() })
		}
	}
	lastDay := ""
	for s.q.Len() > 0 && s.acked < s.target {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		t := heap.Pop(&s.q).(*scaleTask)
		if t.at.After(scaleEnd) {
			break
		}
		s.now = t.at
		if err := t.run(); err != nil {
			return fmt.Errorf("%s on %s: %w", t.what, domain.Today(t.at), err)
		}
		if d := domain.Today(t.at); d != lastDay {
			lastDay = d
			if s.progress != nil {
				s.progress(s.acked, t.at)
			}
		}
	}
	return nil
}

func (s *scaleSim) meta(role string, n int, doc string) domain.CommandMeta {
	s.commands++
	return domain.CommandMeta{Actor: domain.Actor{Principal: fmt.Sprintf("%s-%d", strings.ReplaceAll(role, "_", "-"), n), Role: role},
		DocumentRef: doc}
}

// staff picks one of a role's twenty officers; officer numbers of
// different roles never meet, so maker and checker always differ.
func (s *scaleSim) staff(role string, doc string) domain.CommandMeta {
	return s.meta(role, 1+s.rng.IntN(20), doc)
}

type scaleProgram struct {
	def    domain.DefineProgram
	budget string
}

func scalePrograms(city string) []scaleProgram {
	var out []scaleProgram
	for _, p := range demoPrograms {
		def := p.def
		def.ProgramID = city + "_" + p.def.ProgramID
		def.Name = strings.ToUpper(city[:1]) + city[1:] + " " + p.def.Name
		out = append(out, scaleProgram{def: def, budget: "2000000000"})
	}
	return out
}

func (s *scaleSim) setup() error {
	for _, city := range scaleCities {
		for _, p := range scalePrograms(city) {
			def := p.def
			def.Meta = s.staff(domain.RoleAdmin, "ZJRS-PROGRAM-"+def.ProgramID)
			if _, err := s.svc.DefineProgram(s.ctx, def); err != nil {
				return fmt.Errorf("define %s: %w", def.ProgramID, err)
			}
		}
	}
	if err := s.appropriate(scaleStart.Year()); err != nil {
		return err
	}
	for i, city := range append([]string{"province"}, scaleCities...) {
		f := &scaleFund{id: city + "_fund", lps: []string{city + " Finance Bureau", city + " State-owned Assets Co."},
			committed: 500_000_000}
		kind, name := domain.FundSpecial, "Special Fund"
		if i == 0 {
			kind, name = domain.FundDirectInvestment, "Direct-Investment Fund"
		}
		limit := decimal.NewFromInt(35)
		if _, err := s.svc.EstablishFund(s.ctx, domain.EstablishFund{Meta: s.staff(domain.RoleFundManager, "ZJCZ-FUND-"+f.id),
			FundID: f.id, Name: city + " " + name, FundType: kind, Target: money("1000000000"), TermYears: 10,
			Manager: "Zhejiang Industrial Investment Management Co.", ConcentrationLimitPct: &limit}); err != nil {
			return fmt.Errorf("establish %s: %w", f.id, err)
		}
		for _, lp := range f.lps {
			if _, err := s.svc.MakeCommitment(s.ctx, domain.CapitalCommand{Meta: s.staff(domain.RoleFundManager, ""),
				FundID: f.id, LP: lp, Amount: domain.Yuan(f.committed)}); err != nil {
				return fmt.Errorf("commit %s: %w", f.id, err)
			}
		}
		s.funds = append(s.funds, f)
	}
	return nil
}

// appropriate appropriates every program's budget of year fy.
func (s *scaleSim) appropriate(fy int) error {
	for _, city := range scaleCities {
		for _, p := range scalePrograms(city) {
			if _, err := s.svc.AppropriateBudget(s.ctx, domain.AppropriateBudget{Meta: s.staff(domain.RoleApprover, fmt.Sprintf("ZJCZ-%d-%s", fy, p.def.ProgramID)),
				ProgramID: p.def.ProgramID, FiscalYear: fy, Amount: money(p.budget)}); err != nil {
				return fmt.Errorf("budget %s %d: %w", p.def.ProgramID, fy, err)
			}
		}
	}
	return nil
}

var (
	scaleTierWeights = []int{5, 15, 30, 30, 20} // A..E, in percent
	scaleEmployers   = []string{"Precision Optics Co.", "Advanced Materials Ltd.", "Semiconductor Equipment Co.", "Biomedical Park",
		"New Energy Tech", "Digital Economy Hub", "Intelligent Equipment", "Logistics Park"}
)

// arrive registers a talent today and schedules their applications.
func (s *scaleSim) arrive() error {
	s.talents++
	city := scaleCities[s.rng.IntN(len(scaleCities))]
	t := &scaleTalent{}
	r, tier := s.rng.IntN(100), ""
	for i, w := range scaleTierWeights {
		if r < w {
			tier = domain.Tiers[i]
			break
		}
		r -= w
	}
	permit := []string{"A", "A", "B", "B", "permanent_resident"}[s.rng.IntN(5)]
	name := fmt.Sprintf("Talent %d", s.talents)
	employer := strings.ToUpper(city[:1]) + city[1:] + " " + scaleEmployers[s.rng.IntN(len(scaleEmployers))]
	res, err := s.svc.RegisterTalent(s.ctx, domain.RegisterTalent{Meta: s.staff(domain.RoleClerk, ""), Name: name,
		PermitCategory: permit, Tier: tier, Employer: employer, OverseasEngineer: s.rng.IntN(4) == 0})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	t.id, t.tier = res.ID, tier
	apply := func(program string, after int) {
		s.at(s.now.AddDate(0, 0, after), "apply "+program, func() error { return s.apply(t, city+"_"+program) })
	}
	apply("transport", 1+s.rng.IntN(20))
	if tier != "E" && s.rng.IntN(10) < 6 {
		apply("medical", 1+s.rng.IntN(40))
	}
	if permit == "A" && tier != "E" && s.rng.IntN(2) == 0 {
		apply("living", 1+s.rng.IntN(30))
	}
	switch r := s.rng.IntN(100); {
	case r < 40:
		apply("rent", 1+s.rng.IntN(30))
	case r < 55:
		apply("apartment", 1+s.rng.IntN(30))
	}
	if tier != "E" && s.rng.IntN(4) == 0 {
		// A housing purchase comes later, once rent has been paid
		// for a while (and is deducted from the award).
		apply("housing", 60+s.rng.IntN(300))
	}
	if s.rng.IntN(100) < 4 {
		s.at(s.now.AddDate(0, 6+s.rng.IntN(24), 0), "departure", func() error { return s.depart(t) })
	}
	return nil
}

// apply files an application and schedules its review.
func (s *scaleSim) apply(t *scaleTalent, program string) error {
	if t.departed {
		return nil
	}
	def := s.programDef(program)
	amount := def.Caps[t.tier]
	if def.Schedule.MonthlyAmount != nil {
		amount = def.Schedule.MonthlyAmount.MulRatio(int64(def.Schedule.Months), 1)
	}
	res, err := s.svc.ApplyGrant(s.ctx, domain.ApplyGrant{Meta: s.staff(domain.RoleClerk, fmt.Sprintf("ZJRS-APP-%d", s.commands)),
		TalentID: t.id, ProgramID: program, AmountRequested: amount})
	if err != nil {
		return fmt.Errorf("apply %s for %s: %w", program, t.id, err)
	}
	g := &scaleGrant{id: res.ID, talent: t.id, program: program, kind: def.Kind, serviceMonths: def.ServiceMonths}
	s.grants[g.id] = g
	t.grants = append(t.grants, g)
	s.at(s.now.AddDate(0, 0, 2+s.rng.IntN(5)), "review", func() error { return s.review(t, g, def) })
	return nil
}

func (s *scaleSim) programDef(id string) domain.DefineProgram {
	city, kind, _ := strings.Cut(id, "_")
	for _, p := range scalePrograms(city) {
		if p.def.ProgramID == id {
			return p.def
		}
	}
	panic("no program " + id + " " + kind)
}

func (s *scaleSim) review(t *scaleTalent, g *scaleGrant, def domain.DefineProgram) error {
	if s.rng.IntN(100) < 4 {
		_, err := s.svc.ReviewGrant(s.ctx, domain.ReviewGrant{Meta: s.staff(domain.RoleReviewer, ""), GrantID: g.id, Decision: "reject",
			Note: "documents incomplete"})
		return err
	}
	if _, err := s.svc.ReviewGrant(s.ctx, domain.ReviewGrant{Meta: s.staff(domain.RoleReviewer, ""), GrantID: g.id, Decision: "approve",
		Note: "employer verified"}); err != nil {
		return err
	}
	if def.NoticeDays == 0 {
		s.at(s.now.AddDate(0, 0, 1+s.rng.IntN(5)), "approve", func() error { return s.approve(t, g) })
		return nil
	}
	s.at(s.now.AddDate(0, 0, 1), "notice", func() error {
		if _, err := s.svc.OpenNotice(s.ctx, domain.NoticeCommand{Meta: s.staff(domain.RoleReviewer, "ZJRS-NOTICE"), GrantID: g.id}); err != nil {
			return err
		}
		// Five working days, counted from the day after it opens: three
		// weeks leave room for the longest holidays.
		s.at(s.now.AddDate(0, 0, 21), "close notice", func() error {
			if _, err := s.svc.CloseNotice(s.ctx, domain.NoticeCommand{Meta: s.staff(domain.RoleReviewer, ""), GrantID: g.id}); err != nil {
				return err
			}
			s.at(s.now.AddDate(0, 0, 1+s.rng.IntN(5)), "approve", func() error { return s.approve(t, g) })
			return nil
		})
		return nil
	})
	return nil
}

func (s *scaleSim) approve(t *scaleTalent, g *scaleGrant) error {
	if t.departed {
		return nil
	}
	if _, err := s.svc.ApproveGrant(s.ctx, domain.ApproveGrant{Meta: s.staff(domain.RoleApprover, fmt.Sprintf("ZJCZ-APR-%d", s.commands)),
		GrantID: g.id}); err != nil {
		return fmt.Errorf("approve %s (%s): %w", g.id, g.program, err)
	}
	for _, in := range g.installments {
		due, err := domain.ParseDate(in.DueDate)
		if err != nil {
			return err
		}
		if due.After(scaleEnd.AddDate(0, 1, 0)) {
			break
		}
		n := in.N
		s.at(due, "prepare", func() error { return s.pay(g, n) })
	}
	// The schedule is queued: only its length is needed from now on (a
	// ten-million-event history holds hundreds of thousands of grants).
	g.count, g.installments = len(g.installments), nil
	return nil
}

// pay prepares, approves and releases installment n; one payment in a
// hundred fails at the bank and is prepared again.
func (s *scaleSim) pay(g *scaleGrant, n int) error {
	if g.stopped {
		return nil
	}
	res, err := s.svc.PreparePayment(s.ctx, domain.PreparePayment{Meta: s.staff(domain.RoleClerk, ""), GrantID: g.id, Installment: n})
	if err != nil {
		return fmt.Errorf("prepare %s/%d: %w", g.id, n, err)
	}
	pid := res.ID
	next := func(days int) time.Time {
		// A payment is released within the year it is charged to.
		d := s.now.AddDate(0, 0, days)
		if d.Year() != s.now.Year() {
			return s.now
		}
		return d
	}
	stop := func() error {
		_, err := s.svc.FailPayment(s.ctx, domain.PaymentCommand{Meta: s.staff(domain.RoleTreasurer, ""), PaymentID: pid,
			Reason: "the talent departed"})
		return err
	}
	s.at(next(1), "approve payment", func() error {
		if g.stopped {
			return stop()
		}
		if _, err := s.svc.ApprovePayment(s.ctx, domain.PaymentCommand{Meta: s.staff(domain.RoleApprover, ""), PaymentID: pid}); err != nil {
			return fmt.Errorf("approve payment %s: %w", pid, err)
		}
		s.at(next(1), "release", func() error {
			if g.stopped {
				return stop()
			}
			if s.rng.IntN(100) == 0 && next(3).Year() == s.now.Year() {
				if _, err := s.svc.FailPayment(s.ctx, domain.PaymentCommand{Meta: s.staff(domain.RoleTreasurer, ""), PaymentID: pid,
					Reason: "account closed"}); err != nil {
					return fmt.Errorf("fail payment %s: %w", pid, err)
				}
				s.at(next(2), "prepare again", func() error { return s.pay(g, n) })
				return nil
			}
			_, err := s.svc.ReleasePayment(s.ctx, domain.PaymentCommand{Meta: s.staff(domain.RoleTreasurer, ""), PaymentID: pid,
				BankReference: fmt.Sprintf("ZJRCB-%d", s.commands)})
			if err != nil {
				return fmt.Errorf("release %s: %w", pid, err)
			}
			g.paid++
			return nil
		})
		return nil
	})
	return nil
}

// depart reports a talent's departure; their grants still running, and
// those bound to service months, are terminated, and the clawbacks
// recovered or waived.
func (s *scaleSim) depart(t *scaleTalent) error {
	if _, err := s.svc.ReportDeparture(s.ctx, domain.ReportDeparture{Meta: s.staff(domain.RoleClerk, ""), TalentID: t.id,
		DepartureDate: domain.Today(s.now)}); err != nil {
		return fmt.Errorf("departure of %s: %w", t.id, err)
	}
	t.departed = true
	for _, g := range t.grants {
		g.stopped = true
		if g.count == 0 || (g.serviceMonths == 0 && g.paid == g.count) {
			continue
		}
		// After the payments under way have failed.
		s.at(s.now.AddDate(0, 0, 5), "terminate", func() error {
			if _, err := s.svc.TerminateGrant(s.ctx, domain.TerminateGrant{Meta: s.staff(domain.RoleApprover, "ZJCZ-TERM"), GrantID: g.id}); err != nil {
				return fmt.Errorf("terminate %s: %w", g.id, err)
			}
			if g.clawback.Sign() <= 0 {
				return nil
			}
			s.at(s.now.AddDate(0, 0, 30), "recover", func() error {
				c := domain.RecoveryCommand{GrantID: g.id, Amount: g.clawback}
				if s.rng.IntN(10) < 7 {
					c.Meta, c.BankReference = s.staff(domain.RoleTreasurer, ""), fmt.Sprintf("ZJRCB-R-%d", s.commands)
					_, err := s.svc.RecordRecovery(s.ctx, c)
					return err
				}
				c.Meta = s.staff(domain.RoleApprover, "ZJCZ-WAIVE")
				c.Meta.Reason = "hardship"
				_, err := s.svc.WaiveRecovery(s.ctx, c)
				return err
			})
			return nil
		})
	}
	return nil
}

// fundQuarter takes in capital, invests, funds, values and distributes.
func (s *scaleSim) fundQuarter() error {
	for _, f := range s.funds {
		const call = 25_000_000
		for _, lp := range f.lps {
			if f.paidIn+call > f.committed {
				continue
			}
			if _, err := s.svc.PayInCapital(s.ctx, domain.CapitalCommand{Meta: s.staff(domain.RoleFundManager, ""), FundID: f.id, LP: lp,
				Amount: domain.Yuan(call)}); err != nil {
				return fmt.Errorf("pay in %s: %w", f.id, err)
			}
			f.cash += call
		}
		f.paidIn += call
		amount := int64(5_000_000 + s.rng.IntN(20)*1_000_000)
		if f.cash >= 2*amount {
			res, err := s.svc.ApproveInvestment(s.ctx, domain.ApproveInvestment{Meta: s.staff(domain.RoleFundManager, ""), FundID: f.id,
				CommitteeRef: fmt.Sprintf("IC-%s-%d", f.id, s.commands), Project: fmt.Sprintf("Project %d", s.commands),
				Company: fmt.Sprintf("Company %d", s.commands), Sector: scaleSectors[s.rng.IntN(len(scaleSectors))],
				Amount: domain.Yuan(amount), StakePct: decimal.NewFromInt(int64(3 + s.rng.IntN(15)))})
			if err != nil {
				return fmt.Errorf("invest %s: %w", f.id, err)
			}
			inv := res.ID
			if _, err := s.svc.FundTranche(s.ctx, domain.InvestmentCommand{Meta: s.staff(domain.RoleFundManager, ""), FundID: f.id,
				InvestmentID: inv, Amount: domain.Yuan(amount)}); err != nil {
				return fmt.Errorf("tranche %s: %w", f.id, err)
			}
			f.cash -= amount
			f.investments = append(f.investments, inv)
		}
		if s.now.Month() == time.December {
			for i, inv := range f.investments {
				c := domain.InvestmentCommand{Meta: s.staff(domain.RoleFundManager, "VAL"), FundID: f.id, InvestmentID: inv,
					Amount: domain.Yuan(int64(4_000_000 + s.rng.IntN(40)*1_000_000))}
				if _, err := s.svc.UpdateValuation(s.ctx, c); err != nil {
					return fmt.Errorf("valuation %s: %w", inv, err)
				}
				if i%5 == 0 {
					c.Meta, c.Amount = s.staff(domain.RoleFundManager, "DIST"), domain.Yuan(500_000)
					if _, err := s.svc.RecordDistribution(s.ctx, c); err != nil {
						return fmt.Errorf("distribution %s: %w", inv, err)
					}
				}
			}
		}
	}
	return nil
}
