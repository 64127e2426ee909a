package pebble

// WithFS is withFS, for the external tests.
var WithFS = withFS

// Syncs returns how many batches s has synced.
func Syncs(s *Store) uint64 { return s.syncs.Load() }

// Batched returns how many appends the batch being built holds.
func Batched(s *Store) int { return int(s.batched.Load()) }

// PebbleMetrics returns Pebble's metrics report.
func PebbleMetrics(s *Store) string { return s.db.Metrics().String() }
