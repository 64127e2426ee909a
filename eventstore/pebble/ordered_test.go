package pebble_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// syncHeld opens a store on a walGate and holds a sync in flight, of an
// append whose outcome held reports: what is appended next is decided
// into the next batch. The sync fails, once released, if fail is set.
func syncHeld(t *testing.T, fail bool) (s *pebble.Store, g *walGate, held <-chan error) {
	t.Helper()
	g = newWALGate()
	s, err := pebble.Open("db", pebble.WithFS(g.fs()), pebble.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "warm-up", eventstore.NoStream, events(1)...)
	g.hold.Store(true)
	g.fail.Store(fail)
	out := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), "held", eventstore.NoStream, events(1)...)
		out <- err
	}()
	<-g.held
	return s, g, out
}

// TestOrderedResultsAfterFailedSync: an ordered append's results,
// handed back before the batch ahead of it has synced, are not written
// over by the writer when that sync fails (run with -race).
func TestOrderedResultsAfterFailedSync(t *testing.T) {
	s, g, held := syncHeld(t, true)
	defer s.Close()
	ctx := context.Background()
	out := make(chan error, 1)
	go func() {
		res, wait, err := s.AppendMultiOrdered(ctx, 1, eventstore.AppendPart{Stream: "a", Expected: eventstore.NoStream, Events: events(1)})
		if err != nil {
			out <- err
			return
		}
		// Read while the writer fails the batch.
		if len(res) != 1 || res[0].Version != 0 {
			t.Errorf("ordered results %+v", res)
		}
		out <- wait()
	}()
	waitBatched(t, s, 1)
	time.Sleep(50 * time.Millisecond) // the ordered append has its results
	g.hold.Store(false)
	close(g.release)
	<-held
	if err := <-out; err == nil {
		t.Fatal("ordered append acknowledged after the sync before it failed")
	}
}

// TestCloseWithOrderedAppendPending: Close while an ordered append
// waits behind a held sync neither hangs nor loses its outcome.
func TestCloseWithOrderedAppendPending(t *testing.T) {
	for _, fail := range []bool{false, true} {
		s, g, held := syncHeld(t, fail)
		_, wait, err := s.AppendMultiOrdered(context.Background(), 1, eventstore.AppendPart{Stream: "a", Expected: eventstore.NoStream, Events: events(1)})
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		g.hold.Store(false)
		close(g.release)
		if err := wait(); (err != nil) != fail {
			t.Errorf("fail %v: wait %v", fail, err)
		}
		<-held
		<-closed
	}
}
