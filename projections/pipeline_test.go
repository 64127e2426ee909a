package projections_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

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
		if gotTotal != wantTotal || !reflect.DeepEqual(gotGrants, wantGrants) {
			t.Errorf("%s: %d grants differ from Apply's %d", name, gotTotal, wantTotal)
		}
		if got, want := p.Programs(), one.Programs(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: programs and budgets differ", name)
		}
	}
}
