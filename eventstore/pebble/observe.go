package pebble

import "time"

// Observer receives the store's measurements, for metrics. Either func may
// be nil. They are called on the store's own goroutines, the writer's
// included, so they must be quick, must not block and must not call the
// store.
type Observer struct {
	// Append is called as each Append returns, with the time from the call
	// to its answer (queueing, group commit and WAL sync) and its error.
	Append func(elapsed time.Duration, err error)
	// Batch is called once for each group-commit batch that wrote events,
	// once its WAL sync is done: how many appends it answered, how many
	// events it wrote, and how long it took from going to Pebble to being
	// durable.
	Batch func(appends, events int, sync time.Duration)
}

// WithObserver sets the observer of appends and group-commit batches.
func WithObserver(o Observer) Option { return func(c *config) { c.observer = o } }

// events counts the events c's appends wrote.
func (c *commit) events() int {
	n := 0
	for _, r := range c.reqs {
		if r.wrote {
			n += len(r.events)
		}
	}
	return n
}
