package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
)

// Feed reads the global log and hands it, in batches and in order, to its
// models. It owns everything the models share: the subscription, the
// position reached, readiness, the waits of clients reading their own
// writes (?min_position=), and the stop at an event it cannot read. The
// models own their state and their locks.
//
// Its position moves only once every model has applied a batch, so that a
// client that waited for a position finds it in whichever model it asks.
type Feed struct {
	store  eventstore.Store
	log    *slog.Logger
	codec  domain.Codec
	models []Model

	// fold serialises the folding: Run and Apply may be called from
	// different goroutines, and models take one batch at a time.
	fold sync.Mutex

	mu sync.RWMutex
	// pos is the position of the last event applied.
	pos eventstore.Position
	// applied counts events applied since start.
	applied uint64
	// lastApplied is when the last event was applied, and lastRecorded
	// when that event was recorded: together they give the lag.
	lastApplied  time.Time
	lastRecorded time.Time
	// notify is closed and replaced whenever pos advances.
	notify chan struct{}
	// readyAt is the log's last position when Run started; the models are
	// ready once pos reaches it.
	readyAt eventstore.Position
	ready   bool
	err     error
	// stopped is the error of the event that stopped the folding (see
	// fold); nothing is folded after it.
	stopped error
	// views holds the persistent models' stores (see OpenViews); nil
	// when every model lives in memory only. Set under mu and fold.
	views *views
	// commitEvery, when positive, is how many events are folded between
	// two commits of the views, instead of commitEvents.
	commitEvery int
}

// NewFeed returns a feed of store's log into models, decoding events with
// codec. Call Run to feed them.
func NewFeed(store eventstore.Store, log *slog.Logger, codec domain.Codec, models ...Model) *Feed {
	if log == nil {
		log = slog.Default()
	}
	seen := map[string]bool{}
	for _, m := range models {
		if seen[m.Name()] {
			panic("projections: two models named " + m.Name())
		}
		seen[m.Name()] = true
	}
	return &Feed{store: store, log: log, codec: codec, models: models, notify: make(chan struct{})}
}

// Models returns the feed's models, in the order they are fed.
func (f *Feed) Models() []Model { return append([]Model(nil), f.models...) }

// Run feeds the models from the global log until ctx is done, the
// subscription fails or an event stops the folding (see Stopped). It
// starts after the last event applied, so it can be called again after a
// failure; after a stop it returns the stop's error at once.
func (f *Feed) Run(ctx context.Context) error {
	if err := f.Stopped(); err != nil {
		return err
	}
	last, err := f.store.LastPosition(ctx)
	if err != nil {
		return fmt.Errorf("projections: last position: %w", err)
	}
	f.mu.Lock()
	f.readyAt = last
	if !f.pos.Before(last) {
		f.ready = true
	}
	from := f.pos
	f.mu.Unlock()

	sub := f.store.Subscribe(ctx, from, eventstore.Filter{})
	defer sub.Close()
	err = f.feed(sub, nil, true)
	if err != nil && ctx.Err() == nil {
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
	}
	return err
}

// Apply folds one event into the models. Events must come in global order;
// an event at or before the current position is ignored, so replaying an
// overlap is harmless. An event that cannot be decoded stops the folding
// (see Stopped), and Apply returns the stop's error.
func (f *Feed) Apply(ev *eventstore.Event) error {
	pr := []prepared{{}}
	pr[0].prepare(ev, f.codec)
	f.foldBatch(pr, time.Now())
	return f.Stopped()
}

// markReady makes the feed ready without a subscription: a replay is
// ready once it has read the log to its end.
func (f *Feed) markReady() {
	f.mu.Lock()
	f.ready = true
	f.mu.Unlock()
}

// Stopped returns the error of the event that stopped the folding, or nil.
// It matches domain.ErrUpgradeRequired when a newer build wrote the event:
// the models keep answering as of the event before it, and the feed is not
// ready until a build that reads it takes over.
//
// A model that found its store damaged while answering a query (see
// Damaged) stops the feed too, from that moment, not at its next commit;
// on a feed that waits for an upgrade, and so still answers, the damage
// is the stop reported: nothing more is answered.
func (f *Feed) Stopped() error {
	f.mu.RLock()
	stopped := f.stopped
	f.mu.RUnlock()
	if stopped != nil && !errors.Is(stopped, domain.ErrUpgradeRequired) {
		return stopped
	}
	for _, m := range f.models {
		if d, ok := m.(Damaged); ok {
			if err := d.Damaged(); err != nil {
				return fmt.Errorf("projections: model %s: %w", m.Name(), err)
			}
		}
	}
	return stopped
}

// Position returns the position of the last event applied.
func (f *Feed) Position() eventstore.Position {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.pos
}

// Ready reports whether the models have caught up with the log as it stood
// when Run started, and no error has stopped them.
func (f *Feed) Ready() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.ready && f.err == nil && f.stopped == nil
}

// Lag returns how many seconds the last applied event took from recording
// to being applied, and the events applied so far.
func (f *Feed) Lag() (seconds float64, applied uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.lastRecorded.IsZero() {
		seconds = f.lastApplied.Sub(f.lastRecorded).Seconds()
	}
	return seconds, f.applied
}

// Progress reports how far the models have got, for monitoring: compared
// with the log's last position it gives the lag in events, and LastRecorded
// gives the lag in time while the models are behind.
func (f *Feed) Progress() Progress {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return Progress{Position: f.pos, Applied: f.applied, LastRecorded: f.lastRecorded,
		LastApplied: f.lastApplied, Ready: f.ready && f.err == nil && f.stopped == nil}
}

// ErrNotReached is returned by WaitFor when the deadline passes first.
var ErrNotReached = fmt.Errorf("projections: position not reached in time")

// WaitFor blocks until the models have applied position pos, ctx is done,
// or timeout passes (ErrNotReached). Once the folding has stopped (see
// Stopped) a position it has not reached never comes: WaitFor returns the
// error that stopped it at once.
func (f *Feed) WaitFor(ctx context.Context, pos eventstore.Position, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		f.mu.RLock()
		reached := !f.pos.Before(pos)
		ch, stopped := f.notify, f.stopped
		f.mu.RUnlock()
		if reached {
			return nil
		}
		if stopped != nil {
			return stopped
		}
		select {
		case <-ch:
		case <-timer.C:
			return ErrNotReached
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CatchUp blocks until the models have applied every event the log held
// when it was called, ctx is done, or timeout passes (ErrNotReached): an
// answer read after it rests on the whole log as it stood then, on any
// replica, however far behind it was.
func (f *Feed) CatchUp(ctx context.Context, timeout time.Duration) error {
	last, err := f.store.LastPosition(ctx)
	if err != nil {
		return fmt.Errorf("projections: last position: %w", err)
	}
	return f.WaitFor(ctx, last, timeout)
}

// prepared is an event made ready to fold: its payload decoded and its
// audit-tree leaf hashed. Both depend on the event alone, so they can be
// worked out on another goroutine than the folding, which must go in log
// order.
type prepared struct {
	ev      eventstore.Event
	payload domain.Event
	err     error
	leaf    []byte
}

func (pr *prepared) prepare(ev *eventstore.Event, c domain.Codec) {
	pr.ev = *ev
	pr.payload, pr.err = c.Decode(ev.Type, ev.Data)
	pr.leaf = auditproof.LeafHash(ev)
}

// foldBatch folds prepared events into the models, now being the time they
// are applied, and returns the error that stopped the folding, if any.
//
// Events at or before the position reached are skipped. An event that
// cannot be decoded stops the folding for good, before it: the events
// before it in the batch are applied, the models keep answering as of the
// event before, and the feed is not ready. An event of a type or version
// newer than this build (another replica was upgraded first) is one clear
// ERROR, "upgrade required: event X version N at position P"; skipping it
// would misstate every model that event touches.
func (f *Feed) foldBatch(batch []prepared, now time.Time) error {
	f.fold.Lock()
	defer f.fold.Unlock()
	f.mu.RLock()
	pos, stopped := f.pos, f.stopped
	f.mu.RUnlock()
	if stopped != nil {
		return stopped
	}
	changes := make([]Change, 0, len(batch))
	for i := range batch {
		pr := &batch[i]
		ev := &pr.ev
		if !pos.Before(ev.Position) {
			continue
		}
		if pr.err != nil {
			if errors.Is(pr.err, domain.ErrUpgradeRequired) {
				stopped = fmt.Errorf("%w at position %s", pr.err, ev.Position)
			} else {
				stopped = fmt.Errorf("projections: event %s of %s at position %s cannot be read: %w", ev.Type, ev.Stream, ev.Position, pr.err)
			}
			f.log.Error(stopped.Error(), "type", ev.Type, "stream", ev.Stream, "version", int64(ev.Version),
				"position", ev.Position.String(), "folded_up_to", pos.String())
			break
		}
		changes = append(changes, Change{Event: ev, Payload: pr.payload, Leaf: pr.leaf})
		pos = ev.Position
	}
	if len(changes) > 0 {
		f.applyModels(Batch{Changes: changes, Last: pos})
		for _, m := range f.models {
			if fm, ok := m.(Failing); ok && fm.Err() != nil {
				// The batch is not applied: the feed stays before it.
				stopped = fmt.Errorf("projections: model %s, in the events up to position %s: %w", m.Name(), pos, fm.Err())
				f.log.Error(stopped.Error(), "model", m.Name(), "folded_up_to", f.Position().String())
				changes = changes[:0]
				break
			}
		}
	}
	var saveErr error
	defer func() {
		// Committed once the feed's position has moved, outside its
		// lock: queries go on while the models write.
		if saveErr == nil && len(changes) > 0 {
			saveErr = f.appliedViews(changes, f.readyPosition())
		}
		if saveErr != nil {
			f.mu.Lock()
			if f.stopped == nil {
				f.stopped = saveErr
				f.log.Error("read models stop: their views cannot be written", "err", saveErr.Error())
			}
			f.mu.Unlock()
		}
	}()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(changes) > 0 {
		f.pos = pos
		f.applied += uint64(len(changes))
		f.lastApplied = now
		f.lastRecorded = changes[len(changes)-1].Event.Metadata.RecordedAt
		if !f.ready && !f.pos.Before(f.readyAt) {
			f.ready = true
		}
	}
	if stopped != nil {
		f.stopped = stopped
	}
	if len(changes) > 0 || stopped != nil {
		close(f.notify)
		f.notify = make(chan struct{})
	}
	return f.stopped
}

// parallelFrom is the least number of events a batch (or a commit) must
// hold for the models to take it side by side, each on a goroutine of its
// own; a smaller one, as live events come, costs less in one goroutine.
const parallelFrom = 16

// applyModels hands b to every model that has not folded it yet. The
// models share nothing but the batch, which none of them changes, and
// each guards its own state, so a large batch is folded by all of them at
// once: while catching up, the fold then takes every core rather than
// one. f.fold is held.
func (f *Feed) applyModels(b Batch) {
	if len(b.Changes) < parallelFrom {
		for i, m := range f.models {
			if mb, ok := f.modelBatch(i, b); ok {
				m.Apply(mb)
			}
		}
		return
	}
	var wg sync.WaitGroup
	for i, m := range f.models {
		if mb, ok := f.modelBatch(i, b); ok {
			wg.Go(func() { m.Apply(mb) })
		}
	}
	wg.Wait()
}

// pipelineDepth is how many prepared events may wait to be folded, and
// batchSize how many are folded as one batch: enough to spread the cost
// of the models' locks and of waking WaitFor callers while catching up,
// few enough that a query never waits long behind a batch.
const (
	pipelineDepth = 1024
	batchSize     = 64
)

// feed folds the events of it, keeping those keep accepts (all when keep
// is nil), and returns the iterator's error, or the error that stopped the
// folding (see foldBatch). Events are read, decoded and hashed on
// goroutines of their own while earlier ones are folded, so that a replay
// uses every core; live events go through as they come, without waiting
// for a batch to fill. live says it is a subscription, which feed closes to
// stop its reader when the folding stops.
func (f *Feed) feed(it eventstore.Iterator, keep func(*eventstore.Event) bool, live bool) error {
	// Three goroutines: one reads, one decodes and hashes, this one folds.
	// Reading the store costs about as much as decoding, so with both on
	// one goroutine it would be the slowest stage.
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	read := make(chan eventstore.Event, pipelineDepth)
	go func() {
		defer close(readerDone)
		defer close(read)
		for it.Next() {
			ev := it.Event()
			if keep == nil || keep(&ev) {
				select {
				case read <- ev:
				case <-stop:
					return
				}
			}
		}
	}()
	ch := make(chan prepared, pipelineDepth)
	codec := f.codec
	go func() {
		defer close(ch)
		for ev := range read {
			var pr prepared
			pr.prepare(&ev, codec)
			select {
			case ch <- pr:
			case <-stop:
				return
			}
		}
	}()
	batch := make([]prepared, 0, batchSize)
	for pr := range ch {
		batch = append(batch[:0], pr)
	more:
		for len(batch) < batchSize {
			select {
			case pr, ok := <-ch:
				if !ok {
					break more
				}
				batch = append(batch, pr)
			default:
				break more
			}
		}
		if stopped := f.foldBatch(batch, time.Now()); stopped != nil {
			// Stop the reader and the decoder, and wait for the reader
			// to be done with it before the caller closes it.
			close(stop)
			if live {
				it.Close()
			}
			for range ch {
			}
			<-readerDone
			return stopped
		}
	}
	// The reader is done with it: read, then ch, was closed.
	return it.Err()
}
