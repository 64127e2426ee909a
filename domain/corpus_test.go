package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"talentledger/eventstore"
	"talentledger/eventstore/esdb"
	"talentledger/eventstore/pebble"
)

// The golden corpus (testdata/corpus) holds, for every event type and
// every schema version it has had, one event exactly as each backend
// stores it: pebble.rec is the embedded store's record (the value under
// the event's log key, at position corpusPosition), esdb.json the event
// EventStoreDB records, its data and custom metadata byte for byte. Each
// entry is its stream's first event.
//
// The corpus only grows. -update-corpus writes the entries of current
// versions that are missing and never touches one that exists; an entry
// is rewritten only when a backend's own record format changes (its
// on-disk format version says so), never because an event changed.
var updateCorpus = flag.Bool("update-corpus", false, "write the missing entries of testdata/corpus")

const (
	corpusDir      = "testdata/corpus"
	corpusPosition = 1
	// corpusFormatFile holds the Pebble on-disk format version the
	// corpus's records were written in.
	corpusFormatFile = "pebble-format"
)

// corpusTime is when every corpus event was recorded.
var corpusTime = time.Date(2024, 3, 1, 9, 30, 0, 0, CityTime)

// esdbEntry is esdb.json: an event as EventStoreDB records it.
type esdbEntry struct {
	StreamID    string `json:"stream_id"`
	EventNumber uint64 `json:"event_number"`
	EventID     string `json:"event_id"`
	EventType   string `json:"event_type"`
	ContentType string `json:"content_type"`
	// Data and Metadata are the exact bytes stored, as strings.
	Data     string `json:"data"`
	Metadata string `json:"metadata"`
}

// writeCorpusEntry writes the entry of an event of type stored, with data,
// as the first event of stream, unless the entry exists. It reports
// whether it wrote.
func writeCorpusEntry(dir, stream, stored string, data []byte) (bool, error) {
	path := filepath.Join(dir, stored)
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	md := eventstore.Metadata{Principal: "clerk1", Role: RoleClerk, CorrelationID: "corpus-" + stored,
		CausationID: "corpus-" + stored, RecordedAt: corpusTime, EffectiveDate: "2024-03-01",
		Reason: "golden corpus", DocumentRef: "DOC-2024-0001"}
	id := eventstore.DeriveEventID("corpus", stream, stored)
	md.Hash = ChainHash("", stream, 0, id, stored, data, md)
	ed := eventstore.EventData{ID: id, Type: stored, Data: data, Metadata: md}
	if err := eventstore.ValidateAppend(stream, eventstore.NoStream, []eventstore.EventData{ed}, eventstore.DefaultMaxEventSize); err != nil {
		return false, err
	}
	rec, err := pebble.EncodeRecord(stream, 0, &ed)
	if err != nil {
		return false, err
	}
	pe, err := esdb.ProposedEvent(&ed)
	if err != nil {
		return false, err
	}
	ej, err := json.MarshalIndent(esdbEntry{StreamID: stream, EventNumber: 0, EventID: pe.EventID.String(),
		EventType: pe.EventType, ContentType: "application/json", Data: string(pe.Data), Metadata: string(pe.Metadata)}, "", "  ")
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(path, "pebble.rec"), rec, 0o644); err != nil {
		return false, err
	}
	return true, os.WriteFile(filepath.Join(path, "esdb.json"), append(ej, '\n'), 0o644)
}

// readCorpusEntry reads an entry as each backend's readers see it.
func readCorpusEntry(path string) (fromPebble, fromESDB eventstore.Event, err error) {
	rec, err := os.ReadFile(filepath.Join(path, "pebble.rec"))
	if err != nil {
		return fromPebble, fromESDB, err
	}
	if fromPebble, err = pebble.DecodeRecord(rec, corpusPosition); err != nil {
		return fromPebble, fromESDB, fmt.Errorf("pebble record: %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(path, "esdb.json"))
	if err != nil {
		return fromPebble, fromESDB, err
	}
	var ee esdbEntry
	if err := json.Unmarshal(raw, &ee); err != nil {
		return fromPebble, fromESDB, fmt.Errorf("esdb.json: %w", err)
	}
	id, err := uuid.Parse(ee.EventID)
	if err != nil {
		return fromPebble, fromESDB, fmt.Errorf("esdb.json: event id: %w", err)
	}
	fromESDB, err = esdb.StoredEvent(&esdbclient.RecordedEvent{EventID: id, EventType: ee.EventType, ContentType: ee.ContentType,
		StreamID: ee.StreamID, EventNumber: ee.EventNumber, Data: []byte(ee.Data), UserMetadata: []byte(ee.Metadata),
		Position: esdbclient.Position{Commit: corpusPosition, Prepare: corpusPosition}})
	if err != nil {
		return fromPebble, fromESDB, fmt.Errorf("esdb event: %w", err)
	}
	return fromPebble, fromESDB, nil
}

// checkCorpus checks the corpus in dir against the event types a build
// knows (name → current version), decoding with c: every type has an
// entry for each of its versions, and every entry reads the same from
// both backends' forms, verifies its hash, decodes (through its
// upcasters) without losing a field, and folds into its stream's state
// (after the stream's prelude).
// It returns one error per problem.
func checkCorpus(dir string, c Codec, types map[string]int) []error {
	var errs []error
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for v := 1; v <= types[n]; v++ {
			stored := StoredEventType(n, v)
			if _, err := os.Stat(filepath.Join(dir, stored)); err != nil {
				errs = append(errs, fmt.Errorf("%s version %d has no corpus entry %s (go test ./domain -run TestCorpus -update-corpus writes those of current versions)", n, v, filepath.Join(dir, stored)))
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return append(errs, err)
	}
	for _, de := range entries {
		if !de.IsDir() {
			continue
		}
		if err := checkCorpusEntry(filepath.Join(dir, de.Name()), de.Name(), c); err != nil {
			errs = append(errs, fmt.Errorf("corpus entry %s: %w", de.Name(), err))
		}
	}
	return errs
}

func checkCorpusEntry(path, stored string, c Codec) (err error) {
	pe, ee, err := readCorpusEntry(path)
	if err != nil {
		return err
	}
	if pe.Type != stored {
		return fmt.Errorf("holds an event of type %q", pe.Type)
	}
	// The hash covers the stored bytes, as they are: upcasting happens
	// after, on a copy.
	if !VerifyEventHash("", &pe) {
		return errors.New("the Pebble record's hash does not verify")
	}
	if !VerifyEventHash("", &ee) {
		return errors.New("the EventStoreDB event's hash does not verify")
	}
	if !sameEnvelope(&pe, &ee) {
		return fmt.Errorf("the Pebble record and the EventStoreDB event differ:\n%+v\n%+v", pe, ee)
	}
	data := bytes.Clone(pe.Data)
	payload, current, err := c.decodeCurrent(pe.Type, pe.Data)
	if err != nil {
		return err
	}
	if !bytes.Equal(pe.Data, data) {
		return errors.New("decoding changed the stored bytes")
	}
	if err := lossless(current, payload); err != nil {
		return fmt.Errorf("decoded into %T: %w", payload, err)
	}
	// The decoder the ledger uses (fast where it can) gives the same.
	viaDecode, err := c.Decode(pe.Type, pe.Data)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(viaDecode, payload) {
		return fmt.Errorf("Decode gives %+v, encoding/json %+v", viaDecode, payload)
	}
	// Fold it as a command would, and post it.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("folding panicked: %v", r)
		}
	}()
	agg := aggregateOf(pe.Stream)
	all := samples()
	name, _, _ := ParseEventType(stored)
	for _, typ := range prelude(pe.Stream) {
		if typ == name {
			break
		}
		agg.apply(all[typ].event)
	}
	e := &entry{stream: pe.Stream, agg: agg, version: eventstore.NoStream, ids: map[eventstore.EventID]eventstore.Position{}}
	if err := e.fold(&pe, c); err != nil {
		return err
	}
	if e.version != 0 || e.lastHash != pe.Metadata.Hash {
		return fmt.Errorf("folded to version %d, hash %s", e.version, e.lastHash)
	}
	for _, p := range Postings(payload) {
		if p.Source == "" || p.Destination == "" || p.Amount.Sign() < 0 {
			return fmt.Errorf("bad posting %+v", p)
		}
	}
	return nil
}

// sameEnvelope reports whether two backends' reads of one event agree.
func sameEnvelope(a, b *eventstore.Event) bool {
	ma, mb := a.Metadata, b.Metadata
	if !ma.RecordedAt.Equal(mb.RecordedAt) {
		return false
	}
	ma.RecordedAt, mb.RecordedAt = time.Time{}, time.Time{}
	return a.ID == b.ID && a.Stream == b.Stream && a.Version == b.Version && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && ma == mb
}

// lossless checks that every field of data, an event's JSON in the current
// version, survives decoding into payload: a field a renamed struct field
// no longer reads would otherwise vanish without an error.
func lossless(data []byte, payload Event) error {
	re, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	var in, out map[string]any
	if err := unmarshalNumbers(data, &in); err != nil {
		return err
	}
	if err := unmarshalNumbers(re, &out); err != nil {
		return err
	}
	var lost []string
	for k, v := range in {
		if w, ok := out[k]; !ok || !reflect.DeepEqual(v, w) {
			lost = append(lost, k)
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		return fmt.Errorf("fields %v are not read (renamed or removed without an upcaster?)", lost)
	}
	return nil
}

func unmarshalNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// aggregateOf returns the empty state of a stream, by its name.
func aggregateOf(stream string) aggregate {
	prefix, _, _ := strings.Cut(stream, "-")
	switch prefix {
	case "program":
		return newProgram()
	case "budget":
		return newBudget()
	case "talent":
		return newTalent()
	case "grant":
		return newGrant()
	case "fund":
		return newFund()
	case "principal":
		return newPrincipal()
	case "idempotency":
		return &idempotency{}
	}
	return &folded{}
}

// prelude lists, by stream, the samples a stream's later events are
// folded after (an event is folded after those before its own type): a
// payment's events need the grant approved and the payment prepared.
func prelude(stream string) []string {
	prefix, _, _ := strings.Cut(stream, "-")
	switch prefix {
	case "grant":
		return []string{TypeGrantApplied, TypeGrantApproved, TypePaymentPrepared}
	case "fund":
		return []string{TypeFundEstablished, TypeInvestmentApproved}
	}
	return nil
}

// folded is the state of a stream of test-only events: what was folded.
type folded struct{ events []Event }

func (f *folded) apply(e Event) { f.events = append(f.events, e) }

// ledgerTypes returns every event type of the ledger with its current
// version, from the Type… constants of the sources.
func ledgerTypes(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for cname, name := range eventTypeConstants(t) {
		v := Codec{}.Version(name)
		if v == 0 {
			t.Errorf("%s = %q has no case in eventSchema", cname, name)
			continue
		}
		out[name] = v
	}
	return out
}

func TestCorpus(t *testing.T) {
	types := ledgerTypes(t)
	if *updateCorpus {
		all := samples()
		for name, v := range types {
			s, ok := all[name]
			if !ok {
				t.Errorf("%s has no sample in samples_test.go to write its corpus entry from", name)
				continue
			}
			data, err := json.Marshal(s.event)
			if err != nil {
				t.Fatal(err)
			}
			wrote, err := writeCorpusEntry(corpusDir, s.stream, StoredEventType(name, v), data)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if wrote {
				t.Logf("wrote the corpus entry of %s version %d", name, v)
			}
		}
	}
	checkCorpusFormat(t, *updateCorpus)
	for _, err := range checkCorpus(corpusDir, Codec{}, types) {
		t.Error(err)
	}
	// Every upcaster is a step of a type the ledger has, below its current
	// version.
	for step := range upcasters {
		if v, ok := types[step.Type]; !ok || step.From < 1 || step.From >= v {
			t.Errorf("upcaster %+v is not a step below a current version", step)
		}
	}
}

// checkCorpusFormat checks that the corpus's Pebble records are of the
// on-disk format the store writes. A new format is the one reason to
// rewrite entries: their records, and every entry when the format changes
// what the stored hash covers, in a commit that says so.
func checkCorpusFormat(t *testing.T, update bool) {
	t.Helper()
	path := filepath.Join(corpusDir, corpusFormatFile)
	want := fmt.Sprintf("%d\n", pebble.FormatVersion)
	got, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("the corpus's Pebble records are of on-disk format %s, the store writes format %d: "+
			"a new on-disk format is the one reason to rewrite corpus entries (see docs/changing-events.md)",
			strings.TrimSpace(string(got)), pebble.FormatVersion)
	}
}

// copyCorpus copies the corpus to a temporary directory.
func copyCorpus(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(corpusDir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestCorpusFailsWithoutAnEntry(t *testing.T) {
	types := ledgerTypes(t)
	dir := copyCorpus(t)
	if errs := checkCorpus(dir, Codec{}, types); len(errs) != 0 {
		t.Fatalf("the corpus copy does not check: %v", errs)
	}
	if err := os.RemoveAll(filepath.Join(dir, TypeGrantApproved)); err != nil {
		t.Fatal(err)
	}
	errs := checkCorpus(dir, Codec{}, types)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "GrantApproved version 1 has no corpus entry") {
		t.Errorf("without GrantApproved's entry the check says %v", errs)
	}
}

func TestCorpusFailsOnADamagedEntry(t *testing.T) {
	types := ledgerTypes(t)
	for _, tc := range []struct {
		name, file string
		damage     func([]byte) []byte
		want       string
	}{
		{"a changed amount", "pebble.rec", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"600000.00"`), []byte(`"700000.00"`), 1)
		}, "the Pebble record's hash does not verify"},
		{"a record this build cannot read", "pebble.rec", func(b []byte) []byte { b[0] = 99; return b }, "corrupt"},
		{"a changed principal in the EventStoreDB metadata", "esdb.json", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`clerk1`), []byte(`clerk2`), 1)
		}, "the EventStoreDB event's hash does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyCorpus(t)
			path := filepath.Join(dir, TypeGrantApplied, tc.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			errs := checkCorpus(dir, Codec{}, types)
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Errorf("the check says %v, want one error with %q", errs, tc.want)
			}
		})
	}
}

// A test-only event whose field summary was renamed description in
// version 2.
type testNotedV1 struct {
	NoteID  string `json:"note_id"`
	Summary string `json:"summary"`
}

type testNoted struct {
	NoteID      string `json:"note_id"`
	Description string `json:"description"`
}

const typeTestNoted = "TestNoted"

func (*testNotedV1) EventType() string { return typeTestNoted }
func (*testNoted) EventType() string   { return typeTestNoted }

func TestCorpusRenamedField(t *testing.T) {
	dir := t.TempDir()
	// A build at version 1 writes its entry.
	v1 := Codec{}.WithType(typeTestNoted, 1, func() Event { return &testNotedV1{} }, nil)
	data, _ := json.Marshal(&testNotedV1{NoteID: "n1", Summary: "kept through the rename"})
	if _, err := writeCorpusEntry(dir, "note-n1", v1.StoredType(&testNotedV1{}), data); err != nil {
		t.Fatal(err)
	}
	if errs := checkCorpus(dir, v1, map[string]int{typeTestNoted: 1}); len(errs) != 0 {
		t.Fatalf("version 1: %v", errs)
	}

	// The next build renames the field, with an upcaster, and writes the
	// entry of version 2.
	v2 := Codec{}.WithType(typeTestNoted, 2, func() Event { return &testNoted{} },
		map[int]Upcaster{1: RenameField("summary", "description")})
	if got := v2.StoredType(&testNoted{}); got != "TestNoted.v2" {
		t.Fatalf("version 2 is stored as %q", got)
	}
	data, _ = json.Marshal(&testNoted{NoteID: "n2", Description: "new"})
	if _, err := writeCorpusEntry(dir, "note-n2", v2.StoredType(&testNoted{}), data); err != nil {
		t.Fatal(err)
	}
	if errs := checkCorpus(dir, v2, map[string]int{typeTestNoted: 2}); len(errs) != 0 {
		t.Fatalf("version 2 with its upcaster: %v", errs)
	}
	pe, _, err := readCorpusEntry(filepath.Join(dir, typeTestNoted))
	if err != nil {
		t.Fatal(err)
	}
	e, err := v2.Decode(pe.Type, pe.Data)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := e.(*testNoted); !ok || n.NoteID != "n1" || n.Description != "kept through the rename" {
		t.Errorf("the version 1 record reads as %#v", e)
	}
	if !VerifyEventHash("", &pe) {
		t.Error("upcasting changed the stored event")
	}

	// Without the upcaster, or with one that forgets the rename, the
	// corpus check fails on the version 1 entry.
	for _, tc := range []struct {
		name string
		up   map[int]Upcaster
		want string
	}{
		{"no upcaster", nil, "no upcaster from version 1"},
		{"an upcaster that forgets the rename", map[int]Upcaster{1: func(b []byte) ([]byte, error) { return b, nil }}, "fields [summary] are not read"},
	} {
		broken := Codec{}.WithType(typeTestNoted, 2, func() Event { return &testNoted{} }, tc.up)
		errs := checkCorpus(dir, broken, map[string]int{typeTestNoted: 2})
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "corpus entry TestNoted:") || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%s: the check says %v, want %q on the version 1 entry", tc.name, errs, tc.want)
		}
	}

	// A build that knows only version 1 meets version 2: upgrade required.
	_, err = v1.Decode("TestNoted.v2", data)
	var up *UpgradeRequiredError
	if !errors.As(err, &up) || up.Type != typeTestNoted || up.Version != 2 || err.Error() != "upgrade required: event TestNoted version 2" {
		t.Errorf("version 1 build decoding version 2: %v", err)
	}
}

// The fast decoders read current versions only: an older one goes through
// its upcasters.
func TestFastDecodersReadCurrentVersions(t *testing.T) {
	for stored := range fastDecoders {
		name, v, ok := ParseEventType(stored)
		if !ok || v != (Codec{}).Version(name) {
			t.Errorf("fast decoder for %q, but %s is at version %d", stored, name, Codec{}.Version(name))
		}
	}
}

func TestParseEventType(t *testing.T) {
	for _, tc := range []struct {
		stored string
		name   string
		v      int
		ok     bool
	}{
		{"GrantApproved", "GrantApproved", 1, true},
		{"GrantApproved.v2", "GrantApproved", 2, true},
		{"GrantApproved.v17", "GrantApproved", 17, true},
		{"GrantApproved.v1", "", 0, false}, // version 1 is the bare name
		{"GrantApproved.v0", "", 0, false},
		{"GrantApproved.v02", "", 0, false},
		{"GrantApproved.v", "", 0, false},
		{"GrantApproved.vx", "", 0, false},
		{".v2", "", 0, false},
		{"", "", 0, false},
	} {
		name, v, ok := ParseEventType(tc.stored)
		if ok != tc.ok || (ok && (name != tc.name || v != tc.v)) {
			t.Errorf("ParseEventType(%q) = %q, %d, %v", tc.stored, name, v, ok)
		}
		if ok && StoredEventType(name, v) != tc.stored {
			t.Errorf("StoredEventType(%q, %d) = %q", name, v, StoredEventType(name, v))
		}
	}
	if n := testing.AllocsPerRun(100, func() { ParseEventType("GrantApproved.v12") }); n != 0 {
		t.Errorf("ParseEventType allocates %v times", n)
	}
}

// Reading the version adds no allocation to decoding: the fast path
// allocates what the fast decoder does, the others what encoding/json
// does into a new payload.
func TestDecodeVersionAllocatesNothing(t *testing.T) {
	all := samples()
	for _, typ := range []string{TypeGrantApplied, TypePaymentReleased, TypeGrantRejected, TypeFundEstablished} {
		data, err := json.Marshal(all[typ].event)
		if err != nil {
			t.Fatal(err)
		}
		base := testing.AllocsPerRun(50, func() {
			if _, ok := decodeFast(typ, data); !ok {
				e, _ := eventSchema(typ)
				if err := json.Unmarshal(data, e); err != nil {
					t.Fatal(err)
				}
			}
		})
		got := testing.AllocsPerRun(50, func() {
			if _, err := DecodeEvent(typ, data); err != nil {
				t.Fatal(err)
			}
		})
		if got > base {
			t.Errorf("decoding %s allocates %v times, %v without versions", typ, got, base)
		}
	}
}
