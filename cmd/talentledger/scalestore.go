package main

import (
	"context"
	"fmt"
	"sync"

	"talentledger/eventstore"
)

// scaleStore is the store the scale generator's domain service writes to.
// The generator is the store's only writer and runs its commands one at a
// time, so an append can be acknowledged at once, before it is durable:
// the service decides exactly as it would on the real store. The appends
// are then written to the real store in the order they were acknowledged,
// many at a time in one multi-stream append (eventstore.MultiAppender:
// one batch and one WAL sync for thousands of appends), each at the exact
// version it was acknowledged at. The global log is therefore exactly the
// sequence of appends the domain made, as if each had been durable at
// once.
type scaleStore struct {
	eventstore.Store // the real store: reads, subscriptions, the last position

	// peek sees every event as it is acknowledged, for the generator to
	// learn what the domain decided (installment due dates, clawbacks).
	peek func(stream string, ev *eventstore.EventData)

	mu      sync.Mutex
	changed *sync.Cond
	// heads holds each stream's version after its last acknowledged
	// append, and the sequence number of that append.
	heads map[string]scaleHead
	// queue holds the appends acknowledged and not yet handed to the real
	// store, in order; queued counts their events.
	queue  []eventstore.AppendPart
	queued int
	// acked numbers the appends acknowledged; written is the number of
	// the last one the real store has made durable.
	acked, written uint64
	closed         bool
	// readers counts the reads waiting for appends to be written: the
	// queue is written as soon as one waits, or else once it holds
	// scaleMaxBatch events.
	readers     int
	err         error
	flusherDone chan struct{}
	// durable counts the events written to the real store, calls the
	// calls that wrote them.
	durable, calls uint64
}

type scaleHead struct {
	version eventstore.Version
	seq     uint64
}

// scaleMaxPending bounds the events acknowledged but not yet durable: the
// generator waits when it is that far ahead of the real store.
// scaleMaxBatch bounds the events of one call to the real store.
const (
	scaleMaxPending = 200_000
	scaleMaxBatch   = 20_000
)

func newScaleStore(real eventstore.Store, peek func(string, *eventstore.EventData)) *scaleStore {
	s := &scaleStore{Store: real, peek: peek, heads: map[string]scaleHead{}, flusherDone: make(chan struct{})}
	s.changed = sync.NewCond(&s.mu)
	go s.flush()
	return s
}

// Append acknowledges the append at once and queues it.
func (s *scaleStore) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if len(events) == 0 {
		return eventstore.AppendResult{}, eventstore.ErrNoEvents
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.queued >= scaleMaxPending && s.err == nil {
		s.changed.Wait()
	}
	if s.err != nil {
		return eventstore.AppendResult{}, s.err
	}
	if s.closed {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	h, ok := s.heads[stream]
	if !ok {
		h.version = eventstore.NoStream
	}
	if expected != eventstore.Any && expected != h.version {
		return eventstore.AppendResult{}, &eventstore.WrongVersionError{Stream: stream, Expected: expected, Actual: h.version}
	}
	evs := append([]eventstore.EventData(nil), events...)
	s.queue = append(s.queue, eventstore.AppendPart{Stream: stream, Expected: h.version, Events: evs})
	s.queued += len(evs)
	s.acked++
	h.version += eventstore.Version(len(evs))
	h.seq = s.acked
	s.heads[stream] = h
	s.changed.Broadcast()
	if s.peek != nil {
		for i := range evs {
			s.peek(stream, &evs[i])
		}
	}
	// The position is not known before the append is written; the service
	// keeps it only to answer retries, which the generator never makes.
	return eventstore.AppendResult{Version: h.version}, nil
}

// ReadStream reads the real store once the stream's appends are durable.
func (s *scaleStore) ReadStream(ctx context.Context, stream string, from eventstore.Version) eventstore.Iterator {
	s.mu.Lock()
	if h, ok := s.heads[stream]; ok {
		s.readers++
		s.changed.Broadcast()
		for s.written < h.seq && s.err == nil {
			s.changed.Wait()
		}
		s.readers--
	}
	s.mu.Unlock()
	return s.Store.ReadStream(ctx, stream, from)
}

// flush writes the queue to the real store, in order, up to scaleMaxBatch
// events a call, once it holds that many, a read waits for it, or the
// store is drained.
func (s *scaleStore) flush() {
	defer close(s.flusherDone)
	multi, _ := s.Store.(eventstore.MultiAppender)
	for {
		s.mu.Lock()
		for (len(s.queue) == 0 || s.queued < scaleMaxBatch && s.readers == 0) && !s.closed && s.err == nil {
			s.changed.Wait()
		}
		if len(s.queue) == 0 || s.err != nil {
			s.mu.Unlock()
			return
		}
		n, k := 0, 0
		for k < len(s.queue) && (k == 0 || n+len(s.queue[k].Events) <= scaleMaxBatch) {
			n += len(s.queue[k].Events)
			k++
		}
		batch := s.queue[:k:k]
		s.queue = s.queue[k:]
		if len(s.queue) == 0 {
			s.queue = nil
		}
		last := s.written + uint64(k)
		s.mu.Unlock()

		var err error
		if multi != nil {
			_, err = multi.AppendMulti(context.Background(), batch...)
		} else {
			for _, p := range batch {
				if _, err = s.Store.Append(context.Background(), p.Stream, p.Expected, p.Events...); err != nil {
					break
				}
			}
		}
		s.mu.Lock()
		s.calls++
		if err != nil {
			if s.err == nil {
				s.err = fmt.Errorf("scale store: writing appends %d to %d: %w", s.written+1, last, err)
			}
		} else {
			s.written = last
			s.queued -= n
			s.durable += uint64(n)
		}
		s.changed.Broadcast()
		s.mu.Unlock()
	}
}

// Durable returns how many events the real store holds from this writer.
func (s *scaleStore) Durable() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable
}

// Drain waits until every acknowledged append is durable and returns the
// first error writing one met. The store takes no appends afterwards.
func (s *scaleStore) Drain() error {
	s.mu.Lock()
	s.closed = true
	s.changed.Broadcast()
	s.mu.Unlock()
	<-s.flusherDone
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && s.queued != 0 {
		s.err = fmt.Errorf("scale store: %d events left unwritten", s.queued)
	}
	if s.err == nil {
		s.err = eventstore.ErrClosed
		return nil
	}
	return s.err
}
