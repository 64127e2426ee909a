package esdb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/esdb"
	"talentledger/eventstore/esdb/esdbtest"
)

// restart stops srv, leaves it down for a moment, and starts it again.
// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func restart(t *testing.T, srv *esdbtest.Server, down time.Duration) {
	t.Helper()
	srv.Stop()
	time.Sleep(down)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriptionSurvivesRestart stops and restarts the server under a
// subscription, once while it catches up and once while it is live, with
// events appended before, between and after: it delivers every event
// once, in order.
func TestSubscriptionSurvivesRestart(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)

	var want []eventstore.EventID
	appendN := func(stream string, n int) {
		t.Helper()
		for i := range n {
			e := event("Recorded", len(want))
			mustAppend(t, s, stream, eventstore.Version(i)-1, e)
			want = append(want, e.ID)
		}
	}
	appendN("grant-a", 150)

	sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{StreamPrefixes: []string{"grant-"}})
	defer sub.Close()
	var got []eventstore.EventID
	take := func(n int) {
		t.Helper()
		for range n {
			if !sub.Next() {
				t.Fatalf("subscription ended after %d events: %v", len(got), sub.Err())
			}
			got = append(got, sub.Event().ID)
		}
	}

	// Down while the subscription still has stored events to catch up on.
	take(40)
	restart(t, srv, 50*time.Millisecond)
	take(110)
	// Events written after the restart can only come through a new
	// subscription, which is then live.
	appendN("grant-b", 20)
	take(20)
	// Down while it is live: what is written afterwards needs yet another.
	restart(t, srv, 50*time.Millisecond)
	appendN("grant-c", 20)
	take(20)

	if len(got) != len(want) {
		t.Fatalf("received %d events; want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is %s; want %s (lost, repeated or reordered)", i, got[i], want[i])
		}
	}
	// The restarts must have cut the subscription, or this test proved
	// nothing.
	if n := srv.Subscriptions(); n < 3 {
		t.Errorf("the server saw %d subscriptions; want at least 3 (two resubscriptions)", n)
	}

	// And nothing more is pending: the next event is a new one.
	marker := event("Marker", 0)
	mustAppend(t, s, "grant-marker", eventstore.NoStream, marker)
	take(1)
	if got[len(got)-1] != marker.ID {
		t.Errorf("after all events came %s; want the marker %s", got[len(got)-1], marker.ID)
	}
}

// TestAppendWhileDown checks that appends fail promptly with
// ErrUnavailable while the server is down, many at once included, and
// succeed on the same store once it is back.
func TestAppendWhileDown(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	mustAppend(t, s, "grant-1", eventstore.NoStream, event("GrantApplied", 0))
	srv.Stop()

	failed := event("GrantReviewed", 1)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := s.Append(ctx, "grant-1", 0, failed)
		cancel()
		if !errors.Is(err, esdb.ErrUnavailable) {
			t.Fatalf("append %d while down: %v; want ErrUnavailable", i, err)
		}
	}
	if _, err := s.LastPosition(t.Context()); !errors.Is(err, esdb.ErrUnavailable) {
		t.Errorf("LastPosition while down: %v; want ErrUnavailable", err)
	}
	it := s.ReadStream(t.Context(), "grant-1", 0)
	if it.Next() || !errors.Is(it.Err(), esdb.ErrUnavailable) {
		t.Errorf("ReadStream while down: %v; want ErrUnavailable", it.Err())
	}
	it.Close()

	// Many callers at once: the client may strand some of them on its
	// internal channel; the store must still answer each.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, errs[i] = s.Append(ctx, fmt.Sprintf("grant-x%d", i), eventstore.NoStream, event("GrantApplied", i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, esdb.ErrUnavailable) {
			t.Errorf("concurrent append %d while down: %v; want ErrUnavailable", i, err)
		}
	}

	// A caller's deadline bounds a call even when the server cannot say
	// anything.
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	_, err := s.Append(ctx, "grant-1", 0, failed)
	cancel()
	if err == nil {
		t.Errorf("append with an expired deadline while down succeeded")
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The retry of the append that failed lands once.
	res := mustAppend(t, s, "grant-1", 0, failed)
	if retry := mustAppend(t, s, "grant-1", 0, failed); retry != res {
		t.Errorf("retry after recovery = %+v; want %+v", retry, res)
	}
	got := collect(t, s.ReadStream(testContext(t), "grant-1", 0))
	if len(got) != 2 || got[1].ID != failed.ID {
		t.Errorf("stream holds %d events; want the first and the retried one", len(got))
	}
}

// TestAppendsRacingACrash keeps appenders writing, each retrying a failed
// append with the same events and expected version, while the server
// crashes and comes back: every acknowledged event is stored exactly once,
// in order, including appends whose answer the crash cut off.
func TestAppendsRacingACrash(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)

	const appenders = 4
	stop := make(chan struct{})
	acked := make([][]eventstore.EventID, appenders)
	failures := make([]int, appenders)
	// appended and failed let the test wait for what it needs instead of
	// guessing with sleeps, so that a loaded machine cannot make the crash
	// fall where nobody is appending.
	var appended, failed atomic.Int64
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Go(func() {
			stream := fmt.Sprintf("fund-%d", a)
			for n := 0; ; n++ {
				select {
				case <-stop:
					if n >= 10 {
						return
					}
				default:
				}
				e := event("CapitalPaidIn", n)
				for {
					_, err := s.Append(ctx, stream, eventstore.Version(n)-1, e)
					if err == nil {
						break
					}
					if !errors.Is(err, esdb.ErrUnavailable) {
						t.Errorf("%s: append %d: %v", stream, n, err)
						return
					}
					failures[a]++
					failed.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
				acked[a] = append(acked[a], e.ID)
				appended.Add(1)
			}
		})
	}
	waitFor(t, "appends before the crash", func() bool { return appended.Load() >= appenders })
	srv.Stop()
	waitFor(t, "an append to fail during the outage", func() bool { return failed.Load() > 0 })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	after := appended.Load()
	waitFor(t, "appends after the restart", func() bool { return appended.Load() >= after+appenders })
	close(stop)
	wg.Wait()

	total := 0
	for a := range appenders {
		total += failures[a]
		got := collect(t, s.ReadStream(ctx, fmt.Sprintf("fund-%d", a), 0))
		if len(got) != len(acked[a]) {
			t.Fatalf("fund-%d holds %d events; %d were acknowledged", a, len(got), len(acked[a]))
		}
		for i, e := range got {
			if e.ID != acked[a][i] {
				t.Fatalf("fund-%d: event %d is %s; want %s", a, i, e.ID, acked[a][i])
			}
		}
	}
	if total == 0 {
		t.Errorf("no append failed: the crash happened while nobody was appending, and the test proved nothing")
	}
}

// TestReadResumesAfterRestart checks that an iterator cut off by a restart
// reads on from its last event.
func TestReadResumesAfterRestart(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)
	var want []eventstore.EventID
	for b := range 10 {
		evs := events("Recorded", b*30, 30)
		// Big enough that the stream cannot sit in the client's buffers
		// whole when the server goes down.
		for i := range evs {
			evs[i].Data = json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, b*30+i, strings.Repeat("x", 4096)))
		}
		mustAppend(t, s, "grant-1", eventstore.Version(b*30)-1, evs...)
		for _, e := range evs {
			want = append(want, e.ID)
		}
	}

	for _, name := range []string{"ReadStream", "ReadAll"} {
		t.Run(name, func(t *testing.T) {
			reads := srv.Reads()
			it := s.ReadStream(ctx, "grant-1", 0)
			if name == "ReadAll" {
				it = s.ReadAll(ctx, eventstore.Start)
			}
			defer it.Close()
			var got []eventstore.EventID
			for it.Next() {
				got = append(got, it.Event().ID)
				if len(got) == 10 {
					// Far more than read ahead is still to come.
					restart(t, srv, 20*time.Millisecond)
				}
			}
			if err := it.Err(); err != nil {
				t.Fatalf("after %d events: %v", len(got), err)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d events; want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("event %d is %s; want %s", i, got[i], want[i])
				}
			}
			if n := srv.Reads() - reads; n < 2 {
				t.Errorf("the server served %d reads; want a second one, after the restart", n)
			}
		})
	}
}

// TestNothingLeftRunning checks that an outage with many callers, and the
// store's Close, leave no goroutine behind: no call stays stranded on a
// client that died.
func TestNothingLeftRunning(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)
	mustAppend(t, s, "grant-1", eventstore.NoStream, event("GrantApplied", 0))
	sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	if !sub.Next() {
		t.Fatal(sub.Err())
	}

	srv.Stop()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			s.Append(ctx, fmt.Sprintf("grant-x%d", i), eventstore.NoStream, event("GrantApplied", i))
			s.LastPosition(ctx)
		})
	}
	wg.Wait()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "grant-2", eventstore.NoStream, event("GrantApplied", 1))
	if !sub.Next() {
		t.Fatal(sub.Err())
	}
	sub.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	// Goroutines wind down asynchronously (the clients' and gRPC's); wait
	// for them, up to the test's deadline.
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		select {
		case <-ctx.Done():
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		case <-time.After(20 * time.Millisecond):
		}
	}
}
