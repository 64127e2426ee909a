package projections_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
)

// The ledger's balances are folded from postings alone; the budgets,
// talents, grants and funds are folded from the events' own fields by
// models that never look at a posting. At every position of a randomized
// log the two must tell the same story, account by account. Unlike a
// trial balance summing to zero (each posting is balanced by construction),
// this fails when a posting or a model gets an event wrong.
func TestBooksAgreeWithTheModelsAtEveryPosition(t *testing.T) {
	required := []string{domain.TypeBudgetReserved, domain.TypePaymentReleased, domain.TypePaymentReversed,
		domain.TypeGrantTerminated, domain.TypeClawbackAssessed, domain.TypeRecoveryReceived, domain.TypeRecoveryWaived,
		domain.TypeBudgetAdjusted, domain.TypeBudgetTransferReceived, domain.TypeForwardCommitted, domain.TypeForwardCommitmentCovered,
		domain.TypeYearEndClosed, domain.TypeInvestmentFunded, domain.TypeExitCompleted, domain.TypeWrittenOff}
	seen := map[string]int{}
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			store := randomLedger(t, seed, 500)
			defer store.Close()
			p := projections.New(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
			n := 0
			for _, ev := range readAll(t, store) {
				if err := p.Apply(&ev); err != nil {
					t.Fatal(err)
				}
				seen[ev.Type]++
				n++
				if msg := booksDisagree(p); msg != "" {
					t.Fatalf("after event %d (%s at %s): %s", n, ev.Type, ev.Position, msg)
				}
			}
		})
	}
	for _, typ := range required {
		if seen[typ] == 0 {
			t.Errorf("no %s in the random logs: the check does not reach it", typ)
		}
	}
}

// booksDisagree compares the ledger's balances with the models and says
// where they differ, or returns "".
func booksDisagree(p *projections.Projector) string {
	tb := p.TrialBalance()
	bal := map[string]domain.Money{}
	for _, a := range tb.Accounts {
		bal[a.Account] = a.Balance
	}
	if !tb.Total.IsZero() || len(tb.Violations) > 0 {
		return fmt.Sprintf("trial balance total %s, violations %v", tb.Total, tb.Violations)
	}
	var diffs []string
	check := func(what string, ledger, model domain.Money) {
		if ledger.Cmp(model) != 0 {
			diffs = append(diffs, fmt.Sprintf("%s: ledger %s, models %s", what, ledger, model))
		}
	}
	acct := func(parts ...any) domain.Money { return bal[fmt.Sprint(parts...)] }

	// Budgets, year by year, and each program's reservations over its
	// years (a carry-over is in flight between a close and its arrival).
	pendingClose := map[string]bool{}
	for _, k := range p.PendingCloses(time.Now().Add(100 * 365 * 24 * time.Hour)) {
		pendingClose[fmt.Sprintf("%s %d", k.ProgramID, k.FiscalYear)] = true
	}
	paidByBudget := map[string]domain.Money{}
	for _, prog := range p.Programs() {
		encumbered, reserved := domain.Zero, domain.Zero
		for _, b := range prog.Budgets {
			y := fmt.Sprint("budget:", b.ProgramID, ":", b.FiscalYear)
			check(y+" available", acct(y, ":available"), b.Available)
			check(y+" uncovered", acct(y, ":uncovered"), b.Uncovered)
			check(y+" forward commitments", acct(y, ":forward_commitments").Neg(), b.Uncovered)
			if !pendingClose[fmt.Sprintf("%s %d", b.ProgramID, b.FiscalYear)] {
				check(y+" encumbered", acct(y, ":encumbered"), b.Reserved)
			}
			encumbered = encumbered.Add(acct(y, ":encumbered"))
			reserved = reserved.Add(b.Reserved).Add(b.CarriedOut).Sub(b.CarriedOver)
			paidByBudget[fmt.Sprintf("%s %d", b.ProgramID, b.FiscalYear)] = b.Paid
		}
		check("budget:"+prog.ID+" encumbered in all years", encumbered, reserved)
	}

	// Grants, summed by talent and by budget, against the talents and
	// budgets models and the talents' accounts.
	grants, _ := p.Grants(projections.GrantFilter{})
	type sums struct{ paid, owed, assessed, waived domain.Money }
	byTalent := map[string]*sums{}
	released := map[string]domain.Money{}
	for _, g := range grants {
		s := byTalent[g.TalentID]
		if s == nil {
			s = &sums{domain.Zero, domain.Zero, domain.Zero, domain.Zero}
			byTalent[g.TalentID] = s
		}
		s.paid = s.paid.Add(g.Paid)
		s.owed = s.owed.Add(g.Clawback.Outstanding)
		s.assessed = s.assessed.Add(g.Clawback.Assessed)
		s.waived = s.waived.Add(g.Clawback.Waived)
		for _, pv := range g.Payments {
			if pv.State == domain.PaymentStateReleased {
				k := fmt.Sprintf("%s %d", g.ProgramID, pv.FiscalYear)
				released[k] = released[k].Add(pv.Amount)
			}
		}
	}
	for k, paid := range paidByBudget {
		check("budget "+k+" paid, from the grants' payments", released[k], paid)
	}
	for id, s := range byTalent {
		tv, ok := p.Talent(id)
		if !ok {
			diffs = append(diffs, "no talent "+id)
			continue
		}
		check("talent "+id+" paid, grants against talents", s.paid, tv.TotalPaid)
		check("talent "+id+" clawback due", acct("talent:", id, ":clawback_due"), tv.ClawbackDue)
		check("talent "+id+" clawback due, from the grants", acct("talent:", id, ":clawback_due"), s.owed)
		check("talent "+id+" paid", acct("talent:", id, ":paid"), s.paid.Sub(s.assessed).Add(s.waived))
	}

	// Funds: cash and what is held at cost.
	funds, _ := p.Funds("")
	for _, f := range funds {
		check("fund "+f.ID+" cash", acct("fund:", f.ID, ":cash"), f.IdleCash)
		held := domain.Zero
		for name, b := range bal {
			if strings.HasPrefix(name, "fund:"+f.ID+":investments:") {
				held = held.Add(b)
			}
		}
		check("fund "+f.ID+" investments at cost", held, f.HeldAtCost)
	}
	return strings.Join(diffs, "; ")
}

// randomLedger runs about n random commands through the domain service
// over a year and a half, days apart: grants through their lifecycle,
// payments released, failed and reversed, terminations with clawbacks
// recovered and waived, budget adjustments, year-end closes, and funds
// investing. Commands the rules refuse are part of the game; only errors
// that are not the domain's fail the test.
func randomLedger(t *testing.T, seed uint64, n int) eventstore.Store {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 42))
	store := memstore.New()
	now := time.Date(2024, 1, 8, 10, 0, 0, 0, time.UTC)
	svc := domain.NewService(store, domain.WithClock(func() time.Time { return now }))
	as := func(p, role string) domain.CommandMeta {
		return domain.CommandMeta{Actor: domain.Actor{Principal: p, Role: role}, DocumentRef: "DOC-1", Reason: "as minuted"}
	}
	clerk, reviewer := as("clerk", domain.RoleClerk), as("reviewer", domain.RoleReviewer)
	approver, approver2 := as("approver", domain.RoleApprover), as("approver2", domain.RoleApprover)
	treasurer, manager := as("treasurer", domain.RoleTreasurer), as("manager", domain.RoleFundManager)
	yuan := func(lo, hi int64) domain.Money { return domain.Yuan(lo + rng.Int64N(hi-lo+1)) }
	pick := func(ids []string) string {
		if len(ids) == 0 {
			return "none"
		}
		return ids[rng.IntN(len(ids))]
	}
	do := func(what string) func(domain.Result, error) string {
		return func(r domain.Result, err error) string { return done(t, seed, what, r, err) }
	}
	var programs, talents, grants, payments, released, terminated, funds, investments []string
	talentOf, programOf, approved := map[string]string{}, map[string]string{}, map[string][]string{}
	pct := func(ps ...int64) []decimal.Decimal {
		var out []decimal.Decimal
		for _, p := range ps {
			out = append(out, decimal.NewFromInt(p))
		}
		return out
	}
	for i, sched := range [][]decimal.Decimal{pct(100), pct(50, 50), pct(40, 30, 30)} {
		id := fmt.Sprint("p", i)
		do("define")(svc.DefineProgram(ctx, domain.DefineProgram{Meta: as("admin", domain.RoleAdmin), ProgramID: id, Name: "Program " + id,
			Kind: domain.KindTransport, Caps: map[string]domain.Money{"B": domain.Yuan(90000)}, ServiceMonths: 24, NoticeDays: i % 2 * 3,
			Schedule: domain.Schedule{Percentages: sched, IntervalMonths: 6}}))
		programs = append(programs, id)
	}
	fy := func() int { return now.Year() }
	// advance moves a grant one step on: the first step of its lifecycle
	// the rules let through.
	advance := func(g string) {
		if do("review")(svc.ReviewGrant(ctx, domain.ReviewGrant{Meta: reviewer, GrantID: g, Decision: "approve"})) != "" {
			return
		}
		if do("notice")(svc.OpenNotice(ctx, domain.NoticeCommand{Meta: reviewer, GrantID: g})) != "" {
			return
		}
		if do("close notice")(svc.CloseNotice(ctx, domain.NoticeCommand{Meta: reviewer, GrantID: g})) != "" {
			return
		}
		if do("approve")(svc.ApproveGrant(ctx, domain.ApproveGrant{Meta: approver, GrantID: g})) != "" {
			approved[programOf[g]] = append(approved[programOf[g]], g)
			return
		}
		for n := 1; n <= 3; n++ {
			if id := do("prepare")(svc.PreparePayment(ctx, domain.PreparePayment{Meta: clerk, GrantID: g, Installment: n})); id != "" {
				payments = append(payments, id)
				return
			}
		}
	}
	for range n {
		now = now.Add(time.Duration(rng.IntN(3*24)) * time.Hour)
		switch r := rng.IntN(100); {
		case r < 8:
			do("appropriate")(svc.AppropriateBudget(ctx, domain.AppropriateBudget{Meta: approver, ProgramID: pick(programs),
				FiscalYear: fy() + rng.IntN(2), Amount: yuan(100000, 600000)}))
		case r < 13:
			if id := do("register")(svc.RegisterTalent(ctx, domain.RegisterTalent{Meta: clerk, Name: "T", Tier: "B", Employer: "E"})); id != "" {
				talents = append(talents, id)
			}
		case r < 21:
			talent, prog := pick(talents), pick(programs)
			if id := do("apply")(svc.ApplyGrant(ctx, domain.ApplyGrant{Meta: clerk, TalentID: talent, ProgramID: prog,
				AmountRequested: yuan(1000, 90000)})); id != "" {
				grants = append(grants, id)
				talentOf[id], programOf[id] = talent, prog
			}
		case r < 45:
			advance(pick(grants))
		case r < 46:
			do("reject")(svc.RejectGrant(ctx, domain.RejectGrant{Meta: approver, GrantID: pick(grants), Reason: "no"}))
		case r < 58:
			do("approve payment")(svc.ApprovePayment(ctx, domain.PaymentCommand{Meta: approver, PaymentID: pick(payments)}))
		case r < 70:
			pay := pick(payments)
			if do("release")(svc.ReleasePayment(ctx, domain.PaymentCommand{Meta: treasurer, PaymentID: pay, BankReference: "B"})) != "" {
				released = append(released, pay)
			}
		case r < 72:
			do("fail")(svc.FailPayment(ctx, domain.PaymentCommand{Meta: treasurer, PaymentID: pick(payments), Reason: "bounced"}))
		case r < 75:
			do("reverse")(svc.ReversePayment(ctx, domain.PaymentCommand{Meta: as("treasurer2", domain.RoleTreasurer), PaymentID: pick(released), Reason: "wrong account"}))
		case r < 77:
			// A talent who leaves after being paid owes part of it back.
			g, _, _ := domain.ParsePaymentID(pick(released))
			do("depart")(svc.ReportDeparture(ctx, domain.ReportDeparture{Meta: clerk, TalentID: talentOf[g], DepartureDate: domain.Today(now)}))
			if do("terminate")(svc.TerminateGrant(ctx, domain.TerminateGrant{Meta: approver, GrantID: g})) != "" {
				terminated = append(terminated, g)
			}
		case r < 81:
			do("recover")(svc.RecordRecovery(ctx, domain.RecoveryCommand{Meta: treasurer, GrantID: pick(terminated), Amount: yuan(1, 3000), BankReference: "R"}))
		case r < 83:
			do("waive")(svc.WaiveRecovery(ctx, domain.RecoveryCommand{Meta: approver, GrantID: pick(terminated), Amount: yuan(1, 3000)}))
		case r < 86:
			kind := []string{domain.AdjustIncrease, domain.AdjustDecrease, domain.AdjustTransfer}[rng.IntN(3)]
			prog, year, to := pick(programs), fy(), ""
			if kind == domain.AdjustTransfer {
				for to = pick(programs); to == prog; to = pick(programs) {
				}
			}
			if id := do("adjust")(svc.RequestBudgetAdjustment(ctx, domain.AdjustBudget{Meta: approver, ProgramID: prog, FiscalYear: year,
				Kind: kind, Amount: yuan(1000, 30000), ToProgram: to})); id != "" {
				do("approve adjustment")(svc.ApproveBudgetAdjustment(ctx, domain.AdjustBudget{Meta: approver2, ProgramID: prog, FiscalYear: year, AdjustmentID: id}))
			}
		case r < 88:
			if now.Month() >= 11 || now.Month() <= 2 {
				prog, year := pick(programs), fy()
				if now.Month() <= 2 {
					year--
				}
				var carry []domain.CarryOver
				if rng.IntN(2) == 0 {
					carry = []domain.CarryOver{{GrantID: pick(approved[prog]), Reason: "works not finished"}}
				}
				do("request close")(svc.RequestYearEndClose(ctx, domain.YearEndCommand{Meta: approver, ProgramID: prog, FiscalYear: year, CarryOver: carry}))
				do("confirm close")(svc.ConfirmYearEndClose(ctx, domain.YearEndCommand{Meta: approver2, ProgramID: prog, FiscalYear: year}))
			}
		case r < 89:
			id := fmt.Sprint("f", len(funds))
			if do("establish")(svc.EstablishFund(ctx, domain.EstablishFund{Meta: manager, FundID: id, Name: "Fund " + id,
				FundType: domain.FundDirectInvestment, Target: domain.Yuan(10_000_000), TermYears: 10, Manager: "M"})) != "" {
				funds = append(funds, id)
				do("commit")(svc.MakeCommitment(ctx, domain.CapitalCommand{Meta: manager, FundID: id, LP: "City", Amount: domain.Yuan(5_000_000)}))
			}
		case r < 91:
			do("pay in")(svc.PayInCapital(ctx, domain.CapitalCommand{Meta: manager, FundID: pick(funds), LP: "City", Amount: yuan(100000, 900000)}))
		case r < 93:
			f := pick(funds)
			if id := do("invest")(svc.ApproveInvestment(ctx, domain.ApproveInvestment{Meta: manager, FundID: f, CommitteeRef: "IC-1",
				Project: "P", Company: "C", Sector: "semiconductors", Amount: yuan(100000, 500000), StakePct: decimal.NewFromInt(5)})); id != "" {
				investments = append(investments, f+"/"+id)
			}
		case r < 97:
			f, inv, _ := strings.Cut(pick(investments), "/")
			do("tranche")(svc.FundTranche(ctx, domain.InvestmentCommand{Meta: manager, FundID: f, InvestmentID: inv, Amount: yuan(10000, 200000)}))
		default:
			f, inv, _ := strings.Cut(pick(investments), "/")
			switch rng.IntN(3) {
			case 0:
				do("distribution")(svc.RecordDistribution(ctx, domain.InvestmentCommand{Meta: manager, FundID: f, InvestmentID: inv, Amount: yuan(1, 50000)}))
			case 1:
				do("exit")(svc.CompleteExit(ctx, domain.InvestmentCommand{Meta: manager, FundID: f, InvestmentID: inv, Amount: yuan(0, 400000)}))
			default:
				do("write off")(svc.WriteOff(ctx, domain.InvestmentCommand{Meta: manager, FundID: f, InvestmentID: inv}))
			}
		}
	}
	return store
}

// done fails the test on an error that is not the domain's refusal, and
// returns the ID a command created ("" when refused).
func done(t *testing.T, seed uint64, what string, r domain.Result, err error) string {
	t.Helper()
	var de *domain.Error
	if err != nil && (!errors.As(err, &de) || de.Code == domain.EINTERNAL) {
		t.Fatalf("seed %d, %s: %v", seed, what, err)
	}
	if err != nil {
		return ""
	}
	return r.ID
}
