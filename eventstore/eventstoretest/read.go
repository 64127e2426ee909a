package eventstoretest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"talentledger/eventstore"
)

// testAppendAndRead checks that every field of the envelope, metadata
// included, reads back exactly as appended, from the stream and from the
// global log alike.
func testAppendAndRead(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("grant-1")

	recorded := time.Date(2024, 3, 15, 9, 30, 15, 123456789, time.FixedZone("CST", 8*60*60))
	want := []eventstore.EventData{
		{
			ID:   eventstore.NewEventID(),
			Type: "GrantApplied",
			// Whitespace and non-ASCII text must survive byte for byte: the
			// hash chain is computed over these bytes.
			Data: json.RawMessage(`{"amount": "600000.00",  "talent": "平湖-人才-001"}`),
			Metadata: eventstore.Metadata{
				Principal:     "clerk-li",
				Role:          "clerk",
				CorrelationID: "corr-7f3a",
				CausationID:   "req-19",
				RecordedAt:    recorded,
				EffectiveDate: "2024-03-01",
				Source:        "import",
				CompletedBy:   "reconcile",
				RequestHash:   strings.Repeat("c4", 32),
				Reason:        "首次申请 (first application)",
				DocumentRef:   "docs/2024/housing/0001.pdf",
				PrevHash:      strings.Repeat("0", 64),
				Hash:          strings.Repeat("a1", 32),
			},
		},
		{
			ID:   eventstore.NewEventID(),
			Type: "GrantReviewed",
			Data: json.RawMessage(`{"decision":"approve"}`),
			Metadata: eventstore.Metadata{
				Principal:  "reviewer-wang",
				Role:       "reviewer",
				RecordedAt: recorded.Add(90 * time.Minute).UTC(),
				// Set without Source and CompletedBy, which a backend may
				// lay out beside it.
				RequestHash: strings.Repeat("5e", 32),
			},
		},
		// Empty metadata reads back empty: the store fills nothing in.
		{ID: eventstore.NewEventID(), Type: "GrantNoted", Data: json.RawMessage(`"just a string"`)},
	}

	before := mustLastPosition(t, ctx, s)
	res := mustAppend(t, ctx, s, stream, eventstore.NoStream, want...)
	if res.Version != 2 {
		t.Errorf("AppendResult.Version = %s; want 2", res.Version)
	}
	if !before.Before(res.Position) {
		t.Errorf("AppendResult.Position %s is not after the earlier LastPosition %s", res.Position, before)
	}

	got := mustReadStream(t, ctx, s, stream, 0)
	if len(got) != len(want) {
		t.Fatalf("read %d events; want %d", len(got), len(want))
	}
	for i := range want {
		checkEvent(t, got[i], want[i], stream, eventstore.Version(i))
	}
	wantIncreasing(t, "stream", got)
	if got[0].Position.Compare(before) <= 0 {
		t.Errorf("first event at position %s, not after the earlier LastPosition %s", got[0].Position, before)
	}
	if last := got[len(got)-1].Position; last != res.Position {
		t.Errorf("AppendResult.Position = %s; the last event appended is at %s", res.Position, last)
	}

	// A second append continues the stream.
	more := newEvent("GrantApproved", 4)
	more.Metadata = eventstore.Metadata{Principal: "approver-zhao", Role: "approver", RecordedAt: recorded.Add(24 * time.Hour)}
	res2 := mustAppend(t, ctx, s, stream, 2, more)
	if res2.Version != 3 || !res.Position.Before(res2.Position) {
		t.Errorf("second append: %+v; want version 3 after position %s", res2, res.Position)
	}
	got = mustReadStream(t, ctx, s, stream, 0)
	if len(got) != 4 {
		t.Fatalf("read %d events; want 4", len(got))
	}
	checkEvent(t, got[3], more, stream, 3)
	if got[3].Position != res2.Position {
		t.Errorf("second append: AppendResult.Position = %s; the event is at %s", res2.Position, got[3].Position)
	}

	// The global log holds the very same envelopes.
	all := readMine(t, ctx, s, sc, before)
	if len(all) != len(got) {
		t.Fatalf("ReadAll: %d of the case's events; want %d", len(all), len(got))
	}
	for i := range got {
		sameEvent(t, "ReadAll", all[i], got[i])
	}
}

// testBuffersNotRetained checks that the store keeps copies: changing the
// caller's buffers after an append, or the bytes of an event read, changes
// nothing stored.
func testBuffersNotRetained(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")

	data := []byte(`{"amount":"100.00"}`)
	e := eventstore.EventData{ID: eventstore.NewEventID(), Type: "Recorded", Data: data}
	mustAppend(t, ctx, s, stream, eventstore.NoStream, e)
	copy(data, `{"amount":"999.99"}`)

	got := mustReadStream(t, ctx, s, stream, 0)
	if string(got[0].Data) != `{"amount":"100.00"}` {
		t.Fatalf("stored data %s changed with the caller's buffer", got[0].Data)
	}
	copy(got[0].Data, `{"amount":"555.55"}`)
	got = mustReadStream(t, ctx, s, stream, 0)
	if string(got[0].Data) != `{"amount":"100.00"}` {
		t.Fatalf("stored data %s changed with a reader's buffer", got[0].Data)
	}
}

// testLargeEvent checks that a large event, well within the size limit,
// round-trips.
func testLargeEvent(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")

	data := jsonString(256 << 10)
	e := eventstore.EventData{ID: eventstore.NewEventID(), Type: "DocumentAttached", Data: data}
	mustAppend(t, ctx, s, stream, eventstore.NoStream, e)
	got := mustReadStream(t, ctx, s, stream, 0)
	if len(got) != 1 || !bytes.Equal(got[0].Data, data) {
		t.Fatalf("read back %d events; want the one event of %d bytes intact", len(got), len(data))
	}
}

// jsonString returns a JSON string of exactly n bytes, quotes included.
func jsonString(n int) json.RawMessage {
	b := bytes.Repeat([]byte("x"), n)
	b[0], b[n-1] = '"', '"'
	return b
}

// testStreamsAreSeparate checks that streams whose names share a prefix do
// not bleed into one another.
func testStreamsAreSeparate(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	names := []string{sc.stream("a"), sc.stream("ab"), sc.stream("a-b"), sc.stream("a.1"), sc.stream("A")}
	want := make(map[string][]eventstore.EventID)
	for round := range 3 {
		for i, name := range names {
			if round > 0 && i%2 == 1 {
				continue
			}
			e := newEvent("Recorded", round)
			mustAppend(t, ctx, s, name, eventstore.Version(len(want[name]))-1, e)
			want[name] = append(want[name], e.ID)
		}
	}
	for _, name := range names {
		got := wantStreamIDs(t, ctx, s, name, want[name]...)
		for _, e := range got {
			if e.Stream != name {
				t.Errorf("reading %s returned an event of stream %s", name, e.Stream)
			}
		}
	}
	wantStreamAbsent(t, ctx, s, sc.stream("a-"))
}

// testReadStreamFromVersion checks reading from each version, including at
// and past the end, which ends without an error.
func testReadStreamFromVersion(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	events := newEvents(0, 5)
	mustAppend(t, ctx, s, stream, eventstore.NoStream, events...)

	for _, from := range []eventstore.Version{0, 1, 2, 4, 5, 6, 1000} {
		got := mustReadStream(t, ctx, s, stream, from)
		var want []eventstore.EventData
		if int(from) < len(events) {
			want = events[from:]
		}
		if len(got) != len(want) {
			t.Errorf("from %s: read %d events; want %d", from, len(got), len(want))
			continue
		}
		for i := range want {
			checkEvent(t, got[i], want[i], stream, from+eventstore.Version(i))
		}
	}
}

// testReadMissingStream checks that a stream never written reports
// ErrStreamNotFound, whatever the starting version.
func testReadMissingStream(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	mustAppend(t, ctx, s, sc.stream("exists"), eventstore.NoStream, newEvent("Recorded", 0))

	for _, from := range []eventstore.Version{0, 3} {
		it := s.ReadStream(ctx, sc.stream("missing"), from)
		if it.Next() {
			t.Errorf("from %s: Next = true on a missing stream (event %+v)", from, it.Event())
		}
		if err := it.Err(); !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Errorf("from %s: Err = %v; want ErrStreamNotFound", from, err)
		}
		if err := it.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

// testIteratorClose checks that closing an iterator part-way ends it
// without an error, and that closing twice is harmless.
func testIteratorClose(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	before := mustLastPosition(t, ctx, s)
	mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents(0, 3)...)

	for name, it := range map[string]eventstore.Iterator{
		"ReadStream": s.ReadStream(ctx, stream, 0),
		"ReadAll":    s.ReadAll(ctx, before),
	} {
		if !it.Next() {
			t.Fatalf("%s: Next = false: %v", name, it.Err())
		}
		if err := it.Close(); err != nil {
			t.Errorf("%s: Close: %v", name, err)
		}
		if it.Next() {
			t.Errorf("%s: Next = true after Close", name)
		}
		if err := it.Err(); err != nil {
			t.Errorf("%s: Err = %v after Close; want nil", name, err)
		}
		if err := it.Close(); err != nil {
			t.Errorf("%s: second Close: %v", name, err)
		}
	}
}
