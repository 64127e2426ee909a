package eventstore

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Version is an event's number within its stream, counted from 0, or, when
// passed to Append as an expected version, one of NoStream, Any and
// StreamExists.
type Version int64

// Special expected versions.
const (
	// NoStream expects the stream not to exist yet. In a WrongVersionError's
	// Actual field it means the stream does not exist.
	NoStream Version = -1
	// Any appends whatever the stream's state.
	Any Version = -2
	// StreamExists expects the stream to hold at least one event.
	StreamExists Version = -4
)

// String returns "no_stream", "any", "stream_exists" or the decimal version.
func (v Version) String() string {
	switch v {
	case NoStream:
		return "no_stream"
	case Any:
		return "any"
	case StreamExists:
		return "stream_exists"
	}
	return strconv.FormatInt(int64(v), 10)
}

// ParseVersion parses what String prints.
func ParseVersion(s string) (Version, error) {
	switch s {
	case "no_stream":
		return NoStream, nil
	case "any":
		return Any, nil
	case "stream_exists":
		return StreamExists, nil
	}
	n, ok := ParseUint(s)
	if !ok || n > math.MaxInt64 {
		return 0, fmt.Errorf("%w: version %q", ErrInvalid, s)
	}
	return Version(n), nil
}

// ParseUint parses a whole number written as String writes one: decimal
// digits only, without a sign, a leading zero, white space or separators,
// and at most math.MaxUint64. Versions, positions and every count read
// from outside go through it, so that one number has one spelling.
func ParseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 20 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// Valid reports whether v is an exact version or one of the special values.
func (v Version) Valid() bool {
	return v >= 0 || v == NoStream || v == Any || v == StreamExists
}

// Position is an event's place in the global log. Positions only grow; two
// positions compare with Compare. The embedded store numbers its events
// 1, 2, 3, … and sets Commit and Prepare alike; EventStoreDB supplies its
// own commit/prepare pair. The zero value, Start, precedes every event.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Start is the position before the first event.
var Start = Position{}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Commit < q.Commit:
		return -1
	case p.Commit > q.Commit:
		return 1
	case p.Prepare < q.Prepare:
		return -1
	case p.Prepare > q.Prepare:
		return 1
	}
	return 0
}

// Before reports whether p precedes q.
func (p Position) Before(q Position) bool { return p.Compare(q) < 0 }

// String prints "N" when commit and prepare agree, else "commit/prepare".
func (p Position) String() string {
	if p.Commit == p.Prepare {
		return strconv.FormatUint(p.Commit, 10)
	}
	return strconv.FormatUint(p.Commit, 10) + "/" + strconv.FormatUint(p.Prepare, 10)
}

// MarshalText implements encoding.TextMarshaler, so positions travel in JSON
// and query strings as their String form.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// ParsePosition parses what String prints.
func ParsePosition(s string) (Position, error) {
	c, pr, two := strings.Cut(s, "/")
	commit, ok := ParseUint(c)
	if !ok {
		return Start, fmt.Errorf("%w: position %q", ErrInvalid, s)
	}
	if !two {
		return Position{Commit: commit, Prepare: commit}, nil
	}
	prepare, ok := ParseUint(pr)
	if !ok {
		return Start, fmt.Errorf("%w: position %q", ErrInvalid, s)
	}
	return Position{Commit: commit, Prepare: prepare}, nil
}
