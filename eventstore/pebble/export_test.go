package pebble

import "time"

// WithFS is withFS, for the external tests.
var WithFS = withFS

// Syncs returns how many batches s has synced.
func Syncs(s *Store) uint64 { return s.syncs.Load() }

// Batched returns how many appends the batch being built holds.
func Batched(s *Store) int { return int(s.batched.Load()) }

// PebbleMetrics returns Pebble's metrics report.
func PebbleMetrics(s *Store) string { return s.db.Metrics().String() }

// Settle flushes s's memtables and waits until Pebble has no compaction
// running or owed, so that a benchmark measures its own work only.
func Settle(s *Store) error {
	if err := s.db.Flush(); err != nil {
		return err
	}
	for {
		m := s.db.Metrics()
		if m.Compact.NumInProgress == 0 && m.Compact.EstimatedDebt == 0 && m.Flush.NumInProgress == 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}
