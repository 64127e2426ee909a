package domain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shopspring/decimal"

	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
)

// The fund tests keep their fixtures on one type, so that their helpers
// need no package-level names beside the fixture's own.

// fundFixture is a service over a store, with the actors of the fund
// tests.
type fundFixture struct {
	t   *testing.T
	ctx context.Context
	st  eventstore.Store
	s   *Service

	manager, admin, approver, clerk, reviewer, treasurer Actor
	// last is the latest day the fixture has acted on: the helpers name
	// fixed days, and the clock never goes back. Goroutines share it.
	mu   sync.Mutex
	last string
	// projects counts the projects approved, to name each one apart.
	projects int
}

// newFundFixture returns a fixture over a fresh in-memory store, or over st
// when given (wrapped stores, a second process).
func newFundFixture(t *testing.T, st eventstore.Store) *fundFixture {
	t.Helper()
	if st == nil {
		ms := memstore.New()
		t.Cleanup(func() { ms.Close() })
		st = ms
	}
	return &fundFixture{
		t: t, ctx: context.Background(), st: st, s: fundFixtureService(st),
		manager: Actor{"fiona", RoleFundManager}, admin: Actor{"arthur", RoleAdmin}, approver: Actor{"amy", RoleApprover},
		clerk: Actor{"colin", RoleClerk}, reviewer: Actor{"ruth", RoleReviewer}, treasurer: Actor{"trent", RoleTreasurer},
	}
}

// fundFixtureService is a service over st as another process would run it.
func fundFixtureService(st eventstore.Store) *Service {
	return newServiceOver(st)
}

// on is the package's on, with a document reference, on date or the
// latest day acted on, whichever is later.
func (f *fundFixture) on(a Actor, date string) CommandMeta {
	f.mu.Lock()
	date = max(date, f.last)
	f.last = date
	m := on(a, date)
	f.mu.Unlock()
	m.DocumentRef = "DOC-" + date
	return m
}

func (f *fundFixture) fm(date string) CommandMeta { return f.on(f.manager, date) }

func (f *fundFixture) money(s string) Money {
	f.t.Helper()
	m, err := ParseMoney(s)
	if err != nil {
		f.t.Fatalf("ParseMoney(%q): %v", s, err)
	}
	return m
}

func (f *fundFixture) pct(s string) decimal.Decimal {
	f.t.Helper()
	d, err := decimal.NewFromString(s)
	if err != nil {
		f.t.Fatalf("decimal %q: %v", s, err)
	}
	return d
}

// ok fails the test on err and returns the result.
func (f *fundFixture) ok(r Result, err error) Result {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("unexpected error: %v", err)
	}
	return r
}

// position is the store's last global position.
func (f *fundFixture) position() eventstore.Position {
	f.t.Helper()
	p, err := f.st.LastPosition(f.ctx)
	if err != nil {
		f.t.Fatalf("LastPosition: %v", err)
	}
	return p
}

// refused checks that run fails with code and appends nothing.
func (f *fundFixture) refused(what, code string, run func() (Result, error)) {
	f.t.Helper()
	before := f.position()
	_, err := run()
	if got := ErrorCode(err); got != code {
		f.t.Errorf("%s: error code %q (%v), want %q", what, got, err, code)
	}
	if after := f.position(); after != before {
		f.t.Errorf("%s: the log moved from %s to %s", what, before, after)
	}
}

// establish creates a fund of the given type and target on date, with a
// ten-year term.
func (f *fundFixture) establish(id, fundType, target, date string) {
	f.t.Helper()
	f.ok(f.s.EstablishFund(f.ctx, EstablishFund{Meta: f.fm(date), FundID: id, Name: "Fund " + id, FundType: fundType,
		Target: f.money(target), TermYears: 10, Manager: "Pinghu Investment Management"}))
}

// capital commits amount for lp and pays it in on date.
func (f *fundFixture) capital(fund, lp, amount, date string) {
	f.t.Helper()
	c := CapitalCommand{Meta: f.fm(date), FundID: fund, LP: lp, Amount: f.money(amount)}
	f.ok(f.s.MakeCommitment(f.ctx, c))
	c.Meta = f.fm(date)
	f.ok(f.s.PayInCapital(f.ctx, c))
}

// approve records an approved investment and returns its ID.
func (f *fundFixture) approve(fund, amount string) string {
	f.t.Helper()
	f.projects++
	r := f.ok(f.s.ApproveInvestment(f.ctx, ApproveInvestment{Meta: f.fm("2024-03-01"), FundID: fund, CommitteeRef: "IC-2024-01",
		Project: fmt.Sprintf("Project %d", f.projects), Company: "Pinghu Wafer Co.", Sector: "semiconductors", Amount: f.money(amount), StakePct: f.pct("10")}))
	return r.ID
}

// inv is an InvestmentCommand by the fund manager.
func (f *fundFixture) inv(fund, id, amount, date string) InvestmentCommand {
	f.t.Helper()
	c := InvestmentCommand{Meta: f.fm(date), FundID: fund, InvestmentID: id}
	if amount != "" {
		c.Amount = f.money(amount)
	}
	return c
}

// tranche funds amount into an investment.
func (f *fundFixture) tranche(fund, id, amount string) Result {
	f.t.Helper()
	return f.ok(f.s.FundTranche(f.ctx, f.inv(fund, id, amount, "2024-04-01")))
}

// fund returns a copy of a fund's state as the service sees it.
func (f *fundFixture) fund(id string) fund {
	f.t.Helper()
	var out fund
	if err := f.s.repo.view(f.ctx, streamFund(id), newFund, func(e *entry) error {
		out = *e.agg.(*fund)
		return nil
	}); err != nil {
		f.t.Fatalf("view fund %s: %v", id, err)
	}
	return out
}

// events returns the global log from after position after.
func (f *fundFixture) events(after eventstore.Position) []eventstore.Event {
	f.t.Helper()
	it := f.st.ReadAll(f.ctx, after)
	defer it.Close()
	var out []eventstore.Event
	for it.Next() {
		out = append(out, it.Event())
	}
	if err := it.Err(); err != nil {
		f.t.Fatalf("ReadAll: %v", err)
	}
	return out
}

// postingsOf decodes a stored event and returns its postings.
func (f *fundFixture) postingsOf(ev eventstore.Event) []Posting {
	f.t.Helper()
	p, err := DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		f.t.Fatalf("decode %s: %v", ev.Type, err)
	}
	return Postings(p)
}

// wantPostings compares postings exactly, amounts as strings.
func (f *fundFixture) wantPostings(what string, got []Posting, want ...[3]string) {
	f.t.Helper()
	g := make([][3]string, len(got))
	for i, p := range got {
		g[i] = [3]string{p.Source, p.Destination, p.Amount.String()}
	}
	if fmt.Sprint(g) != fmt.Sprint(want) {
		f.t.Errorf("%s: postings\n got %v\nwant %v", what, g, want)
	}
}

// balances folds the postings of every event of the global log in order.
// It fails the test if any non-negative account is below zero after any
// event, or if the balances do not sum to zero, and returns them.
func (f *fundFixture) balances() map[string]Money {
	f.t.Helper()
	bal := map[string]Money{}
	for _, ev := range f.events(eventstore.Start) {
		for _, p := range f.postingsOf(ev) {
			if p.Amount.Sign() <= 0 {
				f.t.Errorf("%s at %s posts %s", ev.Type, ev.Position, p.Amount)
			}
			bal[p.Source] = bal[p.Source].Sub(p.Amount)
			bal[p.Destination] = bal[p.Destination].Add(p.Amount)
			for _, acct := range []string{p.Source, p.Destination} {
				if NonNegativeAccount(acct) && bal[acct].Sign() < 0 {
					f.t.Errorf("after %s at %s, %s = %s, below zero", ev.Type, ev.Position, acct, bal[acct])
				}
			}
		}
	}
	sum := Zero
	for _, b := range bal {
		sum = sum.Add(b)
	}
	if !sum.IsZero() {
		f.t.Errorf("the balances sum to %s, want 0.00", sum)
	}
	return bal
}

func (f *fundFixture) wantBalance(bal map[string]Money, account, want string) {
	f.t.Helper()
	if got := bal[account].String(); got != want {
		f.t.Errorf("%s = %s, want %s", account, got, want)
	}
}

func TestFundCapitalLimits(t *testing.T) {
	f := newFundFixture(t, nil)
	f.establish("dif", FundDirectInvestment, "500000000", "2023-01-01")
	commit := func(lp, amount string) func() (Result, error) {
		return func() (Result, error) {
			return f.s.MakeCommitment(f.ctx, CapitalCommand{Meta: f.fm("2023-02-01"), FundID: "dif", LP: lp, Amount: f.money(amount)})
		}
	}
	payIn := func(lp, amount string) func() (Result, error) {
		return func() (Result, error) {
			return f.s.PayInCapital(f.ctx, CapitalCommand{Meta: f.fm("2023-03-01"), FundID: "dif", LP: lp, Amount: f.money(amount)})
		}
	}

	f.refused("one commitment above the target", EEXCEEDSTARGET, commit("city platform", "500000000.01"))
	f.ok(commit("city platform", "200000000")())
	f.ok(commit("state-owned company", "150000000")())
	f.refused("commitments summing above the target", EEXCEEDSTARGET, commit("social capital", "150000000.01"))
	f.ok(commit("social capital", "150000000")())
	f.refused("a commitment once the target is reached", EEXCEEDSTARGET, commit("late LP", "0.01"))

	f.refused("paid-in by an LP that committed nothing", EEXCEEDSCOMMITMENT, payIn("late LP", "0.01"))
	f.refused("paid-in above the LP's commitment", EEXCEEDSCOMMITMENT, payIn("state-owned company", "150000000.01"))
	f.ok(payIn("city platform", "120000000")())
	f.refused("paid-in above the LP's commitment in two steps", EEXCEEDSCOMMITMENT, payIn("city platform", "80000000.01"))
	// Another LP's room is not this LP's: the fund could take 230,000,000
	// more, city platform only 80,000,000.
	f.refused("paid-in within the fund's room but above the LP's", EEXCEEDSCOMMITMENT, payIn("city platform", "100000000"))
	f.ok(payIn("city platform", "80000000")())
	f.ok(payIn("state-owned company", "150000000")())
	f.ok(payIn("social capital", "150000000")())
	// Everything committed is paid in; the fund takes nothing more.
	for _, lp := range []string{"city platform", "state-owned company", "social capital"} {
		f.refused("paid-in after full payment by "+lp, EEXCEEDSCOMMITMENT, payIn(lp, "0.01"))
	}

	fd := f.fund("dif")
	for what, got := range map[string]Money{"committed": fd.totalCommit, "paid in": fd.totalPaidIn, "cash": fd.cash} {
		if got.String() != "500000000.00" {
			t.Errorf("%s = %s, want 500000000.00", what, got)
		}
	}

	f.refused("zero commitment", EINVALID, commit("x", "0"))
	f.refused("negative paid-in", EINVALID, payIn("city platform", "-1"))
	f.refused("commitment without an LP", EINVALID, commit("", "1"))
	f.refused("commitment to an unknown fund", ENOTFOUND, func() (Result, error) {
		return f.s.MakeCommitment(f.ctx, CapitalCommand{Meta: f.fm("2023-02-01"), FundID: "nofund", LP: "x", Amount: f.money("1")})
	})
	f.refused("paid-in to a malformed fund ID", ENOTFOUND, func() (Result, error) {
		return f.s.PayInCapital(f.ctx, CapitalCommand{Meta: f.fm("2023-02-01"), FundID: "No Fund!", LP: "x", Amount: f.money("1")})
	})
	f.refused("a fund ID taken", ECONFLICT, func() (Result, error) {
		return f.s.EstablishFund(f.ctx, EstablishFund{Meta: f.fm("2024-01-01"), FundID: "dif", Name: "Again", FundType: FundSpecial,
			Target: f.money("1"), TermYears: 5, Manager: "M"})
	})

	bal := f.balances()
	f.wantBalance(bal, "fund:dif:cash", "500000000.00")
	f.wantBalance(bal, "fund:dif:capital:city_platform", "-200000000.00")
	f.wantBalance(bal, "fund:dif:capital:state-owned_company", "-150000000.00")
}

func TestFundEstablishValidation(t *testing.T) {
	f := newFundFixture(t, nil)
	good := func() EstablishFund {
		return EstablishFund{Meta: f.fm("2024-01-01"), FundID: "culture", Name: "Culture fund", FundType: FundSpecial,
			Target: f.money("100000000"), TermYears: 7, Manager: "Pinghu Culture Investment"}
	}
	limit := func(s string) *decimal.Decimal { d := f.pct(s); return &d }
	cases := map[string]func(c *EstablishFund){
		"bad id":                  func(c *EstablishFund) { c.FundID = "Culture" },
		"no name":                 func(c *EstablishFund) { c.Name = "" },
		"no manager":              func(c *EstablishFund) { c.Manager = "" },
		"unknown type":            func(c *EstablishFund) { c.FundType = "hedge" },
		"zero target":             func(c *EstablishFund) { c.Target = Zero },
		"no term":                 func(c *EstablishFund) { c.TermYears = 0 },
		"31-year term":            func(c *EstablishFund) { c.TermYears = 31 },
		"zero concentration":      func(c *EstablishFund) { c.ConcentrationLimitPct = limit("0") },
		"concentration above 100": func(c *EstablishFund) { c.ConcentrationLimitPct = limit("100.01") },
	}
	for name, mutate := range cases {
		c := good()
		mutate(&c)
		f.refused(name, EINVALID, func() (Result, error) { return f.s.EstablishFund(f.ctx, c) })
	}
	r := f.ok(f.s.EstablishFund(f.ctx, good()))
	if r.ID != "culture" {
		t.Errorf("ID = %q, want culture", r.ID)
	}
	fd := f.fund("culture")
	if fd.est.EstablishedOn != "2024-01-01" || fd.est.TermEnd != "2031-01-01" {
		t.Errorf("established %s, term ends %s; want 2024-01-01 and 2031-01-01", fd.est.EstablishedOn, fd.est.TermEnd)
	}
	if !fd.est.ConcentrationLimitPct.Equal(decimal.NewFromInt(20)) {
		t.Errorf("default concentration limit = %s, want 20", fd.est.ConcentrationLimitPct)
	}
}

func TestTrancheLimits(t *testing.T) {
	f := newFundFixture(t, nil)
	f.establish("dif", FundDirectInvestment, "50000000", "2023-01-01")
	f.capital("dif", "city platform", "10000000", "2023-02-01")
	a := f.approve("dif", "6000000")
	b := f.approve("dif", "5000000")
	fund := func(id, amount string) func() (Result, error) {
		return func() (Result, error) { return f.s.FundTranche(f.ctx, f.inv("dif", id, amount, "2024-04-01")) }
	}

	f.refused("a first tranche above the approved amount", EEXCEEDSAPPROVED, fund(a, "6000000.01"))
	f.tranche("dif", a, "4000000")
	f.refused("tranches summing above the approved amount", EEXCEEDSAPPROVED, fund(a, "2000000.01"))
	f.tranche("dif", a, "2000000")
	f.refused("a tranche once the approved amount is funded", EEXCEEDSAPPROVED, fund(a, "0.01"))

	// 4,000,000 of cash is left for b's 5,000,000.
	f.refused("a tranche above the fund's cash", EINSUFFICIENTFUNDS, fund(b, "4000000.01"))
	f.tranche("dif", b, "4000000")
	f.refused("a tranche from an empty fund", EINSUFFICIENTFUNDS, fund(b, "0.01"))
	// Money paid in later can be invested.
	f.capital("dif", "social capital", "1000000", "2024-05-01")
	f.tranche("dif", b, "1000000")

	f.refused("a zero tranche", EINVALID, fund(b, "0"))
	f.refused("a negative tranche", EINVALID, fund(b, "-1"))
	f.refused("a tranche of an unknown investment", ENOTFOUND, fund("i0123456789abcdef", "1"))
	f.refused("a tranche in an unknown fund", ENOTFOUND, func() (Result, error) {
		return f.s.FundTranche(f.ctx, f.inv("nofund", a, "1", "2024-04-01"))
	})

	fd := f.fund("dif")
	if fd.cash.String() != "0.00" || fd.investments[a].funded.String() != "6000000.00" || fd.investments[b].funded.String() != "5000000.00" {
		t.Errorf("cash %s, a funded %s, b funded %s; want 0.00, 6000000.00, 5000000.00",
			fd.cash, fd.investments[a].funded, fd.investments[b].funded)
	}
	var tranches []string
	for _, ev := range f.events(eventstore.Start) {
		if ev.Type == TypeInvestmentFunded {
			p, _ := DecodeEvent(ev.Type, ev.Data)
			e := p.(*InvestmentFunded)
			tranches = append(tranches, fmt.Sprintf("%s#%d=%s", e.InvestmentID, e.Tranche, e.Amount))
		}
	}
	want := []string{a + "#1=4000000.00", a + "#2=2000000.00", b + "#1=4000000.00", b + "#2=1000000.00"}
	if fmt.Sprint(tranches) != fmt.Sprint(want) {
		t.Errorf("tranches %v, want %v", tranches, want)
	}
	bal := f.balances()
	f.wantBalance(bal, "fund:dif:cash", "0.00")
	f.wantBalance(bal, "fund:dif:investments:"+a, "6000000.00")
	f.wantBalance(bal, "fund:dif:investments:"+b, "5000000.00")
}

// TestConcurrentTranches races 20 tranches of 1,000,000 against a fund
// with 10,000,000 of cash, through one service and through two services
// over one store (two processes): exactly ten are funded.
func TestConcurrentTranches(t *testing.T) {
	for _, services := range []int{1, 2} {
		t.Run(fmt.Sprintf("services=%d", services), func(t *testing.T) {
			f := newFundFixture(t, nil)
			f.establish("dif", FundDirectInvestment, "500000000", "2023-01-01")
			f.capital("dif", "city platform", "10000000", "2023-02-01")
			ids := make([]string, 20)
			for i := range ids {
				ids[i] = f.approve("dif", "1000000")
			}
			svcs := []*Service{f.s}
			if services == 2 {
				svcs = append(svcs, fundFixtureService(f.st))
				// Both hold the fund's state before the race, so the
				// second writer starts from a stale version.
				for _, s := range svcs {
					if err := s.repo.view(f.ctx, streamFund("dif"), newFund, func(*entry) error { return nil }); err != nil {
						t.Fatal(err)
					}
				}
			}
			before := f.position()
			errs := make([]error, len(ids))
			var conflicts atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					c := InvestmentCommand{Meta: f.fm("2024-04-01"), FundID: "dif", InvestmentID: id, Amount: f.money("1000000")}
					c.Meta.CommandID = "tranche-" + id
					// Two processes contend only through the store's
					// optimistic check; a command that keeps losing the
					// race answers "conflict: try again", and a client
					// does, with the same command ID.
					for try := 0; try < 10; try++ {
						_, errs[i] = svcs[i%len(svcs)].FundTranche(f.ctx, c)
						if ErrorCode(errs[i]) != ECONFLICT || services == 1 {
							break
						}
						conflicts.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := conflicts.Load(); n > 0 {
				t.Logf("%d tranches were retried after a conflict", n)
			}

			funded, short := 0, 0
			for i, err := range errs {
				switch ErrorCode(err) {
				case "":
					funded++
				case EINSUFFICIENTFUNDS:
					short++
				default:
					t.Errorf("tranche %d: %v, want success or insufficient_funds", i, err)
				}
			}
			if funded != 10 || short != 10 {
				t.Errorf("%d funded and %d refused, want 10 and 10", funded, short)
			}
			if got := len(f.events(before)); got != 10 {
				t.Errorf("the race appended %d events, want 10", got)
			}
			fd := newFundFixture(t, f.st).fund("dif")
			if fd.cash.String() != "0.00" {
				t.Errorf("cash = %s, want 0.00", fd.cash)
			}
			bal := f.balances()
			f.wantBalance(bal, "fund:dif:cash", "0.00")
			invested := Zero
			for _, id := range ids {
				invested = invested.Add(bal["fund:dif:investments:"+id])
			}
			if invested.String() != "10000000.00" {
				t.Errorf("invested %s, want 10000000.00", invested)
			}
		})
	}
}

func TestInvestmentStake(t *testing.T) {
	f := newFundFixture(t, nil)
	f.establish("dif", FundDirectInvestment, "500000000", "2023-01-01")
	for _, c := range []struct {
		stake string
		code  string
	}{
		{"0", EINVALID}, {"-5", EINVALID}, {"100.01", EINVALID}, {"101", EINVALID}, {"12.345", EINVALID}, {"0.001", EINVALID},
		{"100", ""}, {"0.01", ""}, {"12.34", ""}, {"3", ""},
	} {
		before := f.position()
		r, err := f.s.ApproveInvestment(f.ctx, ApproveInvestment{Meta: f.fm("2024-03-01"), FundID: "dif", CommitteeRef: "IC-1",
			Project: "P " + c.stake, Company: "C", Sector: "new_energy", Amount: f.money("1000000"), StakePct: f.pct(c.stake)})
		if got := ErrorCode(err); got != c.code {
			t.Errorf("stake %s: code %q (%v), want %q", c.stake, got, err, c.code)
			continue
		}
		if c.code != "" {
			if f.position() != before {
				t.Errorf("stake %s: refused but appended", c.stake)
			}
			continue
		}
		if got := f.fund("dif").investments[r.ID].approved.StakePct; !got.Equal(f.pct(c.stake)) {
			t.Errorf("stake %s recorded as %s", c.stake, got)
		}
	}
	for name, c := range map[string]ApproveInvestment{
		"unknown sector":   {Sector: "tobacco", CommitteeRef: "IC", Project: "P", Company: "C"},
		"no committee ref": {Sector: "biomedicine", Project: "P", Company: "C"},
		"no project":       {Sector: "biomedicine", CommitteeRef: "IC", Company: "C"},
		"no company":       {Sector: "biomedicine", CommitteeRef: "IC", Project: "P"},
	} {
		c.Meta, c.FundID, c.Amount, c.StakePct = f.fm("2024-03-01"), "dif", f.money("1"), f.pct("5")
		f.refused(name, EINVALID, func() (Result, error) { return f.s.ApproveInvestment(f.ctx, c) })
	}
	f.refused("zero amount", EINVALID, func() (Result, error) {
		return f.s.ApproveInvestment(f.ctx, ApproveInvestment{Meta: f.fm("2024-03-01"), FundID: "dif", CommitteeRef: "IC",
			Project: "P", Company: "C", Sector: "biomedicine", Amount: Zero, StakePct: f.pct("5")})
	})
	f.refused("unknown fund", ENOTFOUND, func() (Result, error) {
		return f.s.ApproveInvestment(f.ctx, ApproveInvestment{Meta: f.fm("2024-03-01"), FundID: "nofund", CommitteeRef: "IC",
			Project: "P", Company: "C", Sector: "biomedicine", Amount: f.money("1"), StakePct: f.pct("5")})
	})
}

// TestDuplicateProjectNames: a fund refuses a second project under a name
// it already holds, whatever the case, width or spacing, also when the two
// are approved at once; another fund may use the name.
func TestDuplicateProjectNames(t *testing.T) {
	f := newFundFixture(t, nil)
	f.establish("dif", FundDirectInvestment, "500000000", "2023-01-01")
	f.establish("sci", FundSpecial, "100000000", "2023-01-01")
	approve := func(fund, project, cmd string) (Result, error) {
		m := f.fm("2024-03-01")
		m.CommandID = cmd
		return f.s.ApproveInvestment(f.ctx, ApproveInvestment{Meta: m, FundID: fund, CommitteeRef: "IC-1", Project: project,
			Company: "Pinghu Optics", Sector: "semiconductors", Amount: f.money("1000000"), StakePct: f.pct("10")})
	}
	f.ok(approve("dif", "Wafer Optics 晶圆", "first"))
	for _, name := range []string{"Wafer Optics 晶圆", "wafer optics 晶圆", "  WAFER   optics 晶圆 ", "Ｗａｆｅｒ　Ｏｐｔｉｃｓ　晶圆"} {
		f.refused("duplicate "+name, ECONFLICT, func() (Result, error) { return approve("dif", name, "dup "+name) })
	}
	f.ok(approve("sci", "Wafer Optics 晶圆", "other fund"))
	f.ok(approve("dif", "Wafer Optics 晶圆 II", "another name"))

	var wg sync.WaitGroup
	var won, conflicts atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := approve("dif", "Concurrent line", fmt.Sprintf("race-%d", i))
			switch ErrorCode(err) {
			case "":
				won.Add(1)
			case ECONFLICT:
				conflicts.Add(1)
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 || conflicts.Load() != 7 {
		t.Errorf("8 concurrent approvals of one name: %d approved, %d refused; want 1 and 7", won.Load(), conflicts.Load())
	}
}

// TestInvestmentLifecycleConflicts: nothing is valued, distributed, exited
// or written off before it is funded, and nothing at all is recorded after
// an exit or a write-off.
func TestInvestmentLifecycleConflicts(t *testing.T) {
	f := newFundFixture(t, nil)
	f.establish("dif", FundDirectInvestment, "500000000", "2023-01-01")
	f.capital("dif", "city platform", "100000000", "2023-02-01")
	type cmd struct {
		name string
		run  func(id string) (Result, error)
	}
	at := func(id, amount string) InvestmentCommand { return f.inv("dif", id, amount, "2024-06-01") }
	cmds := []cmd{
		{"tranche", func(id string) (Result, error) { return f.s.FundTranche(f.ctx, at(id, "1")) }},
		{"valuation", func(id string) (Result, error) { return f.s.UpdateValuation(f.ctx, at(id, "1")) }},
		{"distribution", func(id string) (Result, error) { return f.s.RecordDistribution(f.ctx, at(id, "1")) }},
		{"exit", func(id string) (Result, error) { return f.s.CompleteExit(f.ctx, at(id, "1")) }},
		{"write-off", func(id string) (Result, error) { return f.s.WriteOff(f.ctx, at(id, "")) }},
	}

	unfunded := f.approve("dif", "1000000")
	for _, c := range cmds[1:] {
		f.refused(c.name+" of an unfunded investment", ECONFLICT, func() (Result, error) { return c.run(unfunded) })
	}
	for _, c := range cmds {
		f.refused(c.name+" of an unknown investment", ENOTFOUND, func() (Result, error) { return c.run("i0123456789abcdef") })
	}

	exited := f.approve("dif", "1000000")
	f.tranche("dif", exited, "500000")
	f.ok(f.s.CompleteExit(f.ctx, at(exited, "700000")))
	writtenOff := f.approve("dif", "1000000")
	f.tranche("dif", writtenOff, "500000")
	f.ok(f.s.WriteOff(f.ctx, at(writtenOff, "")))
	for _, id := range []string{exited, writtenOff} {
		for _, c := range cmds {
			f.refused(c.name+" after "+f.fund("dif").investments[id].state, ECONFLICT, func() (Result, error) { return c.run(id) })
		}
	}
	// A funded investment takes all of them; the exit comes last.
	held := f.approve("dif", "1000000")
	f.tranche("dif", held, "1000000")
	for _, c := range cmds[1:4] {
		f.ok(c.run(held))
	}
	f.refused("negative valuation", EINVALID, func() (Result, error) { return f.s.UpdateValuation(f.ctx, at(held, "-1")) })
	f.refused("zero distribution", EINVALID, func() (Result, error) { return f.s.RecordDistribution(f.ctx, at(held, "0")) })
	f.refused("negative proceeds", EINVALID, func() (Result, error) { return f.s.CompleteExit(f.ctx, at(held, "-0.01")) })
}

func TestExitAndWriteOffPostings(t *testing.T) {
	f := newFundFixture(t, nil)
	f.establish("dif", FundDirectInvestment, "500000000", "2023-01-01")
	f.capital("dif", "city platform", "100000000", "2023-02-01")

	// exit funds an investment with the tranches, exits for proceeds and
	// returns the exit's postings.
	exit := func(proceeds string, tranches ...string) (string, []Posting) {
		t.Helper()
		id := f.approve("dif", "50000000")
		for _, a := range tranches {
			f.tranche("dif", id, a)
		}
		before := f.position()
		f.ok(f.s.CompleteExit(f.ctx, f.inv("dif", id, proceeds, "2025-06-30")))
		evs := f.events(before)
		if len(evs) != 1 || evs[0].Type != TypeExitCompleted || evs[0].Stream != "fund-dif" {
			t.Fatalf("exit appended %v, want one ExitCompleted on fund-dif", evs)
		}
		p, _ := DecodeEvent(evs[0].Type, evs[0].Data)
		e := p.(*ExitCompleted)
		if e.Proceeds.String() != f.money(proceeds).String() || e.ExitedOn != "2025-06-30" {
			t.Errorf("exit event %+v", e)
		}
		return id, f.postingsOf(evs[0])
	}
	inv := func(id string) string { return "fund:dif:investments:" + id }
	const dist, gains, losses = "fund:dif:distributable", "fund:dif:gains", "fund:dif:losses"

	gain, ps := exit("36000000", "12000000", "8000000")
	f.wantPostings("gain", ps, [3]string{inv(gain), dist, "20000000.00"}, [3]string{gains, dist, "16000000.00"})
	loss, ps := exit("4000000", "10000000")
	f.wantPostings("loss", ps, [3]string{inv(loss), dist, "4000000.00"}, [3]string{inv(loss), losses, "6000000.00"})
	zero, ps := exit("0", "5000000")
	f.wantPostings("zero proceeds", ps, [3]string{inv(zero), losses, "5000000.00"})
	even, ps := exit("3000000", "3000000")
	f.wantPostings("proceeds at cost", ps, [3]string{inv(even), dist, "3000000.00"})

	w := f.approve("dif", "4000000")
	f.tranche("dif", w, "4000000")
	f.ok(f.s.RecordDistribution(f.ctx, f.inv("dif", w, "250000", "2025-01-01")))
	before := f.position()
	f.ok(f.s.WriteOff(f.ctx, f.inv("dif", w, "", "2025-12-31")))
	evs := f.events(before)
	if len(evs) != 1 || evs[0].Type != TypeWrittenOff {
		t.Fatalf("write-off appended %v", evs)
	}
	f.wantPostings("write-off", f.postingsOf(evs[0]), [3]string{inv(w), losses, "4000000.00"})

	bal := f.balances()
	for _, id := range []string{gain, loss, zero, even, w} {
		f.wantBalance(bal, inv(id), "0.00")
	}
	f.wantBalance(bal, gains, "-16000000.00")
	f.wantBalance(bal, losses, "15000000.00")
	f.wantBalance(bal, dist, "43250000.00")
	f.wantBalance(bal, "fund:dif:income:"+w, "-250000.00")
	f.wantBalance(bal, "fund:dif:cash", "58000000.00")
}

// specialFundProgram defines a special_fund_grant program financed by a
// fund: a one-off grant of up to 500,000 for tiers A and B.
func (f *fundFixture) specialFundProgram(id, source string) (Result, error) {
	return f.s.DefineProgram(f.ctx, DefineProgram{Meta: f.on(f.admin, "2024-01-02"), ProgramID: id, Name: "Sci-tech talent grant",
		Kind: KindSpecialFundGrant, Caps: map[string]Money{"A": f.money("500000"), "B": f.money("500000")},
		Schedule: Schedule{Percentages: []decimal.Decimal{decimal.NewFromInt(100)}}, FundingSource: source})
}

func (f *fundFixture) appropriate(program, amount string) func() (Result, error) {
	return func() (Result, error) {
		return f.s.AppropriateBudget(f.ctx, AppropriateBudget{Meta: f.on(f.approver, "2024-01-10"), ProgramID: program,
			FiscalYear: 2024, Amount: f.money(amount)})
	}
}

func TestSpecialFundGrant(t *testing.T) {
	f := newFundFixture(t, nil)
	f.establish("scitech", FundSpecial, "100000000", "2023-01-01")
	f.capital("scitech", "city platform", "30000000", "2023-02-01")
	f.establish("dif", FundDirectInvestment, "500000000", "2023-01-01")
	f.capital("dif", "city platform", "30000000", "2023-02-01")

	for name, source := range map[string]string{"no funding source": "", "treasury": "treasury", "fund without id": "fund:",
		"malformed fund": "fund:Sci Tech"} {
		f.refused("special_fund_grant with "+name, EINVALID, func() (Result, error) { return f.specialFundProgram("p_"+strings.ReplaceAll(name, " ", "_"), source) })
	}
	f.refused("program financed by an unknown fund", ENOTFOUND, func() (Result, error) { return f.specialFundProgram("p_unknown", "fund:nofund") })
	f.refused("program financed by a direct-investment fund", EINVALID, func() (Result, error) { return f.specialFundProgram("p_dif", "fund:dif") })
	f.ok(f.specialFundProgram("scitech_grant", "fund:scitech"))

	f.refused("appropriation above the fund's cash", EINSUFFICIENTFUNDS, f.appropriate("scitech_grant", "30000000.01"))
	if _, err := f.s.Budget(f.ctx, "scitech_grant", 2024); ErrorCode(err) != ENOTFOUND {
		t.Errorf("budget after a refused appropriation: %v, want not_found", err)
	}

	before := f.position()
	r := f.ok(f.appropriate("scitech_grant", "5000000")())
	evs := f.events(before)
	if len(evs) != 2 {
		t.Fatalf("the appropriation appended %d events, want 2", len(evs))
	}
	if evs[0].Type != TypeFundAppropriated || evs[0].Stream != "fund-scitech" {
		t.Errorf("first event %s on %s, want FundAppropriated on fund-scitech", evs[0].Type, evs[0].Stream)
	}
	if evs[1].Type != TypeBudgetAppropriated || evs[1].Stream != "budget-scitech_grant-2024" {
		t.Errorf("second event %s on %s, want BudgetAppropriated on budget-scitech_grant-2024", evs[1].Type, evs[1].Stream)
	}
	if r.Position != evs[1].Position || r.ID != "budget-scitech_grant-2024" {
		t.Errorf("result %+v, want the budget stream at %s", r, evs[1].Position)
	}
	f.wantPostings("FundAppropriated", f.postingsOf(evs[0]), [3]string{"fund:scitech:cash", "fund:scitech:in_transit", "5000000.00"})
	f.wantPostings("BudgetAppropriated", f.postingsOf(evs[1]),
		[3]string{"fund:scitech:in_transit", "budget:scitech_grant:2024:available", "5000000.00"})
	b, err := f.s.Budget(f.ctx, "scitech_grant", 2024)
	if err != nil || b.Appropriated.String() != "5000000.00" || b.Available.String() != "5000000.00" {
		t.Errorf("budget %+v, %v; want 5000000.00 appropriated and available", b, err)
	}

	// The appropriated cash is no longer there to invest.
	inv := f.approve("scitech", "30000000")
	f.refused("a tranche of the appropriated cash", EINSUFFICIENTFUNDS, func() (Result, error) {
		return f.s.FundTranche(f.ctx, f.inv("scitech", inv, "25000000.01", "2024-04-01"))
	})
	f.tranche("scitech", inv, "24000000")
	f.refused("an appropriation above what is left", EINSUFFICIENTFUNDS, f.appropriate("scitech_grant", "1000000.01"))
	f.ok(f.appropriate("scitech_grant", "1000000")())

	// A grant under the program is paid from the budget the fund financed.
	talent := f.ok(f.s.RegisterTalent(f.ctx, RegisterTalent{Meta: f.on(f.clerk, "2024-01-02"), Name: "Lars Nilsson",
		PermitCategory: "A", Tier: "B", Employer: "Zhejiang Semiconductor Equipment Co."})).ID
	g := f.ok(f.s.ApplyGrant(f.ctx, ApplyGrant{Meta: f.on(f.clerk, "2024-02-01"), TalentID: talent, ProgramID: "scitech_grant",
		AmountRequested: f.money("500000")})).ID
	f.ok(f.s.ReviewGrant(f.ctx, ReviewGrant{Meta: f.on(f.reviewer, "2024-02-02"), GrantID: g, Decision: "approve"}))
	f.ok(f.s.ApproveGrant(f.ctx, ApproveGrant{Meta: f.on(f.approver, "2024-02-05"), GrantID: g}))
	p := f.ok(f.s.PreparePayment(f.ctx, PreparePayment{Meta: f.on(f.clerk, "2024-02-06"), GrantID: g, Installment: 1})).ID
	f.ok(f.s.ApprovePayment(f.ctx, PaymentCommand{Meta: f.on(f.approver, "2024-02-06"), PaymentID: p}))
	f.ok(f.s.ReleasePayment(f.ctx, PaymentCommand{Meta: f.on(f.treasurer, "2024-02-07"), PaymentID: p, BankReference: "ICBC-1"}))

	bal := f.balances()
	f.wantBalance(bal, "fund:scitech:cash", "0.00")
	f.wantBalance(bal, "fund:scitech:in_transit", "0.00")
	f.wantBalance(bal, "budget:scitech_grant:2024:available", "5500000.00")
	f.wantBalance(bal, "budget:scitech_grant:2024:encumbered", "0.00")
	f.wantBalance(bal, "talent:"+talent+":paid", "500000.00")
	f.wantBalance(bal, "fund:scitech:investments:"+inv, "24000000.00")
	if fd := f.fund("scitech"); fd.cash.String() != "0.00" || len(fd.appropriations) != 2 {
		t.Errorf("fund cash %s with %d appropriations, want 0.00 and 2", fd.cash, len(fd.appropriations))
	}
	f.refused("appropriation from an empty fund", EINSUFFICIENTFUNDS, f.appropriate("scitech_grant", "0.01"))
}

// fundFuncStore is a store whose Append a test may replace.
type fundFuncStore struct {
	eventstore.Store
	append func(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error)
}

func (s *fundFuncStore) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	return s.append(ctx, stream, expected, events...)
}

// TestReconcileFunds stops an appropriation between the fund's and the
// budget's append, as a crash would, and lets ReconcileFunds complete it,
// once.
func TestReconcileFunds(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			ms := memstore.New()
			t.Cleanup(func() { ms.Close() })
			var failed atomic.Int32
			st := &fundFuncStore{Store: ms}
			st.append = func(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
				if strings.HasPrefix(stream, "budget-") && failed.CompareAndSwap(0, 1) {
					return eventstore.AppendResult{}, errors.New("injected: the process stopped")
				}
				return ms.Append(ctx, stream, expected, events...)
			}
			f := newFundFixture(t, st)
			f.establish("scitech", FundSpecial, "100000000", "2023-01-01")
			f.capital("scitech", "city platform", "30000000", "2023-02-01")
			f.ok(f.specialFundProgram("scitech_grant", "fund:scitech"))

			cmd := AppropriateBudget{Meta: f.on(f.approver, "2024-01-10"), ProgramID: "scitech_grant", FiscalYear: 2024, Amount: f.money("5000000")}
			cmd.Meta.CommandID = "appropriate-scitech-2024"
			before := f.position()
			if _, err := f.s.AppropriateBudget(f.ctx, cmd); err == nil {
				t.Fatal("the appropriation succeeded through the injected fault")
			}
			evs := f.events(before)
			if len(evs) != 1 || evs[0].Type != TypeFundAppropriated {
				t.Fatalf("after the crash the log holds %d new events, want one FundAppropriated", len(evs))
			}
			if _, err := f.s.Budget(f.ctx, "scitech_grant", 2024); ErrorCode(err) != ENOTFOUND {
				t.Fatalf("budget after the crash: %v, want not_found", err)
			}

			if restart {
				f = newFundFixture(t, ms)
			}
			n, err := f.s.ReconcileFunds(f.ctx, []string{"scitech", "nofund"})
			if err != nil || n != 1 {
				t.Fatalf("ReconcileFunds = %d, %v; want 1", n, err)
			}
			evs = f.events(before)
			if len(evs) != 2 || evs[1].Type != TypeBudgetAppropriated || evs[1].Stream != "budget-scitech_grant-2024" {
				t.Fatalf("after reconciling the log holds %v", evs)
			}
			p, _ := DecodeEvent(evs[1].Type, evs[1].Data)
			if e := p.(*BudgetAppropriated); e.Amount.String() != "5000000.00" || e.FundingSource != "fund:scitech" || e.FiscalYear != 2024 {
				t.Errorf("reconciled event %+v", e)
			}
			b, err := f.s.Budget(f.ctx, "scitech_grant", 2024)
			if err != nil || b.Available.String() != "5000000.00" {
				t.Errorf("budget %+v, %v; want 5000000.00 available", b, err)
			}

			pos := f.position()
			n, err = f.s.ReconcileFunds(f.ctx, []string{"scitech"})
			if err != nil || n != 0 {
				t.Errorf("second ReconcileFunds = %d, %v; want 0", n, err)
			}
			// The interrupted command, retried, finds both halves done.
			f.ok(f.s.AppropriateBudget(f.ctx, cmd))
			if f.position() != pos {
				t.Errorf("the log moved from %s to %s after reconciling again and retrying", pos, f.position())
			}
			bal := f.balances()
			f.wantBalance(bal, "fund:scitech:in_transit", "0.00")
			f.wantBalance(bal, "budget:scitech_grant:2024:available", "5000000.00")
			f.wantBalance(bal, "fund:scitech:cash", "25000000.00")
		})
	}
}

// TestFundRoles: fund commands are the fund manager's alone.
func TestFundRoles(t *testing.T) {
	f := newFundFixture(t, nil)
	f.establish("dif", FundDirectInvestment, "500000000", "2023-01-01")
	f.capital("dif", "city platform", "100000000", "2023-02-01")
	id := f.approve("dif", "10000000")
	f.tranche("dif", id, "5000000")

	commands := map[string]func(m CommandMeta) (Result, error){
		"establish": func(m CommandMeta) (Result, error) {
			return f.s.EstablishFund(f.ctx, EstablishFund{Meta: m, FundID: "other", Name: "Other", FundType: FundSpecial,
				Target: f.money("1000"), TermYears: 5, Manager: "M"})
		},
		"commit": func(m CommandMeta) (Result, error) {
			return f.s.MakeCommitment(f.ctx, CapitalCommand{Meta: m, FundID: "dif", LP: "social capital", Amount: f.money("1")})
		},
		"pay in": func(m CommandMeta) (Result, error) {
			return f.s.PayInCapital(f.ctx, CapitalCommand{Meta: m, FundID: "dif", LP: "social capital", Amount: f.money("1")})
		},
		"approve investment": func(m CommandMeta) (Result, error) {
			return f.s.ApproveInvestment(f.ctx, ApproveInvestment{Meta: m, FundID: "dif", CommitteeRef: "IC", Project: "P",
				Company: "C", Sector: "biomedicine", Amount: f.money("1"), StakePct: f.pct("5")})
		},
		"tranche": func(m CommandMeta) (Result, error) {
			return f.s.FundTranche(f.ctx, InvestmentCommand{Meta: m, FundID: "dif", InvestmentID: id, Amount: f.money("1")})
		},
		"valuation": func(m CommandMeta) (Result, error) {
			return f.s.UpdateValuation(f.ctx, InvestmentCommand{Meta: m, FundID: "dif", InvestmentID: id, Amount: f.money("1")})
		},
		"distribution": func(m CommandMeta) (Result, error) {
			return f.s.RecordDistribution(f.ctx, InvestmentCommand{Meta: m, FundID: "dif", InvestmentID: id, Amount: f.money("1")})
		},
		"exit": func(m CommandMeta) (Result, error) {
			return f.s.CompleteExit(f.ctx, InvestmentCommand{Meta: m, FundID: "dif", InvestmentID: id, Amount: f.money("1")})
		},
		"write-off": func(m CommandMeta) (Result, error) {
			return f.s.WriteOff(f.ctx, InvestmentCommand{Meta: m, FundID: "dif", InvestmentID: id})
		},
	}
	for name, run := range commands {
		for _, role := range Roles {
			if role == RoleFundManager {
				continue
			}
			f.refused(name+" as "+role, EFORBIDDEN, func() (Result, error) { return run(f.on(Actor{"mallory", role}, "2024-06-01")) })
		}
		f.refused(name+" without a principal", EUNAUTHENTICATED, func() (Result, error) { return run(f.on(Actor{"", RoleFundManager}, "2024-06-01")) })
		f.refused(name+" in an unknown role", EUNAUTHENTICATED, func() (Result, error) { return run(f.on(Actor{"mallory", "system"}, "2024-06-01")) })
	}
	// The fund manager may run each of them (the exit and the write-off on
	// an investment of their own).
	other := f.approve("dif", "1000000")
	f.tranche("dif", other, "1000000")
	for _, name := range []string{"establish", "commit", "pay in", "approve investment", "tranche", "valuation", "distribution", "exit"} {
		f.ok(commands[name](f.fm("2024-06-01")))
	}
	f.ok(f.s.WriteOff(f.ctx, InvestmentCommand{Meta: f.fm("2024-06-01"), FundID: "dif", InvestmentID: other}))
	// Appropriating a budget from a fund is the approver's, not the fund
	// manager's.
	f.establish("scitech", FundSpecial, "100000000", "2023-01-01")
	f.capital("scitech", "city platform", "1000000", "2023-02-01")
	f.ok(f.specialFundProgram("scitech_grant", "fund:scitech"))
	f.refused("appropriation by the fund manager", EFORBIDDEN, func() (Result, error) {
		return f.s.AppropriateBudget(f.ctx, AppropriateBudget{Meta: f.fm("2024-01-10"), ProgramID: "scitech_grant", FiscalYear: 2024, Amount: f.money("1")})
	})
	f.refused("a program defined by the fund manager", EFORBIDDEN, func() (Result, error) {
		return f.s.DefineProgram(f.ctx, DefineProgram{Meta: f.fm("2024-01-02"), ProgramID: "p2", Name: "P", Kind: KindSpecialFundGrant,
			Caps: map[string]Money{"A": f.money("1")}, Schedule: Schedule{Percentages: []decimal.Decimal{decimal.NewFromInt(100)}},
			FundingSource: "fund:scitech"})
	})
}

// TestFundAccountsNonNegative: a fund's cash, the cash in transit to a
// budget and each investment at cost may never go below zero; the accounts
// money enters by (capital, income, gains) carry negative balances.
func TestFundAccountsNonNegative(t *testing.T) {
	for acct, want := range map[string]bool{
		"fund:sci:cash": true, "fund:sci:in_transit": true, "fund:sci:investments:i0123456789abcdef": true,
		"fund:sci:capital:city_platform": false, "fund:sci:income:i0123456789abcdef": false, "fund:sci:gains": false,
	} {
		if got := NonNegativeAccount(acct); got != want {
			t.Errorf("NonNegativeAccount(%q) = %v, want %v", acct, got, want)
		}
	}
}
