package pebble

import (
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"
	dto "github.com/prometheus/client_model/go"
)

// WithFS is withFS, for the external tests.
var WithFS = withFS

// Syncs returns how many batches s has synced.
func Syncs(s *Store) uint64 { return s.syncs.Load() }

// Batched returns how many appends the batch being built holds.
func Batched(s *Store) int { return int(s.batched.Load()) }

// PebbleMetrics returns Pebble's metrics report.
func PebbleMetrics(s *Store) string { return s.db.Metrics().String() }

// Settle flushes s's memtables and waits until Pebble has run no flush or
// compaction for a while, so that a benchmark measures its own work only.
func Settle(s *Store) error {
	if err := s.db.Flush(); err != nil {
		return err
	}
	for quiet := 0; quiet < 50; {
		m := s.db.Metrics()
		if m.Compact.NumInProgress == 0 && m.Flush.NumInProgress == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// WALFsyncs returns how many times Pebble has synced db's WAL and how long a
// sync took on average.
func WALFsyncs(db *cpebble.DB) (uint64, time.Duration) {
	var m dto.Metric
	if err := db.Metrics().LogWriter.FsyncLatency.Write(&m); err != nil || m.Histogram == nil {
		return 0, 0
	}
	n := m.Histogram.GetSampleCount()
	if n == 0 {
		return 0, 0
	}
	return n, time.Duration(m.Histogram.GetSampleSum() / float64(n))
}

// StoreWALFsyncs is WALFsyncs for a store.
func StoreWALFsyncs(s *Store) (uint64, time.Duration) { return WALFsyncs(s.db) }
