package pebble

import (
	"context"
	"sync"

	"talentledger/eventstore"
)

// hub fans durable batches out to the subscriptions attached to the live
// feed. The syncer calls publish; it never blocks on a subscriber.
type hub struct {
	mu sync.Mutex
	// published is the last position handed to the live feed. A
	// subscription that has examined everything up to published can attach
	// without missing anything.
	published uint64
	subs      map[*subscription]struct{}
	scratch   []eventstore.Event
}

// publish hands c's events to every attached subscription. A subscription
// whose buffer cannot take them is detached and marked overflowed; it will
// read them from disk.
func (h *hub) publish(c *commit, capacity int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) > 0 {
		evs := h.scratch[:0]
		for _, r := range c.reqs {
			if !r.wrote {
				continue
			}
			for i := range r.events {
				e := &r.events[i]
				evs = append(evs, eventstore.Event{
					ID:       e.ID,
					Stream:   r.stream,
					Version:  r.firstVersion + eventstore.Version(i),
					Position: pos(r.firstPos + uint64(i)),
					Type:     e.Type,
					// The store's own copy: the caller may reuse its
					// slice once Append returns.
					Data:     r.data(i),
					Metadata: e.Metadata,
				})
			}
		}
		for sub := range h.subs {
			if !sub.deliver(evs, c.last, capacity) {
				delete(h.subs, sub)
			}
		}
		clear(evs)
		h.scratch = evs[:0]
	}
	h.published = c.last
}

// attach adds sub to the live feed if it has examined everything published
// so far, and reports whether it did.
func (h *hub) attach(sub *subscription, scanned uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.published > scanned {
		return false
	}
	sub.mu.Lock()
	sub.liveUpTo = scanned
	sub.overflow = false
	sub.mu.Unlock()
	if h.subs == nil {
		h.subs = make(map[*subscription]struct{})
	}
	h.subs[sub] = struct{}{}
	return true
}

func (h *hub) detach(sub *subscription) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

func pos(p uint64) eventstore.Position { return eventstore.Position{Commit: p, Prepare: p} }

// Subscribe implements eventstore.Store. Only durable events are delivered.
//
// A subscription first reads from disk; once it has read everything durable
// it attaches to the live feed. If it falls more than the subscription
// buffer behind (see WithSubscriptionBuffer) it is detached, reads from disk
// again and re-attaches when it has caught up, so it never misses nor
// repeats an event and never holds more than its buffer.
//
// After Next returns false, Err is nil if the subscription was closed, the
// context's error if it is done, eventstore.ErrClosed if the store was
// closed, or a read error (ErrCorrupt for damaged data).
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, filter eventstore.Filter) eventstore.Subscription {
	sub := &subscription{
		s:       s,
		ctx:     ctx,
		filter:  filter,
		scanned: after.Commit,
		signal:  make(chan struct{}, 1),
		closed:  make(chan struct{}),
	}
	if filterEmpty(&sub.filter) {
		sub.filterp = nil
	} else {
		sub.filterp = &sub.filter
	}
	return sub
}

// subscription is one catch-up subscription. Its exported methods belong to
// one consumer goroutine, except Close, which may be called from any.
type subscription struct {
	s       *Store
	ctx     context.Context
	filter  eventstore.Filter
	filterp *eventstore.Filter // nil when the filter selects everything

	// Consumer state.
	scanned uint64 // every position up to here has been examined
	live    bool
	buf     []eventstore.Event
	bufUpTo uint64 // scanned becomes this once buf is consumed
	i       int
	cur     eventstore.Event
	err     error
	stopped bool
	in      interner

	// Shared with the hub, under mu.
	mu       sync.Mutex
	ring     []eventstore.Event // matching live events not yet taken
	liveUpTo uint64             // ring covers every position up to here
	overflow bool               // detached by the hub; read from disk

	signal    chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

// deliver adds the matching events of a batch ending at last. It reports
// false, marking the subscription overflowed, when its buffer is full.
// The hub holds its lock.
func (sub *subscription) deliver(evs []eventstore.Event, last uint64, capacity int) bool {
	sub.mu.Lock()
	ok := true
	added := false
	if sub.liveUpTo < last {
		n := len(sub.ring)
		for i := range evs {
			e := &evs[i]
			if e.Position.Commit <= sub.liveUpTo || (sub.filterp != nil && !sub.filterp.Match(e)) {
				continue
			}
			if len(sub.ring) >= capacity {
				ok = false
				break
			}
			sub.ring = append(sub.ring, *e)
			added = true
		}
		if ok {
			sub.liveUpTo = last
		} else {
			// Drop this batch's events: the subscriber will read them
			// from disk after liveUpTo.
			clear(sub.ring[n:])
			sub.ring = sub.ring[:n]
			sub.overflow = true
		}
	}
	sub.mu.Unlock()
	// A batch with nothing for this subscriber only moves liveUpTo, which
	// it picks up with its next events; no need to wake it.
	if added || !ok {
		select {
		case sub.signal <- struct{}{}:
		default:
		}
	}
	return ok
}

func (sub *subscription) Next() bool {
	for !sub.stopped {
		if sub.stop() {
			return false
		}
		if sub.i < len(sub.buf) {
			e := sub.buf[sub.i]
			sub.buf[sub.i] = eventstore.Event{}
			sub.i++
			if sub.live {
				// Live events share their data with other subscribers.
				e.Data = append([]byte(nil), e.Data...)
			}
			sub.cur = e
			return true
		}
		sub.scanned = max(sub.scanned, sub.bufUpTo)
		if !sub.live {
			if err := sub.readDisk(); err != nil {
				sub.fail(err)
				return false
			}
			continue
		}
		if sub.takeLive() {
			continue
		}
		select {
		case <-sub.signal:
		case <-sub.closed:
		case <-sub.ctx.Done():
		case <-sub.s.done:
		}
	}
	return false
}

// stop checks whether the subscription must end and records why.
func (sub *subscription) stop() bool {
	select {
	case <-sub.closed:
		sub.fail(nil)
		return true
	default:
	}
	if err := sub.ctx.Err(); err != nil {
		sub.fail(err)
		return true
	}
	select {
	case <-sub.s.done:
		sub.fail(eventstore.ErrClosed)
		return true
	default:
	}
	return false
}

func (sub *subscription) fail(err error) {
	sub.err = err
	sub.stopped = true
	sub.cur = eventstore.Event{}
	sub.buf = nil
	sub.s.hub.detach(sub)
}

// readDisk reads the next chunk after scanned, or attaches to the live feed
// when there is nothing left to read.
func (sub *subscription) readDisk() error {
	buf, upTo, err := sub.s.readLog(sub.scanned, readChunk, sub.filterp, &sub.in, sub.buf[:0])
	if err != nil {
		return err
	}
	sub.buf, sub.i, sub.bufUpTo = buf, 0, upTo
	if upTo > sub.scanned {
		return nil
	}
	// Caught up with what is durable. Attaching fails only if a batch was
	// published meanwhile, which the next read will find.
	sub.live = sub.s.hub.attach(sub, sub.scanned)
	return nil
}

// takeLive moves what the hub delivered into buf and reports whether there
// was anything to take (events, progress or a fall back to disk).
func (sub *subscription) takeLive() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.ring) == 0 && sub.liveUpTo <= sub.scanned && !sub.overflow {
		return false
	}
	// buf has been consumed (and zeroed) by now; the hub refills it.
	sub.buf, sub.ring = sub.ring, sub.buf[:0]
	sub.i, sub.bufUpTo = 0, sub.liveUpTo
	if sub.overflow {
		// Already detached by the hub. What was buffered is still valid;
		// after it, read from disk.
		sub.overflow = false
		sub.live = false
	}
	return true
}

func (sub *subscription) Event() eventstore.Event { return sub.cur }

func (sub *subscription) Err() error { return sub.err }

// Close ends the subscription; a Next blocked in another goroutine returns
// false with a nil Err. It is safe to call more than once.
func (sub *subscription) Close() error {
	sub.closeOnce.Do(func() {
		close(sub.closed)
		sub.s.hub.detach(sub)
	})
	return nil
}
