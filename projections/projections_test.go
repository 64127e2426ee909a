package projections_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
)

// env is a store, a service writing to it and a projector reading it, fed
// by Run in a goroutine as the server runs it.
type env struct {
	t    *testing.T
	ctx  context.Context
	st   eventstore.Store
	svc  *domain.Service
	proj *projections.Projector

	admin, approver, clerk, reviewer, treasurer, treasurer2, manager domain.Actor
}

// newEnv starts a projector over a fresh store; it is stopped, and the
// store closed, when the test ends.
func newEnv(t *testing.T) *env {
	t.Helper()
	st := memstore.New()
	proj := projections.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// The tests write history: each command is reckoned at its own date.
	svc := domain.NewService(st, domain.WithImport(),
		domain.WithClock(func() time.Time { return time.Date(2026, 1, 10, 9, 30, 0, 0, time.UTC) }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proj.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		st.Close()
	})
	return &env{t: t, ctx: context.Background(), st: st, svc: svc, proj: proj,
		admin: domain.Actor{Principal: "arthur", Role: domain.RoleAdmin}, approver: domain.Actor{Principal: "amy", Role: domain.RoleApprover},
		clerk: domain.Actor{Principal: "colin", Role: domain.RoleClerk}, reviewer: domain.Actor{Principal: "ruth", Role: domain.RoleReviewer},
		treasurer:  domain.Actor{Principal: "trent", Role: domain.RoleTreasurer},
		treasurer2: domain.Actor{Principal: "tina", Role: domain.RoleTreasurer},
		manager:    domain.Actor{Principal: "fiona", Role: domain.RoleFundManager}}
}

func (e *env) on(a domain.Actor, date string) domain.CommandMeta {
	return domain.CommandMeta{Actor: a, EffectiveDate: date, DocumentRef: "DOC-" + date}
}

// do fails the test on err, and waits until the projector has applied
// what the command wrote.
func (e *env) do(r domain.Result, err error) domain.Result {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("command: %v", err)
	}
	if err := e.proj.WaitFor(e.ctx, r.Position, 5*time.Second); err != nil {
		e.t.Fatalf("WaitFor(%s): %v", r.Position, err)
	}
	return r
}

func (e *env) money(s string) domain.Money {
	e.t.Helper()
	m, err := domain.ParseMoney(s)
	if err != nil {
		e.t.Fatalf("ParseMoney(%q): %v", s, err)
	}
	return m
}

func (e *env) pct(s string) decimal.Decimal {
	e.t.Helper()
	d, err := decimal.NewFromString(s)
	if err != nil {
		e.t.Fatalf("decimal %q: %v", s, err)
	}
	return d
}

func (e *env) last() eventstore.Position {
	e.t.Helper()
	p, err := e.st.LastPosition(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func wantEq[T comparable](t *testing.T, what string, got, expected T) {
	t.Helper()
	if got != expected {
		t.Errorf("%s = %v, want %v", what, got, expected)
	}
}

// wantBudget checks a budget view's figures.
func wantBudget(t *testing.T, what string, b projections.BudgetView, appropriated, reserved, paid, available string) {
	t.Helper()
	got := [4]string{b.Appropriated.String(), b.Reserved.String(), b.Paid.String(), b.Available.String()}
	if got != [4]string{appropriated, reserved, paid, available} {
		t.Errorf("%s: appropriated/reserved/paid/available = %v, want [%s %s %s %s]", what, got, appropriated, reserved, paid, available)
	}
}

func (e *env) budget(program string, fy int) projections.BudgetView {
	e.t.Helper()
	b, ok := e.proj.Budget(program, fy)
	if !ok {
		e.t.Fatalf("no budget %s %d", program, fy)
	}
	return b
}

// wantSound checks the projected trial balance sums to zero with no
// non-negative account below zero.
func (e *env) wantSound(what string) projections.TrialBalance {
	e.t.Helper()
	tb := e.proj.TrialBalance()
	if !tb.Total.IsZero() || len(tb.Violations) != 0 {
		e.t.Errorf("%s: trial balance total %s, violations %v", what, tb.Total, tb.Violations)
	}
	return tb
}

func balanceOf(tb projections.TrialBalance, account string) string {
	for _, a := range tb.Accounts {
		if a.Account == account {
			return a.Balance.String()
		}
	}
	return ""
}

// TestBudgetView follows one budget through an approval, a release, its
// reversal, a release again and a termination.
func TestBudgetView(t *testing.T) {
	e := newEnv(t)
	e.do(e.svc.DefineProgram(e.ctx, domain.DefineProgram{Meta: e.on(e.admin, "2024-01-02"), ProgramID: "rent", Name: "Rent",
		Kind: domain.KindRent, Caps: map[string]domain.Money{"B": e.money("100000")},
		Schedule: domain.Schedule{Percentages: []decimal.Decimal{e.pct("50"), e.pct("50")}, IntervalMonths: 12}, ServiceMonths: 24}))
	e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2024-01-02"), ProgramID: "rent",
		FiscalYear: 2024, Amount: e.money("1000000")}))
	wantBudget(t, "appropriated", e.budget("rent", 2024), "1000000.00", "0.00", "0.00", "1000000.00")

	talent := e.do(e.svc.RegisterTalent(e.ctx, domain.RegisterTalent{Meta: e.on(e.clerk, "2024-01-02"), Name: "Sophie Martin",
		PermitCategory: "A", Tier: "B", Employer: "Pinghu Precision Optics Co."})).ID
	g := e.do(e.svc.ApplyGrant(e.ctx, domain.ApplyGrant{Meta: e.on(e.clerk, "2024-01-03"), TalentID: talent, ProgramID: "rent",
		AmountRequested: e.money("100000")})).ID
	e.do(e.svc.ReviewGrant(e.ctx, domain.ReviewGrant{Meta: e.on(e.reviewer, "2024-01-04"), GrantID: g, Decision: "approve"}))
	e.do(e.svc.ApproveGrant(e.ctx, domain.ApproveGrant{Meta: e.on(e.approver, "2024-01-15"), GrantID: g}))
	// 2024 reserves the first installment; the second, due in 2025, is
	// a forward commitment on a 2025 budget not yet appropriated.
	b := e.budget("rent", 2024)
	wantBudget(t, "approved", b, "1000000.00", "50000.00", "0.00", "950000.00")
	wantEq(t, "grants", b.Grants, 1)
	b25 := e.budget("rent", 2025)
	wantEq(t, "2025 uncovered", b25.Uncovered.String(), "50000.00")
	wantEq(t, "2025 forward committed", b25.ForwardCommitted.String(), "50000.00")
	wantEq(t, "2025 flagged before any appropriation", b25.Flagged, false)
	if cs := e.proj.Commitments("rent", 2025); len(cs) != 1 || cs[0].GrantID != g || cs[0].Uncovered.String() != "50000.00" || cs[0].ApprovedIn != 2024 {
		t.Errorf("2025 commitments = %+v, want grant %s's 50000.00 uncovered", cs, g)
	}
	// An appropriation too small to cover it flags it.
	e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2024-01-16"), ProgramID: "rent",
		FiscalYear: 2025, Amount: e.money("10000")}))
	wantEq(t, "2025 flagged", e.budget("rent", 2025).Flagged, true)
	if cs := e.proj.Commitments("rent", 2025); len(cs) != 1 || !cs[0].Flagged {
		t.Errorf("2025 commitments = %+v, want one flagged", cs)
	}

	pay := func(date string) string {
		p := e.do(e.svc.PreparePayment(e.ctx, domain.PreparePayment{Meta: e.on(e.clerk, date), GrantID: g, Installment: 1})).ID
		e.do(e.svc.ApprovePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.approver, date), PaymentID: p}))
		e.do(e.svc.ReleasePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.treasurer, date), PaymentID: p, BankReference: "ICBC-" + date}))
		return p
	}
	p := pay("2024-01-20")
	wantBudget(t, "released", e.budget("rent", 2024), "1000000.00", "0.00", "50000.00", "950000.00")
	wantEq(t, "execution rate", e.budget("rent", 2024).ExecutionRate, "5.00")
	e.do(e.svc.ReversePayment(e.ctx, domain.PaymentCommand{Meta: e.on(e.treasurer2, "2024-01-25"), PaymentID: p, Reason: "wrong account"}))
	wantBudget(t, "reversed", e.budget("rent", 2024), "1000000.00", "50000.00", "0.00", "950000.00")
	pay("2024-01-26")
	wantBudget(t, "released again", e.budget("rent", 2024), "1000000.00", "0.00", "50000.00", "950000.00")

	e.do(e.svc.ReportDeparture(e.ctx, domain.ReportDeparture{Meta: e.on(e.clerk, "2024-07-15"), TalentID: talent, DepartureDate: "2024-07-15"}))
	e.do(e.svc.TerminateGrant(e.ctx, domain.TerminateGrant{Meta: e.on(e.approver, "2024-07-20"), GrantID: g}))
	// The termination's release goes to the budget's stream after the
	// grant's; wait for the whole log.
	if err := e.proj.WaitFor(e.ctx, e.last(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	wantBudget(t, "terminated", e.budget("rent", 2024), "1000000.00", "0.00", "50000.00", "950000.00")
	wantEq(t, "2025 uncovered after the termination", e.budget("rent", 2025).Uncovered.String(), "0.00")
	wantEq(t, "2025 forward committed after the termination", e.budget("rent", 2025).ForwardCommitted.String(), "0.00")

	gv, _ := e.proj.Grant(g)
	wantEq(t, "grant state", gv.State, domain.GrantStateTerminated)
	wantEq(t, "grant paid", gv.Paid.String(), "50000.00")
	// Six months of 24 served: 100,000 × 6 ÷ 24 = 25,000 earned, 25,000 due.
	wantEq(t, "clawback", gv.Clawback.Outstanding.String(), "25000.00")
	tv, _ := e.proj.Talent(talent)
	wantEq(t, "talent paid", tv.TotalPaid.String(), "50000.00")
	wantEq(t, "talent clawback due", tv.ClawbackDue.String(), "25000.00")

	tb := e.wantSound("after the termination")
	wantEq(t, "ledger available", balanceOf(tb, "budget:rent:2024:available"), "950000.00")
	wantEq(t, "ledger encumbered", balanceOf(tb, "budget:rent:2024:encumbered"), "0.00")
	wantEq(t, "ledger paid", balanceOf(tb, "talent:"+talent+":paid"), "25000.00")
	wantEq(t, "ledger clawback due", balanceOf(tb, "talent:"+talent+":clawback_due"), "25000.00")
}

func TestWaitFor(t *testing.T) {
	e := newEnv(t)
	r := e.do(e.svc.EstablishFund(e.ctx, domain.EstablishFund{Meta: e.on(e.manager, "2024-01-01"), FundID: "f", Name: "F",
		FundType: domain.FundSpecial, Target: e.money("1000"), TermYears: 5, Manager: "M"}))
	// A position already applied is reached at once.
	if err := e.proj.WaitFor(e.ctx, r.Position, time.Nanosecond); err != nil {
		t.Errorf("WaitFor(applied) = %v", err)
	}
	if err := e.proj.WaitFor(e.ctx, eventstore.Start, time.Nanosecond); err != nil {
		t.Errorf("WaitFor(Start) = %v", err)
	}
	future := eventstore.Position{Commit: r.Position.Commit + 1000, Prepare: r.Position.Prepare + 1000}
	if err := e.proj.WaitFor(e.ctx, future, 20*time.Millisecond); !errors.Is(err, projections.ErrNotReached) {
		t.Errorf("WaitFor(future) = %v, want ErrNotReached", err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if err := e.proj.WaitFor(ctx, future, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor(future) with a cancelled context = %v, want context.Canceled", err)
	}

	// A waiter is woken by the event it waits for.
	next := eventstore.Position{Commit: r.Position.Commit + 1}
	got := make(chan error, 1)
	go func() { got <- e.proj.WaitFor(e.ctx, next, 5*time.Second) }()
	r2 := e.do(e.svc.MakeCommitment(e.ctx, domain.CapitalCommand{Meta: e.on(e.manager, "2024-01-02"), FundID: "f", LP: "LP", Amount: e.money("10")}))
	if r2.Position.Before(next) {
		t.Fatalf("the commitment landed at %s, before %s", r2.Position, next)
	}
	if err := <-got; err != nil {
		t.Errorf("WaitFor(next) = %v", err)
	}
	wantEq(t, "position", e.proj.Position(), r2.Position)
	if !e.proj.Ready() {
		t.Error("not ready after catching up")
	}
}

// TestApplyIgnoresOldEvents feeds a projector by hand: an event at or
// before its position changes nothing.
func TestApplyIgnoresOldEvents(t *testing.T) {
	e := newEnv(t)
	e.do(e.svc.DefineProgram(e.ctx, domain.DefineProgram{Meta: e.on(e.admin, "2024-01-02"), ProgramID: "rent", Name: "Rent",
		Kind: domain.KindRent, Caps: map[string]domain.Money{"B": e.money("100000")},
		Schedule: domain.Schedule{Percentages: []decimal.Decimal{e.pct("100")}}}))
	for _, amount := range []string{"1000.00", "2000.00"} {
		e.do(e.svc.AppropriateBudget(e.ctx, domain.AppropriateBudget{Meta: e.on(e.approver, "2024-01-02"), ProgramID: "rent",
			FiscalYear: 2024, Amount: e.money(amount)}))
	}
	it := e.st.ReadAll(e.ctx, eventstore.Start)
	var evs []eventstore.Event
	for it.Next() {
		evs = append(evs, it.Event())
	}
	it.Close()
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}

	p := projections.New(e.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, i := range []int{0, 1, 1, 0, 2, 1, 2} {
		if err := p.Apply(&evs[i]); err != nil {
			t.Fatalf("Apply(%d): %v", i, err)
		}
	}
	wantEq(t, "position", p.Position(), evs[2].Position)
	if _, applied := p.Lag(); applied != 3 {
		t.Errorf("applied %d events, want 3", applied)
	}
	b, ok := p.Budget("rent", 2024)
	if !ok {
		t.Fatal("no budget")
	}
	wantBudget(t, "budget", b, "3000.00", "0.00", "0.00", "3000.00")
	tb := p.TrialBalance()
	wantEq(t, "treasury", balanceOf(tb, "treasury:2024:appropriation"), "-3000.00")
	wantEq(t, "trial balance position", tb.Position, evs[2].Position.String())

	// An event of a type no model knows (a newer build wrote it) stops
	// the folding before it: nothing is skipped, the models keep
	// answering as of the event before, and the projector is not ready.
	odd := evs[2]
	odd.Type, odd.Position = "SomethingFromTheFuture", eventstore.Position{Commit: evs[2].Position.Commit + 1, Prepare: evs[2].Position.Prepare + 1}
	err := p.Apply(&odd)
	if !errors.Is(err, domain.ErrUpgradeRequired) {
		t.Fatalf("Apply(unknown type) = %v, want an upgrade required", err)
	}
	want := "upgrade required: event SomethingFromTheFuture version 1 at position " + odd.Position.String()
	wantEq(t, "the stop", err.Error(), want)
	wantEq(t, "Stopped", p.Stopped(), err)
	wantEq(t, "position after an unknown type", p.Position(), evs[2].Position)
	b, _ = p.Budget("rent", 2024)
	wantEq(t, "appropriated after an unknown type", b.Appropriated.String(), "3000.00")
	if p.Ready() {
		t.Error("ready after an unknown type")
	}
	// Nothing after it is folded either.
	later := evs[2]
	later.Position = eventstore.Position{Commit: odd.Position.Commit + 1, Prepare: odd.Position.Prepare + 1}
	if err := p.Apply(&later); !errors.Is(err, domain.ErrUpgradeRequired) {
		t.Fatalf("Apply after the stop = %v", err)
	}
	wantEq(t, "position after the stop", p.Position(), evs[2].Position)
	// A wait for a position after the stop never ends in it: it says why
	// at once rather than when its time runs out.
	if err := p.WaitFor(context.Background(), later.Position, 2*time.Second); !errors.Is(err, domain.ErrUpgradeRequired) {
		t.Errorf("WaitFor after the stop = %v, want the upgrade required", err)
	}
	if err := p.WaitFor(context.Background(), evs[2].Position, 2*time.Second); err != nil {
		t.Errorf("WaitFor a position folded before the stop = %v", err)
	}
}
