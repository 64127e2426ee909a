package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"talentledger/eventstore"
)

// readAhead is how many events a reader fetches ahead of its consumer.
const readAhead = 64

// item is what a pump hands its consumer: an event, or the error (io.EOF
// at the end) that stopped the client stream.
type item struct {
	ev       *esdbclient.ResolvedEvent
	caughtUp bool
	err      error
}

// readPump returns a pump body for a plain read.
func readPump(open func(ctx context.Context, c *esdbclient.Client) (*esdbclient.ReadStream, error)) func(context.Context, *esdbclient.Client, func(item) bool) {
	return func(ctx context.Context, c *esdbclient.Client, send func(item) bool) {
		rs, err := open(ctx, c)
		if err != nil {
			send(item{err: err})
			return
		}
		defer rs.Close()
		for {
			ev, err := rs.Recv()
			if err != nil {
				send(item{err: err})
				return
			}
			if !send(item{ev: ev}) {
				return
			}
		}
	}
}

// iterator reads one stream or $all. After a failure that a new
// connection may cure it reads on from the last event it delivered, once
// for each run of events.
type iterator struct {
	s      *Store
	caller context.Context
	ctx    context.Context // caller's, also cancelled by Close of iterator or store
	cancel context.CancelFunc
	stop   func() bool
	closed atomic.Bool

	// What to read, and from where: the stream from version next, or
	// $all after position after (from the start while !started).
	stream  string
	next    eventstore.Version
	after   eventstore.Position
	started bool

	p       *pump
	retried bool
	ev      eventstore.Event
	err     error
	done    bool
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from eventstore.Version) eventstore.Iterator {
	it := s.newIterator(ctx)
	it.stream, it.next = stream, from
	if err := eventstore.ValidateStreamName(stream); err != nil {
		it.finish(err)
	} else if from < 0 {
		it.finish(fmt.Errorf("%w: read from version %d", eventstore.ErrInvalid, int64(from)))
	}
	return it
}

// ReadAll implements eventstore.Store. It leaves out system events.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position) eventstore.Iterator {
	it := s.newIterator(ctx)
	it.after, it.started = after, after != eventstore.Start
	return it
}

func (s *Store) newIterator(ctx context.Context) *iterator {
	it := &iterator{s: s, caller: ctx}
	it.ctx, it.cancel = context.WithCancel(ctx)
	it.stop = context.AfterFunc(s.closing, it.cancel)
	if err := ctx.Err(); err != nil {
		it.finish(err)
	} else if s.isClosed() {
		it.finish(eventstore.ErrClosed)
	}
	return it
}

func (it *iterator) open() error {
	var open func(context.Context, *esdbclient.Client) (*esdbclient.ReadStream, error)
	if it.stream != "" {
		stream, from := it.stream, uint64(it.next)
		open = func(ctx context.Context, c *esdbclient.Client) (*esdbclient.ReadStream, error) {
			return c.ReadStream(ctx, stream, esdbclient.ReadStreamOptions{From: esdbclient.Revision(from)}, math.MaxInt64)
		}
	} else {
		var from esdbclient.AllPosition = esdbclient.Start{}
		if it.started {
			// Inclusive: the event at after comes again and is skipped.
			from = esdbclient.Position{Commit: it.after.Commit, Prepare: it.after.Prepare}
		}
		open = func(ctx context.Context, c *esdbclient.Client) (*esdbclient.ReadStream, error) {
			return c.ReadAll(ctx, esdbclient.ReadAllOptions{From: from}, math.MaxInt64)
		}
	}
	p, err := it.s.startPump(it.ctx, readPump(open))
	if err != nil {
		return err
	}
	it.p = p
	return nil
}

// Next implements eventstore.Iterator.
func (it *iterator) Next() bool {
	for !it.done {
		// Checked first: buffered events must not outlive a Close or a
		// cancelled context.
		if it.ctx.Err() != nil {
			return it.finish(it.stopErr())
		}
		if it.p == nil {
			if err := it.open(); err != nil {
				return it.finish(err)
			}
		}
		var x item
		select {
		case x = <-it.p.ch:
		case <-it.ctx.Done():
			return it.finish(it.stopErr())
		}
		if x.err != nil {
			if errors.Is(x.err, io.EOF) {
				return it.finish(nil)
			}
			if it.ctx.Err() != nil {
				return it.finish(it.stopErr())
			}
			var e *esdbclient.Error
			if it.stream != "" && errors.As(x.err, &e) && e.Code() == esdbclient.ErrorCodeResourceNotFound {
				return it.finish(fmt.Errorf("esdb: read %s: %w", it.stream, eventstore.ErrStreamNotFound))
			}
			if retryable(x.err) && !it.retried {
				it.retried = true
				it.p.cancel()
				it.p = nil
				continue
			}
			return it.finish(it.s.wrap(it.caller, "read", x.err))
		}
		r := x.ev.OriginalEvent()
		if it.stream == "" {
			pos := toPosition(r.Position)
			if it.started && pos.Compare(it.after) <= 0 {
				continue
			}
			it.after, it.started = pos, true
			if isSystem(r) {
				continue
			}
		}
		e, err := toEvent(r)
		if err != nil {
			return it.finish(err)
		}
		it.next = e.Version + 1
		it.retried = false
		it.ev = e
		return true
	}
	return false
}

// stopErr tells why the iterator's context ended: nil after Close, the
// caller's context's error, or ErrClosed after the store's Close.
func (it *iterator) stopErr() error {
	if it.closed.Load() {
		return nil
	}
	if err := it.caller.Err(); err != nil {
		return err
	}
	return eventstore.ErrClosed
}

// finish ends the iteration with err and releases the client stream.
func (it *iterator) finish(err error) bool {
	if !it.done {
		it.done, it.err = true, err
		it.release()
	}
	return false
}

func (it *iterator) release() {
	if it.p != nil {
		it.p.cancel()
		it.p = nil
	}
	it.stop()
	it.cancel()
}

// Event implements eventstore.Iterator.
func (it *iterator) Event() eventstore.Event { return it.ev }

// Err implements eventstore.Iterator.
func (it *iterator) Err() error { return it.err }

// Close implements eventstore.Iterator.
func (it *iterator) Close() error {
	it.closed.Store(true)
	it.stop()
	it.cancel()
	return nil
}
