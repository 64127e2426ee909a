package pebble_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

func TestObserverSeesEveryAppendAndBatch(t *testing.T) {
	var mu sync.Mutex
	var appends, failed, batches, batchAppends, batchEvents int
	obs := pebble.Observer{
		Append: func(elapsed time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			appends++
			if err != nil {
				failed++
			}
			if elapsed <= 0 {
				t.Errorf("append took %v", elapsed)
			}
		},
		Batch: func(n, events int, sync time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			batches++
			batchAppends += n
			batchEvents += events
			if n < 1 || events < 1 || sync <= 0 {
				t.Errorf("batch of %d appends, %d events, synced in %v", n, events, sync)
			}
		},
	}
	s, err := pebble.Open(t.TempDir(), pebble.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const writers, each = 8, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				evs := []eventstore.EventData{{ID: eventstore.NewEventID(), Type: "Tested", Data: []byte(`{}`)}}
				if i%2 == 1 {
					evs = append(evs, eventstore.EventData{ID: eventstore.NewEventID(), Type: "Tested", Data: []byte(`{}`)})
				}
				if _, err := s.Append(ctx, fmt.Sprintf("s-%d", w), eventstore.Any, evs...); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// A refused append is observed with its error and writes no batch.
	_, err = s.Append(ctx, "s-0", eventstore.NoStream, eventstore.EventData{ID: eventstore.NewEventID(), Type: "Tested", Data: []byte(`{}`)})
	if !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("append to an existing stream at NoStream: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	wantEvents := writers * (each + each/2)
	if appends != writers*each+1 || failed != 1 {
		t.Errorf("observed %d appends, %d failed; want %d, 1", appends, failed, writers*each+1)
	}
	if batchEvents != wantEvents || batchAppends < writers*each || batches < 1 || batches > writers*each {
		t.Errorf("observed %d batches of %d appends and %d events; want %d events in at most %d batches",
			batches, batchAppends, batchEvents, wantEvents, writers*each)
	}
}
