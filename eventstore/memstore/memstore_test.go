package memstore_test

import (
	"context"
	"errors"
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
