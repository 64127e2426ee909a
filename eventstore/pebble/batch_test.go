package pebble_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// walGate is a file system whose WAL syncs can be held or made to fail, so
// that a test decides what lands in one group-commit batch.
type walGate struct {
	hold    atomic.Bool
	fail    atomic.Bool
	held    chan struct{} // a sync is being held
	release chan struct{}
}

func newWALGate() *walGate {
	return &walGate{held: make(chan struct{}, 1), release: make(chan struct{})}
}

func (g *walGate) fs() vfs.FS {
	return errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		default:
			return nil
		}
		if !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		if g.hold.Load() {
			select {
			case g.held <- struct{}{}:
			default:
			}
			<-g.release
		}
		if g.fail.Load() {
			return errors.New("injected WAL sync failure")
		}
		return nil
	}))
}

// waitBatched waits until the batch being built holds n appends.
func waitBatched(t *testing.T, s *pebble.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for pebble.Batched(s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("batch holds %d appends, want %d", pebble.Batched(s), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDecisionsWithinOneBatch(t *testing.T) {
	// While one batch's sync is held, the next batch collects: two copies
	// of one append (the second is a retry of the first), two appends
	// racing to create one stream, an append to a stream created earlier
	// in the same batch, and an unrelated append. Each must be decided
	// against what the batch has written so far.
	g := newWALGate()
	s := MustOpen(t, "db", pebble.WithFS(g.fs()))
	ctx := context.Background()
	mustAppend(t, s, "warm-up", eventstore.NoStream, events(1)...)

	g.hold.Store(true)
	first := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "held", eventstore.NoStream, events(1)...)
		first <- err
	}()
	<-g.held // the writer is now waiting for this sync; what follows queues behind it

	retried := events(2)
	type outcome struct {
		res eventstore.AppendResult
		err error
	}
	var wg sync.WaitGroup
	results := make([]outcome, 5)
	appendAsync := func(i int, stream string, exp eventstore.Version, evs []eventstore.EventData) {
		wg.Go(func() { results[i].res, results[i].err = s.Append(ctx, stream, exp, evs...) })
	}
	appendAsync(0, "retried", eventstore.NoStream, retried)
	appendAsync(1, "retried", eventstore.NoStream, retried)
	appendAsync(2, "contested", eventstore.NoStream, events(1))
	appendAsync(3, "contested", eventstore.NoStream, events(1))
	appendAsync(4, "other", eventstore.NoStream, events(3))
	waitBatched(t, s, 5)
	// An exact version that only the batch so far makes right.
	appendAsync2 := make(chan outcome, 1)
	go func() {
		var o outcome
		o.res, o.err = s.Append(ctx, "other", 2, events(1)...)
		appendAsync2 <- o
	}()
	waitBatched(t, s, 6)
	syncs := pebble.Syncs(s)
	g.hold.Store(false)
	close(g.release)
	if err := <-first; err != nil {
		t.Fatalf("held append: %v", err)
	}
	wg.Wait()
	follow := <-appendAsync2

	if results[0].err != nil || results[1].err != nil || results[0].res != results[1].res {
		t.Errorf("an append and its retry in one batch: %+v and %+v; want the same success", results[0], results[1])
	}
	won := 0
	for _, o := range results[2:4] {
		switch {
		case o.err == nil:
			won++
		case !errors.Is(o.err, eventstore.ErrWrongVersion):
			t.Errorf("contested create failed with %v, want ErrWrongVersion", o.err)
		}
	}
	if won != 1 {
		t.Errorf("%d appends created the contested stream, want 1", won)
	}
	if results[4].err != nil || follow.err != nil || follow.res.Version != 3 {
		t.Errorf("create then append at version 2 in one batch: %+v, %+v", results[4], follow)
	}
	if got := pebble.Syncs(s) - syncs; got != 2 {
		t.Errorf("%d syncs for the held batch and the next; want 2 (one batch)", got)
	}
	log := mustRead(t, s.ReadAll(ctx, eventstore.Start))
	if want := 1 + 1 + 2 + 1 + 3 + 1; len(log) != want {
		t.Fatalf("log holds %d events, want %d", len(log), want)
	}
	for i, e := range log {
		if e.Position.Commit != uint64(i+1) {
			t.Fatalf("event %d at position %v", i, e.Position)
		}
	}
}

func TestFailedSyncIsNeverAcknowledged(t *testing.T) {
	g := newWALGate()
	// The store logs the failure; keep it out of the test's output.
	s, err := pebble.Open("db", pebble.WithFS(g.fs()), pebble.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	mustAppend(t, s, "ok", eventstore.NoStream, events(1)...)
	before, _ := s.LastPosition(ctx)

	// The sync of "lost" is held while a retry of it is decided into the
	// next batch, as a retry (nothing to write); then the sync fails. The
	// retry must not succeed either: what it retries never became durable.
	lost := events(1)
	g.hold.Store(true)
	g.fail.Store(true)
	errs := make(chan error, 2)
	go func() {
		_, err := s.Append(ctx, "lost", eventstore.NoStream, lost...)
		errs <- err
	}()
	<-g.held
	go func() {
		_, err := s.Append(ctx, "lost", eventstore.NoStream, lost...)
		errs <- err
	}()
	waitBatched(t, s, 1)
	g.hold.Store(false)
	close(g.release)
	for range 2 {
		if err := <-errs; err == nil {
			t.Fatal("append or its retry acknowledged although the sync failed")
		}
	}
	// The store stays failed: nothing after the failure can be trusted.
	g.fail.Store(false)
	if _, err := s.Append(ctx, "after", eventstore.NoStream, events(1)...); err == nil {
		t.Fatal("append acknowledged after a failed sync")
	}
	if after, _ := s.LastPosition(ctx); after != before {
		t.Errorf("LastPosition moved from %v to %v over failed appends", before, after)
	}
	if _, err := readAll(t, s.ReadStream(ctx, "lost", 0)); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("the failed append is readable: %v", err)
	}
}

// TestOrderedAppendBeforeItsSync: AppendMultiOrdered returns once its
// append is decided, with the results AppendMulti would give, while a sync
// is held; an append decided on them is taken behind it; neither reports
// itself durable before the sync, and a failed sync fails both.
func TestOrderedAppendBeforeItsSync(t *testing.T) {
	for _, fail := range []bool{false, true} {
		// A sync in flight: what follows is decided into the next batch.
		s, g, held := syncHeld(t, fail)
		ctx := context.Background()

		res, wait, err := s.AppendMultiOrdered(ctx, 1,
			eventstore.AppendPart{Stream: "a", Expected: eventstore.NoStream, Events: events(2)},
			eventstore.AppendPart{Stream: "b", Expected: eventstore.NoStream, Events: events(1)})
		if err != nil {
			t.Fatalf("ordered append: %v", err)
		}
		if res[0].Version != 1 || res[1].Version != 0 || res[1].Position.Commit != res[0].Position.Commit+1 {
			t.Fatalf("ordered results %+v", res)
		}
		// Decided on what the first leaves, before it is durable.
		next, wait2, err := s.AppendMultiOrdered(ctx, 1, eventstore.AppendPart{Stream: "a", Expected: res[0].Version, Events: events(1)})
		if err != nil || next[0].Version != 2 {
			t.Fatalf("append behind an ordered one: %+v, %v", next, err)
		}
		// A conflict is answered, like any outcome, once the batch it was
		// decided in has synced.
		conflict := make(chan error, 1)
		go func() {
			_, _, err := s.AppendMultiOrdered(ctx, 1, eventstore.AppendPart{Stream: "a", Expected: res[0].Version, Events: events(1)})
			conflict <- err
		}()
		if n := len(mustRead(t, s.ReadAll(ctx, eventstore.Start))); n != 1 {
			t.Errorf("%d events readable before the sync, want the warm-up's only", n)
		}
		waited := make(chan error, 2)
		go func() { waited <- wait() }()
		go func() { waited <- wait2() }()
		select {
		case err := <-waited:
			t.Fatalf("an ordered append reported itself settled (%v) while its sync is held", err)
		default:
		}
		g.hold.Store(false)
		close(g.release)
		<-held
		if err := <-conflict; !errors.Is(err, eventstore.ErrWrongVersion) && !fail {
			t.Errorf("a second append at the same version: %v, want ErrWrongVersion", err)
		}
		for range 2 {
			if err := <-waited; (err != nil) != fail {
				t.Errorf("sync failing %v: wait returned %v", fail, err)
			}
		}
		if !fail {
			if n := len(mustRead(t, s.ReadAll(ctx, eventstore.Start))); n != 1+1+3+1 {
				t.Errorf("%d events after the sync, want 6", n)
			}
		}
		s.Close()
	}
}
