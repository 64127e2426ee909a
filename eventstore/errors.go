package eventstore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Backends translate their own errors into these, so that
// callers test with errors.Is whatever the backend.
var (
	// ErrWrongVersion is returned, as a *WrongVersionError, when an
	// append's expected version does not match the stream.
	ErrWrongVersion = errors.New("eventstore: wrong expected version")
	// ErrStreamNotFound is reported when reading a stream that does not
	// exist.
	ErrStreamNotFound = errors.New("eventstore: stream not found")
	// ErrClosed is returned by a store that has been closed.
	ErrClosed = errors.New("eventstore: closed")
	// ErrUnavailable reports that a backend's server cannot be reached
	// now; the call may succeed when retried later. Nothing was written,
	// or, for an append, the append may be retried with the same event
	// IDs.
	ErrUnavailable = errors.New("eventstore: unavailable")

	// ErrInvalid is the parent of every bad-input error; each of the
	// errors below also matches it with errors.Is.
	ErrInvalid = errors.New("eventstore: invalid input")
	// ErrInvalidStream reports an empty or malformed stream name.
	ErrInvalidStream = fmt.Errorf("%w: stream name", ErrInvalid)
	// ErrNoEvents reports an append of zero events.
	ErrNoEvents = fmt.Errorf("%w: no events", ErrInvalid)
	// ErrInvalidEvent reports an event with a zero ID, an empty or
	// malformed type, or data that is not JSON.
	ErrInvalidEvent = fmt.Errorf("%w: event", ErrInvalid)
	// ErrDuplicateEventID reports the same event ID twice in one append.
	ErrDuplicateEventID = fmt.Errorf("%w: duplicate event id", ErrInvalid)
	// ErrEventTooLarge reports an event above the store's size limit.
	ErrEventTooLarge = fmt.Errorf("%w: event too large", ErrInvalid)
)

// WrongVersionError carries the versions of a failed optimistic-concurrency
// check. It matches ErrWrongVersion with errors.Is.
type WrongVersionError struct {
	Stream string
	// Expected is what the caller asked for.
	Expected Version
	// Actual is the stream's current version, or NoStream when it does not
	// exist.
	Actual Version
}

func (e *WrongVersionError) Error() string {
	return fmt.Sprintf("eventstore: wrong expected version for stream %q: expected %s, actual %s",
		e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongVersion) true.
func (e *WrongVersionError) Is(target error) bool { return target == ErrWrongVersion }
