package eventstore_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"talentledger/eventstore"
)

func TestValidateStreamName(t *testing.T) {
	valid := []string{
		"a",
		"0",
		"grant-1",
		"budget-housing-2024",
		"fund-3f2a.b:c@d_e",
		"Grant-ABC",
		strings.Repeat("x", eventstore.MaxStreamNameLen),
	}
	for _, s := range valid {
		if err := eventstore.ValidateStreamName(s); err != nil {
			t.Errorf("ValidateStreamName(%q) = %v; want nil", s, err)
		}
	}
	invalid := []string{
		"",
		strings.Repeat("x", eventstore.MaxStreamNameLen+1),
		"$all",
		"$et-GrantApproved",
		"-grant",
		"_grant",
		".grant",
		":grant",
		"@grant",
		"has space",
		"a/b",
		"a\\b",
		"a\nb",
		"a\x00b",
		"grant-1$",
		"a#b",
		"平湖",
		"café",
	}
	for _, s := range invalid {
		err := eventstore.ValidateStreamName(s)
		if !errors.Is(err, eventstore.ErrInvalidStream) || !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("ValidateStreamName(%q) = %v; want ErrInvalidStream", s, err)
		}
	}
}

func TestValidateAppend(t *testing.T) {
	const limit = 200
	event := func() eventstore.EventData {
		return eventstore.EventData{ID: eventstore.NewEventID(), Type: "GrantApproved", Data: json.RawMessage(`{"amount":"1.00"}`)}
	}
	with := func(change func(*eventstore.EventData)) []eventstore.EventData {
		e := event()
		change(&e)
		return []eventstore.EventData{e}
	}
	jsonOf := func(n int) json.RawMessage { return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`) }
	dup := event()
	many := func(n int) []eventstore.EventData {
		out := make([]eventstore.EventData, n)
		for i := range out {
			out[i] = event()
		}
		return out
	}

	for _, c := range []struct {
		name     string
		stream   string
		expected eventstore.Version
		events   []eventstore.EventData
		want     error // nil for valid input
	}{
		{"valid", "grant-1", eventstore.NoStream, []eventstore.EventData{event(), event()}, nil},
		{"StreamExists", "grant-1", eventstore.StreamExists, with(func(*eventstore.EventData) {}), nil},
		{"exact version", "grant-1", 12, with(func(*eventstore.EventData) {}), nil},
		{"full metadata", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) {
			e.Metadata = eventstore.Metadata{Principal: "p", Role: "r", RecordedAt: time.Now()}
		}), nil},
		{"type of the longest length", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) {
			e.Type = strings.Repeat("T", eventstore.MaxEventTypeLen)
		}), nil},
		{"type of printable ASCII", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.Type = "a.b-c_d:e/f~!" }), nil},
		{"exactly at the size limit", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) {
			e.Data = jsonOf(limit - len(`{}`)) // empty metadata encodes as {}
		}), nil},

		{"bad stream", "$all", eventstore.Any, with(func(*eventstore.EventData) {}), eventstore.ErrInvalidStream},
		{"empty stream", "", eventstore.Any, with(func(*eventstore.EventData) {}), eventstore.ErrInvalidStream},
		{"unknown expected version", "grant-1", -3, with(func(*eventstore.EventData) {}), eventstore.ErrInvalid},
		{"no events", "grant-1", eventstore.Any, nil, eventstore.ErrNoEvents},
		{"empty event list", "grant-1", eventstore.Any, []eventstore.EventData{}, eventstore.ErrNoEvents},
		{"zero ID", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.ID = eventstore.EventID{} }), eventstore.ErrInvalidEvent},
		{"duplicate ID", "grant-1", eventstore.Any, []eventstore.EventData{dup, event(), dup}, eventstore.ErrDuplicateEventID},
		{"duplicate ID among many", "grant-1", eventstore.Any, append(append([]eventstore.EventData{dup}, many(20)...), dup), eventstore.ErrDuplicateEventID},
		{"many events", "grant-1", eventstore.Any, many(40), nil},
		{"empty type", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.Type = "" }), eventstore.ErrInvalidEvent},
		{"reserved type", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.Type = "$stream-metadata" }), eventstore.ErrInvalidEvent},
		{"type with a space", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.Type = "Grant Approved" }), eventstore.ErrInvalidEvent},
		{"type with a control character", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.Type = "Grant\tApproved" }), eventstore.ErrInvalidEvent},
		{"type not ASCII", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.Type = "批准" }), eventstore.ErrInvalidEvent},
		{"type too long", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) {
			e.Type = strings.Repeat("T", eventstore.MaxEventTypeLen+1)
		}), eventstore.ErrInvalidEvent},
		{"data not JSON", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`{"a":`) }), eventstore.ErrInvalidEvent},
		{"no data", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.Data = nil }), eventstore.ErrInvalidEvent},
		{"data over the limit", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) { e.Data = jsonOf(limit + 1) }), eventstore.ErrEventTooLarge},
		{"data and metadata over the limit", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) {
			e.Data = jsonOf(limit - len(`{}`))
			e.Metadata.Role = "r"
		}), eventstore.ErrEventTooLarge},
		{"metadata that cannot be encoded", "grant-1", eventstore.Any, with(func(e *eventstore.EventData) {
			e.Metadata.RecordedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		}), eventstore.ErrInvalidEvent},
		{"a bad event after good ones", "grant-1", eventstore.Any, []eventstore.EventData{event(), event(), with(func(e *eventstore.EventData) { e.Type = "" })[0]}, eventstore.ErrInvalidEvent},
	} {
		err := eventstore.ValidateAppend(c.stream, c.expected, c.events, limit)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v; want nil", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) || !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
	}
}

func TestSentinels(t *testing.T) {
	for _, err := range []error{
		eventstore.ErrInvalidStream,
		eventstore.ErrNoEvents,
		eventstore.ErrInvalidEvent,
		eventstore.ErrDuplicateEventID,
		eventstore.ErrEventTooLarge,
	} {
		if !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%v does not match ErrInvalid", err)
		}
	}
	for _, err := range []error{eventstore.ErrWrongVersion, eventstore.ErrStreamNotFound, eventstore.ErrClosed} {
		if errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%v matches ErrInvalid", err)
		}
	}
}

func TestWrongVersionError(t *testing.T) {
	var err error = &eventstore.WrongVersionError{Stream: "grant-1", Expected: eventstore.NoStream, Actual: 4}
	wrapped := errors.Join(errors.New("approving grant"), err)
	if !errors.Is(wrapped, eventstore.ErrWrongVersion) {
		t.Error("a wrapped *WrongVersionError does not match ErrWrongVersion")
	}
	if errors.Is(wrapped, eventstore.ErrStreamNotFound) || errors.Is(wrapped, eventstore.ErrInvalid) {
		t.Error("a *WrongVersionError matches an unrelated sentinel")
	}
	var wv *eventstore.WrongVersionError
	if !errors.As(wrapped, &wv) || wv.Expected != eventstore.NoStream || wv.Actual != 4 {
		t.Errorf("errors.As gave %+v", wv)
	}
	want := `eventstore: wrong expected version for stream "grant-1": expected no_stream, actual 4`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

// TestMetadataSize: the size worked out without encoding is encoding/json's
// to the byte, for every single byte and rune class a string may hold, and
// fails where encoding fails.
func TestMetadataSize(t *testing.T) {
	var texts []string
	for b := 0; b < 256; b++ {
		texts = append(texts, string([]byte{byte(b)}), "a"+string([]byte{byte(b)})+"z")
	}
	texts = append(texts, "", "平湖市人才", "line\u2028sep\u2029", "<a href=\"x\">&amp;</a>", "\xff\xfe", "\xe2\x80",
		"tab\tnew\nline\r\x00\x1f\x7f", `back\slash "quoted"`, "emoji 😀", strings.Repeat("é<", 100))
	zones := []*time.Location{time.UTC, time.FixedZone("CST", 8*3600), time.FixedZone("odd", -(3*3600 + 30*60 + 15)), time.FixedZone("far", 23*3600+59*60)}
	times := []time.Time{{}, time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC), time.Date(2024, 1, 15, 9, 30, 0, 123456789, time.UTC),
		time.Date(2024, 1, 15, 9, 30, 0, 120000000, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}
	check := func(m eventstore.Metadata) {
		t.Helper()
		want, werr := json.Marshal(m)
		got, gerr := eventstore.MetadataSize(&m)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("%+v: MetadataSize error %v, json.Marshal error %v", m, gerr, werr)
		}
		if werr == nil && got != len(want) {
			t.Fatalf("%+v: MetadataSize %d, json.Marshal %d bytes: %s", m, got, len(want), want)
		}
	}
	for i, s := range texts {
		check(eventstore.Metadata{Reason: s})
		check(eventstore.Metadata{Principal: s, Hash: texts[(i+7)%len(texts)], CompletedBy: texts[(i+13)%len(texts)], RequestHash: texts[(i+3)%len(texts)]})
	}
	for _, tm := range times {
		for _, z := range zones {
			check(eventstore.Metadata{RecordedAt: tm.In(z)})
			check(eventstore.Metadata{Principal: "alan", Role: "approver", CorrelationID: "c1", CausationID: "c2", RecordedAt: tm.In(z),
				EffectiveDate: "2024-01-15", Reason: "r", DocumentRef: "d", Source: "import", CompletedBy: "x", RequestHash: "q", PrevHash: "p", Hash: "h"})
		}
	}
	// Times RFC 3339 cannot express fail as encoding does.
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("bad", 24*3600)), time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("bad", -25*3600))} {
		check(eventstore.Metadata{RecordedAt: tm})
	}
}

// TestValidJSONSkipsTheScan: data promised valid is not scanned again;
// data without the promise is.
func TestValidJSONSkipsTheScan(t *testing.T) {
	bad := eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: json.RawMessage(`{"a":`)}
	if err := eventstore.ValidateAppend("s", eventstore.NoStream, []eventstore.EventData{bad}, 1000); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("unpromised bad data: %v; want ErrInvalidEvent", err)
	}
	bad.ValidJSON = true
	if err := eventstore.ValidateAppend("s", eventstore.NoStream, []eventstore.EventData{bad}, 1000); err != nil {
		t.Errorf("promised data scanned again: %v", err)
	}
}

// A multi-stream append may not expect a stream to be new (or to exist)
// after an earlier part of it appended there, however many parts it has.
func TestValidateAppendMultiStreamNamedAgain(t *testing.T) {
	for _, n := range []int{2, 40} {
		for _, exp := range []eventstore.Version{eventstore.NoStream, eventstore.StreamExists} {
			parts := make([]eventstore.AppendPart, n)
			for i := range parts {
				parts[i] = eventstore.AppendPart{Stream: "s-" + strings.Repeat("x", i), Expected: eventstore.NoStream,
					Events: []eventstore.EventData{{ID: eventstore.DeriveEventID("t", "s", strings.Repeat("y", i)), Type: "T", Data: []byte(`{}`)}}}
			}
			if err := eventstore.ValidateAppendMulti(parts, 1<<20); err != nil {
				t.Fatalf("%d parts on distinct streams: %v", n, err)
			}
			parts[n-1].Stream, parts[n-1].Expected = parts[0].Stream, exp
			if err := eventstore.ValidateAppendMulti(parts, 1<<20); !errors.Is(err, eventstore.ErrInvalid) {
				t.Fatalf("%d parts, the last expecting %s on the first's stream: %v", n, exp, err)
			}
			parts[n-1].Expected = 0
			if err := eventstore.ValidateAppendMulti(parts, 1<<20); err != nil {
				t.Fatalf("%d parts, the last at an exact version on the first's stream: %v", n, err)
			}
		}
	}
}
