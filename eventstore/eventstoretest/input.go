package eventstoretest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"talentledger/eventstore"
)

// testCancelledContext checks that every method honours a done context:
// appends fail with the context's error and write nothing, reads report it.
func testCancelledContext(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	existing := sc.stream("existing")
	first := newEvent("Recorded", 0)
	mustAppend(t, ctx, s, existing, eventstore.NoStream, first)
	before := mustLastPosition(t, ctx, s)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()

	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"past deadline", expired, context.DeadlineExceeded},
	} {
		fresh := sc.stream("fresh-" + strings.ReplaceAll(c.name, " ", "-"))
		if _, err := s.Append(c.ctx, fresh, eventstore.NoStream, newEvent("Recorded", 1)); !errors.Is(err, c.want) {
			t.Errorf("%s: Append to a new stream: error %v; want %v", c.name, err, c.want)
		}
		wantStreamAbsent(t, ctx, s, fresh)
		if _, err := s.Append(c.ctx, existing, 0, newEvent("Recorded", 1)); !errors.Is(err, c.want) {
			t.Errorf("%s: Append to an existing stream: error %v; want %v", c.name, err, c.want)
		}
		if _, err := collect(s.ReadStream(c.ctx, existing, 0)); !errors.Is(err, c.want) {
			t.Errorf("%s: ReadStream: Err %v; want %v", c.name, err, c.want)
		}
		if _, err := collect(s.ReadAll(c.ctx, before)); !errors.Is(err, c.want) {
			t.Errorf("%s: ReadAll: Err %v; want %v", c.name, err, c.want)
		}
		if _, err := s.LastPosition(c.ctx); !errors.Is(err, c.want) {
			t.Errorf("%s: LastPosition: error %v; want %v", c.name, err, c.want)
		}
		sub := s.Subscribe(c.ctx, eventstore.Start, sc.filter())
		if sub.Next() {
			t.Errorf("%s: Subscribe: Next = true", c.name)
		}
		if err := sub.Err(); !errors.Is(err, c.want) {
			t.Errorf("%s: Subscribe: Err %v; want %v", c.name, err, c.want)
		}
		sub.Close()
	}
	wantStreamIDs(t, ctx, s, existing, first.ID)
}

// testBadInput checks that each kind of bad append is refused with its own
// sentinel (each also matching ErrInvalid) and writes nothing.
func testBadInput(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	good := func() eventstore.EventData { return newEvent("Recorded", 0) }
	one := func() []eventstore.EventData { return []eventstore.EventData{good()} }
	with := func(change func(*eventstore.EventData)) []eventstore.EventData {
		e := good()
		change(&e)
		return []eventstore.EventData{e}
	}
	dup := good()

	for _, c := range []struct {
		name     string
		stream   string // a name for sc.stream, or a full name when raw
		raw      bool
		expected eventstore.Version // zero means NoStream
		events   []eventstore.EventData
		want     error
	}{
		{name: "empty stream name", stream: "", raw: true, events: one(), want: eventstore.ErrInvalidStream},
		{name: "stream $all", stream: "$all", raw: true, events: one(), want: eventstore.ErrInvalidStream},
		{name: "system stream", stream: "$" + sc.stream("a"), raw: true, events: one(), want: eventstore.ErrInvalidStream},
		{name: "stream with a space", stream: "has space", events: one(), want: eventstore.ErrInvalidStream},
		{name: "stream with a slash", stream: "a/b", events: one(), want: eventstore.ErrInvalidStream},
		{name: "stream too long", stream: strings.Repeat("x", eventstore.MaxStreamNameLen), events: one(), want: eventstore.ErrInvalidStream},
		{name: "unknown expected version", stream: "version", expected: -3, events: one(), want: eventstore.ErrInvalid},
		{name: "no events", stream: "none", want: eventstore.ErrNoEvents},
		{name: "empty type", stream: "type", events: with(func(e *eventstore.EventData) { e.Type = "" }), want: eventstore.ErrInvalidEvent},
		{name: "reserved type", stream: "reserved", events: with(func(e *eventstore.EventData) { e.Type = "$metadata" }), want: eventstore.ErrInvalidEvent},
		{name: "type with a space", stream: "spaced", events: with(func(e *eventstore.EventData) { e.Type = "Grant Approved" }), want: eventstore.ErrInvalidEvent},
		{name: "zero event ID", stream: "zero", events: with(func(e *eventstore.EventData) { e.ID = eventstore.EventID{} }), want: eventstore.ErrInvalidEvent},
		{name: "duplicate event ID", stream: "dup", events: []eventstore.EventData{dup, good(), dup}, want: eventstore.ErrDuplicateEventID},
		{name: "data not JSON", stream: "json", events: with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`{"amount":`) }), want: eventstore.ErrInvalidEvent},
		{name: "no data", stream: "nodata", events: with(func(e *eventstore.EventData) { e.Data = nil }), want: eventstore.ErrInvalidEvent},
		{name: "event too large", stream: "large", events: with(func(e *eventstore.EventData) { e.Data = jsonString(eventstore.DefaultMaxEventSize + 1) }), want: eventstore.ErrEventTooLarge},
		{name: "bad event after a good one", stream: "second", events: []eventstore.EventData{good(), with(func(e *eventstore.EventData) { e.Type = "" })[0]}, want: eventstore.ErrInvalidEvent},
	} {
		stream := c.stream
		if !c.raw {
			stream = sc.stream(c.stream)
		}
		expected := c.expected
		if expected == 0 {
			expected = eventstore.NoStream
		}
		_, err := s.Append(ctx, stream, expected, c.events...)
		if !errors.Is(err, c.want) || !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: error %v; want %v", c.name, err, c.want)
			continue
		}
		if eventstore.ValidateStreamName(stream) == nil {
			wantStreamAbsent(t, ctx, s, stream)
		}
	}
}

// testBadInputOnExistingStream checks that a bad batch leaves an existing
// stream as it was, even when its first events are good.
func testBadInputOnExistingStream(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	first := newEvent("Recorded", 0)
	mustAppend(t, ctx, s, stream, eventstore.NoStream, first)

	bad := newEvent("Recorded", 3)
	bad.Data = json.RawMessage(`not json`)
	for _, expected := range []eventstore.Version{0, eventstore.Any, eventstore.StreamExists} {
		_, err := s.Append(ctx, stream, expected, newEvent("Recorded", 1), newEvent("Recorded", 2), bad)
		if !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("expected %s: error %v; want ErrInvalidEvent", expected, err)
		}
	}
	wantStreamIDs(t, ctx, s, stream, first.ID)
}

// testClose closes a store: a waiting subscription ends with ErrClosed,
// and every later call fails with ErrClosed.
func testClose(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	before := mustLastPosition(t, ctx, s)
	mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvent("Recorded", 0))
	sub := s.Subscribe(ctx, before, sc.filter())
	defer sub.Close()
	receive(t, sub, 1)

	next := make(chan bool)
	go func() { next <- sub.Next() }()
	letNextWait()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if waitFor(t, ctx, next, "subscription Next after the store closed") {
		t.Errorf("subscription: Next = true after the store closed")
	}
	if err := sub.Err(); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("subscription: Err = %v after the store closed; want ErrClosed", err)
	}

	if _, err := s.Append(ctx, stream, 0, newEvent("Recorded", 1)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append: error %v; want ErrClosed", err)
	}
	if _, err := collect(s.ReadStream(ctx, stream, 0)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadStream: Err %v; want ErrClosed", err)
	}
	if _, err := collect(s.ReadAll(ctx, before)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadAll: Err %v; want ErrClosed", err)
	}
	if _, err := s.LastPosition(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("LastPosition: error %v; want ErrClosed", err)
	}
	late := s.Subscribe(ctx, before, sc.filter())
	defer late.Close()
	if late.Next() {
		t.Errorf("Subscribe: Next = true on a closed store")
	}
	if err := late.Err(); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Subscribe: Err %v; want ErrClosed", err)
	}
}

// testCloseDuringAppends closes a store while appends are in flight: each
// either completes or fails with ErrClosed, never anything else.
func testCloseDuringAppends(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	const appenders = 4

	var started, wg sync.WaitGroup
	errs := make([]error, appenders)
	for i := range appenders {
		stream := sc.stream(string(rune('a' + i)))
		started.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				if n == 3 {
					started.Done()
				}
				if _, err := s.Append(ctx, stream, eventstore.Any, newEvent("Recorded", n)); err != nil {
					if n < 3 {
						started.Done()
					}
					errs[i] = err
					return
				}
			}
		}()
	}
	started.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("appender %d stopped with %v; want ErrClosed", i, err)
		}
	}
}
