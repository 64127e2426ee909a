package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Event schemas.
//
// Every event type has a schema version, recorded with every event in its
// stored type name: version 1 is the bare name ("GrantApproved"), a later
// version N is the name with ".vN" ("GrantApproved.v2"). The version is in
// the type rather than in the metadata because the type is what every
// backend already stores, indexes, filters on and hashes: no record format
// changes, a filtered scan sees the version without decoding metadata,
// every event written before versions existed is version 1 exactly as it
// is, and an event's version can never be separated from its type.
//
// Decoding reads every version ever written: an event of an older version
// goes through its type's upcasters, one per version step, each turning the
// stored JSON of version n into that of version n+1, before it is decoded
// into the current struct. The domain and the read models only ever see
// current versions. Upcasting works on a copy: the stored bytes, which the
// hash chain covers, never change, so upcasting never changes a hash.
//
// An event of a type, or a version, newer than this build knows is an
// *UpgradeRequiredError: it was written by a newer build, and folding past
// it would silently misstate the books.

// ErrUpgradeRequired is matched (with errors.Is) by the error of decoding
// an event of a type or version newer than this build knows.
var ErrUpgradeRequired = errors.New("upgrade required")

// UpgradeRequiredError reports an event this build cannot read because a
// newer build wrote it.
type UpgradeRequiredError struct {
	// Type is the event's type name without its version, and Version the
	// version it was written in.
	Type    string
	Version int
}

func (e *UpgradeRequiredError) Error() string {
	return fmt.Sprintf("upgrade required: event %s version %d", e.Type, e.Version)
}

// Is makes every UpgradeRequiredError match ErrUpgradeRequired.
func (e *UpgradeRequiredError) Is(target error) bool { return target == ErrUpgradeRequired }

// versionSep separates a type name from a version above 1.
const versionSep = ".v"

// ParseEventType splits a stored type into the type's name and the schema
// version the event was written in. ok is false for a stored type no build
// writes: an explicit ".v1", or a version that is not a decimal number
// above 1 without leading zeros. It does not allocate.
func ParseEventType(stored string) (name string, version int, ok bool) {
	i := strings.LastIndex(stored, versionSep)
	if i < 0 {
		return stored, 1, stored != ""
	}
	digits := stored[i+len(versionSep):]
	if digits == "" || digits[0] == '0' || len(digits) > 6 {
		return stored, 0, false
	}
	v := 0
	for j := 0; j < len(digits); j++ {
		c := digits[j]
		if c < '0' || c > '9' {
			return stored, 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v < 2 || i == 0 {
		return stored, 0, false
	}
	return stored[:i], v, true
}

// StoredEventType is the type stored for an event of type name written in
// schema version v.
func StoredEventType(name string, v int) string {
	if v <= 1 {
		return name
	}
	return name + versionSep + strconv.Itoa(v)
}

// Upcaster turns an event's JSON in one schema version into its JSON in the
// next. It must not modify data.
type Upcaster func(data []byte) ([]byte, error)

// UpcastStep names an upcaster: the type's name and the version it reads.
type UpcastStep struct {
	Type string
	From int
}

// upcasters holds every upcaster the ledger has: for each type whose
// version eventSchema raised above 1, one per step from 1 to the current
// version. TestCorpus fails when a step is missing.
var upcasters = map[UpcastStep]Upcaster{
	// An approval of version 1 has no years: its whole award was reserved
	// in its fiscal year, which is what an approval without years means.
	{TypeGrantApproved, 1}:       Unchanged,
	{TypeEntitlementReserved, 1}: Unchanged,
}

// Unchanged is the upcaster of a version whose JSON the next reads as it
// is: the next version only adds a field whose absence keeps the old
// meaning, and older builds must stop at it because they would misread
// events that have it.
func Unchanged(data []byte) ([]byte, error) { return data, nil }

// RenameField returns an upcaster that renames a top-level field of an
// event's JSON object, keeping its value; an object without the field is
// returned unchanged.
func RenameField(from, to string) Upcaster {
	return func(data []byte) ([]byte, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		v, ok := m[from]
		if !ok {
			return data, nil
		}
		if _, clash := m[to]; clash {
			return nil, fmt.Errorf("both %q and %q are set", from, to)
		}
		delete(m, from)
		m[to] = v
		return json.Marshal(m)
	}
}

// Codec reads and names stored events. The zero Codec is this build's: it
// knows exactly the types and versions of eventSchema, with upcasters.
// WithType gives a copy that also knows a type (or version) this build
// does not, which is how tests play a newer build.
type Codec struct {
	ext map[string]typeSchema
}

type typeSchema struct {
	version   int
	newEvent  func() Event
	upcasters map[int]Upcaster
}

// WithType returns a copy of c that decodes the type name at version into
// what newEvent returns, with the given upcasters keyed by the version
// they read. It replaces what c knows of name.
func (c Codec) WithType(name string, version int, newEvent func() Event, up map[int]Upcaster) Codec {
	ext := make(map[string]typeSchema, len(c.ext)+1)
	for k, v := range c.ext {
		ext[k] = v
	}
	ext[name] = typeSchema{version: version, newEvent: newEvent, upcasters: up}
	return Codec{ext: ext}
}

// schema returns an empty current payload of the named type and its
// current version, or a nil payload for a type c does not know.
func (c Codec) schema(name string) (Event, int) {
	if t, ok := c.ext[name]; ok {
		return t.newEvent(), t.version
	}
	return eventSchema(name)
}

// upcaster returns the named type's upcaster from version from, or nil.
func (c Codec) upcaster(name string, from int) Upcaster {
	if t, ok := c.ext[name]; ok {
		return t.upcasters[from]
	}
	return upcasters[UpcastStep{name, from}]
}

// Version returns the current schema version of the named type, or 0 when
// c does not know it.
func (c Codec) Version(name string) int {
	_, v := c.schema(name)
	return v
}

// StoredType returns the type to store for e: its name and, above version
// 1, its current version.
func (c Codec) StoredType(e Event) string {
	name := e.EventType()
	return StoredEventType(name, c.Version(name))
}

// Decode turns a stored event's type and data into its payload, in the
// current version of its type. An unknown type or a version newer than c
// knows is an *UpgradeRequiredError.
func (c Codec) Decode(stored string, data []byte) (Event, error) {
	if c.ext == nil || !c.extends(stored) {
		// The frequent types, current versions only (fastDecoders is keyed
		// by stored type): no lookup beyond what this path always did.
		if e, ok := decodeFast(stored, data); ok {
			return e, nil
		}
	}
	e, _, err := c.decodeCurrent(stored, data)
	return e, err
}

// decodeCurrent decodes with encoding/json, after upcasting, and returns
// the payload and the JSON of its current version it was decoded from.
func (c Codec) decodeCurrent(stored string, data []byte) (Event, []byte, error) {
	name, v, ok := ParseEventType(stored)
	if !ok {
		return nil, nil, &UpgradeRequiredError{Type: stored, Version: v}
	}
	e, cur := c.schema(name)
	if e == nil || v > cur {
		return nil, nil, &UpgradeRequiredError{Type: name, Version: v}
	}
	for ; v < cur; v++ {
		up := c.upcaster(name, v)
		if up == nil {
			return nil, nil, fmt.Errorf("domain: decode %s: no upcaster from version %d", stored, v)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, nil, fmt.Errorf("domain: decode %s: upcast from version %d: %w", stored, v, err)
		}
	}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, nil, fmt.Errorf("domain: decode %s: %w", stored, err)
	}
	return e, data, nil
}

// extends reports whether c replaces what this build knows of the stored
// type's name.
func (c Codec) extends(stored string) bool {
	name, _, _ := ParseEventType(stored)
	_, ok := c.ext[name]
	return ok
}

// DecodeEvent decodes a stored event with this build's Codec.
func DecodeEvent(stored string, data []byte) (Event, error) {
	return Codec{}.Decode(stored, data)
}
