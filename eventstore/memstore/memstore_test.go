package memstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"talentledger/eventstore"
	"talentledger/eventstore/eventstoretest"
	"talentledger/eventstore/memstore"
)

// MustOpen returns a new store that is closed when the test ends.
func MustOpen(tb testing.TB, opts ...memstore.Option) *memstore.Store {
	tb.Helper()
	s := memstore.New(opts...)
	tb.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, eventstore.ErrClosed) {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store { return MustOpen(t) })
}

// TestContractTinyBuffer runs the suite with live buffers so small that
// subscriptions overflow all the time, so every delivery path is taken.
func TestContractTinyBuffer(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		return MustOpen(t, memstore.SubscriberBuffer(1))
	})
}

// TestContractShared runs the suite the way it runs against an EventStoreDB
// server: every case gets its own connection to one store, whose log
// already holds other events and which all cases write to at once.
func TestContractShared(t *testing.T) {
	shared := MustOpen(t)
	ctx := context.Background()
	for i := range 5 {
		e := eventstore.EventData{ID: eventstore.NewEventID(), Type: "Seeded", Data: []byte(`{}`)}
		if _, err := shared.Append(ctx, "seed-1", eventstore.Any, e); err != nil {
			t.Fatalf("seeding %d: %v", i, err)
		}
	}
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		c := connect(shared)
		t.Cleanup(func() { c.Close() })
		return c
	})
}

func event(typ string) eventstore.EventData {
	return eventstore.EventData{ID: eventstore.NewEventID(), Type: typ, Data: []byte(`{}`)}
}

func TestPositionsCountFromOne(t *testing.T) {
	s := MustOpen(t)
	ctx := context.Background()
	if p, err := s.LastPosition(ctx); err != nil || p != eventstore.Start {
		t.Fatalf("LastPosition of an empty store = %s, %v; want Start", p, err)
	}
	if _, err := s.Append(ctx, "a", eventstore.NoStream, event("A"), event("A")); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "b", eventstore.NoStream, event("B"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (eventstore.Position{Commit: 3, Prepare: 3}); res.Position != want {
		t.Errorf("third event at %s; want %s", res.Position, want)
	}
	it := s.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	for n := uint64(1); it.Next(); n++ {
		if got := it.Event().Position; got.Commit != n || got.Prepare != n {
			t.Errorf("event %d at %+v", n, got)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestMaxEventSize(t *testing.T) {
	s := MustOpen(t, memstore.MaxEventSize(100))
	ctx := context.Background()
	data := func(n int) []byte { return []byte(`"` + strings.Repeat("x", n-2) + `"`) }

	// Empty metadata encodes as "{}", two bytes of the hundred.
	e := event("A")
	e.Data = data(98)
	if _, err := s.Append(ctx, "at-limit", eventstore.NoStream, e); err != nil {
		t.Errorf("event of exactly the limit: %v", err)
	}
	e = event("A")
	e.Data = data(99)
	if _, err := s.Append(ctx, "over", eventstore.NoStream, e); !errors.Is(err, eventstore.ErrEventTooLarge) {
		t.Errorf("data over the limit: error %v; want ErrEventTooLarge", err)
	}
	// Metadata counts towards the limit.
	e = event("A")
	e.Data = data(60)
	e.Metadata.Reason = strings.Repeat("r", 40)
	if _, err := s.Append(ctx, "meta", eventstore.NoStream, e); !errors.Is(err, eventstore.ErrEventTooLarge) {
		t.Errorf("data and metadata over the limit: error %v; want ErrEventTooLarge", err)
	}
}

// TestRetryRules covers the corners of EventStoreDB's retry rules that the
// contract suite leaves open.
func TestRetryRules(t *testing.T) {
	ctx := context.Background()
	readIDs := func(t *testing.T, s *memstore.Store, stream string) []eventstore.EventID {
		t.Helper()
		it := s.ReadStream(ctx, stream, 0)
		defer it.Close()
		var out []eventstore.EventID
		for it.Next() {
			out = append(out, it.Event().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	mustAppend := func(t *testing.T, s *memstore.Store, stream string, expected eventstore.Version, events ...eventstore.EventData) eventstore.AppendResult {
		t.Helper()
		res, err := s.Append(ctx, stream, expected, events...)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	t.Run("retrying the start of an append", func(t *testing.T) {
		s := MustOpen(t)
		a, b := event("A"), event("B")
		mustAppend(t, s, "s", eventstore.NoStream, a, b)
		// EventStoreDB acknowledges it with the version of the last event
		// retried.
		res := mustAppend(t, s, "s", eventstore.NoStream, a)
		if res.Version != 0 || res.Position != (eventstore.Position{Commit: 1, Prepare: 1}) {
			t.Errorf("got %+v; want version 0 at position 1", res)
		}
		if got := readIDs(t, s, "s"); len(got) != 2 {
			t.Errorf("stream holds %d events; want 2", len(got))
		}
	})
	t.Run("Any with every ID present", func(t *testing.T) {
		s := MustOpen(t)
		a, b, c := event("A"), event("B"), event("C")
		mustAppend(t, s, "s", eventstore.NoStream, a, b, c)
		res := mustAppend(t, s, "s", eventstore.Any, a, c)
		if res.Version != 2 {
			t.Errorf("got version %s; want 2, that of the last ID", res.Version)
		}
		if got := readIDs(t, s, "s"); len(got) != 3 {
			t.Errorf("stream holds %d events; want 3", len(got))
		}
	})
	t.Run("Any with a new first event", func(t *testing.T) {
		s := MustOpen(t)
		a, x := event("A"), event("X")
		mustAppend(t, s, "s", eventstore.NoStream, a)
		// Only the first ID decides whether an Any append is a retry, so
		// this one is written, a included, as EventStoreDB does.
		res := mustAppend(t, s, "s", eventstore.Any, x, a)
		if res.Version != 2 {
			t.Errorf("got version %s; want 2", res.Version)
		}
		want := []eventstore.EventID{a.ID, x.ID, a.ID}
		if got := readIDs(t, s, "s"); !slices.Equal(got, want) {
			t.Errorf("stream holds %v; want %v", got, want)
		}
	})
	t.Run("IDs are per stream", func(t *testing.T) {
		s := MustOpen(t)
		a := event("A")
		mustAppend(t, s, "s", eventstore.NoStream, a)
		if res := mustAppend(t, s, "t", eventstore.Any, a); res.Version != 0 {
			t.Errorf("got version %s; want 0 in the other stream", res.Version)
		}
		if got := readIDs(t, s, "t"); len(got) != 1 {
			t.Errorf("other stream holds %d events; want 1", len(got))
		}
	})
}

func TestReadStreamBadArguments(t *testing.T) {
	s := MustOpen(t)
	ctx := context.Background()
	for _, c := range []struct {
		stream string
		from   eventstore.Version
		want   error
	}{
		{"", 0, eventstore.ErrInvalidStream},
		{"$all", 0, eventstore.ErrInvalidStream},
		{"a", -1, eventstore.ErrInvalid},
	} {
		it := s.ReadStream(ctx, c.stream, c.from)
		if it.Next() || !errors.Is(it.Err(), c.want) {
			t.Errorf("ReadStream(%q, %s): Err %v; want %v", c.stream, c.from, it.Err(), c.want)
		}
		it.Close()
	}
}

// TestSubscribeBeyondTheEnd subscribes after a position the log has not
// reached yet: events up to it are skipped.
func TestSubscribeBeyondTheEnd(t *testing.T) {
	s := MustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := s.Subscribe(ctx, eventstore.Position{Commit: 3, Prepare: 3}, eventstore.Filter{})
	defer sub.Close()

	var events []eventstore.EventData
	for i := range 5 {
		events = append(events, event("A"))
		if _, err := s.Append(ctx, "s", eventstore.Version(i)-1, events[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range events[3:] {
		if !sub.Next() {
			t.Fatalf("Next = false: %v", sub.Err())
		}
		if got := sub.Event().ID; got != want.ID {
			t.Fatalf("got %s; want %s", got, want.ID)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	s := MustOpen(b)
	ctx := context.Background()
	data := []byte(`{"amount":"600000.00","talent":"t-1"}`)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := eventstore.EventData{ID: eventstore.NewEventID(), Type: "GrantApproved", Data: data}
		if _, err := s.Append(ctx, "grant-1", eventstore.Any, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubscribeLive measures an append delivered to a waiting
// subscriber.
func BenchmarkSubscribeLive(b *testing.B) {
	s := MustOpen(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	defer sub.Close()
	data := []byte(`{}`)
	got := make(chan struct{})
	go func() {
		for sub.Next() {
			got <- struct{}{}
		}
	}()
	for b.Loop() {
		e := eventstore.EventData{ID: eventstore.NewEventID(), Type: "A", Data: data}
		if _, err := s.Append(ctx, "s", eventstore.Any, e); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
