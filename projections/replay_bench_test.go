package projections_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
)

// journeyLog returns the events of grants taken from application to
// payment through the domain service, about n of them: 8 events a grant
// (the approval reserves the talent's entitlement and the budget), 10 for
// every other one, which also runs a public notice; 8 programs with their
// budgets, and a talent for every four grants. All are dated one day.
func journeyLog(tb testing.TB, n int) []eventstore.Event {
	tb.Helper()
	store := journeyStore(tb, n)
	defer store.Close()
	var evs []eventstore.Event
	it := store.ReadAll(context.Background(), eventstore.Start)
	defer it.Close()
	for it.Next() {
		evs = append(evs, it.Event())
	}
	if err := it.Err(); err != nil {
		tb.Fatal(err)
	}
	return evs
}

// journeyStore returns an in-memory store holding journeyLog's events.
func journeyStore(tb testing.TB, n int) eventstore.Store {
	tb.Helper()
	ctx := context.Background()
	store := memstore.New()
	now := time.Date(2025, 3, 10, 9, 30, 0, 0, time.UTC)
	svc := domain.NewService(store, domain.WithImport(), domain.WithClock(func() time.Time { return now }))
	// An imported command carries its historical date: every one is
	// dated the clock's day, so no stream's dates go backwards.
	today := domain.Today(now)
	actor := func(p, role string) domain.CommandMeta {
		return domain.CommandMeta{Actor: domain.Actor{Principal: p, Role: role}, DocumentRef: "DOC-1", EffectiveDate: today}
	}
	must := func(r domain.Result, err error) domain.Result {
		if err != nil {
			tb.Fatal(err)
		}
		return r
	}
	const programs = 8
	for i := range programs {
		id := fmt.Sprintf("p%d", i)
		must(svc.DefineProgram(ctx, domain.DefineProgram{Meta: actor("admin", domain.RoleAdmin), ProgramID: id, Name: "Transport " + id,
			Kind: domain.KindTransport, Caps: map[string]domain.Money{"B": yuanOf(50000)}, Schedule: domain.Schedule{Percentages: []decimal.Decimal{decimal.NewFromInt(100)}}}))
		must(svc.AppropriateBudget(ctx, domain.AppropriateBudget{Meta: actor("approver", domain.RoleApprover), ProgramID: id,
			FiscalYear: 2025, Amount: yuanOf(1_000_000_000)}))
	}
	grants := n / 9
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			// Each talent takes four grants, well within the program's
			// cap on what one talent may receive.
			var t string
			for i, g := 0, w; g < grants; i, g = i+1, g+8 {
				if i%4 == 0 {
					t = must(svc.RegisterTalent(ctx, domain.RegisterTalent{Meta: actor("clerk", domain.RoleClerk),
						Name: fmt.Sprintf("Talent %d", g), Tier: "B", Employer: "E"})).ID
				}
				gid := must(svc.ApplyGrant(ctx, domain.ApplyGrant{Meta: actor("clerk", domain.RoleClerk), TalentID: t,
					ProgramID: fmt.Sprintf("p%d", g%programs), AmountRequested: yuanOf(1000)})).ID
				must(svc.ReviewGrant(ctx, domain.ReviewGrant{Meta: actor("reviewer", domain.RoleReviewer), GrantID: gid, Decision: "approve"}))
				if g%2 == 0 {
					must(svc.OpenNotice(ctx, domain.NoticeCommand{Meta: actor("reviewer", domain.RoleReviewer), GrantID: gid}))
					must(svc.CloseNotice(ctx, domain.NoticeCommand{Meta: actor("reviewer", domain.RoleReviewer), GrantID: gid}))
				}
				must(svc.ApproveGrant(ctx, domain.ApproveGrant{Meta: actor("approver", domain.RoleApprover), GrantID: gid}))
				pid := must(svc.PreparePayment(ctx, domain.PreparePayment{Meta: actor("clerk", domain.RoleClerk), GrantID: gid, Installment: 1})).ID
				must(svc.ApprovePayment(ctx, domain.PaymentCommand{Meta: actor("approver", domain.RoleApprover), PaymentID: pid}))
				must(svc.ReleasePayment(ctx, domain.PaymentCommand{Meta: actor("treasurer", domain.RoleTreasurer), PaymentID: pid, BankReference: "B-1"}))
			}
		})
	}
	wg.Wait()
	return store
}

func yuanOf(n int64) domain.Money { return domain.Yuan(n) }

// BenchmarkApply measures folding a realistic log into every read model
// (budgets, talents, grants, ledger, funds, the audit tree): the replay a
// cold start does, without the store's reading.
func BenchmarkApply(b *testing.B) {
	evs := journeyLog(b, 40_000)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	applied := 0
	for b.Loop() {
		p := projections.New(nil, log)
		for i := range evs {
			if err := p.Apply(&evs[i]); err != nil {
				b.Fatal(err)
			}
		}
		applied += len(evs)
	}
	b.ReportMetric(float64(applied)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(applied), "cpu-ns/event")
}

var replayEvents = flag.Int("replay.events", 100_000, "events in BenchmarkReplay's log (e.g. 1000000)")

// BenchmarkReplay measures Replay: reading a log of grant journeys and
// folding it into every read model, decoding and hashing on one goroutine
// while folding on another, as a cold start does. Set the log's size with
// -replay.events.
func BenchmarkReplay(b *testing.B) {
	store := journeyStore(b, *replayEvents)
	defer store.Close()
	ctx := context.Background()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	applied := uint64(0)
	for b.Loop() {
		p, err := projections.Replay(ctx, store, nil)
		if err != nil {
			b.Fatal(err)
		}
		applied += p.Progress().Applied
	}
	b.ReportMetric(float64(applied)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(applied), "cpu-ns/event")
}

// cpuTime is the CPU the process has used, user and system, in
// nanoseconds: on a shared machine it varies far less with the load than
// the time on the clock does.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
