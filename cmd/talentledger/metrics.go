package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	"talentledger/projections"
)

// metrics are the ledger's Prometheus metrics. Each app has its own
// registry, so tests and the bench can run several apps in one process.
//
//	talentledger_http_requests_total{route,status}      requests answered
//	talentledger_http_request_duration_seconds{route}   their latency
//	talentledger_idempotent_replays_total{route}        commands answered from an Idempotency-Key's record
//	talentledger_store_append_duration_seconds{result}  event-store appends, fsync included
//	talentledger_store_batch_appends                    appends per group-commit batch (embedded store)
//	talentledger_store_batch_events                     events per group-commit batch (embedded store)
//	talentledger_store_sync_duration_seconds            WAL sync time per batch (embedded store)
//	talentledger_projection_lag_events                  events in the log not yet in the read models
//	talentledger_projection_lag_seconds                 how old the read models' view is while behind
//	talentledger_projection_events_applied_total        events applied since start
//	talentledger_projection_ready                       1 once the read models have caught up
//	talentledger_projection_resubscribes_total          read-model subscriptions restarted after a failure
//
// plus the Go runtime's and the process's standard metrics.
type metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	replays      *prometheus.CounterVec
	appendTime   *prometheus.HistogramVec
	batchAppends prometheus.Histogram
	batchEvents  prometheus.Histogram
	syncTime     prometheus.Histogram
	resubscribes prometheus.Counter
}

// latencyBuckets span 100 µs to 10 s.
var latencyBuckets = prometheus.ExponentialBucketsRange(100e-6, 10, 21)

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "talentledger_http_requests_total",
		Help: "HTTP requests answered, by route template and status code.",
	}, []string{"route", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "talentledger_http_request_duration_seconds",
		Help:    "HTTP request latency by route template, from the request's headers read to its answer written.",
		Buckets: latencyBuckets,
	}, []string{"route"})
	m.replays = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "talentledger_idempotent_replays_total",
		Help: "Commands answered with the recorded answer of an earlier request with the same Idempotency-Key.",
	}, []string{"route"})
	m.appendTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "talentledger_store_append_duration_seconds",
		Help:    "Event-store append latency, until the events are durable (group commit and fsync included).",
		Buckets: latencyBuckets,
	}, []string{"result"})
	m.batchAppends = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "talentledger_store_batch_appends",
		Help:    "Appends made durable by one group-commit batch (one WAL sync).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11),
	})
	m.batchEvents = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "talentledger_store_batch_events",
		Help:    "Events written by one group-commit batch.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14),
	})
	m.syncTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "talentledger_store_sync_duration_seconds",
		Help:    "Time from a group-commit batch going to the storage engine to its WAL sync completing.",
		Buckets: latencyBuckets,
	})
	m.resubscribes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "talentledger_projection_resubscribes_total",
		Help: "Times the read models' subscription to the log failed and was restarted.",
	})
	m.reg.MustRegister(m.requests, m.latency, m.replays, m.appendTime, m.batchAppends, m.batchEvents, m.syncTime, m.resubscribes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Request implements ledgerhttp.Observer.
func (m *metrics) Request(route string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(elapsed.Seconds())
}

// IdempotentReplay implements ledgerhttp.Observer.
func (m *metrics) IdempotentReplay(route string) { m.replays.WithLabelValues(route).Inc() }

// storeObserver measures the embedded store's appends and batches.
func (m *metrics) storeObserver() pebble.Observer {
	ok, failed := m.appendTime.WithLabelValues("ok"), m.appendTime.WithLabelValues("error")
	return pebble.Observer{
		Append: func(elapsed time.Duration, err error) {
			if err != nil {
				failed.Observe(elapsed.Seconds())
				return
			}
			ok.Observe(elapsed.Seconds())
		},
		Batch: func(appends, events int, sync time.Duration) {
			m.batchAppends.Observe(float64(appends))
			m.batchEvents.Observe(float64(events))
			m.syncTime.Observe(sync.Seconds())
		},
	}
}

// watchProjections registers the read models' progress, read at each
// scrape.
func (m *metrics) watchProjections(store eventstore.Store, proj *projections.Projector) {
	m.reg.MustRegister(&projectionCollector{store: store, proj: proj})
}

var (
	descLagEvents = prometheus.NewDesc("talentledger_projection_lag_events",
		"Events in the log the read models have not applied yet. On the embedded store positions count events; "+
			"on EventStoreDB they are transaction-log offsets, so this is a distance in bytes there.", nil, nil)
	descLagSeconds = prometheus.NewDesc("talentledger_projection_lag_seconds",
		"While the read models are behind the log, the time since the last event they applied was recorded; 0 when caught up.", nil, nil)
	descApplied = prometheus.NewDesc("talentledger_projection_events_applied_total",
		"Events applied to the read models since the process started.", nil, nil)
	descReady = prometheus.NewDesc("talentledger_projection_ready",
		"1 once the read models have caught up with the log as it stood at start, and no error stopped them.", nil, nil)
)

// projectionCollector reads the read models' progress and the log's last
// position when scraped.
type projectionCollector struct {
	store eventstore.Store
	proj  *projections.Projector
}

func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLagEvents
	ch <- descLagSeconds
	ch <- descApplied
	ch <- descReady
}

func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.proj.Progress()
	ready := 0.0
	if p.Ready {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.CounterValue, float64(p.Applied))
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	last, err := c.store.LastPosition(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descLagEvents, err)
		return
	}
	behind, seconds := lag(p, last, time.Now())
	ch <- prometheus.MustNewConstMetric(descLagEvents, prometheus.GaugeValue, float64(behind))
	ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, seconds)
}

// lag returns how far the read models at p are behind a log ending at
// last: in positions, and in seconds since the last applied event was
// recorded (0 when caught up).
func lag(p projections.Progress, last eventstore.Position, now time.Time) (behind uint64, seconds float64) {
	if !p.Position.Before(last) {
		return 0, 0
	}
	behind = last.Commit - p.Position.Commit
	if !p.LastRecorded.IsZero() {
		seconds = max(now.Sub(p.LastRecorded).Seconds(), 0)
	}
	return behind, seconds
}

// serveMetrics serves /metrics on its own listener until ctx is done. It
// is separate from the API so that it can be bound to an address only the
// monitoring system reaches: it needs no token.
func (m *metrics) serveMetrics(addr string, log *slog.Logger) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), MaxRequestsInFlight: 4, Timeout: 10 * time.Second}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 15 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return ln.Addr(), stop, nil
}
