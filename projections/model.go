package projections

import (
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
)

// Model is one read model: a type of its own, in a file of its own, that
// folds the events it needs and answers queries about them.
//
// The Feed hands every model the same batches, in log order, one batch at
// a time and never two at once. A model ignores the events it does not
// need (its Apply switches on the payload's type), guards its own state
// (its own lock, or a copy-on-write snapshot) so that its queries are safe
// while it folds, and never reads another model: what it needs from an
// event it keeps itself. The models of a feed take a batch side by side,
// each on a goroutine of its own (see Feed.applyModels), so a model never
// changes the batch, its events or their payloads.
//
// A batch is the unit of progress: once Apply returns, the model reflects
// every event up to and including the batch's last, whose position is
// Batch.Last. A model that persists its state writes it together with
// that position, so that it can resume from there.
type Model interface {
	// Name names the model: stable, lower case, unique on its feed.
	Name() string
	// Apply folds a batch of events, each decoded. It never fails: an
	// event that cannot be decoded stops the feed before it reaches any
	// model.
	Apply(b Batch)
}

// Batch is a run of events in log order, each after the one before.
type Batch struct {
	Changes []Change
	// Last is the position of the last change: the position the models
	// stand at once the batch is applied.
	Last eventstore.Position
}

// Change is one event of a batch, with its payload decoded.
type Change struct {
	Event   *eventstore.Event
	Payload domain.Event
	// Leaf is the event's leaf hash in the audit tree, worked out beside
	// the decoding so that the folding does not wait for it.
	Leaf []byte
}

// eventTime is when ev was recorded, or now for an event without the
// time (tests build such events).
func eventTime(ev *eventstore.Event) time.Time {
	if ev.Metadata.RecordedAt.IsZero() {
		return time.Now()
	}
	return ev.Metadata.RecordedAt
}
