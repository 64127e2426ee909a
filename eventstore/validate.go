package eventstore

import (
	"encoding/json"
	"fmt"
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
	seen := make(map[EventID]struct{}, len(events))
	for i := range events {
		e := &events[i]
		if e.ID.IsZero() {
			return fmt.Errorf("%w: event %d has the zero id", ErrInvalidEvent, i)
		}
		if _, dup := seen[e.ID]; dup {
			return fmt.Errorf("%w: %s", ErrDuplicateEventID, e.ID)
		}
		seen[e.ID] = struct{}{}
		if err := validateEventType(e.Type); err != nil {
			return fmt.Errorf("%w: event %d: %v", ErrInvalidEvent, i, err)
		}
		if len(e.Data) > maxEventSize {
			return fmt.Errorf("%w: event %d has %d bytes of data, limit %d", ErrEventTooLarge, i, len(e.Data), maxEventSize)
		}
		if !json.Valid(e.Data) {
			return fmt.Errorf("%w: event %d data is not JSON", ErrInvalidEvent, i)
		}
		meta, err := json.Marshal(e.Metadata)
		if err != nil {
			return fmt.Errorf("%w: event %d metadata: %v", ErrInvalidEvent, i, err)
		}
		if n := len(e.Data) + len(meta); n > maxEventSize {
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
	for i := range parts {
		p := &parts[i]
		if err := ValidateAppend(p.Stream, p.Expected, p.Events, maxEventSize); err != nil {
			return fmt.Errorf("part %d: %w", i, err)
		}
		if p.Expected == NoStream || p.Expected == StreamExists {
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
