package projections_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/projections"
)

// BenchmarkFoldViews measures folding a log of grant journeys into every
// read model persisted in a views directory, committed every 50,000
// events and at the end, as a start on an empty views directory does. The
// events are recorded one after the other over four years, one in twenty
// dated back up to 31 days.
func BenchmarkFoldViews(b *testing.B) {
	evs := journeyLog(b, 60_000)
	start := time.Date(2021, 1, 4, 1, 0, 0, 0, time.UTC)
	step := 4 * 365 * 24 * time.Hour / time.Duration(len(evs))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range evs {
		md := &evs[i].Metadata
		md.RecordedAt, md.EffectiveDate = start.Add(time.Duration(i)*step), ""
		if rng.IntN(20) == 0 {
			md.EffectiveDate = domain.AddDays(domain.Today(md.RecordedAt), -rng.IntN(32))
		}
	}
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	applied := 0
	for b.Loop() {
		p := projections.New(nil, quietLog())
		if err := p.OpenViews(b.TempDir()); err != nil {
			b.Fatal(err)
		}
		for i := range evs {
			if err := p.Apply(&evs[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.CloseViews(); err != nil {
			b.Fatal(err)
		}
		applied += len(evs)
	}
	b.ReportMetric(float64(applied)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(applied), "cpu-ns/event")
}
