package eventstoretest

import (
	"errors"
	"sync"
	"testing"

	"talentledger/eventstore"
)

// The cases of eventstore.MultiAppender. A store without it skips them.

func multi(t *testing.T, s eventstore.Store) eventstore.MultiAppender {
	t.Helper()
	m, ok := s.(eventstore.MultiAppender)
	if !ok {
		t.Skip("the store does not append to several streams at once")
	}
	return m
}

// testMultiAppendAndRead checks that the parts land on their streams at
// the versions expected, in the order given, at consecutive positions, and
// that a stream named twice takes both parts in turn.
func testMultiAppendAndRead(t *testing.T, s eventstore.Store) {
	m := multi(t, s)
	ctx := testContext(t)
	sc := newScope(t)
	a, b, c := sc.stream("a"), sc.stream("b"), sc.stream("c")
	old := newEvents(0, 2)
	mustAppend(t, ctx, s, b, eventstore.NoStream, old...)
	ea, eb, ec, ea2 := newEvents(10, 2), newEvents(20, 1), newEvents(30, 3), newEvents(40, 1)
	res, err := m.AppendMulti(ctx,
		eventstore.AppendPart{Stream: a, Expected: eventstore.NoStream, Events: ea},
		eventstore.AppendPart{Stream: b, Expected: 1, Events: eb},
		eventstore.AppendPart{Stream: c, Expected: eventstore.Any, Events: ec},
		eventstore.AppendPart{Stream: a, Expected: 1, Events: ea2},
	)
	if err != nil {
		t.Fatalf("AppendMulti: %v", err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results; want 4", len(res))
	}
	for i, want := range []eventstore.Version{1, 2, 2, 2} {
		if res[i].Version != want {
			t.Errorf("part %d: version %s; want %s", i, res[i].Version, want)
		}
	}
	wantStreamIDs(t, ctx, s, a, append(ids(ea), ids(ea2)...)...)
	wantStreamIDs(t, ctx, s, b, append(ids(old), ids(eb)...)...)
	wantStreamIDs(t, ctx, s, c, ids(ec)...)

	// In the global log the parts follow one another, in the order given,
	// with nothing between them, and each part's result is the position of
	// its last event.
	all := readMine(t, ctx, s, sc, eventstore.Start)
	var order []eventstore.EventID
	for _, p := range [][]eventstore.EventData{ea, eb, ec, ea2} {
		order = append(order, ids(p)...)
	}
	got := all[len(old):]
	wantSameIDs(t, "the global log after the multi-stream append", got, order)
	wantIncreasing(t, "global log", got)
	if got[len(got)-1].Position != res[3].Position || got[1].Position != res[0].Position || got[2].Position != res[1].Position {
		t.Errorf("results %+v do not point at the parts' last events", res)
	}
	if last := mustLastPosition(t, ctx, s); last.Before(res[3].Position) {
		t.Errorf("LastPosition %s is before the append's last event %s", last, res[3].Position)
	}
}

// testMultiConflictWritesNothing checks that a wrong expected version on
// any part fails the whole append and writes none of it.
func testMultiConflictWritesNothing(t *testing.T, s eventstore.Store) {
	m := multi(t, s)
	ctx := testContext(t)
	sc := newScope(t)
	a, b, c := sc.stream("a"), sc.stream("b"), sc.stream("c")
	base := newEvents(0, 2)
	mustAppend(t, ctx, s, b, eventstore.NoStream, base...)

	for _, tc := range []struct {
		name     string
		parts    []eventstore.AppendPart
		stream   string
		expected eventstore.Version
		actual   eventstore.Version
	}{
		{"a stale version on the second part", []eventstore.AppendPart{
			{Stream: a, Expected: eventstore.NoStream, Events: newEvents(10, 1)},
			{Stream: b, Expected: 0, Events: newEvents(11, 1)},
		}, b, 0, 1},
		{"a version ahead on the last part", []eventstore.AppendPart{
			{Stream: a, Expected: eventstore.NoStream, Events: newEvents(20, 1)},
			{Stream: b, Expected: 1, Events: newEvents(21, 1)},
			{Stream: c, Expected: 3, Events: newEvents(22, 1)},
		}, c, 3, eventstore.NoStream},
		{"NoStream on an existing stream", []eventstore.AppendPart{
			{Stream: b, Expected: eventstore.NoStream, Events: newEvents(30, 1)},
			{Stream: a, Expected: eventstore.NoStream, Events: newEvents(31, 1)},
		}, b, eventstore.NoStream, 1},
		{"StreamExists on a missing stream", []eventstore.AppendPart{
			{Stream: b, Expected: 1, Events: newEvents(40, 1)},
			{Stream: c, Expected: eventstore.StreamExists, Events: newEvents(41, 1)},
		}, c, eventstore.StreamExists, eventstore.NoStream},
		{"a stream named twice, the second at the version before the first", []eventstore.AppendPart{
			{Stream: a, Expected: eventstore.NoStream, Events: newEvents(50, 2)},
			{Stream: a, Expected: 0, Events: newEvents(52, 1)},
		}, a, 0, 1},
	} {
		res, err := m.AppendMulti(ctx, tc.parts...)
		if err == nil {
			t.Fatalf("%s: appended %+v; want a version conflict", tc.name, res)
		}
		wantWrongVersion(t, err, tc.stream, tc.expected, tc.actual)
		wantStreamAbsent(t, ctx, s, a)
		wantStreamAbsent(t, ctx, s, c)
		wantStreamIDs(t, ctx, s, b, ids(base)...)
	}
}

// testMultiRetry checks that repeating an append is answered as the first
// and writes nothing, that a part already written is recognised as a retry
// while the others are written, and that a part overlapping what is stored
// only in part fails the whole append.
func testMultiRetry(t *testing.T, s eventstore.Store) {
	m := multi(t, s)
	ctx := testContext(t)
	sc := newScope(t)
	a, b, c := sc.stream("a"), sc.stream("b"), sc.stream("c")
	parts := []eventstore.AppendPart{
		{Stream: a, Expected: eventstore.NoStream, Events: newEvents(0, 2)},
		{Stream: b, Expected: eventstore.Any, Events: newEvents(2, 1)},
	}
	first, err := m.AppendMulti(ctx, parts...)
	if err != nil {
		t.Fatalf("AppendMulti: %v", err)
	}
	again, err := m.AppendMulti(ctx, parts...)
	if err != nil {
		t.Fatalf("repeated AppendMulti: %v", err)
	}
	for i := range first {
		if again[i] != first[i] {
			t.Errorf("part %d: the retry answered %+v; want %+v", i, again[i], first[i])
		}
	}
	wantStreamIDs(t, ctx, s, a, ids(parts[0].Events)...)
	wantStreamIDs(t, ctx, s, b, ids(parts[1].Events)...)

	// The first part stored, the second new: a completed retry.
	fresh := newEvents(3, 1)
	res, err := m.AppendMulti(ctx, parts[0], eventstore.AppendPart{Stream: c, Expected: eventstore.NoStream, Events: fresh})
	if err != nil {
		t.Fatalf("AppendMulti with one part already stored: %v", err)
	}
	if res[0] != first[0] || res[1].Version != 0 {
		t.Errorf("results %+v; want the stored part's %+v and version 0 for the new one", res, first[0])
	}
	wantStreamIDs(t, ctx, s, a, ids(parts[0].Events)...)
	wantStreamIDs(t, ctx, s, c, ids(fresh)...)

	// A part holding one stored event and a new one: nothing written.
	overlap := []eventstore.EventData{parts[0].Events[1], newEvent("Recorded", 9)}
	_, err = m.AppendMulti(ctx,
		eventstore.AppendPart{Stream: c, Expected: 0, Events: newEvents(10, 1)},
		eventstore.AppendPart{Stream: a, Expected: 0, Events: overlap})
	wantWrongVersion(t, err, a, 0, 1)
	wantStreamIDs(t, ctx, s, a, ids(parts[0].Events)...)
	wantStreamIDs(t, ctx, s, c, ids(fresh)...)
}

// testMultiConcurrentOneWinner races appends that each write to a shared
// stream at one expected version and to a stream of their own: exactly one
// wins each round, and the losers' own streams stay absent.
func testMultiConcurrentOneWinner(t *testing.T, s eventstore.Store) {
	m := multi(t, s)
	ctx := testContext(t)
	sc := newScope(t)
	shared := sc.stream("shared")
	const appenders, rounds = 6, 3
	var winners []eventstore.EventID
	expected := eventstore.NoStream
	for round := range rounds {
		errs := make([]error, appenders)
		evs := make([]eventstore.EventData, appenders)
		own := make([]string, appenders)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range appenders {
			evs[i] = newEvent("Recorded", round*appenders+i)
			own[i] = sc.stream("own-" + string(rune('a'+round)) + string(rune('a'+i)))
			wg.Go(func() {
				<-start
				_, errs[i] = m.AppendMulti(ctx,
					eventstore.AppendPart{Stream: own[i], Expected: eventstore.NoStream, Events: newEvents(100*round+i, 1)},
					eventstore.AppendPart{Stream: shared, Expected: expected, Events: []eventstore.EventData{evs[i]}})
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			if err == nil {
				won++
				winners = append(winners, evs[i].ID)
				mustReadStream(t, ctx, s, own[i], 0)
				continue
			}
			wantWrongVersion(t, err, shared, expected, eventstore.Version(round))
			wantStreamAbsent(t, ctx, s, own[i])
		}
		if won != 1 {
			t.Fatalf("round %d: %d appenders won; want exactly 1", round, won)
		}
		expected = eventstore.Version(round)
	}
	wantStreamIDs(t, ctx, s, shared, winners...)
}

// testMultiBadInput checks that bad input in any part fails the whole
// append with ErrInvalid and writes nothing.
func testMultiBadInput(t *testing.T, s eventstore.Store) {
	m := multi(t, s)
	ctx := testContext(t)
	sc := newScope(t)
	a, b := sc.stream("a"), sc.stream("b")
	dup := newEvent("Recorded", 1)
	bad := newEvent("Recorded", 2)
	bad.Type = ""
	for _, tc := range []struct {
		name  string
		parts []eventstore.AppendPart
		want  error
	}{
		{"no parts", nil, eventstore.ErrNoEvents},
		{"a part with no events", []eventstore.AppendPart{
			{Stream: a, Expected: eventstore.NoStream, Events: newEvents(0, 1)},
			{Stream: b, Expected: eventstore.NoStream},
		}, eventstore.ErrNoEvents},
		{"a bad stream name", []eventstore.AppendPart{
			{Stream: a, Expected: eventstore.NoStream, Events: newEvents(0, 1)},
			{Stream: "has space", Expected: eventstore.NoStream, Events: newEvents(1, 1)},
		}, eventstore.ErrInvalidStream},
		{"a bad event", []eventstore.AppendPart{
			{Stream: a, Expected: eventstore.NoStream, Events: newEvents(0, 1)},
			{Stream: b, Expected: eventstore.NoStream, Events: []eventstore.EventData{bad}},
		}, eventstore.ErrInvalidEvent},
		{"one event ID in two parts", []eventstore.AppendPart{
			{Stream: a, Expected: eventstore.NoStream, Events: []eventstore.EventData{dup}},
			{Stream: b, Expected: eventstore.NoStream, Events: []eventstore.EventData{dup}},
		}, eventstore.ErrDuplicateEventID},
		{"NoStream for a stream an earlier part appends to", []eventstore.AppendPart{
			{Stream: a, Expected: eventstore.NoStream, Events: newEvents(0, 1)},
			{Stream: a, Expected: eventstore.NoStream, Events: newEvents(1, 1)},
		}, eventstore.ErrInvalid},
	} {
		_, err := m.AppendMulti(ctx, tc.parts...)
		if !errors.Is(err, tc.want) || !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: error %v; want %v", tc.name, err, tc.want)
		}
		wantStreamAbsent(t, ctx, s, a)
		wantStreamAbsent(t, ctx, s, b)
	}
}

// testMultiSubscribe checks that a live subscription receives a
// multi-stream append's events in the order of its parts.
func testMultiSubscribe(t *testing.T, s eventstore.Store) {
	m := multi(t, s)
	ctx := testContext(t)
	sc := newScope(t)
	sub := s.Subscribe(ctx, mustLastPosition(t, ctx, s), sc.filter())
	defer sub.Close()
	r := startReader(sub, 3)
	letNextWait()
	ea, eb := newEvents(0, 2), newEvents(2, 1)
	if _, err := m.AppendMulti(ctx,
		eventstore.AppendPart{Stream: sc.stream("b"), Expected: eventstore.NoStream, Events: eb},
		eventstore.AppendPart{Stream: sc.stream("a"), Expected: eventstore.NoStream, Events: ea}); err != nil {
		t.Fatalf("AppendMulti: %v", err)
	}
	wantSameIDs(t, "live events", r.wait(t, ctx), append(ids(eb), ids(ea)...))
}
