package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits on what a store accepts.
const (
	// DefaultMaxEventSize is the default limit on one event's data plus
	// encoded metadata.
	DefaultMaxEventSize = 1 << 20
	// MaxStreamNameLen is the longest stream name accepted.
	MaxStreamNameLen = 200
	// MaxEventTypeLen is the longest event type accepted.
	MaxEventTypeLen = 100
)

// ValidateStreamName checks a stream name: 1 to MaxStreamNameLen bytes of
// ASCII letters, digits and "-_.:@", starting with a letter or digit (so never
// an EventStoreDB system stream, which starts with "$").
func ValidateStreamName(stream string) error {
	if stream == "" {
		return fmt.Errorf("%w: empty", ErrInvalidStream)
	}
	if len(stream) > MaxStreamNameLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidStream, MaxStreamNameLen)
	}
	for i := 0; i < len(stream); i++ {
		c := stream[i]
		if isAlnum(c) || (i > 0 && (c == '-' || c == '_' || c == '.' || c == ':' || c == '@')) {
			continue
		}
		return fmt.Errorf("%w: %q has a disallowed character at byte %d", ErrInvalidStream, stream, i)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// smallAppend is the most events ValidateAppend checks for duplicate IDs
// without a map.
const smallAppend = 16

// ValidateAppend checks an append's arguments as every backend must before
// writing anything: the stream name, the expected version, at least one
// event, each event's ID, type, JSON data and size (data plus encoded
// metadata at most maxEventSize bytes), and no event ID twice.
func ValidateAppend(stream string, expected Version, events []EventData, maxEventSize int) error {
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	if !expected.Valid() {
		return fmt.Errorf("%w: expected version %d", ErrInvalid, int64(expected))
	}
	if len(events) == 0 {
		return ErrNoEvents
	}
	// A few events are compared pairwise; a map pays off above that.
	var seen map[EventID]struct{}
	if len(events) > smallAppend {
		seen = make(map[EventID]struct{}, len(events))
	}
	for i := range events {
		e := &events[i]
		if e.ID.IsZero() {
			return fmt.Errorf("%w: event %d has the zero id", ErrInvalidEvent, i)
		}
		if seen != nil {
			if _, dup := seen[e.ID]; dup {
				return fmt.Errorf("%w: %s", ErrDuplicateEventID, e.ID)
			}
			seen[e.ID] = struct{}{}
		} else {
			for j := range i {
				if events[j].ID == e.ID {
					return fmt.Errorf("%w: %s", ErrDuplicateEventID, e.ID)
				}
			}
		}
		if err := validateEventType(e.Type); err != nil {
			return fmt.Errorf("%w: event %d: %v", ErrInvalidEvent, i, err)
		}
		if len(e.Data) > maxEventSize {
			return fmt.Errorf("%w: event %d has %d bytes of data, limit %d", ErrEventTooLarge, i, len(e.Data), maxEventSize)
		}
		if !e.ValidJSON && !json.Valid(e.Data) {
			return fmt.Errorf("%w: event %d data is not JSON", ErrInvalidEvent, i)
		}
		meta, err := MetadataSize(&e.Metadata)
		if err != nil {
			return fmt.Errorf("%w: event %d metadata: %v", ErrInvalidEvent, i, err)
		}
		if n := len(e.Data) + meta; n > maxEventSize {
			return fmt.Errorf("%w: event %d has %d bytes, limit %d", ErrEventTooLarge, i, n, maxEventSize)
		}
	}
	return nil
}

// ValidateAppendMulti checks a multi-stream append's arguments as
// ValidateAppend checks each part, and that no event ID appears twice in
// the whole call.
func ValidateAppendMulti(parts []AppendPart, maxEventSize int) error {
	if len(parts) == 0 {
		return ErrNoEvents
	}
	n := 0
	// first holds the first part naming each stream, once there are
	// parts enough for the pairwise check to cost more than the map.
	var first map[string]int
	if len(parts) > 16 {
		first = make(map[string]int, len(parts))
	}
	for i := range parts {
		p := &parts[i]
		if err := ValidateAppend(p.Stream, p.Expected, p.Events, maxEventSize); err != nil {
			return fmt.Errorf("part %d: %w", i, err)
		}
		if first != nil {
			j, seen := first[p.Stream]
			if !seen {
				first[p.Stream] = i
			} else if p.Expected == NoStream || p.Expected == StreamExists {
				return fmt.Errorf("%w: part %d expects stream %q at %s, after part %d appended to it", ErrInvalid, i, p.Stream, p.Expected, j)
			}
		} else if p.Expected == NoStream || p.Expected == StreamExists {
			for j := range i {
				if parts[j].Stream == p.Stream {
					return fmt.Errorf("%w: part %d expects stream %q at %s, after part %d appended to it", ErrInvalid, i, p.Stream, p.Expected, j)
				}
			}
		}
		n += len(p.Events)
	}
	if len(parts) == 1 {
		return nil
	}
	seen := make(map[EventID]struct{}, n)
	for i := range parts {
		for _, e := range parts[i].Events {
			if _, dup := seen[e.ID]; dup {
				return fmt.Errorf("%w: %s", ErrDuplicateEventID, e.ID)
			}
			seen[e.ID] = struct{}{}
		}
	}
	return nil
}

func validateEventType(t string) error {
	if t == "" {
		return fmt.Errorf("empty type")
	}
	if len(t) > MaxEventTypeLen {
		return fmt.Errorf("type longer than %d bytes", MaxEventTypeLen)
	}
	if t[0] == '$' {
		return fmt.Errorf("type %q is reserved", t)
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("type %q has a disallowed character", t)
		}
	}
	return nil
}

// MetadataSize returns the length of m encoded as JSON by encoding/json,
// byte for byte, without encoding it: the size an event's metadata counts
// towards the store's limit. It fails where encoding would: a recorded-at
// time that RFC 3339 cannot express.
func MetadataSize(m *Metadata) (int, error) {
	n := 2 // {}
	field := func(name, v string) {
		if v == "" {
			return
		}
		if n > 2 {
			n++ // ,
		}
		n += len(name) + 3 + jsonStringLen(v) // "name":
	}
	field("principal", m.Principal)
	field("role", m.Role)
	field("correlation_id", m.CorrelationID)
	field("causation_id", m.CausationID)
	if !m.RecordedAt.IsZero() {
		t := m.RecordedAt
		if y := t.Year(); y < 0 || y > 9999 {
			return 0, errors.New("recorded_at: year outside of range [0,9999]")
		}
		if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
			return 0, errors.New("recorded_at: timezone hour outside of range [0,23]")
		}
		var buf [64]byte
		if n > 2 {
			n++
		}
		n += len("recorded_at") + 3 + len(t.AppendFormat(buf[:0], time.RFC3339Nano)) + 2
	}
	field("effective_date", m.EffectiveDate)
	field("reason", m.Reason)
	field("document_ref", m.DocumentRef)
	field("source", m.Source)
	field("completed_by", m.CompletedBy)
	field("request_hash", m.RequestHash)
	field("prev_hash", m.PrevHash)
	field("hash", m.Hash)
	return n, nil
}

// jsonStringLen is the length of s as a JSON string written by
// encoding/json, quotes included: HTML-sensitive characters, U+2028 and
// U+2029 escaped, invalid UTF-8 replaced.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '\\' || b == '"' || b == '\b' || b == '\f' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1, c == '\u2028', c == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
