package eventstoretest

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"talentledger/eventstore"
)

// testNoStreamOnExistingStream checks that NoStream refuses a stream that
// exists, reporting its current version, and writes nothing.
func testNoStreamOnExistingStream(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	first := newEvents(0, 3)
	res := mustAppend(t, ctx, s, stream, eventstore.NoStream, first...)
	if res.Version != 2 {
		t.Fatalf("AppendResult.Version = %s; want 2", res.Version)
	}

	_, err := s.Append(ctx, stream, eventstore.NoStream, newEvent("Recorded", 3))
	wantWrongVersion(t, err, stream, eventstore.NoStream, 2)
	wantStreamIDs(t, ctx, s, stream, ids(first)...)
}

// testExactVersion checks appends at the current version, and that an
// exact version on a missing stream is a conflict that creates nothing.
func testExactVersion(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")

	_, err := s.Append(ctx, stream, 0, newEvent("Recorded", 0))
	wantWrongVersion(t, err, stream, 0, eventstore.NoStream)
	wantStreamAbsent(t, ctx, s, stream)

	var want []eventstore.EventData
	expected := eventstore.NoStream
	for i, n := range []int{1, 2, 1, 3} {
		events := newEvents(len(want), n)
		res := mustAppend(t, ctx, s, stream, expected, events...)
		want = append(want, events...)
		if wantVersion := eventstore.Version(len(want) - 1); res.Version != wantVersion {
			t.Fatalf("append %d: AppendResult.Version = %s; want %s", i, res.Version, wantVersion)
		}
		expected = res.Version
	}
	got := wantStreamIDs(t, ctx, s, stream, ids(want)...)
	for i := range want {
		checkEvent(t, got[i], want[i], stream, eventstore.Version(i))
	}
	wantIncreasing(t, "stream", got)
}

// testStaleVersion checks that an expected version behind or ahead of the
// stream is a conflict reporting the current version, and writes nothing.
func testStaleVersion(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	want := newEvents(0, 4)
	mustAppend(t, ctx, s, stream, eventstore.NoStream, want[:2]...)
	mustAppend(t, ctx, s, stream, 1, want[2:]...)

	for _, expected := range []eventstore.Version{0, 1, 2, 4, 7} {
		_, err := s.Append(ctx, stream, expected, newEvent("Recorded", 99))
		wantWrongVersion(t, err, stream, expected, 3)
	}
	wantStreamIDs(t, ctx, s, stream, ids(want)...)
}

// testStreamExists checks that StreamExists refuses a missing stream
// without creating it, and appends to an existing one.
func testStreamExists(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")

	_, err := s.Append(ctx, stream, eventstore.StreamExists, newEvent("Recorded", 0))
	wantWrongVersion(t, err, stream, eventstore.StreamExists, eventstore.NoStream)
	wantStreamAbsent(t, ctx, s, stream)

	want := newEvents(0, 3)
	mustAppend(t, ctx, s, stream, eventstore.NoStream, want[0])
	res := mustAppend(t, ctx, s, stream, eventstore.StreamExists, want[1:]...)
	if res.Version != 2 {
		t.Errorf("AppendResult.Version = %s; want 2", res.Version)
	}
	wantStreamIDs(t, ctx, s, stream, ids(want)...)
}

// testAnyVersion checks that Any creates a stream and appends to one.
func testAnyVersion(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	want := newEvents(0, 3)

	res := mustAppend(t, ctx, s, stream, eventstore.Any, want[0])
	if res.Version != 0 {
		t.Errorf("creating append: AppendResult.Version = %s; want 0", res.Version)
	}
	res = mustAppend(t, ctx, s, stream, eventstore.Any, want[1:]...)
	if res.Version != 2 {
		t.Errorf("second append: AppendResult.Version = %s; want 2", res.Version)
	}
	wantStreamIDs(t, ctx, s, stream, ids(want)...)
}

// testConcurrentAppendersOneWinner races appenders at the same expected
// version, round after round: exactly one wins each round, and every
// other one gets a conflict naming the winner's version.
func testConcurrentAppendersOneWinner(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	const appenders, rounds = 8, 4

	var winners []eventstore.EventID
	expected := eventstore.NoStream
	for round := range rounds {
		type outcome struct {
			event eventstore.EventData
			res   eventstore.AppendResult
			err   error
		}
		outcomes := make([]outcome, appenders)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range outcomes {
			outcomes[i].event = newEvent("Recorded", round*appenders+i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				o := &outcomes[i]
				o.res, o.err = s.Append(ctx, stream, expected, o.event)
			}()
		}
		close(start)
		wg.Wait()

		won := 0
		for _, o := range outcomes {
			if o.err == nil {
				won++
				winners = append(winners, o.event.ID)
				if o.res.Version != eventstore.Version(round) {
					t.Errorf("round %d: the winner got version %s; want %d", round, o.res.Version, round)
				}
				continue
			}
			wantWrongVersion(t, o.err, stream, expected, eventstore.Version(round))
		}
		if won != 1 {
			t.Fatalf("round %d (expected %s): %d appenders won; want exactly 1", round, expected, won)
		}
		expected = eventstore.Version(round)
	}
	wantStreamIDs(t, ctx, s, stream, winners...)
}

// testConcurrentAnyAppends checks that concurrent appends with Any all land
// in one stream, each atomically, with consecutive versions.
func testConcurrentAnyAppends(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	const appenders, batch = 8, 3

	batches := make([][]eventstore.EventData, appenders)
	results := make([]eventstore.AppendResult, appenders)
	errs := make([]error, appenders)
	var wg sync.WaitGroup
	for i := range batches {
		batches[i] = newEvents(i*batch, batch)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Append(ctx, stream, eventstore.Any, batches[i]...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("appender %d: %v", i, err)
		}
	}

	got := mustReadStream(t, ctx, s, stream, 0)
	if len(got) != appenders*batch {
		t.Fatalf("stream holds %d events; want %d", len(got), appenders*batch)
	}
	wantIncreasing(t, "stream", got)
	for i, b := range batches {
		last := results[i].Version
		first := last - batch + 1
		if first < 0 || int(last) >= len(got) {
			t.Fatalf("appender %d: AppendResult.Version %s is out of range", i, last)
		}
		if !equalIDs(ids(got[first:last+1]), ids(b)) {
			t.Errorf("appender %d: versions %s..%s hold %v; want its batch %v", i, first, last, ids(got[first:last+1]), ids(b))
		}
		if got[last].Position != results[i].Position {
			t.Errorf("appender %d: AppendResult.Position %s; its last event is at %s", i, results[i].Position, got[last].Position)
		}
	}
}

// testIdempotentExactVersion retries appends made at exact versions: the
// original result comes back and nothing is written twice, also after the
// stream has moved on.
func testIdempotentExactVersion(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	first, second, third := newEvents(0, 2), newEvents(2, 2), newEvents(4, 1)

	res1 := mustAppend(t, ctx, s, stream, eventstore.NoStream, first...)
	res2 := mustAppend(t, ctx, s, stream, 1, second...)
	if retry := mustAppend(t, ctx, s, stream, 1, second...); retry != res2 {
		t.Errorf("retry at version 1: %+v; want the original %+v", retry, res2)
	}
	wantStreamIDs(t, ctx, s, stream, ids(slices.Concat(first, second))...)

	mustAppend(t, ctx, s, stream, 3, third...)
	if retry := mustAppend(t, ctx, s, stream, 1, second...); retry != res2 {
		t.Errorf("retry at version 1 after a later append: %+v; want the original %+v", retry, res2)
	}
	if retry := mustAppend(t, ctx, s, stream, eventstore.NoStream, first...); retry != res1 {
		t.Errorf("retry of the creating append: %+v; want the original %+v", retry, res1)
	}
	wantStreamIDs(t, ctx, s, stream, ids(slices.Concat(first, second, third))...)
}

// testIdempotentNoStream retries a creating append.
func testIdempotentNoStream(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	events := newEvents(0, 2)

	res := mustAppend(t, ctx, s, stream, eventstore.NoStream, events...)
	for i := range 2 {
		if retry := mustAppend(t, ctx, s, stream, eventstore.NoStream, events...); retry != res {
			t.Errorf("retry %d: %+v; want the original %+v", i, retry, res)
		}
	}
	wantStreamIDs(t, ctx, s, stream, ids(events)...)
}

// testIdempotentAny retries appends made with Any.
func testIdempotentAny(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	first, second := newEvents(0, 1), newEvents(1, 2)

	res1 := mustAppend(t, ctx, s, stream, eventstore.Any, first...)
	res2 := mustAppend(t, ctx, s, stream, eventstore.Any, second...)
	if retry := mustAppend(t, ctx, s, stream, eventstore.Any, second...); retry != res2 {
		t.Errorf("retry of the second append: %+v; want the original %+v", retry, res2)
	}
	if retry := mustAppend(t, ctx, s, stream, eventstore.Any, first...); retry != res1 {
		t.Errorf("retry of the first append: %+v; want the original %+v", retry, res1)
	}
	wantStreamIDs(t, ctx, s, stream, ids(slices.Concat(first, second))...)
}

// testIdempotentStreamExists retries an append made with StreamExists.
func testIdempotentStreamExists(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	first, second := newEvents(0, 1), newEvents(1, 2)

	mustAppend(t, ctx, s, stream, eventstore.NoStream, first...)
	res := mustAppend(t, ctx, s, stream, eventstore.StreamExists, second...)
	if retry := mustAppend(t, ctx, s, stream, eventstore.StreamExists, second...); retry != res {
		t.Errorf("retry: %+v; want the original %+v", retry, res)
	}
	wantStreamIDs(t, ctx, s, stream, ids(slices.Concat(first, second))...)
}

// testPartialOverlap checks that a retry only partly matching what the
// stream holds is a version conflict and writes nothing, as in
// EventStoreDB.
func testPartialOverlap(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	events := newEvents(0, 2)
	mustAppend(t, ctx, s, stream, eventstore.NoStream, events...)
	extra := newEvent("Recorded", 9)

	for _, c := range []struct {
		name     string
		expected eventstore.Version
		events   []eventstore.EventData
	}{
		{"the original and one more", eventstore.NoStream, []eventstore.EventData{events[0], events[1], extra}},
		{"the first and a new one", eventstore.NoStream, []eventstore.EventData{events[0], extra}},
		{"the last and a new one at its version", 0, []eventstore.EventData{events[1], extra}},
		{"the first and a new one with Any", eventstore.Any, []eventstore.EventData{events[0], extra}},
	} {
		_, err := s.Append(ctx, stream, c.expected, c.events...)
		if !errors.Is(err, eventstore.ErrWrongVersion) {
			t.Fatalf("%s: error %v; want ErrWrongVersion", c.name, err)
		}
		wantWrongVersion(t, err, stream, c.expected, 1)
	}
	wantStreamIDs(t, ctx, s, stream, ids(events)...)
}
