// Package memstore is an in-memory eventstore.Store.
//
// It is not durable: everything is lost when the process exits. It is meant
// for tests, and as the reference implementation of the store's semantics:
// it is small enough to read in one sitting and passes the same contract
// suite (eventstore/eventstoretest) as the durable backends. Production
// code uses eventstore/pebble or eventstore/esdb.
//
// Positions count the events of the global log from 1, with Commit and
// Prepare alike, as in the embedded store.
//
// Idempotent retries follow EventStoreDB's rules, which the store's
// contract adopts:
//
//   - With NoStream or an exact version behind the stream, the append is a
//     retry when the events that follow that version carry the same IDs, in
//     the same order. It is acknowledged with the version and position of
//     the last of those events, and nothing is written. When the first event
//     matches but a later one does not (or the retry runs past the end of
//     the stream), the append is refused as a version conflict.
//   - With Any or StreamExists, the append is a retry when the stream
//     already holds the first event's ID; then every other ID must be
//     there too, or the append is a version conflict. EventStoreDB
//     remembers IDs for this check only for a while; memstore remembers them
//     all.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"talentledger/eventstore"
)

// DefaultSubscriberBuffer is how many live events a subscription holds for
// its reader before it falls back to reading the log.
const DefaultSubscriberBuffer = 256

// Option configures a Store.
type Option func(*Store)

// MaxEventSize sets the limit on one event's data plus encoded metadata. The
// default is eventstore.DefaultMaxEventSize.
func MaxEventSize(n int) Option {
	return func(s *Store) { s.maxEventSize = n }
}

// SubscriberBuffer sets how many live events each subscription buffers. A
// subscription whose buffer fills is dropped from live delivery and catches
// up from the log instead, so a slow reader never blocks writers and never
// makes the store hold more than the log itself. The default is
// DefaultSubscriberBuffer.
func SubscriberBuffer(n int) Option {
	return func(s *Store) { s.bufferSize = n }
}

// Store is an in-memory event store. It is safe for concurrent use.
type Store struct {
	maxEventSize int
	bufferSize   int
	closed       chan struct{} // closed by Close

	mu       sync.Mutex
	isClosed bool
	// log is the global log: log[i] is at position i+1. Stored events are
	// never modified, so readers may hold sub-slices of it without the lock.
	log     []*eventstore.Event
	streams map[string]*stream
	// live holds the subscriptions that Append feeds directly.
	live map[*subscription]struct{}
}

type stream struct {
	events []*eventstore.Event
	// ids maps each event ID to its latest version in the stream, for the
	// retry check of appends with Any and StreamExists.
	ids map[eventstore.EventID]eventstore.Version
}

var _ eventstore.Store = (*Store)(nil)

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{
		maxEventSize: eventstore.DefaultMaxEventSize,
		bufferSize:   DefaultSubscriberBuffer,
		closed:       make(chan struct{}),
		streams:      make(map[string]*stream),
		live:         make(map[*subscription]struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if s.maxEventSize <= 0 {
		panic(fmt.Sprintf("memstore: MaxEventSize(%d) must be positive", s.maxEventSize))
	}
	if s.bufferSize <= 0 {
		panic(fmt.Sprintf("memstore: SubscriberBuffer(%d) must be positive", s.bufferSize))
	}
	return s
}

// Append implements eventstore.Store. Events are "durable" as soon as it
// returns, for as long as the store lives.
//
// Errors: *eventstore.WrongVersionError, the ErrInvalid family, ErrClosed,
// or the context's error.
func (s *Store) Append(ctx context.Context, name string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := eventstore.ValidateAppend(name, expected, events, s.maxEventSize); err != nil {
		return eventstore.AppendResult{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	st := s.streams[name]
	current := st.version()
	conflict := &eventstore.WrongVersionError{Stream: name, Expected: expected, Actual: current}
	switch res, outcome := st.retry(expected, events); outcome {
	case retried:
		return res, nil
	case mismatched:
		return eventstore.AppendResult{}, conflict
	}
	if !versionMatches(expected, current) {
		return eventstore.AppendResult{}, conflict
	}

	if st == nil {
		st = &stream{ids: make(map[eventstore.EventID]eventstore.Version)}
		s.streams[name] = st
	}
	added := make([]*eventstore.Event, len(events))
	for i, e := range events {
		n := uint64(len(s.log)) + 1
		ev := &eventstore.Event{
			ID:       e.ID,
			Stream:   name,
			Version:  current + 1 + eventstore.Version(i),
			Position: eventstore.Position{Commit: n, Prepare: n},
			Type:     e.Type,
			Data:     bytes.Clone(e.Data),
			Metadata: e.Metadata,
		}
		s.log = append(s.log, ev)
		st.events = append(st.events, ev)
		st.ids[ev.ID] = ev.Version
		added[i] = ev
	}
	s.publish(added)
	last := added[len(added)-1]
	return eventstore.AppendResult{Version: last.Version, Position: last.Position}, nil
}

// version returns the stream's current version, NoStream for a nil stream.
func (st *stream) version() eventstore.Version {
	if st == nil {
		return eventstore.NoStream
	}
	return eventstore.Version(len(st.events) - 1)
}

// result is what the append ending with the event at version v reported.
func (st *stream) result(v eventstore.Version) eventstore.AppendResult {
	return eventstore.AppendResult{Version: v, Position: st.events[v].Position}
}

type retryOutcome int

const (
	fresh      retryOutcome = iota // not a retry: check the version and write
	retried                        // a retry: acknowledge, write nothing
	mismatched                     // partly a retry: a version conflict
)

// retry decides whether an append repeats one the stream already holds, by
// EventStoreDB's rules (see the package documentation).
func (st *stream) retry(expected eventstore.Version, events []eventstore.EventData) (eventstore.AppendResult, retryOutcome) {
	if st == nil {
		return eventstore.AppendResult{}, fresh
	}
	current := st.version()
	switch {
	case expected == eventstore.Any || expected == eventstore.StreamExists:
		if _, ok := st.ids[events[0].ID]; !ok {
			return eventstore.AppendResult{}, fresh
		}
		var v eventstore.Version
		for _, e := range events {
			var ok bool
			if v, ok = st.ids[e.ID]; !ok {
				return eventstore.AppendResult{}, mismatched
			}
		}
		return st.result(v), retried

	case expected < current: // NoStream on an existing stream, or a stale exact version
		for i, e := range events {
			v := expected + 1 + eventstore.Version(i)
			if v > current || st.events[v].ID != e.ID {
				if i == 0 {
					return eventstore.AppendResult{}, fresh // a plain conflict
				}
				return eventstore.AppendResult{}, mismatched
			}
		}
		return st.result(expected + eventstore.Version(len(events))), retried
	}
	return eventstore.AppendResult{}, fresh
}

func versionMatches(expected, current eventstore.Version) bool {
	switch expected {
	case eventstore.Any:
		return true
	case eventstore.NoStream:
		return current == eventstore.NoStream
	case eventstore.StreamExists:
		return current != eventstore.NoStream
	}
	return expected == current
}

// publish hands new events to the live subscriptions. It never blocks: a
// subscription with no room left is dropped from live delivery and told to
// catch up from the log. s.mu must be held.
func (s *Store) publish(events []*eventstore.Event) {
	for sub := range s.live {
	events:
		for _, ev := range events {
			if !sub.filter.Match(ev) {
				continue
			}
			select {
			case sub.ch <- ev:
			default:
				delete(s.live, sub)
				select {
				case sub.overflow <- struct{}{}:
				default:
				}
				break events
			}
		}
	}
}

// ReadStream implements eventstore.Store.
//
// Errors, from the iterator's Err: ErrStreamNotFound, ErrInvalidStream,
// ErrInvalid for a negative version, ErrClosed, or the context's error.
func (s *Store) ReadStream(ctx context.Context, name string, from eventstore.Version) eventstore.Iterator {
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	if err := eventstore.ValidateStreamName(name); err != nil {
		return failed(err)
	}
	if from < 0 {
		return failed(fmt.Errorf("%w: read from version %s", eventstore.ErrInvalid, from))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return failed(eventstore.ErrClosed)
	}
	st := s.streams[name]
	if st == nil {
		return failed(eventstore.ErrStreamNotFound)
	}
	var events []*eventstore.Event
	if from < eventstore.Version(len(st.events)) {
		events = st.events[from:len(st.events):len(st.events)]
	}
	return &iterator{ctx: ctx, closed: s.closed, events: events}
}

// ReadAll implements eventstore.Store.
//
// Errors, from the iterator's Err: ErrClosed or the context's error.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position) eventstore.Iterator {
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return failed(eventstore.ErrClosed)
	}
	return &iterator{ctx: ctx, closed: s.closed, events: s.logAfter(after)}
}

// logAfter returns the stored events after position p. s.mu must be held;
// the slice may be read after it is released.
func (s *Store) logAfter(p eventstore.Position) []*eventstore.Event {
	n := len(s.log)
	i := sort.Search(n, func(i int) bool { return s.log[i].Position.Compare(p) > 0 })
	return s.log[i:n:n]
}

// LastPosition implements eventstore.Store.
//
// Errors: ErrClosed or the context's error.
func (s *Store) LastPosition(ctx context.Context) (eventstore.Position, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Start, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return eventstore.Start, eventstore.ErrClosed
	}
	if len(s.log) == 0 {
		return eventstore.Start, nil
	}
	return s.log[len(s.log)-1].Position, nil
}

// Subscribe implements eventstore.Store. The subscription does its work in
// Next, on the caller's goroutine: it reads stored events straight from the
// log, then waits for Append to hand it new ones.
//
// Errors, from the subscription's Err: ErrClosed or the context's error.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, filter eventstore.Filter) eventstore.Subscription {
	return &subscription{
		store: s,
		ctx:   ctx,
		filter: eventstore.Filter{
			StreamPrefixes: slices.Clone(filter.StreamPrefixes),
			EventTypes:     slices.Clone(filter.EventTypes),
		},
		ch:       make(chan *eventstore.Event, s.bufferSize),
		overflow: make(chan struct{}, 1),
		done:     make(chan struct{}),
		after:    after,
	}
}

// Close implements eventstore.Store. Iterators and subscriptions still open
// end with ErrClosed.
//
// Errors: ErrClosed when already closed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return eventstore.ErrClosed
	}
	s.isClosed = true
	close(s.closed)
	s.log, s.streams, s.live = nil, nil, nil
	return nil
}

// copyEvent returns an event the caller may modify without touching the
// stored one.
func copyEvent(ev *eventstore.Event) eventstore.Event {
	e := *ev
	e.Data = bytes.Clone(ev.Data)
	return e
}

// iterator walks a snapshot of stored events.
type iterator struct {
	ctx    context.Context
	closed <-chan struct{} // the store's
	events []*eventstore.Event
	cur    eventstore.Event
	err    error
	done   bool
}

func failed(err error) *iterator { return &iterator{err: err, done: true} }

func (it *iterator) Next() bool {
	if it.done {
		return false
	}
	if err := it.ctx.Err(); err != nil {
		return it.stop(err)
	}
	select {
	case <-it.closed:
		return it.stop(eventstore.ErrClosed)
	default:
	}
	if len(it.events) == 0 {
		return it.stop(nil)
	}
	it.cur = copyEvent(it.events[0])
	it.events = it.events[1:]
	return true
}

func (it *iterator) stop(err error) bool {
	it.err, it.done, it.events = err, true, nil
	return false
}

func (it *iterator) Event() eventstore.Event { return it.cur }
func (it *iterator) Err() error              { return it.err }

func (it *iterator) Close() error {
	it.done, it.events = true, nil
	return nil
}

// subscription delivers the log after a position. It is in one of two
// modes: catching up, when it reads stored events from the log, or live,
// when it is in the store's live set and Append sends it new events. It
// turns live once it has read to the end of the log (under the store's
// lock, so no event falls between), and back to catching up when its
// buffer overflows.
type subscription struct {
	store    *Store
	ctx      context.Context
	filter   eventstore.Filter
	ch       chan *eventstore.Event // live events, sent under store.mu
	overflow chan struct{}          // signalled when dropped from the live set
	done     chan struct{}          // closed by Close
	once     sync.Once

	// Owned by the goroutine calling Next.
	after   eventstore.Position // the last event delivered or skipped
	backlog []*eventstore.Event // stored events not yet looked at
	live    bool                // in the store's live set
	cur     eventstore.Event
	err     error
	ended   bool
}

func (sub *subscription) Next() bool {
	for !sub.ended {
		// Closing takes precedence, then the context, then the store.
		select {
		case <-sub.done:
			return sub.end(nil)
		default:
		}
		if err := sub.ctx.Err(); err != nil {
			return sub.end(err)
		}
		select {
		case <-sub.store.closed:
			return sub.end(eventstore.ErrClosed)
		default:
		}

		if len(sub.backlog) > 0 {
			ev := sub.backlog[0]
			sub.backlog = sub.backlog[1:]
			sub.after = ev.Position
			if sub.filter.Match(ev) {
				sub.cur = copyEvent(ev)
				return true
			}
			continue
		}
		if !sub.live {
			sub.catchUp()
			continue
		}

		select {
		case ev := <-sub.ch:
			// A subscription starting beyond the end of the log skips
			// live events up to its starting point.
			if ev.Position.Compare(sub.after) > 0 {
				sub.after = ev.Position
				sub.cur = copyEvent(ev)
				return true
			}
		case <-sub.overflow:
			// What the buffer held is in the log too; read it from there.
			sub.live = false
		case <-sub.done:
		case <-sub.ctx.Done():
		case <-sub.store.closed:
		}
	}
	return false
}

// catchUp loads the stored events after sub.after into the backlog or, when
// there are none, joins the store's live set.
func (sub *subscription) catchUp() {
	s := sub.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return // Next sees the store closed
	}
	if sub.backlog = s.logAfter(sub.after); len(sub.backlog) > 0 {
		return
	}
	// Events left from an earlier spell as live are in the log and read.
	for len(sub.ch) > 0 {
		<-sub.ch
	}
	select {
	case <-sub.overflow:
	default:
	}
	s.live[sub] = struct{}{}
	sub.live = true
}

func (sub *subscription) end(err error) bool {
	sub.ended, sub.err, sub.backlog = true, err, nil
	sub.leave()
	return false
}

// leave removes the subscription from the store's live set.
func (sub *subscription) leave() {
	s := sub.store
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, sub) // a no-op once the store is closed (live is nil)
	sub.live = false
}

func (sub *subscription) Event() eventstore.Event { return sub.cur }
func (sub *subscription) Err() error              { return sub.err }

// Close ends the subscription; a Next waiting in another goroutine returns
// false. It is safe to call more than once.
func (sub *subscription) Close() error {
	sub.once.Do(func() {
		close(sub.done)
		s := sub.store
		s.mu.Lock()
		delete(s.live, sub)
		s.mu.Unlock()
	})
	return nil
}
