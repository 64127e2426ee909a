package pebble

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"talentledger/eventstore"
)

// CheckIndexEntry checks that the stream index and the event-ID index both
// point at e, an event read from the log: a damaged index would make the
// store misjudge a retry or a stream's head. It returns an error wrapping
// ErrCorrupt when either does not.
func (s *Store) CheckIndexEntry(e *eventstore.Event) error {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return eventstore.ErrClosed
	}
	_, pos, ok, err := s.runAt(e.Stream, e.Version)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w: the stream index entry of the event is missing", ErrCorrupt)
	case pos != e.Position.Commit:
		return fmt.Errorf("%w: the stream index entry of the event points at position %d", ErrCorrupt, pos)
	}
	var ikey [2 + eventstore.MaxStreamNameLen + 16]byte
	val, closer, err := s.db.Get(idKey(ikey[:0], e.Stream, e.ID))
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%w: the event-ID index entry of the event is missing", ErrCorrupt)
	}
	if err != nil {
		return storeErr(err)
	}
	pos, n := binary.Uvarint(val)
	closer.Close()
	if n <= 0 || n != len(val) {
		return fmt.Errorf("%w: the event-ID index entry of the event is unreadable", ErrCorrupt)
	}
	if pos != e.Position.Commit {
		return fmt.Errorf("%w: the event-ID index entry of the event points at position %d", ErrCorrupt, pos)
	}
	return nil
}

// CheckIndexTotals scans both indexes and checks that each covers exactly
// last events, none past position last: the event-ID index with an entry
// an event, the stream index with runs whose lengths add up. With
// CheckIndexEntry on each of the log's last events, it proves the indexes
// and the log agree one to one: no index entry for an event that was
// removed from the log.
func (s *Store) CheckIndexTotals(ctx context.Context, last uint64) error {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return eventstore.ErrClosed
	}
	// The two indexes are scanned side by side: at a start the check is
	// on the way to serving, and each scan reads one entry an event (an
	// append's run) of the whole log.
	indexes := []struct {
		prefix byte
		name   string
	}{{prefixStream, "stream index"}, {prefixID, "event-ID index"}}
	errs := make([]error, len(indexes))
	var wg sync.WaitGroup
	for i, t := range indexes {
		wg.Go(func() { errs[i] = s.checkIndexTotal(ctx, t.prefix, t.name, last) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkIndexTotal scans the index under prefix and checks that it covers
// exactly last events, none past position last. s.rmu is held.
func (s *Store) checkIndexTotal(ctx context.Context, prefix byte, name string, last uint64) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return storeErr(err)
	}
	var n, entries uint64
	for valid := it.First(); valid; valid = it.Next() {
		if entries%4096 == 0 && ctx.Err() != nil {
			it.Close()
			return ctx.Err()
		}
		entries++
		val, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return storeErr(err)
		}
		pos, count, ok := decodeRun(val)
		if prefix == prefixID {
			var k int
			pos, k = binary.Uvarint(val)
			count, ok = 1, k > 0 && k == len(val)
		}
		if !ok || pos == 0 || pos+count-1 > last {
			key := it.Key()
			it.Close()
			return fmt.Errorf("%w: %s entry %q points at position %d, outside the log of %d events", ErrCorrupt, name, key[1:], pos+count-1, last)
		}
		n += count
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return storeErr(err)
	}
	if n != last {
		return fmt.Errorf("%w: the %s covers %d events for a log of %d events", ErrCorrupt, name, n, last)
	}
	return nil
}

// metaKey returns the key of a store-wide fact. Names must not be "format".
func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// PutMeta durably records a store-wide fact under name, outside the log:
// the integrity checks keep their checkpoint and the last witnessed tree
// head here.
func (s *Store) PutMeta(name string, value []byte) error {
	if name == "" || name == "format" {
		return fmt.Errorf("%w: meta name %q", eventstore.ErrInvalid, name)
	}
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return eventstore.ErrClosed
	}
	if err := s.db.Set(metaKey(name), value, pebble.Sync); err != nil {
		return storeErr(err)
	}
	return nil
}

// Meta returns the fact recorded under name, or nil when there is none.
func (s *Store) Meta(name string) ([]byte, error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return nil, eventstore.ErrClosed
	}
	v, closer, err := s.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr(err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// Checkpoint writes a consistent copy of the store into dir, which must not
// exist, while the store keeps serving: a Pebble checkpoint, whose files
// are hard links where the file system allows. The copy holds at least
// every event durable when Checkpoint was called.
func (s *Store) Checkpoint(dir string) error {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return eventstore.ErrClosed
	}
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return storeErr(err)
	}
	return nil
}

// An index digest is an order-independent sum of index entries, a
// stream-index run counting as one entry for each of its events: the
// count, then the SHA-256 of each entry's key and value summed lane by lane
// (four 64-bit lanes, wrapping). A whole walk of the log adds what each
// event's two entries should be (AddIndexDigest) and compares the sum with
// one sequential scan of the indexes (IndexDigest) instead of two point
// reads an event. It finds damage, not forgery: the hash chains and the
// witnessed heads are what forgery has to beat.

// AddIndexDigest adds to d the digest of the stream-index and event-ID
// index entries that should point at e.
func (s *Store) AddIndexDigest(d *[5]uint64, e *eventstore.Event) {
	var kb [2 + eventstore.MaxStreamNameLen + 16]byte
	var vb [binary.MaxVarintLen64]byte
	val := binary.AppendUvarint(vb[:0], e.Position.Commit)
	addDigest(d, streamKey(kb[:0], e.Stream, e.Version), val)
	addDigest(d, idKey(kb[:0], e.Stream, e.ID), val)
}

// IndexDigest returns the digest of every index entry that points at a
// position up to last. Entries past last, written since, are left out, so
// it can be taken while the store appends.
func (s *Store) IndexDigest(ctx context.Context, last uint64) ([5]uint64, error) {
	var d [5]uint64
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return d, eventstore.ErrClosed
	}
	for _, prefix := range []byte{prefixStream, prefixID} {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
		if err != nil {
			return d, storeErr(err)
		}
		n := 0
		for valid := it.First(); valid; valid = it.Next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				it.Close()
				return d, ctx.Err()
			}
			val, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return d, storeErr(err)
			}
			if prefix == prefixStream {
				addRunDigest(&d, it.Key(), val, last)
				continue
			}
			if pos, k := binary.Uvarint(val); k > 0 && pos > last {
				continue
			}
			addDigest(&d, it.Key(), val)
		}
		err = it.Error()
		it.Close()
		if err != nil {
			return d, storeErr(err)
		}
	}
	return d, nil
}

// addRunDigest adds to d, for each event of a stream-index run up to
// position last, the digest of a one-event entry pointing at it, which
// is what AddIndexDigest adds for the event. An unreadable entry is added
// as it is, so that the sums differ.
func addRunDigest(d *[5]uint64, key, val []byte, last uint64) {
	pos, count, ok := decodeRun(val)
	if !ok || len(key) < 9 {
		addDigest(d, key, val)
		return
	}
	var kb [2 + eventstore.MaxStreamNameLen + 8]byte
	var vb [binary.MaxVarintLen64]byte
	k := append(kb[:0], key...)
	first := decodeUint64(key[len(key)-8:])
	for i := range count {
		if pos+i > last {
			return
		}
		binary.BigEndian.PutUint64(k[len(k)-8:], first+i)
		addDigest(d, k, binary.AppendUvarint(vb[:0], pos+i))
	}
}

func addDigest(d *[5]uint64, key, val []byte) {
	var buf [3 + eventstore.MaxStreamNameLen + 16 + binary.MaxVarintLen64]byte
	sum := sha256.Sum256(append(append(append(buf[:0], key...), 0), val...))
	d[0]++
	for i := range 4 {
		d[1+i] += binary.BigEndian.Uint64(sum[8*i:])
	}
}
