package projections_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

// Replay and Run fold events through a pipeline (decode and hash on one
// goroutine, fold in batches on another); the models must come out exactly
// as when every event is applied one at a time.
func TestPipelineFoldsAsApplyDoes(t *testing.T) {
	ctx := context.Background()
	store := journeyStore(t, 3000) // several batches and a full pipeline
	defer store.Close()
	one := projections.New(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	it := store.ReadAll(ctx, eventstore.Start)
	n := 0
	for it.Next() {
		ev := it.Event()
		if err := one.Apply(&ev); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it.Close()

	replayed, err := projections.Replay(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Run, stopped once it has caught up.
	live := projections.New(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- live.Run(rctx) }()
	last, _ := store.LastPosition(ctx)
	if err := live.WaitFor(ctx, last, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done

	for name, p := range map[string]*projections.Projector{"Replay": replayed, "Run": live} {
		if got := p.Progress().Applied; got != uint64(n) {
			t.Errorf("%s applied %d events, want %d", name, got, n)
		}
		if p.Position() != one.Position() {
			t.Errorf("%s is at %s, Apply at %s", name, p.Position(), one.Position())
		}
		wantRoot, _, _ := one.TreeRoot(uint64(n))
		if root, _, err := p.TreeRoot(uint64(n)); err != nil || !bytes.Equal(root, wantRoot) {
			t.Errorf("%s: audit tree root %x (%v), Apply's %x", name, root, err, wantRoot)
		}
		// Compared by value, as JSON: the total is summed over a map, so
		// the internal form of its decimal (not its value) depends on
		// the order of iteration, and reflect.DeepEqual would tell two
		// equal totals apart.
		if got, want := jsonOf(t, p.TrialBalance()), jsonOf(t, one.TrialBalance()); got != want {
			t.Errorf("%s: trial balance differs:\n%s\n%s", name, got, want)
		}
		gotGrants, gotTotal := p.Grants(projections.GrantFilter{})
		wantGrants, wantTotal := one.Grants(projections.GrantFilter{})
		if gotTotal != wantTotal || jsonOf(t, gotGrants) != jsonOf(t, wantGrants) {
			t.Errorf("%s: %d grants differ from Apply's %d", name, gotTotal, wantTotal)
		}
		if got, want := jsonOf(t, p.Programs()), jsonOf(t, one.Programs()); got != want {
			t.Errorf("%s: programs and budgets differ", name)
		}
	}
}

// An event that cannot be read stops Run, Replay and the folding before
// it, whatever comes after: a type of a newer build (upgrade required) or
// a record of a known type that does not decode. Nothing is skipped.
func TestPipelineStopsAtAnEventItCannotRead(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, typ, data, want string
	}{
		{"a newer version", "GrantApproved.v9", `{}`, "upgrade required: event GrantApproved version 9 at position "},
		{"a newer type", "FiscalYearReopened", `{}`, "upgrade required: event FiscalYearReopened version 1 at position "},
		{"a known type that does not decode", "GrantApplied", `{"amount_requested": 5}`, "cannot be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := journeyStore(t, 300)
			defer store.Close()
			before, _ := store.LastPosition(ctx)
			res, err := store.Append(ctx, "odd-1", eventstore.NoStream, eventstore.EventData{ID: eventstore.NewEventID(), Type: tc.typ, Data: []byte(tc.data)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Append(ctx, "odd-2", eventstore.NoStream, eventstore.EventData{ID: eventstore.NewEventID(), Type: "GrantReviewed", Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			want := tc.want + res.Position.String()
			if !strings.HasPrefix(tc.want, "upgrade") {
				want = tc.want
			}

			p := projections.New(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
			err = p.Run(ctx) // returns by itself: no cancel needed
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Run = %v, want %q", err, want)
			}
			if errors.Is(err, domain.ErrUpgradeRequired) != strings.HasPrefix(tc.want, "upgrade") {
				t.Errorf("Run = %v: upgrade required %v", err, errors.Is(err, domain.ErrUpgradeRequired))
			}
			if p.Position() != before || p.Ready() || p.Stopped() == nil {
				t.Errorf("stopped at %s (ready %v), want %s", p.Position(), p.Ready(), before)
			}
			if err := p.Run(ctx); err == nil || err.Error() != p.Stopped().Error() {
				t.Errorf("Run again = %v", err)
			}
			if _, err := projections.Replay(ctx, store, nil); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Replay = %v, want %q", err, want)
			}
			if _, err := projections.BalancesAt(ctx, store, projections.PointInTime{}); err == nil {
				t.Error("BalancesAt skipped the event")
			}
		})
	}
}
