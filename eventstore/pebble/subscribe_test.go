package pebble_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// appendLoad appends n events from several writers at once, to streams
// named prefix-<writer>, two event types alternating, and returns when all
// are acknowledged.
func appendLoad(t *testing.T, s eventstore.Store, prefix string, writers, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("%s-%d", prefix, w)
			v := eventstore.NoStream
			for i := w; i < n; i += writers * 2 {
				evs := []eventstore.EventData{newEvent("Even", i)}
				if i+writers < n {
					evs = append(evs, newEvent("Odd", i+writers))
				}
				res, err := s.Append(context.Background(), stream, v, evs...)
				if err != nil {
					t.Errorf("append to %s: %v", stream, err)
					return
				}
				v = res.Version
			}
		})
	}
	wg.Wait()
}

// follow reads a subscription in its own goroutine, pausing now and then
// to fall behind the writers when pause is set. take(n) returns its next n
// events.
func follow(t *testing.T, s eventstore.Store, after eventstore.Position, f eventstore.Filter, pause bool) (take func(n int) []eventstore.Event) {
	t.Helper()
	ch := make(chan eventstore.Event, 1<<14)
	sub := s.Subscribe(context.Background(), after, f)
	t.Cleanup(func() { sub.Close() })
	var err error
	go func() {
		defer close(ch)
		for n := 1; sub.Next(); n++ {
			ch <- sub.Event()
			if pause && n%50 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		err = sub.Err()
	}()
	return func(n int) []eventstore.Event {
		t.Helper()
		var got []eventstore.Event
		guard := time.After(30 * time.Second)
		for len(got) < n {
			select {
			case e, ok := <-ch:
				if !ok {
					t.Fatalf("subscription ended after %d of %d events: %v", len(got), n, err)
				}
				got = append(got, e)
			case <-guard:
				t.Fatalf("subscription delivered only %d of %d events", len(got), n)
			}
		}
		return got
	}
}

func TestSlowSubscribersMissNothing(t *testing.T) {
	// Buffers of a few events make subscribers overflow again and again
	// while writers run; each must still see exactly the log after its
	// checkpoint, in order, once.
	s := MustOpen(t, "", pebble.WithSubscriptionBuffer(4))
	ctx := context.Background()
	appendLoad(t, s, "pre", 2, 300)
	const n = 3000
	checkpoint := eventstore.Position{Commit: 123, Prepare: 123}
	filter := eventstore.Filter{StreamPrefixes: []string{"live-1", "live-3"}, EventTypes: []string{"Odd"}}

	afterCheckpoint := follow(t, s, checkpoint, eventstore.Filter{}, true)
	fromStart := follow(t, s, eventstore.Start, eventstore.Filter{}, false)
	filtered := follow(t, s, eventstore.Start, filter, true)
	time.Sleep(10 * time.Millisecond) // let some attach to the live feed first
	appendLoad(t, s, "live", 4, n)

	log := mustRead(t, s.ReadAll(ctx, eventstore.Start))
	if len(log) != 300+n {
		t.Fatalf("log holds %d events, want %d", len(log), 300+n)
	}
	var wantFiltered []eventstore.Event
	for i := range log {
		if filter.Match(&log[i]) {
			wantFiltered = append(wantFiltered, log[i])
		}
	}
	if len(wantFiltered) == 0 {
		t.Fatal("filter matches nothing; the test would prove nothing")
	}
	for _, c := range []struct {
		name string
		take func(int) []eventstore.Event
		want []eventstore.Event
	}{
		{"after checkpoint", afterCheckpoint, log[123:]},
		{"from start", fromStart, log},
		{"filtered", filtered, wantFiltered},
	} {
		got := c.take(len(c.want))
		for i := range got {
			g, w := &got[i], &c.want[i]
			if g.Position != w.Position || g.ID != w.ID || string(g.Data) != string(w.Data) ||
				g.Stream != w.Stream || g.Version != w.Version || g.Type != w.Type {
				t.Fatalf("%s: event %d is %v %s/%d, want %v %s/%d", c.name, i,
					g.Position, g.Stream, g.Version, w.Position, w.Stream, w.Version)
			}
		}
	}
	// Nothing more is delivered until something is appended.
	mustAppend(t, s, "live-1", eventstore.Any, newEvent("Odd", -1))
	if e := filtered(1)[0]; e.Position.Commit != uint64(len(log)+1) {
		t.Fatalf("filtered subscriber's next event is at %v, want %d", e.Position, len(log)+1)
	}
}

func TestStalledSubscriberDoesNotBlockWriters(t *testing.T) {
	s := MustOpen(t, "", pebble.WithSubscriptionBuffer(16))
	ctx := context.Background()
	sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	defer sub.Close()
	mustAppend(t, s, "a", eventstore.NoStream, events(1)...)
	if !sub.Next() {
		t.Fatalf("subscription ended: %v", sub.Err())
	}
	// The subscriber now stops reading while far more than its buffer is
	// appended; the appends must all complete.
	const n = 500
	appendLoad(t, s, "b", 4, n)
	var got []eventstore.Event
	for len(got) < n && sub.Next() {
		got = append(got, sub.Event())
	}
	if len(got) != n {
		t.Fatalf("read %d events after the stall, want %d: %v", len(got), n, sub.Err())
	}
	for i, e := range got {
		if e.Position.Commit != uint64(i+2) {
			t.Fatalf("event %d at position %v, want %d", i, e.Position, i+2)
		}
	}
}

func TestSubscriptionDataIsPrivate(t *testing.T) {
	// Live events share one copy of their data inside the store; what one
	// subscriber (or the appender) does to its slice must not reach others.
	s := MustOpen(t, "")
	ctx := context.Background()
	subs := []eventstore.Subscription{
		s.Subscribe(ctx, eventstore.Start, eventstore.Filter{}),
		s.Subscribe(ctx, eventstore.Start, eventstore.Filter{}),
	}
	for _, sub := range subs {
		defer sub.Close()
	}
	mustAppend(t, s, "a", eventstore.NoStream, events(1)...)
	for _, sub := range subs {
		if !sub.Next() {
			t.Fatal(sub.Err())
		}
	}
	// Both are live now.
	data := []byte(`{"v":"original"}`)
	e := eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: data}
	mustAppend(t, s, "a", 0, e)
	copy(data, `{"v":"CLOBBERED"}`)
	var seen [][]byte
	for _, sub := range subs {
		if !sub.Next() {
			t.Fatal(sub.Err())
		}
		d := sub.Event().Data
		seen = append(seen, slices.Clone(d))
		for i := range d {
			d[i] = 'X'
		}
	}
	for i, d := range seen {
		if string(d) != `{"v":"original"}` {
			t.Errorf("subscriber %d saw %s", i, d)
		}
	}
}
