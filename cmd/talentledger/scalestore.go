package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"talentledger/eventstore"
)

// scaleStore is the store the scale generator's domain service writes to.
// The generator is the store's only writer and runs its commands one at a
// time, so an append can be acknowledged at once, before it is durable:
// the service decides exactly as it would on the real store. The appends
// are then written to the real store in waves, each wave's appends at
// once, so that the store's group commit makes one WAL sync of many
// appends instead of one sync each.
//
// Waves keep every order a reader can see: an append goes into the first
// wave after its stream's previous append and after its chain's previous
// append, a chain being a sequence of commands that depend on each other
// (one talent's registration, grants and payments). Appends of one wave
// touch different streams and different chains, so their order within the
// global log does not matter to anything folded from it.
type scaleStore struct {
	eventstore.Store // the real store: reads, subscriptions, the last position

	// peek sees every event as it is acknowledged, for the generator to
	// learn what the domain decided (installment due dates, clawbacks).
	peek func(stream string, ev *eventstore.EventData)

	mu      sync.Mutex
	changed *sync.Cond
	streams map[string]*scaleStream
	chains  map[string]uint64
	waves   map[uint64][]*scaleAppend
	// issued is the last wave handed to the real store, written the last
	// wave it has made durable.
	issued, written uint64
	pending         int // events acknowledged, not yet durable
	closed          bool
	err             error
	flusherDone     chan struct{}
	// durable counts the events written to the real store.
	durable uint64
}

type scaleStream struct {
	head eventstore.Version
	wave uint64
}

type scaleAppend struct {
	stream   string
	expected eventstore.Version
	events   []eventstore.EventData
}

// scaleChainKey is the context key of the chain an append belongs to.
type scaleChainKey struct{}

// withChain returns ctx marking its appends as part of chain.
func withChain(ctx context.Context, chain string) context.Context {
	return context.WithValue(ctx, scaleChainKey{}, chain)
}

// scaleMaxPending bounds the events acknowledged but not yet durable: the
// generator waits when it is that far ahead of the real store.
const scaleMaxPending = 200_000

func newScaleStore(real eventstore.Store, peek func(string, *eventstore.EventData)) *scaleStore {
	s := &scaleStore{Store: real, peek: peek, streams: map[string]*scaleStream{}, chains: map[string]uint64{},
		waves: map[uint64][]*scaleAppend{}, flusherDone: make(chan struct{})}
	s.changed = sync.NewCond(&s.mu)
	go s.flush()
	return s
}

// Append acknowledges the append at once and queues it for its wave.
func (s *scaleStore) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if len(events) == 0 {
		return eventstore.AppendResult{}, eventstore.ErrNoEvents
	}
	chain, _ := ctx.Value(scaleChainKey{}).(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.pending > scaleMaxPending && s.err == nil {
		s.changed.Wait()
	}
	if s.err != nil {
		return eventstore.AppendResult{}, s.err
	}
	st := s.streams[stream]
	head := eventstore.NoStream
	if st != nil {
		head = st.head
	}
	if expected != eventstore.Any && expected != head {
		return eventstore.AppendResult{}, &eventstore.WrongVersionError{Stream: stream, Expected: expected, Actual: head}
	}
	if st == nil {
		st = &scaleStream{head: eventstore.NoStream}
		s.streams[stream] = st
	}
	wave := max(st.wave, s.chains[chain], s.issued) + 1
	evs := append([]eventstore.EventData(nil), events...)
	s.waves[wave] = append(s.waves[wave], &scaleAppend{stream: stream, expected: head, events: evs})
	st.wave = wave
	st.head += eventstore.Version(len(evs))
	s.chains[chain] = wave
	s.pending += len(evs)
	s.changed.Broadcast()
	if s.peek != nil {
		for i := range evs {
			s.peek(stream, &evs[i])
		}
	}
	// The position is not known before the wave is written; the service
	// keeps it only to answer retries, which the generator never makes.
	return eventstore.AppendResult{Version: st.head}, nil
}

// ReadStream reads the real store once the stream's appends are durable.
func (s *scaleStore) ReadStream(ctx context.Context, stream string, from eventstore.Version) eventstore.Iterator {
	s.mu.Lock()
	if st := s.streams[stream]; st != nil {
		for s.written < st.wave && s.err == nil {
			s.changed.Wait()
		}
	}
	s.mu.Unlock()
	return s.Store.ReadStream(ctx, stream, from)
}

// flush writes wave after wave to the real store.
func (s *scaleStore) flush() {
	defer close(s.flusherDone)
	for {
		s.mu.Lock()
		for len(s.waves[s.issued+1]) == 0 && !s.closed && s.err == nil {
			s.changed.Wait()
		}
		w := s.issued + 1
		batch := s.waves[w]
		if len(batch) == 0 || s.err != nil {
			s.mu.Unlock()
			return
		}
		delete(s.waves, w)
		s.issued = w
		// Chains and streams last touched before this wave can never
		// hold back a later one: forget them, so memory follows the
		// chains in flight rather than every chain ever seen.
		if w%4096 == 0 {
			for c, cw := range s.chains {
				if cw < w {
					delete(s.chains, c)
				}
			}
		}
		s.mu.Unlock()

		errs := make([]error, len(batch))
		n := 0
		var wg sync.WaitGroup
		for i, a := range batch {
			n += len(a.events)
			wg.Go(func() {
				_, errs[i] = s.Store.Append(context.Background(), a.stream, a.expected, a.events...)
			})
		}
		wg.Wait()
		err := errors.Join(errs...)
		s.mu.Lock()
		s.written = w
		s.pending -= n
		s.durable += uint64(n)
		if err != nil && s.err == nil {
			s.err = fmt.Errorf("scale store: writing wave %d: %w", w, err)
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
	if s.err == nil && s.pending != 0 {
		s.err = fmt.Errorf("scale store: %d events left unwritten", s.pending)
	}
	if s.err == nil {
		s.err = eventstore.ErrClosed
		return nil
	}
	return s.err
}
