package eventstore

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// EventID is an event's 128-bit identifier in UUID form. Callers choose it;
// deriving it from the command (DeriveEventID) is what makes a retried
// command idempotent.
type EventID [16]byte

// NewEventID returns a random (version 4) ID.
func NewEventID() EventID {
	var id EventID
	if _, err := rand.Read(id[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// DeriveEventID returns an ID determined by its parts: the same parts always
// give the same ID. It is a name-based UUID (version 8 layout) over SHA-256.
func DeriveEventID(parts ...string) EventID {
	h := sha256.New()
	for _, p := range parts {
		// Length-prefix each part so ("ab","c") and ("a","bc") differ.
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	var id EventID
	copy(id[:], h.Sum(nil))
	id[6] = id[6]&0x0f | 0x80
	id[8] = id[8]&0x3f | 0x80
	return id
}

// IsZero reports whether id is the zero ID.
func (id EventID) IsZero() bool { return id == EventID{} }

// String returns the canonical 8-4-4-4-12 lower-case form.
func (id EventID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// ParseEventID parses the canonical form.
func ParseEventID(s string) (EventID, error) {
	var id EventID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("%w: event id %q", ErrInvalid, s)
	}
	hexs := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(id[:], []byte(hexs)); err != nil {
		return EventID{}, fmt.Errorf("%w: event id %q", ErrInvalid, s)
	}
	return id, nil
}

// MarshalText implements encoding.TextMarshaler.
func (id EventID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *EventID) UnmarshalText(b []byte) error {
	v, err := ParseEventID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
