// Package esdb is the EventStoreDB / KurrentDB backend of eventstore.Store,
// over the official gRPC client (github.com/EventStore/EventStore-Client-Go/v4).
//
//	store, err := esdb.New(ctx, "esdb://node1:2113,node2:2113,node3:2113?tls=false")
//
// Streams map one to one onto EventStoreDB streams, versions onto stream
// revisions and positions onto $all's commit/prepare positions. Event IDs
// are sent as given, so a retried append is acknowledged without a second
// write; metadata travel whole as the event's JSON custom metadata. System
// events (a "$" type or stream) never reach readers of the global log.
//
// The client has sharp edges this package files down:
//
//   - A client that loses its server for longer than its discovery budget
//     closes for good, and calls sharing a client while that happens can
//     hang forever, or panic if it is closed under them. So each client
//     serves one call at a time, from a small pool of connected clients; a
//     call that fails for want of a server discards its client and the idle
//     ones, and is repeated once on a fresh client where that is safe:
//     reads, and appends (idempotent by event ID). A client is closed only
//     after its last call.
//   - Some client calls do not look at their context while they wait. Every
//     call therefore runs on a goroutine of its own, and its caller waits
//     no longer than its context allows.
//   - Catch-up subscriptions do not resubscribe by themselves. Subscribe
//     resubscribes from the last event received, with backoff, so a
//     subscription survives server restarts without losing or repeating
//     an event.
//
// While the server cannot be reached, calls fail with errors that match
// ErrUnavailable; the store heals by itself once the server is back.
package esdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"talentledger/eventstore"
)

// DefaultMaxAppendSize is EventStoreDB's default limit on the bytes of one
// append (its MaxAppendSize setting).
const DefaultMaxAppendSize = 1 << 20

// ErrUnavailable is matched (with errors.Is) by errors caused by the server
// being unreachable or failing; retrying later may succeed.
var ErrUnavailable = fmt.Errorf("esdb: server unavailable: %w", eventstore.ErrUnavailable)

// Store is an eventstore.Store backed by EventStoreDB. It is safe for
// concurrent use.
type Store struct {
	cfg           esdbclient.Configuration
	maxEventSize  int
	maxAppendSize int
	backoffMin    time.Duration
	backoffMax    time.Duration

	// closing is cancelled by Close, which ends iterators and
	// subscriptions.
	closing context.Context
	close   context.CancelFunc

	mu     sync.Mutex
	idle   []*conn // connected clients waiting for a call
	gen    uint64  // bumped when idle clients are discarded
	closed bool
}

var _ eventstore.Store = (*Store)(nil)

// Option configures New.
type Option func(*Store)

// WithMaxEventSize sets the largest event accepted (data plus encoded
// metadata); the default is eventstore.DefaultMaxEventSize.
func WithMaxEventSize(n int) Option { return func(s *Store) { s.maxEventSize = n } }

// WithMaxAppendSize sets the largest append accepted, all events' data and
// metadata together. It should not exceed the server's MaxAppendSize; the
// default is DefaultMaxAppendSize.
func WithMaxAppendSize(n int) Option { return func(s *Store) { s.maxAppendSize = n } }

// WithResubscribeBackoff sets how long a dropped subscription waits before
// resubscribing: min after the first failure, doubling up to max.
func WithResubscribeBackoff(min, max time.Duration) Option {
	return func(s *Store) { s.backoffMin, s.backoffMax = min, max }
}

// WithLogger sends the client's own log lines to l. By default they are
// dropped: the client logs every failed call at error level, which the
// store reports through its results anyway.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		s.cfg.Logger = func(level esdbclient.LogLevel, format string, args ...any) {
			lv := slog.LevelInfo
			switch level {
			case esdbclient.LogDebug:
				lv = slog.LevelDebug
			case esdbclient.LogWarn:
				lv = slog.LevelWarn
			case esdbclient.LogError:
				lv = slog.LevelError
			}
			msg := fmt.Sprintf(format, args...)
			if lv > slog.LevelDebug && strings.Contains(msg, context.Canceled.Error()) {
				// A call or subscription its caller cancelled, as every
				// shutdown does: not a fault.
				lv = slog.LevelDebug
			}
			l.Log(context.Background(), lv, "esdb client: "+msg)
		}
	}
}

// New connects to EventStoreDB. connString is the client's connection
// string, for example "esdb://127.0.0.1:2113?tls=false" for one insecure
// node, or "esdb://node1:2113,node2:2113,node3:2113" for a cluster found
// through gossip; see the client's documentation for its settings
// (tls, tlsCAFile, nodePreference, maxDiscoverAttempts, discoveryInterval,
// gossipTimeout, defaultDeadline, keepAliveInterval, …).
//
// New reaches the server before returning, so that a wrong address fails
// at start-up; ctx bounds that first contact only. Errors: ErrInvalid for
// a malformed connection string, ErrUnavailable when no server answers,
// and ctx's error.
func New(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	cfg, err := esdbclient.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("%w: esdb connection string: %s", eventstore.ErrInvalid, redact(connString, err))
	}
	s := &Store{
		cfg:           *cfg,
		maxEventSize:  eventstore.DefaultMaxEventSize,
		maxAppendSize: DefaultMaxAppendSize,
		backoffMin:    50 * time.Millisecond,
		backoffMax:    5 * time.Second,
	}
	s.cfg.Logger = esdbclient.NoopLogging()
	for _, o := range opts {
		o(s)
	}
	if err := s.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: esdb connection string: %v", eventstore.ErrInvalid, err)
	}
	s.closing, s.close = context.WithCancel(context.Background())

	_, err = run(s, ctx, func(_ context.Context, c *esdbclient.Client) (struct{}, error) {
		// Connecting is lazy; asking for the server version runs
		// discovery and nothing else.
		_, err := c.GetServerVersion()
		return struct{}{}, err
	})
	if err != nil {
		s.Close()
		return nil, s.wrap(ctx, "connect", err)
	}
	return s, nil
}

// redact describes a connection-string error without the password.
func redact(connString string, err error) string {
	msg := err.Error()
	if u, perr := url.Parse(strings.ReplaceAll(connString, ",", "/")); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	} else if perr != nil {
		msg = "not a valid URL"
	}
	return msg
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	var none eventstore.AppendResult
	if err := ctx.Err(); err != nil {
		return none, err
	}
	if s.isClosed() {
		return none, eventstore.ErrClosed
	}
	if err := eventstore.ValidateAppend(stream, expected, events, s.maxEventSize); err != nil {
		return none, err
	}
	proposed := make([]esdbclient.EventData, len(events))
	size := 0
	for i := range events {
		p, err := ProposedEvent(&events[i])
		if err != nil {
			return none, fmt.Errorf("%w: event %d metadata: %v", eventstore.ErrInvalidEvent, i, err)
		}
		proposed[i] = p
		size += len(p.Data) + len(p.Metadata)
	}
	if size > s.maxAppendSize {
		return none, fmt.Errorf("%w: the append has %d bytes, limit %d", eventstore.ErrEventTooLarge, size, s.maxAppendSize)
	}
	opts := esdbclient.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}

	wr, err := run(s, ctx, func(ctx context.Context, c *esdbclient.Client) (*esdbclient.WriteResult, error) {
		return c.AppendToStream(ctx, stream, opts, proposed...)
	})
	if err != nil {
		var e *esdbclient.Error
		if errors.As(err, &e) && e.Code() == esdbclient.ErrorCodeWrongExpectedVersion {
			return none, &eventstore.WrongVersionError{Stream: stream, Expected: expected, Actual: s.actualVersion(ctx, stream, e)}
		}
		return none, s.wrap(ctx, "append to "+stream, err)
	}

	res := eventstore.AppendResult{
		Version:  eventstore.Version(wr.NextExpectedVersion),
		Position: eventstore.Position{Commit: wr.CommitPosition, Prepare: wr.PreparePosition},
	}
	// EventStoreDB answers the position of the append's last event, but
	// some versions answer an idempotent retry without one: read it back.
	if res.Position == eventstore.Start {
		if p, ok := s.positionOf(ctx, stream, res.Version); ok {
			res.Position = p
		}
	}
	return res, nil
}

// ProposedEvent returns the event this package sends EventStoreDB for e:
// its ID, type, JSON content type, data, and its metadata as the event's
// JSON custom metadata. The data is a copy.
func ProposedEvent(e *eventstore.EventData) (esdbclient.EventData, error) {
	meta, err := json.Marshal(e.Metadata)
	if err != nil {
		return esdbclient.EventData{}, err
	}
	return esdbclient.EventData{
		EventID:     uuid.UUID(e.ID),
		EventType:   e.Type,
		ContentType: esdbclient.ContentTypeJson,
		// A copy: an abandoned call may still read it after we return.
		Data:     bytes.Clone(e.Data),
		Metadata: meta,
	}, nil
}

// StoredEvent returns the envelope readers of this package see for an
// event EventStoreDB recorded.
func StoredEvent(r *esdbclient.RecordedEvent) (eventstore.Event, error) { return toEvent(r) }

func expectedRevision(v eventstore.Version) esdbclient.ExpectedRevision {
	switch v {
	case eventstore.NoStream:
		return esdbclient.NoStream{}
	case eventstore.Any:
		return esdbclient.Any{}
	case eventstore.StreamExists:
		return esdbclient.StreamExists{}
	}
	return esdbclient.Revision(uint64(v))
}

// actualVersion finds the stream's version after a wrong expected version.
// The client puts it only in the error's text ("expecting 'x' but got
// 'y'"); failing that, the stream's last event is read.
func (s *Store) actualVersion(ctx context.Context, stream string, e *esdbclient.Error) eventstore.Version {
	if e.Err() != nil {
		msg := e.Err().Error()
		if i := strings.LastIndex(msg, "but got '"); i >= 0 {
			got := strings.TrimSuffix(msg[i+len("but got '"):], "'")
			if got == "no_stream" {
				return eventstore.NoStream
			}
			if n, err := strconv.ParseInt(got, 10, 64); err == nil && n >= 0 {
				return eventstore.Version(n)
			}
		}
	}
	v, _ := run(s, ctx, func(ctx context.Context, c *esdbclient.Client) (eventstore.Version, error) {
		rs, err := c.ReadStream(ctx, stream, esdbclient.ReadStreamOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, 1)
		if err != nil {
			return eventstore.NoStream, err
		}
		defer rs.Close()
		ev, err := rs.Recv()
		if err != nil {
			return eventstore.NoStream, err
		}
		return eventstore.Version(ev.OriginalEvent().EventNumber), nil
	})
	return v
}

// positionOf reads the global position of one event of a stream. It is
// best effort: ok is false when the read fails or the server does not
// report the position.
func (s *Store) positionOf(ctx context.Context, stream string, v eventstore.Version) (eventstore.Position, bool) {
	p, err := run(s, ctx, func(ctx context.Context, c *esdbclient.Client) (eventstore.Position, error) {
		rs, err := c.ReadStream(ctx, stream, esdbclient.ReadStreamOptions{From: esdbclient.Revision(uint64(v))}, 1)
		if err != nil {
			return eventstore.Start, err
		}
		defer rs.Close()
		ev, err := rs.Recv()
		if err != nil {
			return eventstore.Start, err
		}
		return toPosition(ev.OriginalEvent().Position), nil
	})
	return p, err == nil && p != eventstore.Start
}

// LastPosition implements eventstore.Store. It reads $all backwards past
// any system events at its end.
func (s *Store) LastPosition(ctx context.Context) (eventstore.Position, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Start, err
	}
	if s.isClosed() {
		return eventstore.Start, eventstore.ErrClosed
	}
	p, err := run(s, ctx, func(ctx context.Context, c *esdbclient.Client) (eventstore.Position, error) {
		rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, math.MaxInt64)
		if err != nil {
			return eventstore.Start, err
		}
		defer rs.Close()
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return eventstore.Start, nil
			}
			if err != nil {
				return eventstore.Start, err
			}
			if r := ev.OriginalEvent(); !isSystem(r) {
				return toPosition(r.Position), nil
			}
		}
	})
	if err != nil {
		return eventstore.Start, s.wrap(ctx, "last position", err)
	}
	return p, nil
}

// Close implements eventstore.Store. It ends open iterators and
// subscriptions; appends in flight complete, and the connection closes
// once they have. Closing a closed store returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return eventstore.ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.close()
	s.closeIdle()
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// wrap turns a client error into the store's: the context's error when
// the context ended, ErrClosed after Close, ErrUnavailable when the server
// could not be reached.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, eventstore.ErrClosed) {
		return err
	}
	if retryable(err) {
		return fmt.Errorf("esdb: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("esdb: %s: %w", op, err)
}

// isSystem reports whether r is an EventStoreDB system event, which the
// global log's readers never see.
func isSystem(r *esdbclient.RecordedEvent) bool {
	return strings.HasPrefix(r.StreamID, "$") || strings.HasPrefix(r.EventType, "$")
}

// toPosition converts a position. Servers that do not know an event's
// position (some versions, reading one stream) send all ones; that becomes
// Start, "unknown".
func toPosition(p esdbclient.Position) eventstore.Position {
	if p.Commit == math.MaxUint64 {
		return eventstore.Start
	}
	return eventstore.Position{Commit: p.Commit, Prepare: p.Prepare}
}

// toEvent converts a recorded event into the store's envelope.
func toEvent(r *esdbclient.RecordedEvent) (eventstore.Event, error) {
	e := eventstore.Event{
		ID:       eventstore.EventID(r.EventID),
		Stream:   r.StreamID,
		Version:  eventstore.Version(r.EventNumber),
		Position: toPosition(r.Position),
		Type:     r.EventType,
		Data:     json.RawMessage(r.Data),
	}
	if len(r.UserMetadata) > 0 {
		if err := json.Unmarshal(r.UserMetadata, &e.Metadata); err != nil {
			return e, fmt.Errorf("esdb: event %s of stream %q: metadata: %w", e.ID, e.Stream, err)
		}
	}
	return e, nil
}
