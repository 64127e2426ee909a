package projections_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

// recorder is a model that keeps the positions it was fed, batch by
// batch.
type recorder struct {
	mu      sync.Mutex
	batches [][]eventstore.Position
	lasts   []eventstore.Position
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Apply(b projections.Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ps []eventstore.Position
	for _, c := range b.Changes {
		if c.Payload == nil {
			panic("a change without its payload")
		}
		ps = append(ps, c.Event.Position)
	}
	r.batches = append(r.batches, ps)
	r.lasts = append(r.lasts, b.Last)
}

// The feed hands a model every event once, in log order, in batches
// whose Last is their last event; an overlap replayed is not handed again.
func TestFeedHandsEveryEventOnceInOrder(t *testing.T) {
	ctx := context.Background()
	store := journeyStore(t, 700)
	defer store.Close()
	evs := readAll(t, store)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	one, run := &recorder{}, &recorder{}
	byApply := projections.NewFeed(store, log, domain.Codec{}, one)
	for i := range evs {
		if err := byApply.Apply(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// An overlap, as after a resubscription.
	for i := len(evs) - 5; i < len(evs); i++ {
		if err := byApply.Apply(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	byRun := projections.NewFeed(store, log, domain.Codec{}, run)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- byRun.Run(rctx) }()
	if err := byRun.WaitFor(ctx, evs[len(evs)-1].Position, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done

	for name, r := range map[string]*recorder{"Apply": one, "Run": run} {
		var got []eventstore.Position
		for i, b := range r.batches {
			if len(b) == 0 || b[len(b)-1] != r.lasts[i] {
				t.Errorf("%s: batch %d of %v has Last %s", name, i, b, r.lasts[i])
			}
			got = append(got, b...)
		}
		if len(got) != len(evs) {
			t.Fatalf("%s: %d events handed, the log has %d", name, len(got), len(evs))
		}
		for i := range evs {
			if got[i] != evs[i].Position {
				t.Fatalf("%s: event %d handed at %s, the log has %s", name, i, got[i], evs[i].Position)
			}
		}
	}
}

// Two models of one name on a feed are a programming error, found at once.
func TestFeedRefusesTwoModelsOfOneName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewFeed took two models named recorder")
		}
	}()
	projections.NewFeed(nil, nil, domain.Codec{}, &recorder{}, &recorder{})
}
