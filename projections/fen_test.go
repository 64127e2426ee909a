package projections_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
)

// A sum beyond what a model's int64 fen hold stops the feed before it, as
// an unreadable event does: the models never answer with a wrapped figure.
func TestAnAmountOutOfRangeStopsTheFeed(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	appropriate := func(stream, amount string) eventstore.Position {
		t.Helper()
		res, err := store.Append(ctx, stream, eventstore.Any, eventstore.EventData{ID: eventstore.NewEventID(), Type: "BudgetAppropriated",
			Data: []byte(`{"program_id":"p","fiscal_year":2024,"amount":"` + amount + `","funding_source":"treasury"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return res.Position
	}
	// 5×10^16 yuan is 5×10^18 fen: one fits an int64, two do not.
	first := appropriate("budget-p-2024", "50000000000000000")
	p := projections.New(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, ev := range readAll(t, store) {
		if err := p.Apply(&ev); err != nil {
			t.Fatal(err)
		}
	}
	if b, ok := p.Budget("p", 2024); !ok || b.Appropriated.String() != "50000000000000000.00" {
		t.Fatalf("budget %+v", b)
	}
	second := appropriate("budget-p-2024", "50000000000000000")
	err := p.Run(ctx) // returns by itself once stopped
	if !errors.Is(err, projections.ErrOverflow) || !errors.Is(p.Stopped(), projections.ErrOverflow) {
		t.Fatalf("Run = %v, Stopped = %v, want an overflow", err, p.Stopped())
	}
	if p.Ready() || p.Position() != first || !p.Position().Before(second) {
		t.Errorf("at %s (ready %v), want stopped at %s", p.Position(), p.Ready(), first)
	}
	if _, err := projections.BalancesAt(ctx, store, projections.PointInTime{}); !errors.Is(err, projections.ErrOverflow) {
		t.Errorf("BalancesAt = %v, want an overflow", err)
	}
}

func readAll(t *testing.T, store eventstore.Store) []eventstore.Event {
	t.Helper()
	it := store.ReadAll(context.Background(), eventstore.Start)
	defer it.Close()
	var out []eventstore.Event
	for it.Next() {
		out = append(out, it.Event())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
