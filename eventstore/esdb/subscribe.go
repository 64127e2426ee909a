package esdb

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"talentledger/eventstore"
)

// errDropped stands in for a drop the client reports without a reason.
var errDropped = errors.New("esdb: subscription dropped")

// subscription is a catch-up subscription to $all that resubscribes after
// every drop, from the last event it received, until its context ends, it
// is closed or the server refuses it.
type subscription struct {
	s      *Store
	caller context.Context
	ctx    context.Context
	cancel context.CancelFunc
	stop   func() bool
	closed atomic.Bool

	filter eventstore.Filter
	server *esdbclient.SubscriptionFilter
	// after is the position of the last event received (from the start
	// while !started); resubscribing starts after it, and anything at or
	// before it is a repeat.
	after   eventstore.Position
	started bool

	p        *pump
	failures int // drops since the last event or catch-up
	ev       eventstore.Event
	err      error
	done     bool
}

// Subscribe implements eventstore.Store. The filter is applied by the
// server where EventStoreDB can (one stream-prefix or event-type filter,
// or else one that leaves out system events) and always again here, so
// only matching, non-system events are delivered. A subscription survives
// server restarts and connection losses: it resubscribes with backoff and
// never gives up by itself, except when the server refuses it.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, filter eventstore.Filter) eventstore.Subscription {
	sub := &subscription{
		s:      s,
		caller: ctx,
		filter: eventstore.Filter{
			StreamPrefixes: slices.Clone(filter.StreamPrefixes),
			EventTypes:     slices.Clone(filter.EventTypes),
		},
		after:   after,
		started: after != eventstore.Start,
	}
	sub.server = serverFilter(sub.filter)
	sub.ctx, sub.cancel = context.WithCancel(ctx)
	sub.stop = context.AfterFunc(s.closing, sub.cancel)
	if err := ctx.Err(); err != nil {
		sub.finish(err)
	} else if s.isClosed() {
		sub.finish(eventstore.ErrClosed)
	}
	return sub
}

// serverFilter returns the part of f that EventStoreDB can apply: it takes
// one filter, on stream prefixes or on event types, and a filter is always
// sent so that the server drops system events early.
func serverFilter(f eventstore.Filter) *esdbclient.SubscriptionFilter {
	if len(f.StreamPrefixes) > 0 && !slices.Contains(f.StreamPrefixes, "") {
		return &esdbclient.SubscriptionFilter{Type: esdbclient.StreamFilterType, Prefixes: slices.Clone(f.StreamPrefixes)}
	}
	if len(f.EventTypes) > 0 {
		quoted := make([]string, len(f.EventTypes))
		for i, t := range f.EventTypes {
			quoted[i] = regexp.QuoteMeta(t)
		}
		return &esdbclient.SubscriptionFilter{Type: esdbclient.EventFilterType, Regex: "^(?:" + strings.Join(quoted, "|") + ")$"}
	}
	return esdbclient.ExcludeSystemEventsFilter()
}

func (sub *subscription) open() error {
	opts := esdbclient.SubscribeToAllOptions{Filter: sub.server, From: esdbclient.Start{}}
	if sub.started {
		// Subscription positions are exclusive.
		opts.From = esdbclient.Position{Commit: sub.after.Commit, Prepare: sub.after.Prepare}
	}
	p, err := sub.s.startPump(sub.ctx, func(ctx context.Context, c *esdbclient.Client, send func(item) bool) {
		cs, err := c.SubscribeToAll(ctx, opts)
		if err != nil {
			send(item{err: err})
			return
		}
		defer cs.Close()
		for {
			e := cs.Recv()
			switch {
			case e.EventAppeared != nil:
				if !send(item{ev: e.EventAppeared}) {
					return
				}
			case e.CaughtUp != nil:
				if !send(item{caughtUp: true}) {
					return
				}
			case e.SubscriptionDropped != nil:
				err := e.SubscriptionDropped.Error
				if err == nil {
					err = errDropped
				}
				send(item{err: err})
				return
			}
			// Checkpoints are not used: resuming from the last event
			// received is exact, and the server filters again anyway.
		}
	})
	if err != nil {
		return err
	}
	sub.p = p
	return nil
}

// Next implements eventstore.Subscription.
func (sub *subscription) Next() bool {
	for !sub.done {
		if sub.ctx.Err() != nil {
			return sub.finish(sub.stopErr())
		}
		if sub.p == nil {
			if sub.failures > 0 {
				t := time.NewTimer(sub.backoff())
				select {
				case <-t.C:
				case <-sub.ctx.Done():
					t.Stop()
					return sub.finish(sub.stopErr())
				}
			}
			if err := sub.open(); err != nil {
				return sub.finish(sub.s.wrap(sub.caller, "subscribe", err))
			}
		}
		var x item
		select {
		case x = <-sub.p.ch:
		case <-sub.ctx.Done():
			return sub.finish(sub.stopErr())
		}
		if x.err != nil {
			if sub.ctx.Err() != nil {
				return sub.finish(sub.stopErr())
			}
			if permanent(x.err) {
				return sub.finish(sub.s.wrap(sub.caller, "subscribe", x.err))
			}
			sub.p.cancel()
			sub.p = nil
			sub.failures++
			continue
		}
		if x.caughtUp {
			sub.failures = 0
			continue
		}
		r := x.ev.OriginalEvent()
		pos := toPosition(r.Position)
		if sub.started && pos.Compare(sub.after) <= 0 {
			continue
		}
		sub.after, sub.started = pos, true
		if isSystem(r) {
			continue
		}
		e, err := toEvent(r)
		if err != nil {
			return sub.finish(err)
		}
		if !sub.filter.Match(&e) {
			continue
		}
		sub.failures = 0
		sub.ev = e
		return true
	}
	return false
}

// backoff is the wait before the next resubscription: doubling from the
// minimum with each failure in a row, up to the maximum.
func (sub *subscription) backoff() time.Duration {
	d := sub.s.backoffMin
	for i := 1; i < sub.failures && d < sub.s.backoffMax; i++ {
		d *= 2
	}
	return min(d, sub.s.backoffMax)
}

func (sub *subscription) stopErr() error {
	if sub.closed.Load() {
		return nil
	}
	if err := sub.caller.Err(); err != nil {
		return err
	}
	return eventstore.ErrClosed
}

func (sub *subscription) finish(err error) bool {
	if !sub.done {
		sub.done, sub.err = true, err
		if sub.p != nil {
			sub.p.cancel()
			sub.p = nil
		}
		sub.stop()
		sub.cancel()
	}
	return false
}

// Event implements eventstore.Subscription.
func (sub *subscription) Event() eventstore.Event { return sub.ev }

// Err implements eventstore.Subscription.
func (sub *subscription) Err() error { return sub.err }

// Close implements eventstore.Subscription. It may be called while Next
// waits, from another goroutine; Next then returns false and Err nil.
func (sub *subscription) Close() error {
	sub.closed.Store(true)
	sub.stop()
	sub.cancel()
	return nil
}
