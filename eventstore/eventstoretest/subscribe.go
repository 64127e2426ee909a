package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"talentledger/eventstore"
)

// testSubscribeFromStart subscribes from the very beginning of the log:
// the stored events arrive first, exactly as ReadAll returns them, then
// new ones as they are appended.
func testSubscribeFromStart(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	a, b := sc.stream("a"), sc.stream("b")
	e := newEvents(0, 7)
	mustAppend(t, ctx, s, a, eventstore.NoStream, e[0])
	mustAppend(t, ctx, s, b, eventstore.NoStream, e[1])
	mustAppend(t, ctx, s, a, 0, e[2], e[3])
	mustAppend(t, ctx, s, b, 0, e[4])
	stored := readMine(t, ctx, s, sc, eventstore.Start)
	wantSameIDs(t, "ReadAll", stored, ids(e[:5]))

	sub := s.Subscribe(ctx, eventstore.Start, sc.filter())
	defer sub.Close()
	got := receive(t, sub, len(stored))
	for i := range stored {
		sameEvent(t, "catch-up", got[i], stored[i])
	}

	mustAppend(t, ctx, s, a, 2, e[5])
	mustAppend(t, ctx, s, b, 1, e[6])
	live := receive(t, sub, 2)
	all := append(got, live...)
	wantSameIDs(t, "catch-up then live", all, ids(e))
	wantIncreasing(t, "subscription", all)
	checkEvent(t, live[0], e[5], a, 3)
	checkEvent(t, live[1], e[6], b, 2)

	if err := sub.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if sub.Next() {
		t.Errorf("Next = true after Close")
	}
	if err := sub.Err(); err != nil {
		t.Errorf("Err = %v after Close; want nil", err)
	}
}

// testSubscribeFromCheckpoint stops a subscription part-way and resumes from
// the position of the last event it delivered: the next one arrives with no
// gap and no duplicate, through the stored events and on into live ones.
func testSubscribeFromCheckpoint(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	a, b := sc.stream("a"), sc.stream("b")
	before := mustLastPosition(t, ctx, s)
	mustAppend(t, ctx, s, a, eventstore.NoStream, newEvents(0, 3)...)
	mustAppend(t, ctx, s, b, eventstore.NoStream, newEvents(3, 1)...)
	mustAppend(t, ctx, s, a, 2, newEvents(4, 3)...)
	mustAppend(t, ctx, s, b, 0, newEvents(7, 1)...)
	mustAppend(t, ctx, s, a, 5, newEvents(8, 4)...)
	stored := readMine(t, ctx, s, sc, before)
	if len(stored) != 12 {
		t.Fatalf("ReadAll: %d of the case's events; want 12", len(stored))
	}

	first := s.Subscribe(ctx, before, sc.filter())
	got := receive(t, first, 5)
	wantSameIDs(t, "first subscription", got, ids(stored[:5]))
	checkpoint := got[len(got)-1].Position
	if err := first.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := first.Err(); err != nil {
		t.Errorf("Err after Close = %v; want nil", err)
	}

	resumed := s.Subscribe(ctx, checkpoint, sc.filter())
	defer resumed.Close()
	got = receive(t, resumed, len(stored)-5)
	for i := range got {
		sameEvent(t, "resumed", got[i], stored[5+i])
	}

	live := newEvents(12, 2)
	mustAppend(t, ctx, s, b, 1, live...)
	wantSameIDs(t, "resumed, live", receive(t, resumed, 2), ids(live))

	// A checkpoint at the newest event waits for the next one.
	last := mustReadStream(t, ctx, s, b, 3)[0]
	atEnd := s.Subscribe(ctx, last.Position, sc.filter())
	defer atEnd.Close()
	next := newEvent("Recorded", 14)
	mustAppend(t, ctx, s, a, 9, next)
	wantSameIDs(t, "subscribed at the newest event", receive(t, atEnd, 1), ids([]eventstore.EventData{next}))
	wantSameIDs(t, "resumed, still live", receive(t, resumed, 1), ids([]eventstore.EventData{next}))
}

// testCatchUpWhileWriting subscribes while a writer is appending, so that
// the switch from stored to live events happens under load: every event
// still arrives once, in order.
func testCatchUpWhileWriting(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	const n = 100
	before := mustLastPosition(t, ctx, s)

	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan struct{})
	var writerErr error
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		expected := eventstore.NoStream
		for i := range n {
			res, err := s.Append(ctx, stream, expected, newEvent("Recorded", i))
			if err != nil {
				writerErr = err
				cancel() // stop the subscriber rather than leave it waiting
				return
			}
			expected = res.Version
			if i == n/3 {
				close(started)
			}
		}
	}()
	defer func() {
		<-writerDone
		if writerErr != nil {
			t.Errorf("writer: %v", writerErr)
		}
	}()
	select {
	case <-started:
	case <-writerDone:
		return // the deferred check reports why
	}

	for _, from := range []eventstore.Position{before, eventstore.Start} {
		sub := s.Subscribe(subCtx, from, sc.filter())
		got := receive(t, sub, n)
		sub.Close()
		for i, e := range got {
			if e.Stream != stream || e.Version != eventstore.Version(i) {
				t.Fatalf("subscription from %s: event %d is %s/%s; want %s/%d", from, i, e.Stream, e.Version, stream, i)
			}
		}
		wantIncreasing(t, "subscription", got)
	}
}

// testSlowSubscriber lets many events pile up behind a live subscriber that
// is not reading: once it reads again it gets them all, in order.
func testSlowSubscriber(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	const pingPong, batches, batch = 20, 10, 50

	sub := s.Subscribe(ctx, mustLastPosition(t, ctx, s), sc.filter())
	defer sub.Close()
	// Appending while the reader waits makes the subscription live.
	r := startReader(sub, pingPong)
	for i := range pingPong {
		e := newEvent("Recorded", i)
		mustAppend(t, ctx, s, stream, eventstore.Version(i)-1, e)
		if got := r.next(t, ctx); got.ID != e.ID {
			t.Fatalf("live event %d: got %s; want %s", i, got.ID, e.ID)
		}
	}
	r.wait(t, ctx)

	// Now nobody reads while events pile up.
	var want []eventstore.EventID
	for i := range batches {
		events := newEvents(pingPong+i*batch, batch)
		mustAppend(t, ctx, s, stream, eventstore.Version(pingPong+i*batch-1), events...)
		want = append(want, ids(events)...)
	}
	got := receive(t, sub, len(want))
	wantSameIDs(t, "slow subscriber", got, want)
	for i, e := range got {
		if e.Version != eventstore.Version(pingPong+i) {
			t.Fatalf("event %d has version %s; want %d", i, e.Version, pingPong+i)
		}
	}
}

// testManySubscribers runs several subscribers at once, each in its own
// goroutine, while events are appended: each sees all of them in order.
func testManySubscribers(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	stream := sc.stream("a")
	const subscribers, appends, batch = 4, 10, 3
	before := mustLastPosition(t, ctx, s)

	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([][]eventstore.Event, subscribers)
	errs := make([]error, subscribers)
	var wg sync.WaitGroup
	for i := range subscribers {
		sub := s.Subscribe(subCtx, before, sc.filter())
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			for len(results[i]) < appends*batch {
				if !sub.Next() {
					errs[i] = fmt.Errorf("ended after %d events: %w", len(results[i]), sub.Err())
					return
				}
				results[i] = append(results[i], sub.Event())
			}
		}()
	}

	var want []eventstore.EventID
	expected := eventstore.NoStream
	for i := range appends {
		events := newEvents(i*batch, batch)
		res, err := s.Append(ctx, stream, expected, events...)
		if err != nil {
			cancel()
			wg.Wait()
			t.Fatalf("append %d: %v", i, err)
		}
		expected = res.Version
		want = append(want, ids(events)...)
	}
	wg.Wait()
	for i := range subscribers {
		if errs[i] != nil {
			t.Fatalf("subscriber %d: %v", i, errs[i])
		}
		wantSameIDs(t, fmt.Sprintf("subscriber %d", i), results[i], want)
	}
}

// testFilterStreamPrefix checks stream-prefix filters, one prefix and
// several, on stored and on live events.
func testFilterStreamPrefix(t *testing.T, s eventstore.Store) {
	sc := newScope(t)
	grant1, grant2 := sc.stream("grant-1"), sc.stream("grant-2")
	fund, other := sc.stream("fund-1"), sc.stream("grantee-1") // "grantee-" is not "grant-"
	isGrant := func(stream string) bool { return stream == grant1 || stream == grant2 }

	checkFilters(t, s, []filterCase{
		{"prefix grant-", eventstore.Filter{StreamPrefixes: []string{sc.stream("grant-")}},
			func(w write) bool { return isGrant(w.stream) }},
		{"prefixes grant- and fund-", eventstore.Filter{StreamPrefixes: []string{sc.stream("grant-"), sc.stream("fund-")}},
			func(w write) bool { return isGrant(w.stream) || w.stream == fund }},
	},
		[]write{{grant1, "Recorded"}, {fund, "Recorded"}, {other, "Recorded"}, {grant2, "Recorded"}},
		[]write{{other, "Recorded"}, {fund, "Recorded"}, {grant2, "Recorded"}, {other, "Recorded"}, {grant1, "Recorded"}},
	)
}

// testFilterEventType checks event-type filters, alone and together with a
// stream prefix (both must match), on stored and on live events.
func testFilterEventType(t *testing.T, s eventstore.Store) {
	sc := newScope(t)
	a, b := sc.stream("a"), sc.stream("b")
	// Types of the case's own, so a filter on types alone sees no one
	// else's events.
	approved, released, noted := sc.eventType("Approved"), sc.eventType("Released"), sc.eventType("Noted")

	checkFilters(t, s, []filterCase{
		{"type Released", eventstore.Filter{EventTypes: []string{released}},
			func(w write) bool { return w.typ == released }},
		{"types Approved and Released", eventstore.Filter{EventTypes: []string{approved, released}},
			func(w write) bool { return w.typ == approved || w.typ == released }},
		{"stream a, types Approved and Released", eventstore.Filter{StreamPrefixes: []string{a}, EventTypes: []string{approved, released}},
			func(w write) bool { return w.stream == a && (w.typ == approved || w.typ == released) }},
	},
		[]write{{a, approved}, {b, released}, {a, noted}, {b, approved}, {a, released}},
		[]write{{b, noted}, {b, released}, {a, noted}, {a, approved}, {b, approved}, {a, released}},
	)
}

type write struct{ stream, typ string }

type filterCase struct {
	name   string
	filter eventstore.Filter
	match  func(write) bool
}

// checkFilters subscribes with each filter, appends the stored writes and
// reads them, then appends the live writes while readers wait, checking
// that each subscription delivers exactly the events its filter matches.
// Each list of writes should end with one that every filter matches, so
// that an event wrongly let through would arrive before it and show.
func checkFilters(t *testing.T, s eventstore.Store, filters []filterCase, stored, live []write) {
	t.Helper()
	ctx := testContext(t)
	before := mustLastPosition(t, ctx, s)
	subs := make([]eventstore.Subscription, len(filters))
	for i, f := range filters {
		subs[i] = s.Subscribe(ctx, before, f.filter)
		defer subs[i].Close()
	}

	versions := make(map[string]eventstore.Version)
	plan := func(writes []write) ([]eventstore.EventData, [][]eventstore.EventID) {
		events := make([]eventstore.EventData, len(writes))
		want := make([][]eventstore.EventID, len(filters))
		for i, w := range writes {
			events[i] = newEvent(w.typ, i)
			for j, f := range filters {
				if f.match(w) {
					want[j] = append(want[j], events[i].ID)
				}
			}
		}
		return events, want
	}
	appendWrites := func(writes []write, events []eventstore.EventData) {
		t.Helper()
		for i, w := range writes {
			expected, ok := versions[w.stream]
			if !ok {
				expected = eventstore.NoStream
			}
			versions[w.stream] = mustAppend(t, ctx, s, w.stream, expected, events[i]).Version
		}
	}

	events, want := plan(stored)
	appendWrites(stored, events)
	for j, f := range filters {
		wantSameIDs(t, f.name+", stored", receive(t, subs[j], len(want[j])), want[j])
	}

	// Live: each event is appended while the readers wait, and those whose
	// filter matches it must deliver it next.
	events, want = plan(live)
	readers := make([]*reader, len(filters))
	for j := range filters {
		readers[j] = startReader(subs[j], len(want[j]))
	}
	for i, w := range live {
		appendWrites(live[i:i+1], events[i:i+1])
		for j, f := range filters {
			if !f.match(w) {
				continue
			}
			if got := readers[j].next(t, ctx); got.ID != events[i].ID {
				t.Fatalf("%s, live: delivered %s (%s, type %s) where %s was next", f.name, got.ID, got.Stream, got.Type, events[i].ID)
			}
		}
	}
	for _, r := range readers {
		r.wait(t, ctx)
	}
}

// testSubscriptionCancel checks that cancelling the context ends a waiting
// subscription with the context's error, and that a subscription made with
// a cancelled context ends at once.
func testSubscriptionCancel(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	before := mustLastPosition(t, ctx, s)

	subCtx, cancel := context.WithCancel(ctx)
	sub := s.Subscribe(subCtx, before, sc.filter())
	defer sub.Close()
	mustAppend(t, ctx, s, sc.stream("a"), eventstore.NoStream, newEvent("Recorded", 0))
	receive(t, sub, 1)

	next := make(chan bool)
	go func() { next <- sub.Next() }()
	letNextWait()
	cancel()
	if waitFor(t, ctx, next, "Next after cancel") {
		t.Fatalf("Next = true after cancel, with no new event (got %s)", sub.Event().ID)
	}
	if err := sub.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err = %v; want context.Canceled", err)
	}
	if sub.Next() {
		t.Errorf("Next = true after the subscription ended")
	}

	late := s.Subscribe(subCtx, eventstore.Start, sc.filter())
	defer late.Close()
	if late.Next() {
		t.Errorf("Next = true on a subscription made with a cancelled context")
	}
	if err := late.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("subscription made with a cancelled context: Err = %v; want context.Canceled", err)
	}
}

// testSubscriptionClose checks that closing a subscription, while Next
// waits or before it is ever called, ends it with no error.
func testSubscriptionClose(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	sc := newScope(t)
	before := mustLastPosition(t, ctx, s)
	mustAppend(t, ctx, s, sc.stream("a"), eventstore.NoStream, newEvent("Recorded", 0))

	sub := s.Subscribe(ctx, before, sc.filter())
	receive(t, sub, 1)
	next := make(chan bool)
	go func() { next <- sub.Next() }()
	letNextWait()
	if err := sub.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if waitFor(t, ctx, next, "Next after Close") {
		t.Fatalf("Next = true after Close, with no new event")
	}
	if err := sub.Err(); err != nil {
		t.Errorf("Err = %v after Close; want nil", err)
	}
	if err := sub.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// Closed before reading: nothing is delivered, though events wait.
	unread := s.Subscribe(ctx, before, sc.filter())
	if err := unread.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if unread.Next() {
		t.Errorf("Next = true on a subscription closed before reading")
	}
	if err := unread.Err(); err != nil {
		t.Errorf("Err = %v after Close; want nil", err)
	}
}
