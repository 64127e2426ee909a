package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"talentledger/eventstore"
)

// appendReq is one Append waiting for the writer.
type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.Version
	events   []eventstore.EventData
	// buf holds the encoded records back to back; recEnd[i] ends record i
	// and dataOff[i] is where its data starts. Live subscribers read the
	// data from here, never from the caller's slices.
	buf     []byte
	recEnd  []int
	dataOff []int
	done    chan struct{}

	// Set by the writer before done is closed.
	res   eventstore.AppendResult
	err   error
	wrote bool
	// Where the first event landed, when wrote.
	firstVersion eventstore.Version
	firstPos     uint64
}

func newAppendReq(ctx context.Context, stream string, expected eventstore.Version, events []eventstore.EventData) (*appendReq, error) {
	size := 0
	for i := range events {
		e := &events[i]
		m := &e.Metadata
		size += recFixedHeader + 16*3 + len(stream) + len(e.Type) + len(e.Data) +
			len(m.Principal) + len(m.Role) + len(m.CorrelationID) + len(m.CausationID) +
			len(m.EffectiveDate) + len(m.Reason) + len(m.DocumentRef) + len(m.PrevHash) + len(m.Hash)
	}
	r := &appendReq{
		ctx:      ctx,
		stream:   stream,
		expected: expected,
		events:   events,
		buf:      make([]byte, 0, size),
		recEnd:   make([]int, len(events)),
		dataOff:  make([]int, len(events)),
		done:     make(chan struct{}),
	}
	for i := range events {
		start := len(r.buf)
		var off int
		var err error
		r.buf, off, err = encodeRecord(r.buf, stream, &events[i])
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		r.recEnd[i] = len(r.buf)
		r.dataOff[i] = start + off
	}
	return r, nil
}

func (r *appendReq) record(i int) []byte {
	start := 0
	if i > 0 {
		start = r.recEnd[i-1]
	}
	return r.buf[start:r.recEnd[i]]
}

func (r *appendReq) data(i int) []byte {
	return r.buf[r.dataOff[i] : r.dataOff[i]+len(r.events[i].Data)]
}

// commit is one applied batch on its way to durability.
type commit struct {
	batch *pebble.Batch // nil when the batch wrote nothing
	reqs  []*appendReq
	last  uint64 // last position written, 0 when none
}

// writerState belongs to the writer goroutine alone.
type writerState struct {
	nextPos uint64
	heads   headCache
	// pending holds what this batch has written so far, per stream, since
	// Pebble cannot see it until the batch is applied. Earlier batches
	// are already applied, and Pebble shows applied writes.
	pending map[string]*pendingStream
	key     []byte
	val     []byte
}

type pendingStream struct {
	first eventstore.Version // version of ids[0]
	head  eventstore.Version
	ids   []eventstore.EventID
	pos   []uint64
	byID  map[eventstore.EventID]int // built on first use
}

func (w *writerState) init(next uint64) {
	w.nextPos = next
	w.heads = headCache{max: 1 << 14}
	w.pending = make(map[string]*pendingStream)
}

// headCache is a bounded cache of stream heads kept in two generations:
// when the young one fills it becomes the old one and the previous old one
// is dropped, so recently used streams stay and memory stays bounded.
type headCache struct {
	cur, old map[string]eventstore.Version
	max      int
}

func (c *headCache) get(stream string) (eventstore.Version, bool) {
	if v, ok := c.cur[stream]; ok {
		return v, true
	}
	if v, ok := c.old[stream]; ok {
		c.put(stream, v)
		return v, true
	}
	return 0, false
}

func (c *headCache) put(stream string, v eventstore.Version) {
	if c.cur == nil || len(c.cur) >= c.max {
		c.old = c.cur
		c.cur = make(map[string]eventstore.Version, c.max)
	}
	c.cur[stream] = v
}

func (s *Store) runWriter() {
	defer close(s.commits)
	for {
		first, ok := <-s.reqs
		if !ok {
			return
		}
		reqs := []*appendReq{first}
		size := len(first.buf)
	drain:
		for len(reqs) < maxBatchRequests && size < maxBatchBytes {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				reqs = append(reqs, r)
				size += len(r.buf)
			default:
				break drain
			}
		}
		s.commits <- s.writeBatch(reqs)
	}
}

// writeBatch decides every request, writes the successful ones into one
// Pebble batch and applies it without waiting for the sync.
func (s *Store) writeBatch(reqs []*appendReq) *commit {
	c := &commit{reqs: reqs}
	if errp := s.failed.Load(); errp != nil {
		for _, r := range reqs {
			r.err = *errp
		}
		return c
	}
	w := &s.w
	clear(w.pending)
	b := s.db.NewBatch()
	firstPos := w.nextPos
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if err := s.decide(b, r); err != nil {
			r.err = err
		}
	}
	if w.nextPos == firstPos {
		b.Close()
		return c
	}
	c.last = w.nextPos - 1
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		b.Close()
		s.setFailed(err)
		failWrites(c, s.failed.Load())
		return c
	}
	c.batch = b
	return c
}

func (s *Store) setFailed(err error) {
	err = fmt.Errorf("eventstore/pebble: write failed, store needs reopening: %w", err)
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("event store write failed", "err", err)
	}
}

func failWrites(c *commit, errp *error) {
	for _, r := range c.reqs {
		if r.wrote {
			r.wrote = false
			r.res = eventstore.AppendResult{}
			r.err = *errp
		}
	}
	c.last = 0
}

// decide checks r's expected version against its stream and either writes
// r's events into b, recognises r as a retry of an append already made, or
// returns the error r fails with.
func (s *Store) decide(b *pebble.Batch, r *appendReq) error {
	head, err := s.head(r.stream)
	if err != nil {
		return err
	}
	switch exp := r.expected; {
	case exp == eventstore.Any || exp == eventstore.StreamExists:
		if head == eventstore.NoStream {
			if exp == eventstore.StreamExists {
				return wrongVersion(r, head)
			}
			break
		}
		retry, err := s.retryByID(r, head)
		if retry || err != nil {
			return err
		}
	case exp == eventstore.NoStream:
		if head != eventstore.NoStream {
			return s.retryAt(r, 0, head)
		}
	default:
		if head > exp {
			return s.retryAt(r, exp+1, head)
		}
		if head < exp {
			return wrongVersion(r, head)
		}
	}
	s.write(b, r, head)
	return nil
}

func wrongVersion(r *appendReq, head eventstore.Version) error {
	return &eventstore.WrongVersionError{Stream: r.stream, Expected: r.expected, Actual: head}
}

// retryAt treats r as a retry whose events must sit at versions start,
// start+1, …: if they all do, r succeeds with the original result and writes
// nothing; otherwise its expected version is wrong.
func (s *Store) retryAt(r *appendReq, start, head eventstore.Version) error {
	last := start + eventstore.Version(len(r.events)) - 1
	if last > head {
		return wrongVersion(r, head)
	}
	var pos uint64
	for i := range r.events {
		id, p, ok, err := s.eventAt(r.stream, start+eventstore.Version(i))
		if err != nil {
			return err
		}
		if !ok || id != r.events[i].ID {
			return wrongVersion(r, head)
		}
		pos = p
	}
	r.res = eventstore.AppendResult{Version: last, Position: eventstore.Position{Commit: pos, Prepare: pos}}
	return nil
}

// retryByID recognises a retry of an append made with Any or StreamExists,
// whose versions the caller never knew, through the stream's event-ID index.
// It reports whether r was a complete retry. Some but not all of r's events
// already stored, or stored out of order, is a version conflict.
func (s *Store) retryByID(r *appendReq, head eventstore.Version) (bool, error) {
	var first eventstore.Version
	var lastPos uint64
	found := 0
	for i := range r.events {
		v, p, ok, err := s.versionOf(r.stream, r.events[i].ID)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		if found == 0 {
			first = v - eventstore.Version(i)
		}
		if found != i || v != first+eventstore.Version(i) {
			return false, wrongVersion(r, head)
		}
		found++
		lastPos = p
	}
	switch found {
	case 0:
		return false, nil
	case len(r.events):
		r.res = eventstore.AppendResult{
			Version:  first + eventstore.Version(len(r.events)) - 1,
			Position: eventstore.Position{Commit: lastPos, Prepare: lastPos},
		}
		return true, nil
	}
	return false, wrongVersion(r, head)
}

// write appends r's events after head.
func (s *Store) write(b *pebble.Batch, r *appendReq, head eventstore.Version) {
	w := &s.w
	ps := w.pending[r.stream]
	if ps == nil {
		ps = &pendingStream{first: head + 1}
		w.pending[r.stream] = ps
	}
	r.wrote = true
	r.firstVersion = head + 1
	r.firstPos = w.nextPos
	for i := range r.events {
		v := head + 1 + eventstore.Version(i)
		pos := w.nextPos
		w.nextPos++
		id := r.events[i].ID
		rec := r.record(i)
		setRecordVersion(rec, v)
		w.key = logKey(w.key[:0], pos)
		b.Set(w.key, rec, nil)
		w.key = streamKey(w.key[:0], r.stream, v)
		w.val = binary.BigEndian.AppendUint64(w.val[:0], pos)
		w.val = append(w.val, id[:]...)
		b.Set(w.key, w.val, nil)
		w.key = idKey(w.key[:0], r.stream, id)
		w.val = binary.BigEndian.AppendUint64(w.val[:0], uint64(v))
		w.val = binary.BigEndian.AppendUint64(w.val, pos)
		b.Set(w.key, w.val, nil)
		ps.ids = append(ps.ids, id)
		ps.pos = append(ps.pos, pos)
		if ps.byID != nil {
			ps.byID[id] = len(ps.ids) - 1
		}
	}
	newHead := head + eventstore.Version(len(r.events))
	ps.head = newHead
	w.key = headKey(w.key[:0], r.stream)
	w.val = binary.BigEndian.AppendUint64(w.val[:0], uint64(newHead))
	b.Set(w.key, w.val, nil)
	w.heads.put(r.stream, newHead)
	last := w.nextPos - 1
	r.res = eventstore.AppendResult{Version: newHead, Position: eventstore.Position{Commit: last, Prepare: last}}
}

// head returns the stream's last version, or NoStream.
func (s *Store) head(stream string) (eventstore.Version, error) {
	w := &s.w
	if ps := w.pending[stream]; ps != nil {
		return ps.head, nil
	}
	if v, ok := w.heads.get(stream); ok {
		return v, nil
	}
	w.key = headKey(w.key[:0], stream)
	v, err := s.getUint64(w.key)
	if errors.Is(err, pebble.ErrNotFound) {
		w.heads.put(stream, eventstore.NoStream)
		return eventstore.NoStream, nil
	}
	if err != nil {
		return 0, err
	}
	w.heads.put(stream, eventstore.Version(v))
	return eventstore.Version(v), nil
}

// eventAt returns the ID and position of the event at version v.
func (s *Store) eventAt(stream string, v eventstore.Version) (eventstore.EventID, uint64, bool, error) {
	w := &s.w
	if ps := w.pending[stream]; ps != nil && v >= ps.first {
		i := int(v - ps.first)
		if i >= len(ps.ids) {
			return eventstore.EventID{}, 0, false, nil
		}
		return ps.ids[i], ps.pos[i], true, nil
	}
	w.key = streamKey(w.key[:0], stream, v)
	val, closer, err := s.db.Get(w.key)
	if errors.Is(err, pebble.ErrNotFound) {
		return eventstore.EventID{}, 0, false, nil
	}
	if err != nil {
		return eventstore.EventID{}, 0, false, fmt.Errorf("eventstore/pebble: %w", err)
	}
	defer closer.Close()
	if len(val) != 24 {
		return eventstore.EventID{}, 0, false, ErrCorrupt
	}
	var id eventstore.EventID
	copy(id[:], val[8:])
	return id, decodeUint64(val), true, nil
}

// versionOf looks an event ID up in the stream's event-ID index.
func (s *Store) versionOf(stream string, id eventstore.EventID) (eventstore.Version, uint64, bool, error) {
	w := &s.w
	if ps := w.pending[stream]; ps != nil {
		if ps.byID == nil {
			ps.byID = make(map[eventstore.EventID]int, len(ps.ids))
			for i, id := range ps.ids {
				ps.byID[id] = i
			}
		}
		if i, ok := ps.byID[id]; ok {
			return ps.first + eventstore.Version(i), ps.pos[i], true, nil
		}
	}
	w.key = idKey(w.key[:0], stream, id)
	val, closer, err := s.db.Get(w.key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("eventstore/pebble: %w", err)
	}
	defer closer.Close()
	if len(val) != 16 {
		return 0, 0, false, ErrCorrupt
	}
	return eventstore.Version(decodeUint64(val)), decodeUint64(val[8:]), true, nil
}

func (s *Store) getUint64(key []byte) (uint64, error) {
	val, closer, err := s.db.Get(key)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return 0, err
		}
		return 0, fmt.Errorf("eventstore/pebble: %w", err)
	}
	defer closer.Close()
	if len(val) != 8 {
		return 0, ErrCorrupt
	}
	return decodeUint64(val), nil
}

func decodeUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// runSyncer waits for each applied batch's WAL sync, in order, then
// publishes its events to live subscriptions and answers its appends.
func (s *Store) runSyncer() {
	defer close(s.syncerDone)
	for c := range s.commits {
		if c.batch != nil {
			err := c.batch.SyncWait()
			c.batch.Close()
			if err != nil {
				s.setFailed(err)
			}
		}
		if c.last != 0 {
			if errp := s.failed.Load(); errp != nil {
				// Once one batch failed, later batches were built on
				// top of it and cannot be trusted either.
				failWrites(c, errp)
			} else {
				s.durable.Store(c.last)
				// Subscribers are fed before the appends are answered,
				// while the callers still wait and leave their event
				// slices alone.
				s.hub.publish(c, s.subBuffer)
			}
		}
		for _, r := range c.reqs {
			close(r.done)
		}
	}
}
