package pebble

// WithFS is withFS, for the external tests.
var WithFS = withFS

// Syncs returns how many batches s has synced.
func Syncs(s *Store) uint64 { return s.syncs.Load() }
