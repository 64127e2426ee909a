package eventstoretest

import (
	"fmt"
	"sync"
	"testing"

	"talentledger/eventstore"
)

// testGlobalOrder writes to several streams at once and checks the global
// log: positions grow strictly, agree with every stream's own order and
// with what each append reported, and reading after a position excludes
// that position.
func testGlobalOrder(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	const writers, appends = 4, 15

	type appended struct {
		events []eventstore.EventData
		res    eventstore.AppendResult
	}
	before := mustLastPosition(t, ctx, s)
	streams := make([]string, writers)
	written := make([][]appended, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		streams[w] = sc.stream(fmt.Sprintf("s%d", w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			expected := eventstore.NoStream
			for i := range appends {
				// Some appends carry two events, to interleave batches too.
				events := newEvents(i, 1+i%3/2)
				res, err := s.Append(ctx, streams[w], expected, events...)
				if err != nil {
					errs[w] = err
					return
				}
				written[w] = append(written[w], appended{events, res})
				expected = res.Version
			}
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}

	mine := readMine(t, ctx, s, sc, before)
	wantIncreasing(t, "ReadAll", mine)
	total := 0
	for w := range writers {
		var want []eventstore.EventID
		for _, a := range written[w] {
			want = append(want, ids(a.events)...)
		}
		total += len(want)

		var got []eventstore.Event
		for _, e := range mine {
			if e.Stream == streams[w] {
				got = append(got, e)
			}
		}
		wantSameIDs(t, "ReadAll, stream "+streams[w], got, want)
		for i, e := range got {
			if e.Version != eventstore.Version(i) {
				t.Fatalf("ReadAll: event %d of %s has version %s", i, streams[w], e.Version)
			}
		}
		for _, a := range written[w] {
			last := got[a.res.Version]
			if last.Position != a.res.Position {
				t.Errorf("%s/%s: at position %s in the log; the append reported %s",
					streams[w], a.res.Version, last.Position, a.res.Position)
			}
		}
		// The stream reads back the same envelopes, positions included.
		fromStream := mustReadStream(t, ctx, s, streams[w], 0)
		for i := range fromStream {
			sameEvent(t, "ReadStream vs ReadAll", fromStream[i], got[i])
		}
	}
	if len(mine) != total {
		t.Fatalf("ReadAll: %d of the case's events; want %d", len(mine), total)
	}

	// Reading after a position starts with the next event.
	for _, k := range []int{0, 1, len(mine) / 2, len(mine) - 2, len(mine) - 1} {
		after := mine[k].Position
		got := readMine(t, ctx, s, sc, after)
		wantSameIDs(t, fmt.Sprintf("ReadAll after event %d", k), got, ids(mine[k+1:]))
	}
	// From Start, the log holds the same events in the same order.
	wantSameIDs(t, "ReadAll from Start", readMine(t, ctx, s, sc, eventstore.Start), ids(mine))
}

// testLastPosition checks that LastPosition moves past each append.
func testLastPosition(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")

	prev := mustLastPosition(t, ctx, s)
	expected := eventstore.NoStream
	for i := range 3 {
		res := mustAppend(t, ctx, s, stream, expected, newEvents(i, i+1)...)
		expected = res.Version
		if !prev.Before(res.Position) {
			t.Errorf("append %d landed at %s, not after the earlier LastPosition %s", i, res.Position, prev)
		}
		last := mustLastPosition(t, ctx, s)
		// Other writers may have appended since; never anything earlier.
		if last.Before(res.Position) {
			t.Errorf("LastPosition %s is before append %d, at %s", last, i, res.Position)
		}
		prev = last
	}
}
