package projections_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
)

var asofEvents = flag.Int("asof.events", 200_000, "events in BenchmarkAsOf's log")

// asofLog is journeyLog's grants spread over four years: the events
// recorded one after the other from 2021-01-04 to 2024-12-31, a few
// seconds apart, one in twenty dated back up to 31 days.
func asofLog(b *testing.B, n int) eventstore.Store {
	b.Helper()
	evs := journeyLog(b, n)
	store := memstore.New()
	start := time.Date(2021, 1, 4, 1, 0, 0, 0, time.UTC)
	step := time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC).Sub(start) / time.Duration(len(evs))
	rng := rand.New(rand.NewPCG(1, 2))
	for i, ev := range evs {
		md := ev.Metadata
		md.RecordedAt = start.Add(time.Duration(i) * step)
		md.EffectiveDate = ""
		if rng.IntN(20) == 0 {
			md.EffectiveDate = domain.AddDays(domain.Today(md.RecordedAt), -rng.IntN(32))
		}
		if _, err := store.Append(context.Background(), ev.Stream, eventstore.Any,
			eventstore.EventData{ID: ev.ID, Type: ev.Type, Data: ev.Data, Metadata: md}); err != nil {
			b.Fatal(err)
		}
	}
	return store
}

// BenchmarkAsOf measures the trial balance and a budget at a point in time
// read from the as-of index (persisted in a views directory, as served)
// against the same answers folded from the log (the trial balance by
// BalancesAt, which streams the log keeping only balances; the budget by
// Replay, as a point-in-time budget was answered before the index), on a
// log of -asof.events events over four years. Index and replay alternate
// in three passes; it reports the index's median and slowest query of
// each kind, the replay's median, and the CPU per query of each.
func BenchmarkAsOf(b *testing.B) {
	store := asofLog(b, *asofEvents)
	defer store.Close()
	ctx := context.Background()
	dir := b.TempDir()
	p := projections.New(store, quietLog())
	if err := p.OpenViews(dir); err != nil {
		b.Fatal(err)
	}
	it := store.ReadAll(ctx, eventstore.Start)
	for it.Next() {
		ev := it.Event()
		if err := p.Apply(&ev); err != nil {
			b.Fatal(err)
		}
	}
	it.Close()
	// Served from the store: committed and reopened.
	if err := p.CloseViews(); err != nil {
		b.Fatal(err)
	}
	p = projections.New(store, quietLog())
	if err := p.OpenViews(dir); err != nil {
		b.Fatal(err)
	}
	defer p.CloseViews()

	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2021, 1, 4, 0, 0, 0, 0, time.UTC)
	point := func(kind string) projections.PointInTime {
		at := start.Add(time.Duration(rng.Int64N(int64(4 * 365 * 24 * time.Hour))))
		switch kind {
		case "balances_as_of", "budget_as_of":
			return projections.PointInTime{AsOf: domain.Today(at)}
		case "balances_recorded_as_of":
			return projections.PointInTime{RecordedAsOf: at}
		}
		return projections.PointInTime{AsOf: domain.Today(at), RecordedAsOf: at.Add(time.Duration(rng.IntN(40)) * 24 * time.Hour)}
	}
	kinds := []string{"balances_as_of", "balances_recorded_as_of", "balances_both", "budget_as_of"}
	ask := func(kind string, pt projections.PointInTime, replay bool) {
		var err error
		switch {
		case kind == "budget_as_of" && replay:
			var r *projections.Projector
			if r, err = projections.Replay(ctx, store, pt.Keep); err == nil {
				r.Budget(fmt.Sprint("p", rng.IntN(8)), 2025)
			}
		case kind == "budget_as_of":
			var bb *projections.BudgetBooks
			prog := fmt.Sprint("p", rng.IntN(8))
			if bb, err = p.AsOf().Budgets(pt, prog, 2025); err == nil {
				bb.Budget(prog, 2025)
			}
		case replay:
			_, err = projections.BalancesAt(ctx, store, pt)
		default:
			_, err = p.AsOf().TrialBalance(pt)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	const indexed, replayed = 30, 1
	took := map[string][]float64{}
	cpu := map[string]int64{}
	b.ResetTimer()
	for b.Loop() {
		for range 3 {
			for _, kind := range kinds {
				for _, replay := range []bool{false, true} {
					n, what := indexed, "index "+kind
					if replay {
						n, what = replayed, "replay "+kind
					}
					for range n {
						pt := point(kind)
						t, c := time.Now(), cpuTime()
						ask(kind, pt, replay)
						took[what] = append(took[what], time.Since(t).Seconds()*1e3)
						cpu[what] += cpuTime() - c
					}
				}
			}
		}
	}
	b.StopTimer()
	for _, kind := range kinds {
		ix, rp := took["index "+kind], took["replay "+kind]
		slices.Sort(ix)
		slices.Sort(rp)
		b.ReportMetric(ix[len(ix)/2], kind+"-index-p50-ms")
		b.ReportMetric(ix[len(ix)-1], kind+"-index-max-ms")
		b.ReportMetric(float64(cpu["index "+kind])/1e6/float64(len(ix)), kind+"-index-cpu-ms")
		b.ReportMetric(rp[len(rp)/2], kind+"-replay-p50-ms")
		b.ReportMetric(float64(cpu["replay "+kind])/1e6/float64(len(rp)), kind+"-replay-cpu-ms")
	}
}

// BenchmarkAsOfControlLevel measures the trial balance at a point in time
// at control level (ControlTrialBalance: the general ledger's sums, the
// API's answer) against the trial balance in detail (TrialBalance: every
// account, each talent's two among them, the API's answer before), each
// read from the as-of index persisted in a views directory and encoded as
// JSON, on a log of -asof.events events over four years; the two
// alternate in three passes of 30 questions each. It reports the median
// and slowest query, the CPU per query and the answer's size of each.
func BenchmarkAsOfControlLevel(b *testing.B) {
	store := asofLog(b, *asofEvents)
	defer store.Close()
	ctx := context.Background()
	dir := b.TempDir()
	p := projections.New(store, quietLog())
	if err := p.OpenViews(dir); err != nil {
		b.Fatal(err)
	}
	it := store.ReadAll(ctx, eventstore.Start)
	for it.Next() {
		ev := it.Event()
		if err := p.Apply(&ev); err != nil {
			b.Fatal(err)
		}
	}
	it.Close()
	if err := p.CloseViews(); err != nil {
		b.Fatal(err)
	}
	p = projections.New(store, quietLog())
	if err := p.OpenViews(dir); err != nil {
		b.Fatal(err)
	}
	defer p.CloseViews()
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2021, 1, 4, 0, 0, 0, 0, time.UTC)
	took := map[string][]float64{}
	cpu, size := map[string]int64{}, map[string]int{}
	b.ResetTimer()
	for b.Loop() {
		for range 3 {
			for _, kind := range []string{"control", "detail"} {
				for i := range 30 {
					at := start.Add(time.Duration(rng.Int64N(int64(4 * 365 * 24 * time.Hour))))
					pt := []projections.PointInTime{{AsOf: domain.Today(at)}, {RecordedAsOf: at},
						{AsOf: domain.Today(at), RecordedAsOf: at.Add(7 * 24 * time.Hour)}}[i%3]
					t, c := time.Now(), cpuTime()
					var tb projections.TrialBalance
					var err error
					if kind == "control" {
						tb, err = p.AsOf().ControlTrialBalance(pt)
					} else {
						tb, err = p.AsOf().TrialBalance(pt)
					}
					if err != nil {
						b.Fatal(err)
					}
					out, err := json.Marshal(tb)
					if err != nil {
						b.Fatal(err)
					}
					took[kind] = append(took[kind], time.Since(t).Seconds()*1e3)
					cpu[kind] += cpuTime() - c
					size[kind] = max(size[kind], len(out))
				}
			}
		}
	}
	b.StopTimer()
	for _, kind := range []string{"control", "detail"} {
		ts := took[kind]
		slices.Sort(ts)
		b.ReportMetric(ts[len(ts)/2], kind+"-p50-ms")
		b.ReportMetric(ts[len(ts)-1], kind+"-max-ms")
		b.ReportMetric(float64(cpu[kind])/1e6/float64(len(ts)), kind+"-cpu-ms")
		b.ReportMetric(float64(size[kind]), kind+"-max-bytes")
	}
}
