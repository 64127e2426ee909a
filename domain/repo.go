package domain

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"talentledger/eventstore"
)

// maxConflictRetries bounds how often a command re-decides after another
// writer changed its stream.
const maxConflictRetries = 8

// entry is one stream's folded state, kept in the cache between commands.
// It is only touched while the stream's lock is held.
type entry struct {
	stream   string
	agg      aggregate
	version  eventstore.Version // NoStream when the stream is empty
	lastHash string
	// lastDate is the latest business date of the stream's events: a
	// command's may not lie before it.
	lastDate string
	// ids maps every event ID of the stream to its global position, so a
	// retried command finds what it already wrote.
	ids map[eventstore.EventID]eventstore.Position
	// requests maps the ID of every event recorded with a request hash
	// (a command sent with an Idempotency-Key) to that hash.
	requests map[eventstore.EventID]string
	// durable, when not nil, is the outcome of the last append folded
	// into this state. An atomic batch folds its events and lets the next
	// batch decide on them as soon as the store has ordered its append
	// (see atomic.go); until the outcome is known nothing is answered on
	// the strength of this state but by a batch whose own append the
	// store orders after it. If the append failed, the state holds events
	// the store did not take: it is dropped from the cache, and whoever
	// still holds it gets the store's error from settled, never an answer
	// resting on it.
	durable *outcome
}

// outcome is an append in flight: done is closed once it is durable or has
// failed, err being set before, to nil or to why it failed.
type outcome struct {
	done chan struct{}
	err  error
}

func newOutcome() *outcome { return &outcome{done: make(chan struct{})} }

// wait waits for the append and returns its error.
func (o *outcome) wait() error {
	<-o.done
	return o.err
}

// settle records the append's outcome and wakes its waiters.
func (o *outcome) settle(err error) {
	o.err = err
	close(o.done)
}

// settled waits until every append folded into e is durable, and returns
// the error of the one that failed if one did: e then holds events the
// store did not take, and nothing may be decided or served on it.
func (e *entry) settled() error {
	if e.durable != nil {
		return e.durable.wait()
	}
	return nil
}

// repo loads, caches and appends to streams. Commands on one stream are
// serialized in-process by a per-stream lock; optimistic concurrency on the
// store still guards against writers in other processes.
type repo struct {
	store eventstore.Store
	locks keyedMutex
	cache *lru
	// soleWriter is set when this repo is the only writer of the store
	// (see WithSoleWriter): its cached states are then never stale.
	soleWriter bool
	// codec reads and names the stored events.
	codec Codec
	// combine batches the commands waiting for one stream (sole writer
	// only; see combine.go).
	combine batches[*combineReq]
	// atomic batches the commands that write several streams at once
	// (sole writer over a MultiAppender only; see atomic.go).
	atomic batches[*atomicReq]
}

func newRepo(store eventstore.Store, cacheSize int) *repo {
	return &repo{store: store, cache: newLRU(cacheSize)}
}

// lock takes the stream's lock and returns the function that releases it.
// Callers holding two locks always take a grant's before a budget's.
func (r *repo) lock(stream string) func() { return r.locks.lock(stream) }

// load returns the stream's current state, from the cache or the store,
// once every append folded into it is durable; if one failed, the store's
// error. The lock must be held.
//
// A cached state is exact only for a sole writer. Otherwise another
// process may have appended since, so the stream is read forward from the
// cached version first: one cheap read, and a decision never rests on a
// stale state.
func (r *repo) load(ctx context.Context, stream string, newAgg func() aggregate) (*entry, error) {
	e, err := r.loadOrdered(ctx, stream, newAgg)
	if err != nil {
		return nil, err
	}
	if err := e.settled(); err != nil {
		return nil, err
	}
	return e, nil
}

// loadOrdered is load for an atomic batch, which may decide on events the
// store has ordered but not yet made durable.
func (r *repo) loadOrdered(ctx context.Context, stream string, newAgg func() aggregate) (*entry, error) {
	if e, ok := r.cache.get(stream); ok {
		if r.soleWriter {
			return e, nil
		}
		if err := r.catchUp(ctx, e); err != nil {
			r.cache.remove(stream)
			return nil, err
		}
		return e, nil
	}
	e := &entry{stream: stream, agg: newAgg(), version: eventstore.NoStream, ids: map[eventstore.EventID]eventstore.Position{}}
	if err := r.catchUp(ctx, e); err != nil {
		return nil, err
	}
	r.cache.put(stream, e)
	return e, nil
}

// catchUp folds the events appended to the stream since e was last read.
func (r *repo) catchUp(ctx context.Context, e *entry) error {
	it := r.store.ReadStream(ctx, e.stream, e.version+1)
	defer it.Close()
	for it.Next() {
		ev := it.Event()
		if err := e.fold(&ev, r.codec); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return fmt.Errorf("read %s: %w", e.stream, err)
	}
	return nil
}

func (e *entry) fold(ev *eventstore.Event, c Codec) error {
	payload, err := c.Decode(ev.Type, ev.Data)
	if err != nil {
		return fmt.Errorf("%s version %d at position %s: %w", e.stream, ev.Version, ev.Position, err)
	}
	if err := e.applyStored(payload, &ev.Metadata); err != nil {
		return fmt.Errorf("%s version %d at position %s: %w", e.stream, ev.Version, ev.Position, err)
	}
	e.version = ev.Version
	e.lastHash = ev.Metadata.Hash
	if d := businessDate(&ev.Metadata); d > e.lastDate {
		e.lastDate = d
	}
	e.ids[ev.ID] = ev.Position
	if h := ev.Metadata.RequestHash; h != "" {
		if e.requests == nil {
			e.requests = map[eventstore.EventID]string{}
		}
		e.requests[ev.ID] = h
	}
	return nil
}

// ErrOutOfContext reports a stored event its stream's state cannot take:
// a payment's approval whose payment was never prepared, a grant's event
// before its application. This build never writes such a stream; a log
// written by another program, or damaged below its hashes, could hold one.
// The stream is refused, not folded: no decision rests on it.
var ErrOutOfContext = errors.New("event out of its stream's context")

// applyStored folds one stored event. An aggregate's apply trusts its
// stream's order (its decisions wrote it), so an event out of its context
// would find state missing; that surfaces here as ErrOutOfContext, never
// as a panic in the command that loaded the stream.
func (e *entry) applyStored(payload Event, md *eventstore.Metadata) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrOutOfContext, payload.EventType(), r)
		}
	}()
	if a, ok := e.agg.(metaAggregate); ok {
		a.applyWith(payload, md)
	} else {
		e.agg.apply(payload)
	}
	return nil
}

// metaAggregate is an aggregate that also needs who recorded each event
// and when (maker-checker rules, interrupted approvals).
type metaAggregate interface {
	applyWith(e Event, md *eventstore.Metadata)
}

// businessDate is an event's business date: its effective date, or the
// date it was recorded.
func businessDate(md *eventstore.Metadata) string {
	if md.EffectiveDate != "" {
		return md.EffectiveDate
	}
	if md.RecordedAt.IsZero() {
		return ""
	}
	return Today(md.RecordedAt)
}

// replayed reports whether the command with this ID already wrote to the
// stream, and if so where its last event landed.
func (e *entry) replayed(commandID string) (eventstore.Position, bool) {
	pos, ok := e.ids[eventID(commandID, e.stream, 0)]
	if !ok {
		return pos, false
	}
	for i := 1; ; i++ {
		p, ok := e.ids[eventID(commandID, e.stream, i)]
		if !ok {
			return pos, true
		}
		pos = p
	}
}

// replayedBy is replayed for m's command, checking that a command sent
// with a request hash is a retry of the same request: the events it finds
// carry the hash of the request that first ran the command, and another
// request under the same command ID is refused with
// EIDEMPOTENCYMISMATCH. Events recorded without a hash (by a build that
// kept the first answer in an idempotency stream) are reported to m's
// Outcome for the caller to check there.
func (e *entry) replayedBy(m *meta) (eventstore.Position, bool, error) {
	pos, ok := e.replayed(m.CommandID)
	if !ok {
		return pos, false, nil
	}
	if m.RequestHash != "" {
		switch first := e.requests[eventID(m.CommandID, e.stream, 0)]; first {
		case m.RequestHash:
		case "":
			m.Outcome.set(outcomeUnhashed)
		default:
			return pos, true, Errorf(EIDEMPOTENCYMISMATCH, "this Idempotency-Key was used with a different request")
		}
	}
	m.Outcome.set(outcomeReplayed)
	return pos, true, nil
}

// eventID derives the ID of a command's i-th event in a stream, so that a
// retried command proposes the very same events.
func eventID(commandID, stream string, i int) eventstore.EventID {
	return eventstore.DeriveEventID(commandID, stream, fmt.Sprint(i))
}

// appendEvents appends events to the stream at e's version, chaining their
// hashes, and folds them into e on success. The lock must be held.
func (r *repo) appendEvents(ctx context.Context, e *entry, m *meta, events []Event) (eventstore.AppendResult, error) {
	data := make([]eventstore.EventData, len(events))
	prev := e.lastHash
	for i, ev := range events {
		raw, err := json.Marshal(ev)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
		}
		md := m.metadata()
		md.PrevHash = prev
		id := eventID(m.CommandID, e.stream, i)
		typ := r.codec.StoredType(ev)
		md.Hash = ChainHash(prev, e.stream, e.version+1+eventstore.Version(i), id, typ, raw, md)
		prev = md.Hash
		data[i] = eventstore.EventData{ID: id, Type: typ, Data: raw, Metadata: md, ValidJSON: true}
	}
	res, err := r.store.Append(ctx, e.stream, e.version, data...)
	if err != nil {
		return res, err
	}
	m.Outcome.set(outcomeWrote)
	if r.soleWriter {
		// No other writer: the stream held nothing past e.version, so
		// the store wrote these very events (see WithSoleWriter). They
		// all map to the position of the last, which is what a retried
		// command is answered with.
		for i := range data {
			ev := eventstore.Event{ID: data[i].ID, Stream: e.stream, Version: e.version + 1, Position: res.Position,
				Type: data[i].Type, Data: data[i].Data, Metadata: data[i].Metadata}
			if err := e.fold(&ev, r.codec); err != nil {
				r.cache.remove(e.stream)
				break
			}
		}
		return res, nil
	}
	// Fold what the store holds, not what was proposed: when the store
	// acknowledged the append as a retry of events another attempt already
	// wrote (a stale cache, or a race with that attempt in another
	// process), the stored events carry that attempt's metadata and hashes,
	// and the stream's next event must chain to those.
	if err := r.catchUp(ctx, e); err != nil {
		// The events are durable; only the cached state is unsure.
		r.cache.remove(e.stream)
		return res, nil
	}
	// The store acknowledged these event IDs as held already: if another
	// process ran the command first for another request, those are its
	// events, and this request was not carried out.
	if first := e.requests[data[0].ID]; m.RequestHash != "" && first != "" && first != m.RequestHash {
		return eventstore.AppendResult{}, Errorf(EIDEMPOTENCYMISMATCH, "this Idempotency-Key was used with a different request")
	}
	return res, nil
}

// decideFunc looks at a stream's state and returns the events a command
// records there, or an error to refuse the command. It must not change the
// state.
type decideFunc func(e *entry) ([]Event, error)

// execute runs one command on one stream: lock, load, decide, append with
// the expected version, and on a conflict catch up and decide again. A
// command whose events are already in the stream (a retry) is answered
// with the original position and writes nothing.
func (r *repo) execute(ctx context.Context, stream string, newAgg func() aggregate, m *meta, decide decideFunc) (eventstore.AppendResult, error) {
	if r.soleWriter {
		return r.executeCombined(ctx, stream, newAgg, m, decide)
	}
	defer r.lock(stream)()
	e, err := r.load(ctx, stream, newAgg)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return r.executeLocked(ctx, e, m, decide)
}

func (r *repo) executeLocked(ctx context.Context, e *entry, m *meta, decide decideFunc) (eventstore.AppendResult, error) {
	for attempt := 0; ; attempt++ {
		if pos, ok, err := e.replayedBy(m); ok {
			return eventstore.AppendResult{Version: e.version, Position: pos}, err
		}
		if err := m.checkDate(e); err != nil {
			return eventstore.AppendResult{}, err
		}
		events, err := decide(e)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if len(events) == 0 {
			return eventstore.AppendResult{Version: e.version}, nil
		}
		res, err := r.appendEvents(ctx, e, m, events)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, eventstore.ErrWrongVersion) {
			return res, err
		}
		if attempt >= maxConflictRetries {
			return res, &Error{Code: ECONFLICT, Message: "the record changed concurrently too often; try again", Err: err}
		}
		// Another process wrote to the stream. Back off a random moment,
		// growing with each attempt, so that writers racing in lockstep
		// spread out; then fold their events and decide again.
		if err := sleepJitter(ctx, attempt); err != nil {
			return res, err
		}
		if err := r.catchUp(ctx, e); err != nil {
			r.cache.remove(e.stream)
			return res, err
		}
	}
}

// sleepJitter waits a random time below 2^attempt milliseconds, or until
// ctx is done.
func sleepJitter(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 8)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// view runs f on a stream's current state under the stream's lock.
func (r *repo) view(ctx context.Context, stream string, newAgg func() aggregate, f func(e *entry) error) error {
	defer r.lock(stream)()
	e, err := r.load(ctx, stream, newAgg)
	if err != nil {
		return err
	}
	return f(e)
}

// precheck runs f, a check that may refuse a command before an atomic
// batch decides it again, on the stream's state as ordered: a pass
// acknowledges nothing, so it need not wait for an append in flight, and
// a refusal is returned only once the state it rests on is durable; if
// that append failed, the refusal rested on events the store did not
// take, and the store's error is returned instead.
func (r *repo) precheck(ctx context.Context, stream string, newAgg func() aggregate, f func(e *entry) error) error {
	unlock := r.lock(stream)
	e, err := r.loadOrdered(ctx, stream, newAgg)
	if err != nil {
		unlock()
		return err
	}
	err = f(e)
	durable := e.durable
	unlock()
	if err != nil && durable != nil {
		if derr := durable.wait(); derr != nil {
			return derr
		}
	}
	return err
}

// keyedMutex is a set of mutexes created on demand and dropped when unused.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*refMutex{}
	}
	l := k.m[key]
	if l == nil {
		l = &refMutex{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// lru is a bounded cache of stream states.
type lru struct {
	mu    sync.Mutex
	size  int
	ll    *list.List
	items map[string]*list.Element
}

type lruItem struct {
	key string
	e   *entry
	// pins counts the appends folded into e that are not yet durable:
	// the store may not show them yet, so e is not evicted meanwhile.
	pins int
}

func newLRU(size int) *lru {
	return &lru{size: size, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *lru) get(key string) (*entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*lruItem).e, true
	}
	return nil, false
}

func (c *lru) put(key string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value.(*lruItem).e = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&lruItem{key: key, e: e})
	c.evict()
}

// evict drops the least recently used states beyond the cache's size,
// passing over pinned ones.
func (c *lru) evict() {
	for el := c.ll.Back(); el != nil && c.ll.Len() > c.size; {
		prev := el.Prev()
		if it := el.Value.(*lruItem); it.pins == 0 {
			c.ll.Remove(el)
			delete(c.items, it.key)
		}
		el = prev
	}
}

// pin keeps e cached as key's state until as many unpins: e holds events
// the store has ordered but may not show yet.
func (c *lru) pin(key string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok || el.Value.(*lruItem).e != e {
		if ok {
			c.ll.Remove(el)
		}
		el = c.ll.PushFront(&lruItem{key: key, e: e})
		c.items[key] = el
	}
	el.Value.(*lruItem).pins++
	c.evict()
}

// unpin undoes a pin of e.
func (c *lru) unpin(key string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok && el.Value.(*lruItem).e == e && el.Value.(*lruItem).pins > 0 {
		el.Value.(*lruItem).pins--
	}
	c.evict()
}

func (c *lru) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}
