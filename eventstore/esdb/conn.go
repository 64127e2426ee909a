package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"talentledger/eventstore"
)

// How the store keeps working clients.
//
// The client's connection goroutine serves the calls of one client over
// an unbuffered channel, and exits for good when a discovery fails. Calls
// that were waiting to send to it then wait forever, whatever their
// context, and closing the client under them makes them panic. Both
// happen when several calls share a client while its server goes away:
// one call's failure makes the next start a discovery, which fails, and
// strands the others.
//
// So a client serves one call at a time. The store keeps a small pool of
// idle clients, so a call usually finds one already connected; a call
// that fails in a way a new connection may cure discards its client and
// every idle one (they share its server's fate), and is repeated once on a
// fresh client where that is safe. A client is closed only by the call
// that holds it, after its last use, so it is never closed under a call.
// Every call runs on a goroutine of ours, so its caller waits no longer
// than its context allows.

// maxIdle is how many idle clients the pool keeps.
const maxIdle = 8

// conn is one client, with the pool generation it belongs to.
type conn struct {
	client *esdbclient.Client
	gen    uint64
}

// acquire takes an idle client, or makes one (connecting lazily, on its
// first call). Every acquire is paired with a release.
func (s *Store) acquire() (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if n := len(s.idle); n > 0 {
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		return c, nil
	}
	cfg := s.cfg
	client, err := esdbclient.NewClient(&cfg)
	if err != nil {
		return nil, err
	}
	return &conn{client: client, gen: s.gen}, nil
}

// release hands c back after a call. A client that failed, or that
// belongs to a flushed generation, is closed, and a failure flushes the
// idle ones.
func (s *Store) release(c *conn, failed bool) {
	s.mu.Lock()
	var discard []*conn
	if failed {
		s.gen++
		discard, s.idle = s.idle, nil
	}
	if failed || s.closed || c.gen != s.gen || len(s.idle) >= maxIdle {
		discard = append(discard, c)
	} else {
		s.idle = append(s.idle, c)
	}
	s.mu.Unlock()
	for _, d := range discard {
		d.client.Close()
	}
}

// closeIdle closes the idle clients, when the store closes.
func (s *Store) closeIdle() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.gen++
	s.mu.Unlock()
	for _, c := range idle {
		c.client.Close()
	}
}

// failed reports whether a call's error condemns its client: it may be
// cured by a new connection, and the call was not simply cancelled. A
// client that says it lost its server is condemned even then.
func failed(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, io.EOF) {
		return false
	}
	var e *esdbclient.Error
	if errors.As(err, &e) && (e.Code() == esdbclient.ErrorCodeConnectionClosed || e.Code() == esdbclient.ErrorUnavailable) {
		return true
	}
	return ctx.Err() == nil && retryable(err)
}

type outcome[T any] struct {
	v   T
	err error
}

// run calls op with a client, and once more with a fresh client if the
// first attempt failed in a way a new connection may cure. op must be safe
// to repeat.
func run[T any](s *Store, ctx context.Context, op func(context.Context, *esdbclient.Client) (T, error)) (T, error) {
	v, err := attempt(s, ctx, op)
	if err == nil || ctx.Err() != nil || !retryable(err) {
		return v, err
	}
	return attempt(s, ctx, op)
}

// attempt runs op once with a client of its own, on its own goroutine,
// and waits for it or for ctx.
func attempt[T any](s *Store, ctx context.Context, op func(context.Context, *esdbclient.Client) (T, error)) (T, error) {
	var zero T
	c, err := s.acquire()
	if err != nil {
		return zero, err
	}
	actx, cancel := context.WithCancel(ctx)
	// Cancelling on return makes a call whose caller gave up end at once,
	// so it cannot write after its caller was told it failed.
	defer cancel()
	done := make(chan outcome[T], 1)
	go func() {
		var o outcome[T]
		defer func() {
			if r := recover(); r != nil {
				o = outcome[T]{err: recovered(r)}
			}
			s.release(c, failed(actx, o.err))
			done <- o
		}()
		o.v, o.err = op(actx, c.client)
	}()
	select {
	case o := <-done:
		return o.v, o.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// recovered turns a panic of the client into an error. The client panics
// on answers it does not expect ("unreachable code"); that should fail the
// call, not take the process down.
func recovered(r any) error {
	return fmt.Errorf("esdb: the client panicked: %v", r)
}

// pump runs one client stream with a client of its own, on its own
// goroutine, handing what it reads to its consumer.
type pump struct {
	ch     chan item
	cancel context.CancelFunc
}

// startPump acquires a client and runs fn with it. fn sends what it reads
// with send, which reports false once the pump is stopped.
func (s *Store) startPump(ctx context.Context, fn func(ctx context.Context, c *esdbclient.Client, send func(item) bool)) (*pump, error) {
	c, err := s.acquire()
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &pump{ch: make(chan item, readAhead), cancel: cancel}
	var last error
	send := func(it item) bool {
		if it.err != nil {
			last = it.err
		}
		select {
		case p.ch <- it:
			return true
		case <-pctx.Done():
			return false
		}
	}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				send(item{err: recovered(r)})
			}
			s.release(c, failed(pctx, last))
		}()
		fn(pctx, c.client, send)
	}()
	return p, nil
}
