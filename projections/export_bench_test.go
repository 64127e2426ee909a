package projections_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/eventstore/pebble"
	"talentledger/projections"
)

// paymentBatch is how many events one append writes to one stream.
const paymentBatch = 1000

// writePayments appends n PaymentReleased events, each with one posting,
// with payloads and metadata the size of real ones, paymentBatch to a
// stream. Appends run on two goroutines so that the embedded store's group
// commit shares fsyncs between them.
func writePayments(tb testing.TB, store eventstore.Store, n int) {
	tb.Helper()
	ctx := context.Background()
	batches := make(chan int)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range batches {
				evs := make([]eventstore.EventData, 0, paymentBatch)
				for i := first; i < min(first+paymentBatch, n); i++ {
					evs = append(evs, paymentEvent(i))
				}
				if _, err := store.Append(ctx, fmt.Sprintf("grant-g%016x", first), eventstore.NoStream, evs...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for first := 0; first < n; first += paymentBatch {
		select {
		case batches <- first:
		case err := <-errs:
			close(batches)
			wg.Wait()
			tb.Fatal(err)
		}
	}
	close(batches)
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
}

// paymentEvent is the i-th release of a 240,000.00 installment.
func paymentEvent(i int) eventstore.EventData {
	day := time.Date(2024, 1, 1, 9, 0, 0, 0, domain.CityTime).Add(time.Duration(i) * time.Minute)
	date := domain.Today(day)
	grant := fmt.Sprintf("g%016x", i/3)
	talent := fmt.Sprintf("t%016x", i/3)
	data, err := json.Marshal(&domain.PaymentReleased{
		GrantID: grant, PaymentID: fmt.Sprintf("%s-%d-1", grant, i%3+1), Installment: i%3 + 1, TalentID: talent,
		ProgramID: "housing", FiscalYear: 2024, Amount: yuan("240000.00"),
		BankReference: fmt.Sprintf("ICBC-%s-%08d", date, i), ReleasedOn: date,
	})
	if err != nil {
		panic(err)
	}
	hash := func(s string) string {
		h := sha256.Sum256([]byte(s + strconv.Itoa(i)))
		return hex.EncodeToString(h[:])
	}
	return eventstore.EventData{
		ID:   eventstore.DeriveEventID("bench", strconv.Itoa(i)),
		Type: domain.TypePaymentReleased,
		Data: data,
		Metadata: eventstore.Metadata{
			Principal: "treasurer-03", Role: domain.RoleTreasurer,
			CorrelationID: fmt.Sprintf("req-%012d", i), CausationID: fmt.Sprintf("cmd-%012d", i),
			RecordedAt: day.UTC(), EffectiveDate: date,
			Reason: "第" + strconv.Itoa(i%3+1) + "期购房补助发放", DocumentRef: fmt.Sprintf("PHCZ-2024-%06d", i),
			PrevHash: hash("prev"), Hash: hash("hash"),
		},
	}
}

// payments returns an in-memory store holding n payment events.
func payments(tb testing.TB, n int) eventstore.Store {
	tb.Helper()
	store := memstore.New()
	tb.Cleanup(func() { store.Close() })
	writePayments(tb, store, n)
	return store
}

// countingWriter discards what it is given and counts the bytes.
type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// memSampler records the peak of the Go heap in use while it runs.
type memSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
}

func sampleMemory(every time.Duration) *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			m.peak = max(m.peak, ms.HeapInuse)
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) Stop() uint64 {
	close(m.stop)
	<-m.done
	return m.peak
}

// procStatus reads a "VmXXX:  N kB" line of /proc/self/status, in bytes;
// 0 where there is none (not Linux).
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux).
func resetPeakRSS() bool { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil }

// benchSizes are the export benchmarks' sizes: 100,000 and 1,000,000
// postings, or those of TALENTLEDGER_EXPORT_BENCH_SIZES (comma-separated).
func benchSizes(b *testing.B) []int {
	v := os.Getenv("TALENTLEDGER_EXPORT_BENCH_SIZES")
	if v == "" {
		return []int{100_000, 1_000_000}
	}
	var sizes []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("TALENTLEDGER_EXPORT_BENCH_SIZES: %q", s)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// BenchmarkJournalExport streams the journal of a Pebble store of N
// payment events (one posting, two lines each) to a writer that discards
// it, counting the bytes, and reports the Go heap in use before the export
// and its peak during it, and the process's peak RSS during it. If the
// export held rows, the peaks would grow with N; they do not.
//
// N defaults to 100,000 and 1,000,000 postings; set
// TALENTLEDGER_EXPORT_BENCH_SIZES (comma-separated) to change them. The
// stores are written once per size, which takes a while for a million:
//
//	go test ./projections -run '^$' -bench JournalExport -benchtime 1x -timeout 30m
func BenchmarkJournalExport(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("postings=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			store, err := pebble.Open(dir, pebble.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			start := time.Now()
			writePayments(b, store, n)
			b.Logf("wrote %d events in %s", n, time.Since(start).Round(time.Millisecond))

			var peakHeap, peakRSS, heapBefore uint64
			var rows int64
			var out countingWriter
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heapBefore = ms.HeapInuse
				canReset := resetPeakRSS()
				sampler := sampleMemory(5 * time.Millisecond)
				b.StartTimer()
				out = 0
				st, err := projections.WriteJournalCSV(context.Background(), &out, store, projections.JournalRange{}, nil)
				b.StopTimer()
				peakHeap = max(peakHeap, sampler.Stop())
				if canReset {
					peakRSS = max(peakRSS, procStatus("VmHWM"))
				}
				if err != nil {
					b.Fatal(err)
				}
				if st.Postings != int64(n) || st.Debits.Cmp(st.Credits) != 0 {
					b.Fatalf("postings %d debits %s credits %s", st.Postings, st.Debits, st.Credits)
				}
				rows = st.Rows
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(out)/(1<<20), "csv-MiB")
			b.ReportMetric(float64(heapBefore)/(1<<20), "heap-before-MiB")
			b.ReportMetric(float64(peakHeap)/(1<<20), "heap-peak-MiB")
			if peakRSS > 0 {
				b.ReportMetric(float64(peakRSS)/(1<<20), "rss-peak-MiB")
			}
		})
	}
}

// BenchmarkJournalWorkbook writes the journal of a Pebble store of N
// payment events as an Excel workbook (projections.JournalReport, the
// route GET /v1/reports/journal.xlsx) to a writer that discards it, and
// reports the Go heap before and its peak during the writing, and the
// process's peak RSS. The sheet is written by excelize's stream writer,
// which spills to a temporary file; if rows were held, the peaks would
// grow with N. Sizes as BenchmarkJournalExport's
// (TALENTLEDGER_EXPORT_BENCH_SIZES):
//
//	go test ./projections -run '^$' -bench JournalWorkbook -benchtime 1x -timeout 60m
func BenchmarkJournalWorkbook(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("postings=%d", n), func(b *testing.B) {
			store, err := pebble.Open(b.TempDir(), pebble.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			start := time.Now()
			writePayments(b, store, n)
			b.Logf("wrote %d events in %s", n, time.Since(start).Round(time.Millisecond))
			var peakHeap, peakRSS, heapBefore uint64
			var rows int64
			var out countingWriter
			head := projections.ReportHead{AsOf: "2024-12-31", TreeSize: uint64(n), RootHash: "bench"}
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heapBefore = ms.HeapInuse
				canReset := resetPeakRSS()
				sampler := sampleMemory(5 * time.Millisecond)
				b.StartTimer()
				out = 0
				st, err := projections.JournalReportOf(store, projections.JournalRange{}).WriteXLSX(context.Background(), &out, projections.LangZH, head)
				b.StopTimer()
				peakHeap = max(peakHeap, sampler.Stop())
				if canReset {
					peakRSS = max(peakRSS, procStatus("VmHWM"))
				}
				if err != nil {
					b.Fatal(err)
				}
				if st.Rows != 2*int64(n) {
					b.Fatalf("rows %d, want %d", st.Rows, 2*n)
				}
				rows = st.Rows
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(out)/(1<<20), "xlsx-MiB")
			b.ReportMetric(float64(heapBefore)/(1<<20), "heap-before-MiB")
			b.ReportMetric(float64(peakHeap)/(1<<20), "heap-peak-MiB")
			if peakRSS > 0 {
				b.ReportMetric(float64(peakRSS)/(1<<20), "rss-peak-MiB")
			}
		})
	}
}
