// Package eventstore defines the append-only event store that talentledger is
// built on: streams with optimistic concurrency, a totally ordered global log,
// and catch-up subscriptions over that log.
//
// The package holds only the vocabulary (the Store interface, the event
// envelope, versions, positions and errors). Backends live in subpackages:
// eventstore/pebble is the embedded default and eventstore/esdb talks to
// EventStoreDB / KurrentDB. Both run the same contract suite in
// eventstore/eventstoretest, so they behave the same. A store may also
// offer an atomic append to several streams (MultiAppender); the embedded
// one does, EventStoreDB has no such transaction.
package eventstore

import (
	"context"
	"encoding/json"
	"time"
)

// Store is an append-only event store.
//
// Every method honours its context: a cancelled context makes it return the
// context's error (or report it through the iterator's Err) and, for Append,
// write nothing.
type Store interface {
	// Append atomically appends events to one stream if the stream's current
	// version matches expected. It returns only once the events are durable.
	//
	// Appending event IDs that the stream already holds at the same expected
	// version is an idempotent retry: the original result is returned and
	// nothing is written. A partial overlap is a version conflict.
	//
	// Errors: ErrWrongVersion (as *WrongVersionError) on a version mismatch;
	// ErrInvalid and its refinements (ErrInvalidStream, ErrNoEvents,
	// ErrInvalidEvent, ErrDuplicateEventID, ErrEventTooLarge) for bad input;
	// ErrClosed after Close; the context's error when it is done.
	Append(ctx context.Context, stream string, expected Version, events ...EventData) (AppendResult, error)

	// ReadStream reads one stream forwards, starting at version from
	// (inclusive). Reading a stream that does not exist ends at once with
	// ErrStreamNotFound from Err; reading past the end of an existing stream
	// ends with no error.
	ReadStream(ctx context.Context, stream string, from Version) Iterator

	// ReadAll reads the global log forwards, starting with the first event
	// after position after. Start reads from the beginning.
	ReadAll(ctx context.Context, after Position) Iterator

	// Subscribe delivers the global log's events after position after, first
	// those already stored (catch-up), then new ones as they are appended
	// (live), in global order, without gaps or duplicates. Only events that
	// match filter are delivered. The subscription ends when ctx is done or
	// it is closed.
	Subscribe(ctx context.Context, after Position, filter Filter) Subscription

	// LastPosition returns the position of the newest event in the global
	// log, or Start when the log is empty.
	LastPosition(ctx context.Context) (Position, error)

	// Close releases the store. Appends in flight either complete or fail
	// with ErrClosed; later calls fail with ErrClosed.
	Close() error
}

// MultiAppender is implemented by a Store that can append to several
// streams in one atomic step. It is optional: callers check for it with a
// type assertion and, on a store without it, append stream by stream.
type MultiAppender interface {
	// AppendMulti appends each part to its stream, in the order given,
	// all or nothing: either every part is appended (or recognised as an
	// idempotent retry, as Append recognises one), or none is and nothing
	// is written. The parts' events take consecutive global positions in
	// the order of the parts, and become durable together, in one sync.
	// It returns once they are durable, with one result per part.
	//
	// Each part's expected version is checked as Append checks it. A part
	// naming a stream that an earlier part of the same call also names is
	// checked against the version the earlier parts leave the stream at,
	// and only an exact version or Any is accepted there. A version
	// conflict on any part fails the whole call with that part's
	// *WrongVersionError.
	//
	// Errors: as Append's; ErrNoEvents for no parts; ErrDuplicateEventID
	// for one event ID twice in the call.
	AppendMulti(ctx context.Context, parts ...AppendPart) ([]AppendResult, error)
}

// OrderedAppender is implemented by a MultiAppender that can report an
// append's place in the log before the append is durable. It is optional,
// like MultiAppender.
type OrderedAppender interface {
	MultiAppender
	// AppendMultiOrdered appends as AppendMulti does, but returns as soon
	// as the store has decided the append and fixed its place in the log:
	// its results are final from then on, every append the store decides
	// after it is written after it, and none of those becomes durable
	// before it does. The append is not yet durable: wait returns once it
	// is, with nil, or with the error that makes it fail (a failed write
	// or sync, after which the store acknowledges nothing more). Nothing
	// may be acknowledged on the strength of the append before wait
	// returns nil.
	//
	// A caller deciding its next append on the state this one leaves need
	// not wait for the sync: the store orders the next after this one,
	// and fails it if this one fails.
	//
	// callers is how many callers of its own the append answers (the
	// commands of a batch), which a store's group commit may wait for to
	// come back with their next appends before its next sync.
	//
	// Errors, before it returns: as AppendMulti's; then wait is nil.
	AppendMultiOrdered(ctx context.Context, callers int, parts ...AppendPart) (res []AppendResult, wait func() error, err error)
}

// AppendPart is one stream's part of a multi-stream append.
type AppendPart struct {
	Stream   string
	Expected Version
	Events   []EventData
}

// EventData is an event proposed for appending.
type EventData struct {
	// ID is chosen by the caller and is what makes retries idempotent. It
	// must not be the zero ID.
	ID EventID
	// Type is a stable name such as "GrantApproved", never a reflected Go
	// type name.
	Type string
	// Data is the event's JSON payload.
	Data json.RawMessage
	// Metadata is stored with the event and returned unchanged.
	Metadata Metadata
	// ValidJSON promises that Data is valid JSON, as the output of a JSON
	// encoder is, so that the store does not scan it again. Bytes from
	// anywhere else (an import, a client) leave it false and are checked.
	ValidJSON bool
}

// Event is a stored event: the envelope every reader sees.
type Event struct {
	ID       EventID         `json:"id"`
	Stream   string          `json:"stream"`
	Version  Version         `json:"version"`
	Position Position        `json:"position"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata Metadata        `json:"metadata"`
}

// Metadata describes who recorded an event, why and under which request, and
// links the event into its stream's hash chain. The store keeps it exactly as
// given; it never fills anything in, so a hash computed before the append
// still matches what is read back.
type Metadata struct {
	// Principal and Role identify the actor.
	Principal string `json:"principal,omitempty"`
	Role      string `json:"role,omitempty"`
	// CorrelationID ties together all events caused by one user request;
	// CausationID names the event or request that directly caused this one.
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	// RecordedAt is when the command was decided.
	RecordedAt time.Time `json:"recorded_at,omitzero"`
	// EffectiveDate (YYYY-MM-DD) is the business date, where it differs
	// from the recording date.
	EffectiveDate string `json:"effective_date,omitempty"`
	Reason        string `json:"reason,omitempty"`
	DocumentRef   string `json:"document_ref,omitempty"`
	// Source is "import" for history entered offline by an import (its
	// dates are historical), empty for a live command.
	Source string `json:"source,omitempty"`
	// CompletedBy names who finished a step that Principal decided,
	// when it was not Principal: "reconcile" for the ledger's own
	// completion of an interrupted flow, or the principal whose retry
	// completed it.
	CompletedBy string `json:"completed_by,omitempty"`
	// RequestHash is set on every event of a command sent with an
	// Idempotency-Key: the hex SHA-256 of the request it came in (its
	// method, path and body). A retry of the command finds the command's
	// events by their IDs and is answered from them when its request
	// hash is the same, refused when it is not. The hash chain does not
	// cover it: it decides no figure, and a changed one could only turn
	// a retry's answer into a refusal or the reverse, never append.
	RequestHash string `json:"request_hash,omitempty"`
	// PrevHash and Hash link the event into its stream's hash chain (hex
	// SHA-256).
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

// AppendResult reports where an append landed.
type AppendResult struct {
	// Version is the stream version of the last event appended.
	Version Version `json:"version"`
	// Position is the global position of the last event appended.
	Position Position `json:"position"`
}

// Filter selects the events a subscription delivers. An empty filter
// selects all events. Both lists, when non-empty, must match.
type Filter struct {
	// StreamPrefixes selects events whose stream starts with any of these.
	StreamPrefixes []string
	// EventTypes selects events whose type is one of these. They are
	// stored types: an event schema version above 1 is part of the type
	// ("GrantApproved.v2"), so a filter names every version it wants.
	EventTypes []string
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *Event) bool {
	if len(f.StreamPrefixes) > 0 {
		ok := false
		for _, p := range f.StreamPrefixes {
			if len(e.Stream) >= len(p) && e.Stream[:len(p)] == p {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.EventTypes) > 0 {
		for _, t := range f.EventTypes {
			if e.Type == t {
				return true
			}
		}
		return false
	}
	return true
}

// Iterator walks events in order, in the manner of database/sql.Rows:
//
//	it := store.ReadStream(ctx, "grant-1", 0)
//	defer it.Close()
//	for it.Next() {
//		e := it.Event()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
type Iterator interface {
	// Next advances to the next event, returning false at the end or on an
	// error.
	Next() bool
	// Event returns the current event. It is valid until the next call to
	// Next.
	Event() Event
	// Err returns the error that stopped iteration, if any.
	Err() error
	// Close releases the iterator. It is safe to call more than once.
	Close() error
}

// Subscription is an iterator over the global log whose Next blocks until an
// event arrives, the context is done, the subscription is closed or it
// fails. After Next returns false, Err tells why: nil after Close, the
// context's error, or the failure.
type Subscription interface {
	Iterator
}
