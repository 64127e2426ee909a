package loadgen

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Window is what one interval of the run measured.
type Window struct {
	At         float64 `json:"at_s"`
	Commands   float64 `json:"commands_per_s"`
	Queries    float64 `json:"queries_per_s"`
	Errors     uint64  `json:"errors"`
	CommandP50 float64 `json:"command_p50_ms"`
	CommandP99 float64 `json:"command_p99_ms"`
	QueryP50   float64 `json:"query_p50_ms"`
	QueryP99   float64 `json:"query_p99_ms"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_live_mib"`
	Events     uint64  `json:"events"`
	LagEvents  uint64  `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
}

// OpResult is one operation kind's figures.
type OpResult struct {
	Count     uint64  `json:"count"`
	Errors    uint64  `json:"errors"`
	PerSecond float64 `json:"per_second"`
	P50       float64 `json:"p50_ms"`
	P95       float64 `json:"p95_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p99_9_ms"`
	Max       float64 `json:"max_ms"`
}

// NewOpResult summarises c, the latencies of errs failures and the
// successes over secs seconds.
func NewOpResult(c Counts, errs uint64, secs float64) OpResult {
	n := c.Total()
	return OpResult{Count: n, Errors: errs, PerSecond: float64(n) / secs, P50: c.Quantile(0.5), P95: c.Quantile(0.95),
		P99: c.Quantile(0.99), P999: c.Quantile(0.999), Max: c.Max()}
}

// Results is what bench prints and writes as JSON.
type Results struct {
	Config        map[string]any      `json:"config,omitempty"`
	Seconds       float64             `json:"seconds"`
	Commands      OpResult            `json:"commands"`
	Queries       OpResult            `json:"queries"`
	Ops           map[string]OpResult `json:"operations"`
	EventsWritten uint64              `json:"events_written"`
	Server        ServerResult        `json:"server"`
	Memory        struct {
		RSSStartMiB    float64 `json:"rss_start_mib"`
		RSSEndMiB      float64 `json:"rss_end_mib"`
		HeapLiveEndMiB float64 `json:"heap_live_end_mib"`
	} `json:"memory"`
	Windows []Window     `json:"windows,omitempty"`
	Soak    *SoakResults `json:"soak,omitempty"`
	// Machine is what else the machine was doing, at the start and the
	// end: the bench shares it with whatever runs there.
	Machine [2]MachineLoad `json:"machine"`
}

func (l *loadRun) results(elapsed time.Duration, windows []Window) *Results {
	secs := elapsed.Seconds()
	res := &Results{Seconds: secs, Ops: map[string]OpResult{}, Windows: windows}
	for _, k := range append(append([]string{}, commandKinds...), queryKinds...) {
		st := l.stats[k]
		res.Ops[k] = NewOpResult(st.h.Snapshot(), st.errors.Load(), secs)
	}
	c, ce := l.class(commandKinds)
	q, qe := l.class(queryKinds)
	res.Commands = NewOpResult(c, ce, secs)
	res.Queries = NewOpResult(q, qe, secs)
	return res
}

func (r *Results) print(w io.Writer) {
	fmt.Fprintf(w, "\n%-16s %9s %7s %9s %8s %8s %8s %8s %8s\n", "operation", "count", "errors", "per s", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms")
	line := func(name string, o OpResult) {
		fmt.Fprintf(w, "%-16s %9d %7d %9.0f %8.2f %8.2f %8.2f %8.2f %8.1f\n", name, o.Count, o.Errors, o.PerSecond, o.P50, o.P95, o.P99, o.P999, o.Max)
	}
	for _, k := range commandKinds {
		line(k, r.Ops[k])
	}
	for _, k := range queryKinds {
		line("GET "+k, r.Ops[k])
	}
	line("all commands", r.Commands)
	line("all queries", r.Queries)
	s := r.Server
	fmt.Fprintf(w, "\nevents written %d (%.0f/s)\n", r.EventsWritten, float64(r.EventsWritten)/r.Seconds)
	fmt.Fprintf(w, "server: appends %d, p50 %.2f ms, p99 %.2f ms; group commit: %d batches, %.1f appends and %.1f events a batch, sync mean %.2f ms\n",
		s.Appends, s.AppendP50, s.AppendP99, s.Batches, s.AppendsPerBatch, s.EventsPerBatch, s.SyncMean)
	fmt.Fprintf(w, "server: projection lag max %d events, %.3f s; idempotent replays %.0f; resubscribes %.0f\n",
		s.MaxLagEvents, s.MaxLagSeconds, s.IdempotentReplays, s.Resubscribes)
	fmt.Fprintf(w, "memory: RSS %.0f MiB at start, %.0f MiB at end; live heap %.0f MiB\n", r.Memory.RSSStartMiB, r.Memory.RSSEndMiB, r.Memory.HeapLiveEndMiB)
	fmt.Fprintf(w, "machine: load average %.2f -> %.2f; CPU pressure %.1f%% -> %.1f%%, I/O pressure %.1f%% -> %.1f%% (avg60, /proc/pressure)\n",
		r.Machine[0].LoadAvg1, r.Machine[1].LoadAvg1, r.Machine[0].CPUPressure, r.Machine[1].CPUPressure, r.Machine[0].IOPressure, r.Machine[1].IOPressure)
	if r.Soak != nil {
		r.Soak.print(w)
	}
}

// ServerResult holds the server-side figures, read from its metrics.
type ServerResult struct {
	Appends           uint64  `json:"appends"`
	AppendP50         float64 `json:"append_p50_ms"`
	AppendP99         float64 `json:"append_p99_ms"`
	Batches           uint64  `json:"batches"`
	AppendsPerBatch   float64 `json:"appends_per_batch"`
	EventsPerBatch    float64 `json:"events_per_batch"`
	SyncMean          float64 `json:"sync_mean_ms"`
	SyncP99           float64 `json:"sync_p99_ms"`
	IdempotentReplays float64 `json:"idempotent_replays"`
	Resubscribes      float64 `json:"resubscribes"`
	MaxLagEvents      uint64  `json:"max_lag_events"`
	MaxLagSeconds     float64 `json:"max_lag_seconds"`
}

// ServerFigures reads the server's figures from its metrics registry, the
// one /metrics serves.
func ServerFigures(g prometheus.Gatherer) ServerResult {
	var r ServerResult
	if g == nil {
		return r
	}
	fams, err := g.Gather()
	if err != nil {
		return r
	}
	by := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		by[f.GetName()] = f
	}
	Hist := func(name string, labels map[string]string) *dto.Histogram {
		f := by[name]
		if f == nil {
			return &dto.Histogram{}
		}
	next:
		for _, m := range f.Metric {
			for k, v := range labels {
				if LabelValue(m, k) != v {
					continue next
				}
			}
			return m.GetHistogram()
		}
		return &dto.Histogram{}
	}
	sum := func(name string) float64 {
		total := 0.0
		if f := by[name]; f != nil {
			for _, m := range f.Metric {
				total += m.GetCounter().GetValue()
			}
		}
		return total
	}
	a := Hist("talentledger_store_append_duration_seconds", map[string]string{"result": "ok"})
	r.Appends = a.GetSampleCount()
	r.AppendP50, r.AppendP99 = PromQuantile(a, 0.5)*1000, PromQuantile(a, 0.99)*1000
	ba, be, st := Hist("talentledger_store_batch_appends", nil), Hist("talentledger_store_batch_events", nil), Hist("talentledger_store_sync_duration_seconds", nil)
	r.Batches = ba.GetSampleCount()
	if r.Batches > 0 {
		r.AppendsPerBatch = ba.GetSampleSum() / float64(r.Batches)
		r.EventsPerBatch = be.GetSampleSum() / float64(r.Batches)
		r.SyncMean = st.GetSampleSum() / float64(r.Batches) * 1000
		r.SyncP99 = PromQuantile(st, 0.99) * 1000
	}
	r.IdempotentReplays = sum("talentledger_idempotent_replays_total")
	r.Resubscribes = sum("talentledger_projection_resubscribes_total")
	return r
}

// LabelValue returns the value of a metric's label, or "".
func LabelValue(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func maxLag(ws []Window) (uint64, float64) {
	var e uint64
	var s float64
	for _, w := range ws {
		e, s = max(e, w.LagEvents), max(s, w.LagSeconds)
	}
	return e, s
}

// SoakResults compares the first and the second half of a soak's windows.
type SoakResults struct {
	First          Window     `json:"first"`
	Last           Window     `json:"last"`
	CommandP99     [2]float64 `json:"command_p99_ms_median_halves"`
	QueryP99       [2]float64 `json:"query_p99_ms_median_halves"`
	LatencyFlat    bool       `json:"latency_flat"`
	MemoryFlat     bool       `json:"memory_flat"`
	HeapPerEventB  float64    `json:"heap_bytes_per_event_first"`
	HeapPerEventBL float64    `json:"heap_bytes_per_event_last"`
	Windows        []Window   `json:"-"`
}

// SoakVerdict calls latency flat when the median of the second half's
// windows' p99s is within 50 % (plus 1 ms) of the first half's, for
// commands and for queries: medians, so that one Window disturbed by
// something else on the machine does not decide. It calls memory flat
// when the live heap per event in the log has not grown by more than 25 %
// from the first Window to the last: the read models are in memory and
// grow with the log by design, so what must stay flat is the memory each
// event costs, not the total.
func SoakVerdict(ws []Window) *SoakResults {
	if len(ws) < 2 {
		return nil
	}
	f, l := ws[0], ws[len(ws)-1]
	s := &SoakResults{First: f, Last: l, Windows: ws}
	half := len(ws) / 2
	median := func(ws []Window, v func(Window) float64) float64 {
		xs := make([]float64, len(ws))
		for i, w := range ws {
			xs[i] = v(w)
		}
		sort.Float64s(xs)
		return (xs[(len(xs)-1)/2] + xs[len(xs)/2]) / 2
	}
	cmd := func(w Window) float64 { return w.CommandP99 }
	qry := func(w Window) float64 { return w.QueryP99 }
	s.CommandP99 = [2]float64{median(ws[:half], cmd), median(ws[half:], cmd)}
	s.QueryP99 = [2]float64{median(ws[:half], qry), median(ws[half:], qry)}
	s.LatencyFlat = s.CommandP99[1] <= s.CommandP99[0]*1.5+1 && s.QueryP99[1] <= s.QueryP99[0]*1.5+1
	if f.Events > 0 && l.Events > 0 {
		s.HeapPerEventB = f.HeapMiB * (1 << 20) / float64(f.Events)
		s.HeapPerEventBL = l.HeapMiB * (1 << 20) / float64(l.Events)
		s.MemoryFlat = s.HeapPerEventBL <= s.HeapPerEventB*1.25
	}
	return s
}

func (s *SoakResults) print(w io.Writer) {
	verdict := func(ok bool) string {
		if ok {
			return "flat"
		}
		return "NOT flat"
	}
	fmt.Fprintf(w, "\nsoak windows:\n%8s %9s %9s %9s %9s %9s %9s %8s %8s %9s\n", "at", "cmds/s", "p50 ms", "p99 ms",
		"queries/s", "p50 ms", "p99 ms", "RSS MiB", "heap MiB", "events")
	for _, x := range s.Windows {
		fmt.Fprintf(w, "%7.0fs %9.0f %9.2f %9.2f %9.0f %9.2f %9.2f %8.0f %8.0f %9d\n", x.At, x.Commands, x.CommandP50, x.CommandP99,
			x.Queries, x.QueryP50, x.QueryP99, x.RSSMiB, x.HeapMiB, x.Events)
	}
	fmt.Fprintf(w, "soak, first half vs second half (medians of the windows' p99):\n")
	fmt.Fprintf(w, "  commands p99 %6.2f -> %6.2f ms; queries p99 %6.2f -> %6.2f ms\n", s.CommandP99[0], s.CommandP99[1], s.QueryP99[0], s.QueryP99[1])
	fmt.Fprintf(w, "  RSS %.0f -> %.0f MiB; live heap %.0f -> %.0f MiB; events in the log %d -> %d; live heap per event %.0f -> %.0f bytes\n",
		s.First.RSSMiB, s.Last.RSSMiB, s.First.HeapMiB, s.Last.HeapMiB, s.First.Events, s.Last.Events, s.HeapPerEventB, s.HeapPerEventBL)
	fmt.Fprintf(w, "  latency: %s; memory per event: %s\n", verdict(s.LatencyFlat), verdict(s.MemoryFlat))
}
