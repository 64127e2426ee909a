package memstore_test

import (
	"context"
	"errors"

	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
)

// conn is a closable handle on a shared store, as a client connection to a
// server is: closing it fails its own later calls, ends its own iterators
// and subscriptions with ErrClosed, and leaves the store open for others.
type conn struct {
	store  *memstore.Store
	ctx    context.Context // done once the connection is closed
	cancel context.CancelFunc
}

var _ eventstore.Store = (*conn)(nil)

func connect(s *memstore.Store) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{store: s, ctx: ctx, cancel: cancel}
}

func (c *conn) Close() error {
	if c.ctx.Err() != nil {
		return eventstore.ErrClosed
	}
	c.cancel()
	return nil
}

func (c *conn) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if c.ctx.Err() != nil {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	return c.store.Append(ctx, stream, expected, events...)
}

func (c *conn) LastPosition(ctx context.Context) (eventstore.Position, error) {
	if c.ctx.Err() != nil {
		return eventstore.Start, eventstore.ErrClosed
	}
	return c.store.LastPosition(ctx)
}

func (c *conn) ReadStream(ctx context.Context, stream string, from eventstore.Version) eventstore.Iterator {
	return c.iterate(ctx, func(ctx context.Context) eventstore.Iterator { return c.store.ReadStream(ctx, stream, from) })
}

func (c *conn) ReadAll(ctx context.Context, after eventstore.Position) eventstore.Iterator {
	return c.iterate(ctx, func(ctx context.Context) eventstore.Iterator { return c.store.ReadAll(ctx, after) })
}

func (c *conn) Subscribe(ctx context.Context, after eventstore.Position, filter eventstore.Filter) eventstore.Subscription {
	return c.iterate(ctx, func(ctx context.Context) eventstore.Iterator { return c.store.Subscribe(ctx, after, filter) })
}

// iterate opens an iterator whose context is also cancelled, with the cause
// ErrClosed, when the connection closes.
func (c *conn) iterate(ctx context.Context, open func(context.Context) eventstore.Iterator) eventstore.Iterator {
	if c.ctx.Err() != nil {
		return closedIterator{}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(c.ctx, func() { cancel(eventstore.ErrClosed) })
	return &connIterator{Iterator: open(ctx), ctx: ctx, release: func() { stop(); cancel(nil) }}
}

type connIterator struct {
	eventstore.Iterator
	ctx     context.Context
	release func()
}

func (it *connIterator) Err() error {
	err := it.Iterator.Err()
	if errors.Is(err, context.Canceled) && errors.Is(context.Cause(it.ctx), eventstore.ErrClosed) {
		return eventstore.ErrClosed
	}
	return err
}

func (it *connIterator) Close() error {
	err := it.Iterator.Close()
	it.release()
	return err
}

type closedIterator struct{}

func (closedIterator) Next() bool              { return false }
func (closedIterator) Event() eventstore.Event { return eventstore.Event{} }
func (closedIterator) Err() error              { return eventstore.ErrClosed }
func (closedIterator) Close() error            { return nil }
