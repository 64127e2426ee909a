package pebble_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// TestPowerLossKeepsAcknowledged simulates losing power while appends run:
// a crash clone of an in-memory file system keeps only what was synced (and,
// in some rounds, a random part of what was not). SIGKILL, as in
// TestCrashRecovery, leaves the operating system's buffers intact; this is
// the test that an append is acknowledged only after its fsync.
func TestPowerLossKeepsAcknowledged(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := pebble.Open("db", pebble.WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var mu sync.Mutex
	acked := map[eventstore.EventID]ack{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			own := fmt.Sprintf("own-%d", w)
			v := eventstore.NoStream
			for i := 0; ctx.Err() == nil; i++ {
				stream, exp := own, v
				if i%2 == 1 {
					stream, exp = "shared", eventstore.Any
				}
				evs := events(1 + i%3)
				res, err := s.Append(ctx, stream, exp, evs...)
				if errors.Is(err, context.Canceled) {
					return
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if stream == own {
					v = res.Version
				}
				mu.Lock()
				for j, e := range evs {
					back := len(evs) - 1 - j
					acked[e.ID] = ack{e.ID, stream, res.Version - eventstore.Version(back), res.Position.Commit - uint64(back)}
				}
				mu.Unlock()
			}
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round, unsynced := range []int{0, 0, 50, 100, 0} {
		time.Sleep(time.Duration(20+rng.IntN(40)) * time.Millisecond)
		// Everything acknowledged before the clone was synced before it.
		mu.Lock()
		before := maps.Clone(acked)
		mu.Unlock()
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rng})
		n := verifyStore(t, func() (*pebble.Store, error) { return pebble.Open("db", pebble.WithFS(crashed)) }, before)
		t.Logf("round %d: %d acknowledged, %d in the log after power loss", round, len(before), n-1)
	}
	stop()
	wg.Wait()
}

// TestPowerLossMultiAllOrNothing loses power while writers append to
// several streams at once: after it, each multi-stream append is in the
// log whole or not at all, and every acknowledged one is whole.
func TestPowerLossMultiAllOrNothing(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := pebble.Open("db", pebble.WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var mu sync.Mutex
	acked := map[eventstore.EventID]ack{}
	var tried [][]eventstore.EventID
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			a, b := fmt.Sprintf("a-%d", w), fmt.Sprintf("b-%d", w)
			va, vb := eventstore.NoStream, eventstore.NoStream
			for i := 0; ctx.Err() == nil; i++ {
				parts := []eventstore.AppendPart{
					{Stream: a, Expected: va, Events: events(1 + i%2)},
					{Stream: "shared", Expected: eventstore.Any, Events: events(1)},
					{Stream: b, Expected: vb, Events: events(1 + i%3)},
				}
				var all []eventstore.EventID
				for _, p := range parts {
					for _, e := range p.Events {
						all = append(all, e.ID)
					}
				}
				mu.Lock()
				tried = append(tried, all)
				mu.Unlock()
				res, err := s.AppendMulti(ctx, parts...)
				if errors.Is(err, context.Canceled) {
					return
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				va, vb = res[0].Version, res[2].Version
				mu.Lock()
				for k, p := range parts {
					for j, e := range p.Events {
						back := len(p.Events) - 1 - j
						acked[e.ID] = ack{e.ID, p.Stream, res[k].Version - eventstore.Version(back), res[k].Position.Commit - uint64(back)}
					}
				}
				mu.Unlock()
			}
		})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for round, unsynced := range []int{0, 50, 100} {
		time.Sleep(time.Duration(20+rng.IntN(40)) * time.Millisecond)
		mu.Lock()
		before := maps.Clone(acked)
		calls := slices.Clone(tried)
		mu.Unlock()
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rng})
		open := func() (*pebble.Store, error) { return pebble.Open("db", pebble.WithFS(crashed)) }
		verifyStore(t, open, before)
		r, err := open()
		if err != nil {
			t.Fatal(err)
		}
		stored := map[eventstore.EventID]bool{}
		for _, e := range mustRead(t, r.ReadAll(context.Background(), eventstore.Start)) {
			stored[e.ID] = true
		}
		r.Close()
		whole := 0
		for _, call := range calls {
			n := 0
			for _, id := range call {
				if stored[id] {
					n++
				}
			}
			if n != 0 && n != len(call) {
				t.Fatalf("round %d: %d of a multi-stream append's %d events survived", round, n, len(call))
			}
			if n > 0 {
				whole++
			}
		}
		t.Logf("round %d: %d of %d multi-stream appends in the log, %d events acknowledged", round, whole, len(calls), len(before))
	}
	stop()
	wg.Wait()
}
