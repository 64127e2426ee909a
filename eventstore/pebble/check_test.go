package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"talentledger/eventstore"
)

// TestFatalNeverPanics checks that Pebble's fatal callback logs one line
// and hands over to the fatal handler, and that a handler that returns
// does not let Pebble go on: the goroutine ends, with no panic.
func TestFatalNeverPanics(t *testing.T) {
	var logs bytes.Buffer
	got := make(chan string, 1)
	p := pebbleLogger{l: slog.New(slog.NewJSONHandler(&logs, nil)), fatal: func(msg string) { got <- msg }}
	done := make(chan bool)
	go func() {
		defer func() { done <- recover() == nil }()
		p.Fatalf("MANIFEST sync failed: %s", "disk gone")
		t.Error("Fatalf returned")
	}()
	if !<-done {
		t.Fatal("Fatalf panicked")
	}
	if msg := <-got; msg != "MANIFEST sync failed: disk gone" {
		t.Errorf("handler got %q", msg)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), "disk gone") {
		t.Errorf("log: %s", logs.String())
	}
}

func TestCheckIndex(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		if _, err := s.Append(ctx, "s-1", eventstore.Version(i)-1, eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	it := s.ReadAll(ctx, eventstore.Start)
	var evs []eventstore.Event
	for it.Next() {
		evs = append(evs, it.Event())
	}
	it.Close()
	for i := range evs {
		if err := s.CheckIndexEntry(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CheckIndexTotals(ctx, 3); err != nil {
		t.Fatal(err)
	}
	var want [5]uint64
	for i := range evs {
		s.AddIndexDigest(&want, &evs[i])
	}
	if got, err := s.IndexDigest(ctx, 3); err != nil || got != want {
		t.Fatalf("IndexDigest = %v, %v; want %v", got, err, want)
	}
	if got, _ := s.IndexDigest(ctx, 2); got == want || got[0] != 4 {
		t.Errorf("IndexDigest up to 2 counts %d entries, want 4", got[0])
	}
	// An index entry pointing elsewhere, and one past the log.
	s.db.Set(streamKey(nil, "s-1", 1), []byte{3}, nil)
	if got, _ := s.IndexDigest(ctx, 3); got == want {
		t.Error("the digest misses a misdirected entry")
	}
	if err := s.CheckIndexEntry(&evs[1]); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "points at position 3") {
		t.Errorf("a misdirected stream index entry: %v", err)
	}
	s.db.Set(streamKey(nil, "s-1", 1), []byte{2}, nil)
	s.db.Set(streamKey(nil, "s-1", 3), []byte{4}, nil)
	if err := s.CheckIndexTotals(ctx, 3); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "outside the log") {
		t.Errorf("an index entry past the log: %v", err)
	}
	// The stream index whole again, an event-ID entry for an event the
	// log does not hold: the two indexes are scanned side by side, and
	// each is checked.
	if err := s.db.Delete(streamKey(nil, "s-1", 3), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckIndexTotals(ctx, 3); err != nil {
		t.Fatalf("the indexes whole again: %v", err)
	}
	s.db.Set(idKey(nil, "s-1", eventstore.NewEventID()), binary.AppendUvarint(nil, 2), nil)
	if err := s.CheckIndexTotals(ctx, 3); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "event-ID index covers 4 events") {
		t.Errorf("an event-ID entry for no event: %v", err)
	}
}

// TestStreamIndexRuns: an append of many events writes one stream-index
// entry, not one per event; reads from any version inside the run, the
// head, retries and the index checks all see through it.
func TestStreamIndexRuns(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := func(n int) []eventstore.EventData {
		out := make([]eventstore.EventData, n)
		for i := range out {
			out[i] = eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{}`)}
		}
		return out
	}
	first, second := evs(100), evs(3)
	if _, err := s.Append(ctx, "run", eventstore.NoStream, first...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "other", eventstore.NoStream, evs(2)...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "run", 99, second...); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, s, prefixStream); n != 3 {
		t.Errorf("%d stream-index entries for three appends, want 3", n)
	}
	if n := countKeys(t, s, prefixID); n != 105 {
		t.Errorf("%d event-ID index entries for 105 events, want 105", n)
	}
	all := append(append([]eventstore.EventData(nil), first...), second...)
	for _, from := range []eventstore.Version{0, 1, 57, 99, 100, 102, 103, 200} {
		it := s.ReadStream(ctx, "run", from)
		var got []eventstore.Event
		for it.Next() {
			got = append(got, it.Event())
		}
		if err := it.Err(); err != nil {
			t.Fatalf("read from %d: %v", from, err)
		}
		it.Close()
		want := all[min(int(from), len(all)):]
		if len(got) != len(want) {
			t.Fatalf("read from %d: %d events, want %d", from, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID || got[i].Version != from+eventstore.Version(i) {
				t.Fatalf("read from %d: event %d is %s at %d", from, i, got[i].ID, got[i].Version)
			}
		}
	}
	// A retry at a version inside the run is found there.
	if res, err := s.Append(ctx, "run", 49, first[50:60]...); err != nil || res.Version != 59 {
		t.Errorf("retry inside the run: %+v, %v", res, err)
	}
	var d [5]uint64
	it := s.ReadAll(ctx, eventstore.Start)
	for it.Next() {
		e := it.Event()
		if err := s.CheckIndexEntry(&e); err != nil {
			t.Fatalf("CheckIndexEntry(%s/%d): %v", e.Stream, e.Version, err)
		}
		s.AddIndexDigest(&d, &e)
	}
	it.Close()
	if err := s.CheckIndexTotals(ctx, 105); err != nil {
		t.Fatal(err)
	}
	if got, err := s.IndexDigest(ctx, 105); err != nil || got != d {
		t.Fatalf("IndexDigest = %v, %v; want %v", got, err, d)
	}
	// A run made one event longer than the log holds is past the log.
	s.db.Set(streamKey(nil, "run", 100), appendRun(nil, 103, 4), nil)
	if err := s.CheckIndexTotals(ctx, 105); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a run past the log: %v", err)
	}
	if got, _ := s.IndexDigest(ctx, 106); got == d {
		t.Error("the digest misses a lengthened run")
	}
}

func countKeys(t *testing.T, s *Store, prefix byte) int {
	t.Helper()
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for valid := it.SeekGE([]byte{prefix}); valid && it.Key()[0] == prefix; valid = it.Next() {
		n++
	}
	return n
}

// TestFormat2Opens: a directory in format 2, whose stream index has an
// entry per event, is read as it is, and its marker is raised to 3.
func TestFormat2Opens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Append(ctx, "s", eventstore.Version(i)-1, eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// Three events in one append, indexed as format 2 did: an entry each.
	res, err := s.Append(ctx, "b", eventstore.NoStream, eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{}`)},
		eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{}`)}, eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	for v := range 3 {
		s.db.Set(streamKey(nil, "b", eventstore.Version(v)), appendRun(nil, res.Position.Commit-2+uint64(v), 1), nil)
	}
	s.db.Set(formatKey, []byte{2}, nil)
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatalf("open a format 2 directory: %v", err)
	}
	defer s.Close()
	v, closer, err := s.db.Get(formatKey)
	if err != nil || len(v) != 1 || v[0] != 3 {
		t.Fatalf("format marker %v, %v; want 3", v, err)
	}
	closer.Close()
	if res, err := s.Append(ctx, "s", 2, eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{}`)}); err != nil || res.Version != 3 {
		t.Fatalf("append after the upgrade: %+v, %v", res, err)
	}
	if res, err := s.Append(ctx, "b", 2, eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{}`)}); err != nil || res.Version != 3 {
		t.Fatalf("append to a stream indexed by format 2: %+v, %v", res, err)
	}
	it := s.ReadStream(ctx, "b", 1)
	n := 0
	for it.Next() {
		if e := it.Event(); e.Version != eventstore.Version(1+n) {
			t.Fatalf("event %d at version %d", n, e.Version)
		}
		n++
	}
	if err := it.Err(); err != nil || n != 3 {
		t.Fatalf("read %d events from version 1, %v; want 3", n, err)
	}
	it.Close()
	if err := s.CheckIndexTotals(ctx, 8); err != nil {
		t.Fatal(err)
	}
}
