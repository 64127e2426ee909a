package pebble_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
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
