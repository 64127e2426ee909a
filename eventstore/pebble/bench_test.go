package pebble_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// benchPayloads are 400-byte JSON payloads, the size of a typical money
// event, each different and partly random, so that compression in the WAL
// and sstables sees about what real events give it (identical payloads
// would compress away).
var benchPayloads = func() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, 1024)
	for i := range out {
		var id [16]byte
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		head := fmt.Sprintf(`{"grant_id":"grant-%x","talent_id":"talent-%08d","program":"housing_purchase","amount":"%d.%02d","installment":%d,"note":"`,
			id, rng.IntN(1e8), rng.IntN(1e6), rng.IntN(100), rng.IntN(12))
		const tail = `"}`
		note := make([]byte, 400-len(head)-len(tail))
		const letters = "abcdefghijklmnopqrstuvwxyz      ,."
		for j := range note {
			note[j] = letters[rng.IntN(len(letters))]
		}
		out[i] = []byte(head + string(note) + tail)
	}
	return out
}()

var benchSeq atomic.Uint64

func benchPayload() []byte { return benchPayloads[benchSeq.Add(1)%uint64(len(benchPayloads))] }

var benchRecordedAt = time.Date(2024, 3, 15, 9, 30, 0, 0, time.UTC)

func benchEvent() eventstore.EventData {
	return eventstore.EventData{
		ID:   eventstore.NewEventID(),
		Type: "GrantApproved",
		Data: benchPayload(),
		Metadata: eventstore.Metadata{
			Principal:     "approver-1",
			Role:          "approver",
			CorrelationID: "corr-0001",
			RecordedAt:    benchRecordedAt,
		},
	}
}

func benchEvents(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = benchEvent()
	}
	return evs
}

// runWriters runs writers goroutines that together perform total calls of
// op, each goroutine passing its own index and a per-goroutine call number.
func runWriters(b *testing.B, writers, total int, op func(w, i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for w := range writers {
		wg.Go(func() {
			for i := 0; next.Add(1) <= int64(total); i++ {
				if err := op(w, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if errp := failed.Load(); errp != nil {
		b.Fatal(*errp)
	}
}

func reportRate(b *testing.B, events int, elapsed time.Duration) {
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per event since start: what the
// events cost on this machine whatever else is running on it (background
// flushes and compactions included, as far as they ran in the interval).
func reportCPU(b *testing.B, events int, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(events), "cpu-µs/event")
}

// reportPerSync reports how many events shared each WAL sync: how well
// group commit worked, whatever the disk's speed.
func reportPerSync(b *testing.B, s *pebble.Store, events int, syncsBefore uint64) {
	if n := pebble.Syncs(s) - syncsBefore; n > 0 {
		b.ReportMetric(float64(events)/float64(n), "events/sync")
	}
}

// reportFsyncs reports Pebble's own count of WAL fsyncs since before (as
// events per fsync) and their mean latency, comparable between the store
// and raw Pebble.
func reportFsyncs(b *testing.B, db *cpebble.DB, events int, before uint64) {
	n, mean := pebble.WALFsyncs(db)
	if n > before {
		b.ReportMetric(float64(events)/float64(n-before), "events/fsync")
		b.ReportMetric(float64(mean.Microseconds()), "fsync-µs")
	}
}

// BenchmarkAppend measures durable single-event appends, each writer on a
// stream of its own with exact expected versions, as command handlers
// append. The data is checked as JSON, as bytes from outside are.
func BenchmarkAppend(b *testing.B) { benchAppend(b, false, 1, 16, 64) }

// BenchmarkAppendEncoded is BenchmarkAppend with data a JSON encoder made
// (EventData.ValidJSON), as the domain's events are: not scanned again.
func BenchmarkAppendEncoded(b *testing.B) { benchAppend(b, true, 64) }

func benchAppend(b *testing.B, encoded bool, writerCounts ...int) {
	for _, writers := range writerCounts {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := MustOpen(b, "")
			ctx := context.Background()
			versions := make([]eventstore.Version, writers)
			for i := range versions {
				versions[i] = eventstore.NoStream
			}
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			syncs := pebble.Syncs(s)
			runWriters(b, writers, b.N, func(w, _ int) error {
				e := benchEvent()
				e.ValidJSON = encoded
				res, err := s.Append(ctx, "bench-"+strconv.Itoa(w), versions[w], e)
				versions[w] = res.Version
				return err
			})
			reportRate(b, b.N, time.Since(start))
			reportCPU(b, b.N, cpu)
			reportPerSync(b, s, b.N, syncs)
			_, mean := pebble.StoreWALFsyncs(s)
			b.ReportMetric(float64(mean.Microseconds()), "fsync-µs")

		})
	}
}

// BenchmarkRawPebble is the ceiling BenchmarkAppend is held against: plain
// Pebble with default options, one synced batch holding one 400-byte value
// per event, at the same concurrency.
func BenchmarkRawPebble(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, err := cpebble.Open(b.TempDir(), &cpebble.Options{Logger: quietLogger{}})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			fsyncs, _ := pebble.WALFsyncs(db)
			runWriters(b, writers, b.N, func(w, i int) error {
				var key [16]byte
				binary.BigEndian.PutUint64(key[:], uint64(w))
				binary.BigEndian.PutUint64(key[8:], uint64(i))
				batch := db.NewBatch()
				defer batch.Close()
				batch.Set(key[:], benchPayload(), nil)
				return db.Apply(batch, cpebble.Sync)
			})
			reportRate(b, b.N, time.Since(start))
			reportCPU(b, b.N, cpu)
			reportFsyncs(b, db, b.N, fsyncs)
		})
	}
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (quietLogger) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// BenchmarkAppendBatch measures appends of 100 events per call. b.N counts
// events.
func BenchmarkAppendBatch(b *testing.B) { benchAppendBatch(b, false, 1, 4, 16) }

// BenchmarkAppendBatchEncoded is BenchmarkAppendBatch with data a JSON
// encoder made (EventData.ValidJSON).
func BenchmarkAppendBatchEncoded(b *testing.B) { benchAppendBatch(b, true, 16) }

func benchAppendBatch(b *testing.B, encoded bool, writerCounts ...int) {
	const per = 100
	for _, writers := range writerCounts {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := MustOpen(b, "")
			ctx := context.Background()
			versions := make([]eventstore.Version, writers)
			batches := make([][]eventstore.EventData, writers)
			for i := range versions {
				versions[i] = eventstore.NoStream
				batches[i] = benchEvents(per)
			}
			calls := (b.N + per - 1) / per
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			syncs := pebble.Syncs(s)
			runWriters(b, writers, calls, func(w, _ int) error {
				evs := batches[w]
				for i := range evs {
					evs[i].ID = eventstore.NewEventID()
					evs[i].Data = benchPayload()
					evs[i].ValidJSON = encoded
				}
				res, err := s.Append(ctx, "batch-"+strconv.Itoa(w), versions[w], evs...)
				versions[w] = res.Version
				return err
			})
			reportRate(b, calls*per, time.Since(start))
			reportCPU(b, calls*per, cpu)
			reportPerSync(b, s, calls*per, syncs)
		})
	}
}

// BenchmarkReadAll measures reading the global log from disk with every
// envelope decoded. The store is reopened after loading, so reads start
// from sstables with a cold block cache, and the timer starts once the
// compactions the load left owing are done. b.N counts events.
func BenchmarkReadAll(b *testing.B) {
	dir := b.TempDir()
	s, err := pebble.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const per, streams = 1000, 50
	evs := benchEvents(per)
	versions := make([]eventstore.Version, streams)
	for i := range versions {
		versions[i] = eventstore.NoStream
	}
	for i := 0; i < b.N; i += per {
		n := min(per, b.N-i)
		for j := range evs[:n] {
			evs[j].ID = eventstore.NewEventID()
			evs[j].Data = benchPayload()
		}
		k := i / per % streams
		res, err := s.Append(ctx, "read-"+strconv.Itoa(k), versions[k], evs[:n]...)
		if err != nil {
			b.Fatal(err)
		}
		versions[k] = res.Version
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	s = MustOpen(b, dir)
	if err := pebble.Settle(s); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	it := s.ReadAll(ctx, eventstore.Start)
	n, bytes := 0, 0
	for it.Next() {
		e := it.Event()
		n++
		bytes += len(e.Data)
	}
	if err := it.Err(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n != b.N || bytes != b.N*400 {
		b.Fatalf("read %d events (%d bytes of data), want %d", n, bytes, b.N)
	}
	reportRate(b, n, elapsed)
	reportCPU(b, n, cpu)
}

// BenchmarkSubscriptionLag appends at a steady 10,000 events a second
// while a live subscription follows, and reports how long after each
// append was acknowledged its event reached the subscriber. b.N counts
// events; run it with -benchtime=20000x or more for stable percentiles.
func BenchmarkSubscriptionLag(b *testing.B) {
	const rate = 10_000
	const workers = 32
	s := MustOpen(b, "")
	ctx := context.Background()
	callAt := make([]int64, b.N+1)
	ackAt := make([]int64, b.N+1)
	gotAt := make([]int64, b.N+1)
	epoch := time.Now()

	sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	defer sub.Close()
	subDone := make(chan error, 1)
	go func() {
		for n := 0; n < b.N; n++ {
			if !sub.Next() {
				subDone <- fmt.Errorf("subscription ended after %d events: %v", n, sub.Err())
				return
			}
			gotAt[sub.Event().Position.Commit] = int64(time.Since(epoch))
		}
		subDone <- nil
	}()

	jobs := make(chan struct{}, b.N)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for w := range workers {
		wg.Go(func() {
			stream := "lag-" + strconv.Itoa(w)
			v := eventstore.NoStream
			for range jobs {
				called := int64(time.Since(epoch))
				res, err := s.Append(ctx, stream, v, benchEvent())
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				ackAt[res.Position.Commit] = int64(time.Since(epoch))
				callAt[res.Position.Commit] = called
				v = res.Version
			}
		})
	}
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	for issued := 0; issued < b.N; {
		<-tick.C
		due := min(b.N, int(time.Since(start).Seconds()*rate)+1)
		for ; issued < due; issued++ {
			jobs <- struct{}{}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	if errp := failed.Load(); errp != nil {
		b.Fatal(*errp)
	}
	if err := <-subDone; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	lags := make([]time.Duration, 0, b.N)
	e2e := make([]time.Duration, 0, b.N)
	for p := 1; p <= b.N; p++ {
		// Delivery can beat the acknowledgement: subscribers are fed as
		// soon as the batch is durable, just before appenders are
		// answered. That counts as no lag.
		lags = append(lags, time.Duration(max(0, gotAt[p]-ackAt[p])))
		e2e = append(e2e, time.Duration(gotAt[p]-callAt[p]))
	}
	pct := func(d []time.Duration, q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
	}
	slices.Sort(lags)
	slices.Sort(e2e)
	b.ReportMetric(pct(lags, 0.50), "p50-ms")
	b.ReportMetric(pct(lags, 0.99), "p99-ms")
	b.ReportMetric(pct(lags, 1), "max-ms")
	// From calling Append to delivery: the sync included.
	b.ReportMetric(pct(e2e, 0.50), "append-to-delivery-p50-ms")
	b.ReportMetric(pct(e2e, 0.99), "append-to-delivery-p99-ms")
	reportRate(b, b.N, elapsed)
}

// BenchmarkAppendMemory appends b.N events, 100 per call from 8 writers
// spread over 20,000 streams, and reports the process's peak resident
// memory. Run it alone, since the peak covers the whole process:
//
//	go test -run '^$' -bench AppendMemory -benchtime 1000000x ./eventstore/pebble
func BenchmarkAppendMemory(b *testing.B) {
	const per, writers, streams = 100, 8, 20_000
	s := MustOpen(b, "")
	ctx := context.Background()
	calls := (b.N + per - 1) / per
	versions := make([]map[int]eventstore.Version, writers)
	batches := make([][]eventstore.EventData, writers)
	for w := range writers {
		versions[w] = map[int]eventstore.Version{}
		batches[w] = benchEvents(per)
	}
	var half atomic.Int64
	var done atomic.Int64
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	runWriters(b, writers, calls, func(w, i int) error {
		k := (i*writers + w) % streams
		v, ok := versions[w][k]
		if !ok {
			v = eventstore.NoStream
		}
		evs := batches[w]
		for j := range evs {
			evs[j].ID = eventstore.NewEventID()
			evs[j].Data = benchPayload()
		}
		// Streams k are written by writer k%writers only, so the writer's
		// own map knows their versions.
		res, err := s.Append(ctx, "mem-"+strconv.Itoa(k), v, evs...)
		if err != nil {
			return err
		}
		versions[w][k] = res.Version
		if done.Add(1) == int64(calls/2) {
			half.Store(procStatus(b, "VmRSS"))
		}
		return nil
	})
	elapsed := time.Since(start)
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(procStatus(b, "VmHWM"))/1024, "peak-RSS-MB")
	b.ReportMetric(float64(half.Load())/1024, "RSS-at-half-MB")
	b.ReportMetric(float64(procStatus(b, "VmRSS"))/1024, "RSS-at-end-MB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MB")
	reportRate(b, calls*per, elapsed)
	reportCPU(b, calls*per, cpu)
	if os.Getenv("PEBBLE_METRICS") != "" {
		fmt.Fprintln(os.Stderr, pebble.PebbleMetrics(s))
	}
}

// procStatus returns a kB figure from /proc/self/status.
func procStatus(b *testing.B, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
			return kb
		}
	}
	b.Fatalf("%s not in /proc/self/status", field)
	return 0
}
