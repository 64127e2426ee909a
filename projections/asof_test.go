package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
)

// books is a small ledger written through the domain service with a clock
// the test sets, so that every event has a known recording time as well as
// its effective date.
type books struct {
	t     *testing.T
	ctx   context.Context
	store eventstore.Store
	svc   *domain.Service
	now   time.Time
}

func newBooks(t *testing.T) *books {
	t.Helper()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	b := &books{t: t, ctx: context.Background(), store: store}
	b.svc = domain.NewService(store, domain.WithMaxBackdate(400), domain.WithClock(func() time.Time { return b.now }))
	return b
}

// at sets the recording time (city time) of the commands that follow.
func (b *books) at(recorded string) {
	b.t.Helper()
	t, err := time.ParseInLocation("2006-01-02 15:04", recorded, domain.CityTime)
	if err != nil {
		b.t.Fatal(err)
	}
	b.now = t
}

func (b *books) meta(principal, role, effective string) domain.CommandMeta {
	return domain.CommandMeta{Actor: domain.Actor{Principal: principal, Role: role}, EffectiveDate: effective, DocumentRef: "DOC-1"}
}

func (b *books) must(res domain.Result, err error) string {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	return res.ID
}

func yuan(s string) domain.Money {
	m, err := domain.ParseMoney(s)
	if err != nil {
		panic(err)
	}
	return m
}

// grant applies, reviews and approves a grant of amount on approved, and
// returns its ID.
func (b *books) grant(talent, amount, approved string) string {
	b.t.Helper()
	clerk := b.meta("clara", domain.RoleClerk, approved)
	g := b.must(b.svc.ApplyGrant(b.ctx, domain.ApplyGrant{Meta: clerk, TalentID: talent, ProgramID: "quick", AmountRequested: yuan(amount)}))
	b.must(b.svc.ReviewGrant(b.ctx, domain.ReviewGrant{Meta: b.meta("rita", domain.RoleReviewer, approved), GrantID: g, Decision: "approve"}))
	b.must(b.svc.ApproveGrant(b.ctx, domain.ApproveGrant{Meta: b.meta("alan", domain.RoleApprover, approved), GrantID: g}))
	return g
}

// pay prepares, approves and releases a grant's only installment on date.
func (b *books) pay(grant, date string) string {
	b.t.Helper()
	pid := b.must(b.svc.PreparePayment(b.ctx, domain.PreparePayment{Meta: b.meta("clara", domain.RoleClerk, date), GrantID: grant, Installment: 1}))
	b.must(b.svc.ApprovePayment(b.ctx, domain.PaymentCommand{Meta: b.meta("alan", domain.RoleApprover, date), PaymentID: pid}))
	b.must(b.svc.ReleasePayment(b.ctx, domain.PaymentCommand{Meta: b.meta("tom", domain.RoleTreasurer, date), PaymentID: pid, BankReference: "ICBC-" + date}))
	return pid
}

// pointInTimeBooks records, in this order of recording:
//
//	2024-01-02  program "quick" (one installment); budget 2024 of 1,000,000.00 (effective 2024-01-02)
//	            fund "f1": 10,000,000.00 committed, 4,000,000.00 paid in (effective 2023-07-01)
//	2024-02-05  grant 1 of 80,000.00 approved (effective 2024-02-05)
//	            investment of 3,000,000.00 approved (2024-02-01)
//	2024-02-15  tranche of 1,500,000.00 (2024-02-15)
//	2024-03-10  grant 1 paid (effective 2024-03-10); 2,000,000.00 paid in (2024-03-01)
//	2024-04-01  grant 2 of 50,000.00 approved (effective 2024-04-01)
//	2024-05-15  grant 2 paid (effective 2024-05-15)
//	2024-06-30  supplementary budget of 200,000.00 (effective 2024-06-30)
//	2024-07-20  correction: grant 1's payment reversed, effective 2024-03-31
//	2024-08-01  late-recorded paid-in capital of 1,000,000.00, effective 2024-04-15;
//	            then a late-recorded tranche of 1,500,000.00, effective 2024-06-01
//
// No effective date lies after its recording, and within each stream the
// business dates never go backwards: fund f1 reads 2023-06-01, 06-15,
// 07-01, 2024-02-01, 02-15, 03-01, 04-15, 06-01 in the order recorded, and
// grant 1's stream 02-05, 03-10, 03-31.
func pointInTimeBooks(t *testing.T) (b *books, talent1, talent2 string) {
	b = newBooks(t)
	fm := func(eff string) domain.CommandMeta { return b.meta("fred", domain.RoleFundManager, eff) }

	b.at("2024-01-02 09:00")
	b.must(b.svc.DefineProgram(b.ctx, domain.DefineProgram{Meta: b.meta("ada", domain.RoleAdmin, "2024-01-01"),
		ProgramID: "quick", Name: "One-off subsidy (一次性补助)", Kind: "transport",
		Caps:     map[string]domain.Money{"A": yuan("100000.00"), "B": yuan("100000.00"), "C": yuan("100000.00"), "D": yuan("100000.00")},
		Schedule: domain.Schedule{Percentages: pct(100)}}))
	b.must(b.svc.AppropriateBudget(b.ctx, domain.AppropriateBudget{Meta: b.meta("alan", domain.RoleApprover, "2024-01-02"),
		ProgramID: "quick", FiscalYear: 2024, Amount: yuan("1000000.00")}))
	talent1 = b.must(b.svc.RegisterTalent(b.ctx, domain.RegisterTalent{Meta: b.meta("clara", domain.RoleClerk, "2024-01-02"),
		Name: "张伟", PermitCategory: "A", Tier: "A", Employer: "Pinghu Optics"}))
	talent2 = b.must(b.svc.RegisterTalent(b.ctx, domain.RegisterTalent{Meta: b.meta("clara", domain.RoleClerk, "2024-01-02"),
		Name: "李娜", PermitCategory: "A", Tier: "B", Employer: "Pinghu Optics"}))
	b.must(b.svc.EstablishFund(b.ctx, domain.EstablishFund{Meta: fm("2023-06-01"), FundID: "f1", Name: "Sci-tech fund",
		FundType: domain.FundDirectInvestment, Target: yuan("100000000.00"), TermYears: 10, Manager: "Pinghu Capital"}))
	b.must(b.svc.MakeCommitment(b.ctx, domain.CapitalCommand{Meta: fm("2023-06-15"), FundID: "f1", LP: "City platform", Amount: yuan("10000000.00")}))
	b.must(b.svc.PayInCapital(b.ctx, domain.CapitalCommand{Meta: fm("2023-07-01"), FundID: "f1", LP: "City platform", Amount: yuan("4000000.00")}))

	b.at("2024-02-05 10:00")
	g1 := b.grant(talent1, "80000.00", "2024-02-05")
	inv := b.must(b.svc.ApproveInvestment(b.ctx, domain.ApproveInvestment{Meta: fm("2024-02-01"), FundID: "f1",
		CommitteeRef: "IC-2024-01", Project: "Wafer optics", Company: "Pinghu Optics", Sector: "semiconductors", Amount: yuan("3000000.00"), StakePct: pct(10)[0]}))

	b.at("2024-02-15 10:00")
	b.must(b.svc.FundTranche(b.ctx, domain.InvestmentCommand{Meta: fm("2024-02-15"), FundID: "f1", InvestmentID: inv, Amount: yuan("1500000.00")}))

	b.at("2024-03-10 10:00")
	p1 := b.pay(g1, "2024-03-10")
	b.must(b.svc.PayInCapital(b.ctx, domain.CapitalCommand{Meta: fm("2024-03-01"), FundID: "f1", LP: "City platform", Amount: yuan("2000000.00")}))

	b.at("2024-04-01 10:00")
	g2 := b.grant(talent2, "50000.00", "2024-04-01")
	b.at("2024-05-15 10:00")
	b.pay(g2, "2024-05-15")

	b.at("2024-06-30 10:00")
	b.must(b.svc.AppropriateBudget(b.ctx, domain.AppropriateBudget{Meta: b.meta("alan", domain.RoleApprover, "2024-06-30"),
		ProgramID: "quick", FiscalYear: 2024, Amount: yuan("200000.00")}))

	b.at("2024-07-20 10:00")
	b.must(b.svc.ReversePayment(b.ctx, domain.PaymentCommand{Meta: b.meta("tess", domain.RoleTreasurer, "2024-03-31"),
		PaymentID: p1, Reason: "returned by the bank: account closed"}))
	b.at("2024-08-01 10:00")
	b.must(b.svc.PayInCapital(b.ctx, domain.CapitalCommand{Meta: fm("2024-04-15"), FundID: "f1", LP: "City platform", Amount: yuan("1000000.00")}))
	b.must(b.svc.FundTranche(b.ctx, domain.InvestmentCommand{Meta: fm("2024-06-01"), FundID: "f1", InvestmentID: inv, Amount: yuan("1500000.00")}))
	return b, talent1, talent2
}

func cityTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, domain.CityTime)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// want are the figures of one point in time, worked out by hand from the
// table above.
type want struct {
	appropriated, reserved, paid, available string
	paidIn, invested, idle                  string
	// accounts are trial-balance balances; "" means the account is absent.
	accounts map[string]string
}

func TestReplayAtPointInTime(t *testing.T) {
	b, t1, t2 := pointInTimeBooks(t)
	paid1, paid2 := "talent:"+t1+":paid", "talent:"+t2+":paid"
	july := cityTime(t, "2024-07-01 00:00")

	cases := []struct {
		name string
		pt   projections.PointInTime
		want want
	}{{
		// Effective by 2024-04-30: the budget of 1,000,000.00; grant 1
		// reserved, paid, and (by the correction recorded in July,
		// effective 31 March) reversed, so reserved again; grant 2
		// reserved. Paid in 4M + 2M + the late 1M; one tranche out.
		name: "as_of=2024-04-30",
		pt:   projections.PointInTime{AsOf: "2024-04-30"},
		want: want{appropriated: "1000000.00", reserved: "130000.00", paid: "0.00", available: "870000.00",
			paidIn: "7000000.00", invested: "1500000.00", idle: "5500000.00",
			accounts: map[string]string{
				"treasury:2024:appropriation": "-1000000.00", "budget:quick:2024:available": "870000.00",
				"budget:quick:2024:encumbered": "130000.00", paid1: "0.00", paid2: "",
			}},
	}, {
		// Recorded by 1 July: everything but the reversal, the late
		// paid-in capital and the late tranche. Both grants paid; one
		// tranche out.
		name: "recorded_as_of=2024-07-01",
		pt:   projections.PointInTime{RecordedAsOf: july},
		want: want{appropriated: "1200000.00", reserved: "0.00", paid: "130000.00", available: "1070000.00",
			paidIn: "6000000.00", invested: "1500000.00", idle: "4500000.00",
			accounts: map[string]string{
				"treasury:2024:appropriation": "-1200000.00", "budget:quick:2024:available": "1070000.00",
				"budget:quick:2024:encumbered": "0.00", paid1: "80000.00", paid2: "50000.00",
			}},
	}, {
		// Both: what a reader on 1 July saw for the end of April. Grant 1
		// paid (the reversal was not recorded yet), grant 2 reserved.
		name: "as_of=2024-04-30&recorded_as_of=2024-07-01",
		pt:   projections.PointInTime{AsOf: "2024-04-30", RecordedAsOf: july},
		want: want{appropriated: "1000000.00", reserved: "50000.00", paid: "80000.00", available: "870000.00",
			paidIn: "6000000.00", invested: "1500000.00", idle: "4500000.00",
			accounts: map[string]string{
				"treasury:2024:appropriation": "-1000000.00", "budget:quick:2024:available": "870000.00",
				"budget:quick:2024:encumbered": "50000.00", paid1: "80000.00", paid2: "",
			}},
	}, {
		// Now: grant 1 reversed, grant 2 paid.
		name: "now",
		want: want{appropriated: "1200000.00", reserved: "80000.00", paid: "50000.00", available: "1070000.00",
			paidIn: "7000000.00", invested: "3000000.00", idle: "4000000.00",
			accounts: map[string]string{
				"treasury:2024:appropriation": "-1200000.00", "budget:quick:2024:available": "1070000.00",
				"budget:quick:2024:encumbered": "80000.00", paid1: "0.00", paid2: "50000.00",
			}},
	}, {
		name: "as_of=2023-12-31",
		pt:   projections.PointInTime{AsOf: "2023-12-31"},
		want: want{paidIn: "4000000.00", invested: "0.00", idle: "4000000.00",
			accounts: map[string]string{"treasury:2024:appropriation": "", paid1: ""}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := projections.Replay(b.ctx, b.store, c.pt.Keep)
			if err != nil {
				t.Fatal(err)
			}
			bv, ok := p.Budget("quick", 2024)
			if c.want.appropriated == "" {
				if ok {
					t.Errorf("budget = %+v, want none", bv)
				}
			} else {
				if !ok {
					t.Fatal("no budget quick/2024")
				}
				for _, f := range []struct{ what, got, want string }{
					{"appropriated", bv.Appropriated.String(), c.want.appropriated},
					{"reserved", bv.Reserved.String(), c.want.reserved},
					{"paid", bv.Paid.String(), c.want.paid},
					{"available", bv.Available.String(), c.want.available},
				} {
					if f.got != f.want {
						t.Errorf("budget %s = %s, want %s", f.what, f.got, f.want)
					}
				}
				prog, _ := p.Program("quick")
				if len(prog.Budgets) != 1 || jsonOf(t, prog.Budgets[0]) != jsonOf(t, bv) {
					t.Errorf("program budgets = %+v, want [%+v]", prog.Budgets, bv)
				}
			}

			f, ok := p.Fund("f1", "")
			if !ok {
				t.Fatal("no fund f1")
			}
			for _, x := range []struct{ what, got, want string }{
				{"paid in", f.PaidIn.String(), c.want.paidIn},
				{"invested", f.Invested.String(), c.want.invested},
				{"idle cash", f.IdleCash.String(), c.want.idle},
			} {
				if x.got != x.want {
					t.Errorf("fund %s = %s, want %s", x.what, x.got, x.want)
				}
			}
			projects, totals := p.Projects(projections.ProjectFilter{FundID: "f1"})
			if len(projects) > 0 && totals.Cost.String() != c.want.invested {
				t.Errorf("projects cost = %s, want %s", totals.Cost, c.want.invested)
			}

			tb := p.TrialBalance()
			checkTrialBalance(t, "replayed", tb, c.want.accounts)
			// The streaming trial balance agrees with the replayed one.
			streamed, err := projections.BalancesAt(b.ctx, b.store, c.pt)
			if err != nil {
				t.Fatal(err)
			}
			checkTrialBalance(t, "streamed", streamed, c.want.accounts)
			if streamed.Position != tb.Position {
				t.Errorf("streamed position %s, replayed %s", streamed.Position, tb.Position)
			}
			if streamed.AsOf != c.pt.AsOf || streamed.RecordedAsOf != c.pt.RecordedAsOfString() {
				t.Errorf("streamed as_of %q recorded_as_of %q, want %q %q", streamed.AsOf, streamed.RecordedAsOf, c.pt.AsOf, c.pt.RecordedAsOfString())
			}
		})
	}
}

func checkTrialBalance(t *testing.T, what string, tb projections.TrialBalance, want map[string]string) {
	t.Helper()
	if !tb.Total.IsZero() || len(tb.Violations) != 0 {
		t.Errorf("%s: total %s violations %v, want 0.00 and none", what, tb.Total, tb.Violations)
	}
	if tb.Debits.Cmp(tb.Credits) != 0 {
		t.Errorf("%s: debits %s ≠ credits %s", what, tb.Debits, tb.Credits)
	}
	got := map[string]string{}
	for _, a := range tb.Accounts {
		got[a.Account] = a.Balance.String()
	}
	for acct, bal := range want {
		if got[acct] != bal {
			t.Errorf("%s: %s = %q, want %q", what, acct, got[acct], bal)
		}
	}
}

// TestReplayMatchesLive checks that replaying every event gives the live
// projector's answers.
func TestReplayMatchesLive(t *testing.T) {
	b, _, _ := pointInTimeBooks(t)
	live := projections.New(b.store, nil)
	it := b.store.ReadAll(b.ctx, eventstore.Start)
	for it.Next() {
		ev := it.Event()
		if err := live.Apply(&ev); err != nil {
			t.Fatal(err)
		}
	}
	it.Close()
	replayed, err := projections.Replay(b.ctx, b.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := replayed.Position(), live.Position(); a != b {
		t.Errorf("position %s, live %s", a, b)
	}
	for _, c := range []struct {
		what      string
		got, want func(p *projections.Projector) any
	}{
		{what: "programs", got: func(p *projections.Projector) any { return p.Programs() }},
		{what: "funds", got: func(p *projections.Projector) any { f, t := p.Funds("2024-12-31"); return []any{f, t} }},
		{what: "projects", got: func(p *projections.Projector) any {
			ps, t := p.Projects(projections.ProjectFilter{})
			return []any{ps, t}
		}},
		{what: "grants", got: func(p *projections.Projector) any { g, n := p.Grants(projections.GrantFilter{}); return []any{g, n} }},
		{what: "trial balance", got: func(p *projections.Projector) any { return p.TrialBalance() }},
	} {
		got, want := jsonOf(t, c.got(replayed)), jsonOf(t, c.got(live))
		if got != want {
			t.Errorf("replayed %s:\n%s\nlive:\n%s", c.what, got, want)
		}
	}
	if !replayed.Ready() {
		t.Error("a replayed projector is not ready")
	}
}

func TestParsePointInTime(t *testing.T) {
	good := []struct {
		asOf, recorded string
		want           projections.PointInTime
	}{
		{"", "", projections.PointInTime{}},
		{"2024-12-31", "", projections.PointInTime{AsOf: "2024-12-31"}},
		{"", "2024-07-01T00:00:00+08:00", projections.PointInTime{RecordedAsOf: cityTime(t, "2024-07-01 00:00")}},
		{"2024-06-30", "2024-06-30T16:00:00Z", projections.PointInTime{AsOf: "2024-06-30", RecordedAsOf: cityTime(t, "2024-07-01 00:00")}},
		{"", "2024-07-01T00:00:00.123456789+08:00", projections.PointInTime{RecordedAsOf: cityTime(t, "2024-07-01 00:00").Add(123456789)}},
	}
	for _, g := range good {
		got, err := projections.ParsePointInTime(g.asOf, g.recorded)
		if err != nil {
			t.Errorf("ParsePointInTime(%q, %q): %v", g.asOf, g.recorded, err)
			continue
		}
		if got.AsOf != g.want.AsOf || !got.RecordedAsOf.Equal(g.want.RecordedAsOf) {
			t.Errorf("ParsePointInTime(%q, %q) = %+v, want %+v", g.asOf, g.recorded, got, g.want)
		}
		if got.IsZero() != (g.asOf == "" && g.recorded == "") {
			t.Errorf("ParsePointInTime(%q, %q).IsZero() = %v", g.asOf, g.recorded, got.IsZero())
		}
	}
	for _, bad := range [][2]string{
		{"31.12.2024", ""}, {"2024-13-01", ""}, {"1999-12-31", ""}, {"2024-12-31T00:00:00Z", ""},
		{"", "2024-07-01"}, {"", "2024-07-01T00:00:00"}, {"", "yesterday"}, {"", "1970-01-01T00:00:00Z"},
	} {
		_, err := projections.ParsePointInTime(bad[0], bad[1])
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.EINVALID {
			t.Errorf("ParsePointInTime(%q, %q) = %v, want an %s error", bad[0], bad[1], err, domain.EINVALID)
		}
	}
}

func TestPointInTimeKeep(t *testing.T) {
	recorded := cityTime(t, "2024-07-20 10:00")
	ev := &eventstore.Event{Metadata: eventstore.Metadata{RecordedAt: recorded, EffectiveDate: "2024-03-31"}}
	bare := &eventstore.Event{Metadata: eventstore.Metadata{RecordedAt: recorded}} // effective on the city date, 2024-07-20
	for _, c := range []struct {
		pt       projections.PointInTime
		ev, bare bool
	}{
		{projections.PointInTime{}, true, true},
		{projections.PointInTime{AsOf: "2024-03-31"}, true, false},
		{projections.PointInTime{AsOf: "2024-03-30"}, false, false},
		{projections.PointInTime{AsOf: "2024-07-20"}, true, true},
		{projections.PointInTime{RecordedAsOf: recorded}, true, true},
		{projections.PointInTime{RecordedAsOf: recorded.Add(-time.Microsecond)}, false, false},
		{projections.PointInTime{AsOf: "2024-12-31", RecordedAsOf: recorded.Add(-time.Microsecond)}, false, false},
	} {
		if got := c.pt.Keep(ev); got != c.ev {
			t.Errorf("%+v keeps the backdated event: %v, want %v", c.pt, got, c.ev)
		}
		if got := c.pt.Keep(bare); got != c.bare {
			t.Errorf("%+v keeps the event without an effective date: %v, want %v", c.pt, got, c.bare)
		}
	}
}

func pct(ps ...int64) []decimal.Decimal {
	out := make([]decimal.Decimal, len(ps))
	for i, p := range ps {
		out[i] = decimal.NewFromInt(p)
	}
	return out
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
