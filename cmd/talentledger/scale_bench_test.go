package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"talentledger/eventstore/pebble"
	"talentledger/projections"
)

// The read side on a history `bench scale` wrote (TALENTLEDGER_SCALE_DATA
// names its directory): the fold from empty views, the start from them,
// and a page of the grant list. Skipped without it.

func scaleData(b *testing.B) string {
	dir := os.Getenv("TALENTLEDGER_SCALE_DATA")
	if dir == "" {
		b.Skip("TALENTLEDGER_SCALE_DATA names no bench scale directory")
	}
	return dir
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func openScale(b *testing.B, data, views string) (*projections.Projector, func()) {
	store, err := pebble.Open(filepath.Join(data, "store"))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := projections.New(store, log)
	if err := p.OpenViews(views); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	last, err := store.LastPosition(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.WaitFor(ctx, last, 30*time.Minute); err != nil {
		b.Fatal(err)
	}
	return p, func() {
		cancel()
		<-done
		if err := p.CloseViews(); err != nil {
			b.Fatal(err)
		}
		store.Close()
	}
}

func BenchmarkScaleFold(b *testing.B) {
	data := scaleData(b)
	for range b.N {
		views := b.TempDir()
		c0, t0 := cpuNow(), time.Now()
		p, closeIt := openScale(b, data, views)
		n := p.Position().Commit
		b.ReportMetric(float64(time.Since(t0).Microseconds())/float64(n), "µs/event")
		b.ReportMetric(float64((cpuNow()-c0).Microseconds())/float64(n), "cpu-µs/event")
		closeIt()
	}
}

func BenchmarkScaleColdStart(b *testing.B) {
	data := scaleData(b)
	views := filepath.Join(b.TempDir(), "views")
	_, closeIt := openScale(b, data, views)
	closeIt()
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var ms runtime.MemStats
		c0, t0 := cpuNow(), time.Now()
		p, closeIt := openScale(b, data, views)
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms-open")
		b.ReportMetric(float64((cpuNow() - c0).Milliseconds()), "cpu-ms-open")
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-heap")
		_ = p
		closeIt()
	}
}

func BenchmarkScaleGrantList(b *testing.B) {
	data := scaleData(b)
	views := filepath.Join(b.TempDir(), "views")
	_, closeIt := openScale(b, data, views)
	closeIt()
	p, closeIt := openScale(b, data, views)
	defer closeIt()
	b.ResetTimer()
	c0 := cpuNow()
	for i := range b.N {
		f := projections.GrantFilter{Offset: (i * 50) % 2000, Limit: 50}
		if _, err := json.Marshal(grantListPage(p, f)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuNow()-c0).Microseconds())/float64(b.N), "cpu-µs/page")
}

func grantListPage(p *projections.Projector, f projections.GrantFilter) any {
	gs, n := p.GrantSummaries(f)
	return map[string]any{"grants": gs, "total": n}
}
