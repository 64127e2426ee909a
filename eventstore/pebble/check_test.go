package pebble

import (
	"bytes"
	"context"
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
}
