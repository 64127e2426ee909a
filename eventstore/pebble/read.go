package pebble

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"talentledger/eventstore"
)

// readChunk is how many events one disk read fetches. A chunk opens and
// closes its own Pebble iterator, so iterators never pin Pebble state
// between calls.
const readChunk = 512

// firstChunk is the size of an iterator's first chunk; each next one is
// twice as large, up to readChunk. Many reads want one event or a few (an
// inclusion proof's event, a stream's predecessor, a sampled record), and
// decoding 512 events to return one would cost a hundred times more.
const firstChunk = 8

// readLog appends to dst the events after position after, at most limit
// of them and none past the durable position, keeping only those that match
// f (nil keeps all). It returns the last position it examined, which is
// after when there was nothing to read.
func (s *Store) readLog(after uint64, limit int, f *eventstore.Filter, in *interner, dst []eventstore.Event) ([]eventstore.Event, uint64, error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return dst, after, eventstore.ErrClosed
	}
	durable := s.durable.Load()
	if after >= durable {
		return dst, after, nil
	}
	upper := min(durable, after+uint64(limit))
	var lo, hi [9]byte
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: logKey(lo[:0], after+1),
		UpperBound: logKey(hi[:0], upper+1),
	})
	if err != nil {
		return dst, after, storeErr(err)
	}
	defer it.Close()
	if f != nil && filterEmpty(f) {
		f = nil
	}
	want := after + 1
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) != 9 || decodeUint64(k[1:]) != want {
			if len(k) == 9 && decodeUint64(k[1:]) > want {
				return dst, after, fmt.Errorf("%w: position %d is missing from the log, which goes on at %d: events were removed", ErrCorrupt, want, decodeUint64(k[1:]))
			}
			return dst, after, fmt.Errorf("%w: log key %x where position %d was expected", ErrCorrupt, k, want)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return dst, after, storeErr(err)
		}
		if f != nil {
			stream, typ, err := recordHead(v)
			if err != nil {
				return dst, after, fmt.Errorf("%w at position %d", err, want)
			}
			if !matchRaw(f, stream, typ) {
				want++
				continue
			}
		}
		dst = append(dst, eventstore.Event{})
		if err := decodeRecord(v, want, &dst[len(dst)-1], in); err != nil {
			return dst[:len(dst)-1], after, fmt.Errorf("%w at position %d", err, want)
		}
		want++
	}
	if err := it.Error(); err != nil {
		return dst, after, storeErr(err)
	}
	if want != upper+1 {
		return dst, after, fmt.Errorf("%w: the log ends at %d, but position %d was acknowledged: events were removed", ErrCorrupt, want-1, upper)
	}
	return dst, upper, nil
}

// readStream appends to dst up to limit durable events of stream from
// version from on.
func (s *Store) readStream(stream string, from eventstore.Version, limit int, in *interner, dst []eventstore.Event) ([]eventstore.Event, error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return dst, eventstore.ErrClosed
	}
	durable := s.durable.Load()
	slo := streamPrefix(nil, stream)
	shi := append([]byte(nil), slo...)
	shi[len(shi)-1]++
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: slo, UpperBound: shi})
	if err != nil {
		return dst, storeErr(err)
	}
	type ref struct {
		v   eventstore.Version
		pos uint64
	}
	refs := make([]ref, 0, min(limit, 64))
	want := from
	// The run holding from is the last one starting at or before it.
	valid := it.SeekLT(streamKey(nil, stream, from+1))
	if !valid && it.Error() == nil {
		valid = it.First()
	}
scan:
	for ; valid && len(refs) < limit; valid = it.Next() {
		k := it.Key()
		pos, n, ok := decodeRun(it.Value())
		if len(k) != len(slo)+8 || !ok {
			it.Close()
			return dst, ErrCorrupt
		}
		first := eventstore.Version(decodeUint64(k[len(k)-8:]))
		if first+eventstore.Version(n) <= want {
			// A run before from: from is past the stream's end.
			continue
		}
		if first > want {
			it.Close()
			return dst, fmt.Errorf("%w: stream %q has version %d where %d was expected", ErrCorrupt, stream, first, want)
		}
		for v := want; v < first+eventstore.Version(n) && len(refs) < limit; v++ {
			p := pos + uint64(v-first)
			if p > durable {
				break scan
			}
			refs = append(refs, ref{v, p})
			want++
		}
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return dst, storeErr(err)
	}
	if len(refs) == 0 {
		return dst, nil
	}
	var lo, up [9]byte
	lit, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: logKey(lo[:0], refs[0].pos),
		UpperBound: logKey(up[:0], refs[len(refs)-1].pos+1),
	})
	if err != nil {
		return dst, storeErr(err)
	}
	defer lit.Close()
	var key [9]byte
	for _, r := range refs {
		// Positions grow with versions, so each seek moves forwards and
		// Pebble can continue from where the last one stopped.
		if !lit.SeekGE(logKey(key[:0], r.pos)) || decodeUint64(lit.Key()[1:]) != r.pos {
			if err := lit.Error(); err != nil {
				return dst, storeErr(err)
			}
			return dst, fmt.Errorf("%w: stream %q version %d points at missing position %d", ErrCorrupt, stream, r.v, r.pos)
		}
		v, err := lit.ValueAndErr()
		if err != nil {
			return dst, storeErr(err)
		}
		dst = append(dst, eventstore.Event{})
		e := &dst[len(dst)-1]
		if err := decodeRecord(v, r.pos, e, in); err != nil || e.Version != r.v || e.Stream != stream {
			return dst[:len(dst)-1], fmt.Errorf("%w at position %d", ErrCorrupt, r.pos)
		}
	}
	return dst, nil
}

// streamExists reports whether stream has a durable first event.
func (s *Store) streamExists(stream string) (bool, error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return false, eventstore.ErrClosed
	}
	val, closer, err := s.db.Get(streamKey(nil, stream, 0))
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, storeErr(err)
	}
	defer closer.Close()
	pos, _, ok := decodeRun(val)
	if !ok {
		return false, ErrCorrupt
	}
	return pos <= s.durable.Load(), nil
}

// ReadStream implements eventstore.Store. Only durable events are read.
//
// Err reports eventstore.ErrStreamNotFound, eventstore.ErrInvalidStream or
// eventstore.ErrInvalid (a negative from), eventstore.ErrClosed, the
// context's error, or ErrCorrupt when the stored data is damaged.
func (s *Store) ReadStream(ctx context.Context, stream string, from eventstore.Version) eventstore.Iterator {
	it := &iterator{ctx: ctx, s: s, stream: stream, from: from, isStream: true}
	if err := eventstore.ValidateStreamName(stream); err != nil {
		it.err = err
	} else if from < 0 {
		it.err = fmt.Errorf("%w: read from version %d", eventstore.ErrInvalid, int64(from))
	}
	return it
}

// ReadAll implements eventstore.Store. Only durable events are read.
//
// Err reports eventstore.ErrClosed, the context's error, or ErrCorrupt when
// the stored log is damaged or has a gap.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position) eventstore.Iterator {
	return &iterator{ctx: ctx, s: s, after: after.Commit}
}

// iterator serves ReadStream and ReadAll from chunks read on demand.
type iterator struct {
	ctx      context.Context
	s        *Store
	isStream bool
	stream   string
	from     eventstore.Version // next version, for a stream
	after    uint64             // last position read, for the log
	started  bool
	end      bool

	buf []eventstore.Event
	i   int
	cur eventstore.Event
	err error
	// pending is an error met after the events in buf, reported once
	// they are delivered, so a reader learns the last good event.
	pending error
	closed  bool
	in      interner
	// chunk is the size of the next chunk read; 0 before the first.
	chunk int
}

func (it *iterator) Next() bool {
	if it.closed || it.err != nil {
		return false
	}
	if done := it.ctx.Done(); done != nil {
		select {
		case <-done:
			it.err = it.ctx.Err()
			it.cur = eventstore.Event{}
			return false
		default:
		}
	}
	if it.i < len(it.buf) {
		it.cur = it.buf[it.i]
		it.i++
		return true
	}
	if it.pending != nil {
		it.err, it.cur = it.pending, eventstore.Event{}
		return false
	}
	if it.end {
		return false
	}
	if err := it.fill(); err != nil {
		if len(it.buf) == 0 {
			it.err = err
			return false
		}
		it.pending = err
	}
	if len(it.buf) == 0 {
		it.end = true
		return false
	}
	it.cur = it.buf[0]
	it.i = 1
	return true
}

func (it *iterator) fill() error {
	// Reuse the chunk's slice: Event is only valid until the next call to
	// Next, and the slice holds values, not pointers into it.
	clear(it.buf)
	buf := it.buf[:0]
	var err error
	it.chunk = min(max(it.chunk*2, firstChunk), readChunk)
	if !it.isStream {
		buf, it.after, err = it.s.readLog(it.after, it.chunk, nil, &it.in, buf)
	} else if !it.started && it.from == 0 {
		// A point lookup, which Pebble's bloom filters make cheap, first:
		// new streams are read often (every new grant, every
		// Idempotency-Key), and an iterator seek finds them absent only
		// after visiting every level.
		var exists bool
		if exists, err = it.s.streamExists(it.stream); err == nil && !exists {
			err = eventstore.ErrStreamNotFound
		} else if err == nil {
			buf, err = it.s.readStream(it.stream, it.from, it.chunk, &it.in, buf)
		}
		it.from += eventstore.Version(len(buf))
	} else {
		buf, err = it.s.readStream(it.stream, it.from, it.chunk, &it.in, buf)
		if err == nil && len(buf) == 0 && !it.started {
			// Nothing at from: either past the end or no such stream.
			exists := false
			if it.from > 0 {
				exists, err = it.s.streamExists(it.stream)
			}
			if err == nil && !exists {
				err = eventstore.ErrStreamNotFound
			}
		}
		it.from += eventstore.Version(len(buf))
	}
	it.started = true
	it.buf, it.i = buf, 0
	return err
}

func (it *iterator) Event() eventstore.Event { return it.cur }

func (it *iterator) Err() error { return it.err }

func (it *iterator) Close() error {
	it.closed = true
	it.buf = nil
	return nil
}
