package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

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
	// ordered, when not nil, is closed by the writer once it has decided
	// the append into a batch without error: its results are set and its
	// place in the log is fixed. done is closed later, once it is durable
	// or has failed.
	ordered chan struct{}
	// orderedRes, set before ordered is closed, are the parts' results
	// as decided: the caller reads them while the writer may still turn
	// res into a failure (failAll), so they are a copy of their own.
	orderedRes []eventstore.AppendResult

	// Set by the writer before done is closed.
	res   eventstore.AppendResult
	err   error
	wrote bool
	// Where the first event landed, when wrote.
	firstVersion eventstore.Version
	firstPos     uint64

	// parts, for an AppendMulti, are its streams' appends, decided all or
	// none; the request itself then has no stream or events of its own.
	parts []*appendReq
	// answers is how many callers the append answers: more than one when
	// a caller appends for several of its own (AppendMultiOrdered's
	// callers); 0 counts as 1. Group commit waits for that many back.
	answers int
}

// weight is how many callers r answers.
func (r *appendReq) weight() int { return max(r.answers, 1) }

// size is the bytes of records r offers.
func (r *appendReq) size() int {
	n := len(r.buf)
	for _, p := range r.parts {
		n += len(p.buf)
	}
	return n
}

func newAppendReq(ctx context.Context, stream string, expected eventstore.Version, events []eventstore.EventData) (*appendReq, error) {
	size := 0
	for i := range events {
		e := &events[i]
		m := &e.Metadata
		size += recFixedHeader + 16*3 + len(stream) + len(e.Type) + len(e.Data) +
			len(m.Principal) + len(m.Role) + len(m.CorrelationID) + len(m.CausationID) +
			len(m.EffectiveDate) + len(m.Reason) + len(m.DocumentRef) + len(m.PrevHash) + len(m.Hash) + len(m.Source) + len(m.CompletedBy) + len(m.RequestHash)
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

// commit is one group-commit batch: the appends decided into it and the
// Pebble batch holding their writes.
type commit struct {
	batch *pebble.Batch // nil until something is written
	// reqs are the appends of the batch in the order decided, an
	// AppendMulti followed by its parts.
	reqs []*appendReq
	// callers counts the calls waiting for the batch (an AppendMulti is
	// one, whatever its parts).
	callers int
	// answers counts the callers the batch answers, as appendReq.answers
	// counts them.
	answers int
	size    int    // bytes of records offered
	last    uint64 // last position written, 0 when none
	// applied is when the batch went to Pebble.
	applied time.Time
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
	streams []string // scratch for writeIndexes
	order   []int    // scratch for writeIndexes
	// Group-commit gathering; see gather.
	timer      *time.Timer
	skipGather int
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

// runWriter decides appends as they arrive, into the batch being built, and
// hands that batch to Pebble as soon as the previous one is durable. Only
// one batch is ever being synced; whatever arrives meanwhile goes into the
// next, so the appends per WAL sync grow with the load (group commit).
func (s *Store) runWriter() {
	defer close(s.commits)
	s.w.timer = time.NewTimer(time.Hour)
	s.w.timer.Stop()
	cur := &commit{}
	syncing := false
	reqs := s.reqs
	for {
		if !syncing && len(cur.reqs) > 0 {
			s.batched.Store(0)
			s.apply(cur)
			s.commits <- cur
			syncing = true
			cur = &commit{}
		}
		if reqs == nil && !syncing {
			return
		}
		// A full batch takes no more appends; they wait in the queue.
		in := reqs
		if cur.full() {
			in = nil
		}
		select {
		case r, ok := <-in:
			if !ok {
				reqs = nil
				continue
			}
			s.add(cur, r)
		case <-s.synced:
			syncing = false
			if reqs != nil && !s.gather(cur, reqs) {
				reqs = nil
			}
		}
	}
}

// Bounds of the writer's wait for returning appenders. Within them it waits
// no longer than a sync has recently taken: past that, a sync of their own
// costs the callers less than the wait.
const (
	gatherMin = 100 * time.Microsecond
	gatherMax = 2 * time.Millisecond
)

// gather waits, before the next batch goes to Pebble, for the appenders the
// last sync answered. Under concurrent load most appends come from callers
// that append again as soon as they are answered; without the wait, the
// first of them would start a sync of their own and the rest would queue for
// the one after, splitting the callers into two groups that take turns,
// each paying a full sync. With it they share one.
//
// The wait never outlasts a recent sync: if the callers are slower to
// return than the disk is to sync, two groups taking turns cost less. When
// the callers do not come back at all (the appends were independent
// requests), waiting only adds latency, so after a wait that times out with
// fewer than half of them back the writer stops waiting for a while. It
// reports false if reqs was closed.
func (s *Store) gather(cur *commit, reqs <-chan *appendReq) bool {
	w := &s.w
	want := int(s.lastAnswered.Load())
	if want < 2 {
		// A lone caller is back in the next batch anyway.
		return true
	}
	if w.skipGather > 0 {
		w.skipGather--
		return true
	}
	w.timer.Reset(min(max(time.Duration(s.syncTime.Load()), gatherMin), gatherMax))
	defer w.timer.Stop()
	for have := 0; have < want && !cur.full(); {
		select {
		case r, ok := <-reqs:
			if !ok {
				return false
			}
			have += r.weight()
			s.add(cur, r)
		case <-w.timer.C:
			// Most callers back but a straggler: closed loop still, go on
			// gathering next time. Few back: they are not coming.
			if have < want/2 {
				w.skipGather = gatherBackoff
			}
			return true
		}
	}
	return true
}

// gatherBackoff is how many batches go without gathering after a wait timed
// out.
const gatherBackoff = 16

func (c *commit) full() bool {
	return len(c.reqs) >= maxBatchRequests || c.size >= maxBatchBytes
}

// add decides r into the batch c.
func (s *Store) add(c *commit, r *appendReq) {
	s.batched.Add(1)
	c.callers++
	c.answers += r.weight()
	c.reqs = append(c.reqs, r)
	c.reqs = append(c.reqs, r.parts...)
	c.size += r.size()
	if errp := s.failed.Load(); errp != nil {
		r.err = *errp
		return
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return
	}
	var err error
	if r.parts != nil {
		err = s.decideMulti(c, r)
	} else {
		err = s.decide(c, r)
	}
	if err != nil {
		r.err = err
		return
	}
	if r.ordered != nil {
		r.orderedRes = r.results()
		close(r.ordered)
	}
}

// apply hands c's batch to Pebble without waiting for the sync, which the
// syncer waits for. Once applied, the batch is visible to the writer's
// reads through Pebble, so its pending view is no longer needed.
func (s *Store) apply(c *commit) {
	defer clear(s.w.pending)
	if errp := s.failed.Load(); errp != nil {
		// c was decided while the previous batch was syncing, and that
		// sync failed: even a retry's success may point at what it lost.
		if c.batch != nil {
			c.batch.Close()
			c.batch = nil
		}
		failAll(c, errp)
		return
	}
	if c.batch == nil {
		return
	}
	s.writeIndexes(c.batch)
	c.applied = time.Now()
	if err := s.db.ApplyNoSyncWait(c.batch, pebble.Sync); err != nil {
		c.batch.Close()
		c.batch = nil
		s.setFailed(err)
		failAll(c, s.failed.Load())
	}
}

// setFailed stops the store from acknowledging anything more: once a write
// or sync has failed, what Pebble holds can no longer be trusted to match
// what the writer decided, until the store is reopened and reads it back.
func (s *Store) setFailed(err error) {
	err = fmt.Errorf("eventstore/pebble: write failed, store needs reopening: %w", err)
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("event store write failed", "err", err)
	}
}

// failAll turns every success in c into the failure.
func failAll(c *commit, errp *error) {
	for _, r := range c.reqs {
		if r.err == nil {
			r.wrote = false
			r.res = eventstore.AppendResult{}
			r.err = *errp
		}
	}
	c.last = 0
}

// decide checks r's expected version against its stream and either writes
// r's events into c, recognises r as a retry of an append already made, or
// returns the error r fails with.
func (s *Store) decide(c *commit, r *appendReq) error {
	head, write, err := s.check(r)
	if write {
		s.write(c, r, head)
	}
	return err
}

// decideMulti decides the parts of an AppendMulti: each is checked as an
// Append would be, against the head the parts before it leave its stream
// at, and only if every part passes are the parts that are not retries
// written into c, in order. Nothing is written otherwise.
func (s *Store) decideMulti(c *commit, r *appendReq) error {
	heads := make(map[string]eventstore.Version, len(r.parts))
	// writing holds the streams an earlier part writes to in this call;
	// a stream whose earlier parts were all retries may be met again by a
	// retry of the later part too.
	writing := make(map[string]bool, len(r.parts))
	at := make([]eventstore.Version, len(r.parts))
	write := make([]bool, len(r.parts))
	for i, p := range r.parts {
		var head eventstore.Version
		var w bool
		var err error
		if h, seen := heads[p.stream]; seen {
			if p.expected != eventstore.Any && p.expected != h {
				return wrongVersion(p, h)
			}
			if writing[p.stream] {
				at[i], write[i] = h, true
				heads[p.stream] = h + eventstore.Version(len(p.events))
				continue
			}
			// Right after the earlier parts' events, Any included.
			head, w, err = s.checkExpected(p, h)
		} else {
			head, w, err = s.check(p)
		}
		if err != nil {
			return err
		}
		at[i], write[i] = head, w
		if w {
			writing[p.stream] = true
			heads[p.stream] = head + eventstore.Version(len(p.events))
		} else {
			// A retry: the stream continues after the retried events.
			heads[p.stream] = p.res.Version
		}
	}
	for i, p := range r.parts {
		if write[i] {
			s.write(c, p, at[i])
		}
	}
	return nil
}

// check checks r's expected version against its stream's head. It reports
// the head and whether r's events are to be written after it; when they are
// not and the error is nil, r is a retry of an append already made and
// holds that append's result.
func (s *Store) check(r *appendReq) (eventstore.Version, bool, error) {
	return s.checkExpected(r, r.expected)
}

// checkExpected is check with exp in place of r's expected version.
func (s *Store) checkExpected(r *appendReq, exp eventstore.Version) (eventstore.Version, bool, error) {
	head, err := s.head(r.stream)
	if err != nil {
		return 0, false, err
	}
	switch {
	case exp == eventstore.Any || exp == eventstore.StreamExists:
		if head == eventstore.NoStream {
			if exp == eventstore.StreamExists {
				return head, false, wrongVersion(r, head)
			}
			break
		}
		retry, err := s.retryByID(r, head)
		if retry || err != nil {
			return head, false, err
		}
	case exp == eventstore.NoStream:
		if head != eventstore.NoStream {
			return head, false, s.retryAt(r, 0, head)
		}
	default:
		if head > exp {
			return head, false, s.retryAt(r, exp+1, head)
		}
		if head < exp {
			return head, false, wrongVersion(r, head)
		}
	}
	return head, true, nil
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

// write appends r's events after head. The log records go into the batch
// now; the index entries are added when the batch is applied (see
// writeIndexes), from the pending view.
func (s *Store) write(c *commit, r *appendReq, head eventstore.Version) {
	w := &s.w
	if c.batch == nil {
		c.batch = s.db.NewBatch()
	}
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
		c.batch.Set(w.key, rec, nil)
		ps.ids = append(ps.ids, id)
		ps.pos = append(ps.pos, pos)
		if ps.byID != nil {
			ps.byID[id] = len(ps.ids) - 1
		}
	}
	newHead := head + eventstore.Version(len(r.events))
	ps.head = newHead
	w.heads.put(r.stream, newHead)
	c.last = w.nextPos - 1
	r.res = eventstore.AppendResult{Version: newHead, Position: eventstore.Position{Commit: c.last, Prepare: c.last}}
}

// writeIndexes adds to b the stream index and event-ID index entries of
// everything pending. Pebble inserts a batch into its memtable in batch
// order and inserts a key next to the previous one much faster than
// anywhere else, so entries go in key order: each stream's versions in a
// run, then each stream's IDs sorted.
func (s *Store) writeIndexes(b *pebble.Batch) {
	w := &s.w
	streams := w.streams[:0]
	for name := range w.pending {
		streams = append(streams, name)
	}
	slices.Sort(streams)
	for _, name := range streams {
		// One entry per run of events at consecutive positions: an
		// append's events, or appends that followed one another.
		ps := w.pending[name]
		for i := 0; i < len(ps.pos); {
			j := i + 1
			for j < len(ps.pos) && ps.pos[j] == ps.pos[j-1]+1 {
				j++
			}
			w.key = streamKey(w.key[:0], name, ps.first+eventstore.Version(i))
			w.val = appendRun(w.val[:0], ps.pos[i], uint64(j-i))
			b.Set(w.key, w.val, nil)
			i = j
		}
	}
	for _, name := range streams {
		ps := w.pending[name]
		order := w.order[:0]
		for i := range ps.ids {
			order = append(order, i)
		}
		slices.SortFunc(order, func(x, y int) int { return bytes.Compare(ps.ids[x][:], ps.ids[y][:]) })
		for _, i := range order {
			w.key = idKey(w.key[:0], name, ps.ids[i])
			w.val = binary.AppendUvarint(w.val[:0], ps.pos[i])
			b.Set(w.key, w.val, nil)
		}
		w.order = order
	}
	clear(streams)
	w.streams = streams
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
	// Most misses are new streams: a point lookup of version 0, which the
	// bloom filters answer cheaply, settles those without a seek.
	w.key = streamKey(w.key[:0], stream, 0)
	if _, err := s.getPosition(w.key); errors.Is(err, pebble.ErrNotFound) {
		w.heads.put(stream, eventstore.NoStream)
		return eventstore.NoStream, nil
	} else if err != nil {
		return 0, err
	}
	// The stream index's last run ends at the head. Storing heads apart
	// would cost a write per append to save a seek on a cache miss.
	v, _, ok, err := s.runAt(stream, -1)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: stream %q has a first index entry but no last", ErrCorrupt, stream)
	}
	w.heads.put(stream, v)
	return v, nil
}

// runAt finds the stream-index run holding version v (the last run, for a
// negative v) and returns the version and position of the event there (the
// run's last, for a negative v). It reports false when no run holds v.
func (s *Store) runAt(stream string, v eventstore.Version) (eventstore.Version, uint64, bool, error) {
	var lo, hi [2 + eventstore.MaxStreamNameLen + 8]byte
	lower := streamPrefix(lo[:0], stream)
	upper := append(hi[:0], lower...)
	upper[len(upper)-1]++
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, 0, false, storeErr(err)
	}
	defer it.Close()
	var valid bool
	if v < 0 {
		valid = it.Last()
	} else {
		var seek [2 + eventstore.MaxStreamNameLen + 8]byte
		valid = it.SeekLT(streamKey(seek[:0], stream, v+1))
	}
	if !valid {
		return 0, 0, false, storeErr0(it.Error())
	}
	k := it.Key()
	first := eventstore.Version(decodeUint64(k[len(k)-8:]))
	pos, n, ok := decodeRun(it.Value())
	if !ok || len(k) != len(lower)+8 {
		return 0, 0, false, fmt.Errorf("%w: stream %q index entry at version %d is unreadable", ErrCorrupt, stream, first)
	}
	if v < 0 {
		v = first + eventstore.Version(n) - 1
	}
	if v >= first+eventstore.Version(n) {
		return 0, 0, false, nil
	}
	return v, pos + uint64(v-first), true, nil
}

// storeErr0 is storeErr that lets nil through.
func storeErr0(err error) error {
	if err == nil {
		return nil
	}
	return storeErr(err)
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
	_, pos, ok, err := s.runAt(stream, v)
	if err != nil || !ok {
		return eventstore.EventID{}, 0, false, err
	}
	rec, err := s.recordAt(pos)
	if err != nil {
		return eventstore.EventID{}, 0, false, fmt.Errorf("stream %q version %d: %w", stream, v, err)
	}
	return rec.id, pos, true, nil
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
	pos, err := s.getPosition(w.key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	// Found: a retry, which is rare, so the version is read from the
	// record rather than kept in every index entry.
	rec, err := s.recordAt(pos)
	if err != nil {
		return 0, 0, false, fmt.Errorf("event %s of stream %q: %w", id, stream, err)
	}
	if rec.id != id || rec.stream != stream {
		return 0, 0, false, fmt.Errorf("%w: index entry for %s of stream %q points at position %d", ErrCorrupt, id, stream, pos)
	}
	return rec.version, pos, true, nil
}

// getPosition reads an index entry: a position, uvarint-encoded, or the
// first position of a stream-index run.
func (s *Store) getPosition(key []byte) (uint64, error) {
	val, closer, err := s.db.Get(key)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return 0, err
		}
		return 0, storeErr(err)
	}
	defer closer.Close()
	if key[0] == prefixStream {
		pos, _, ok := decodeRun(val)
		if !ok {
			return 0, ErrCorrupt
		}
		return pos, nil
	}
	pos, n := binary.Uvarint(val)
	if n <= 0 || n != len(val) {
		return 0, ErrCorrupt
	}
	return pos, nil
}

// recordHeader is what the writer needs of a stored record.
type recordHeader struct {
	id      eventstore.EventID
	version eventstore.Version
	stream  string
}

// recordAt reads the head of the record at pos.
func (s *Store) recordAt(pos uint64) (recordHeader, error) {
	w := &s.w
	w.key = logKey(w.key[:0], pos)
	rec, closer, err := s.db.Get(w.key)
	if err != nil {
		return recordHeader{}, fmt.Errorf("eventstore/pebble: position %d: %w", pos, err)
	}
	defer closer.Close()
	stream, _, err := recordHead(rec)
	if err != nil {
		return recordHeader{}, fmt.Errorf("%w at position %d", err, pos)
	}
	var h recordHeader
	copy(h.id[:], rec[recIDOff:recFixedHeader])
	h.version = eventstore.Version(binary.BigEndian.Uint64(rec[recVersionOff:]))
	h.stream = string(stream)
	return h, nil
}

func decodeUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// runSyncer waits for each applied batch's WAL sync, lets the writer apply
// the next one at once, then publishes the batch's events to live
// subscriptions and answers its appends.
func (s *Store) runSyncer() {
	defer close(s.syncerDone)
	for c := range s.commits {
		if c.batch != nil {
			err := c.batch.SyncWait()
			c.batch.Close()
			if err != nil {
				s.setFailed(err)
				failAll(c, s.failed.Load())
			} else {
				s.syncs.Add(1)
				// A moving average of how long batches take to become
				// durable, weighting the newest by 1/8.
				d := int64(time.Since(c.applied))
				s.syncTime.Store(s.syncTime.Load() + (d-s.syncTime.Load())/8)
				if s.obs.Batch != nil {
					s.obs.Batch(c.callers, c.events(), time.Duration(d))
				}
			}
		}
		s.lastAnswered.Store(int64(c.answers))
		s.synced <- struct{}{}
		if c.last != 0 {
			s.durable.Store(c.last)
			// Subscribers are fed before the appends are answered, while
			// the callers still wait and leave their event slices alone.
			s.hub.publish(c, s.subBuffer)
		}
		for _, r := range c.reqs {
			close(r.done)
		}
	}
}
