package pebble

// WithFS is withFS, for the external tests.
var WithFS = withFS
