package projections_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
	"talentledger/projections/projectionstest"
	"talentledger/projections/viewstore"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logs are the event logs the persistence tests fold: the golden corpus
// (every event type) and the point-in-time books (funds, corrections,
// late records).
func logs(t *testing.T) map[string][]eventstore.Event {
	b, _, _ := pointInTimeBooks(t)
	var books []eventstore.Event
	it := b.store.ReadAll(context.Background(), eventstore.Start)
	for it.Next() {
		books = append(books, it.Event())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it.Close()
	return map[string][]eventstore.Event{"corpus": corpusEvents(t), "books": books}
}

func fold(t *testing.T, p *projections.Projector, evs []eventstore.Event) {
	t.Helper()
	for i := range evs {
		if err := p.Apply(&evs[i]); err != nil {
			t.Fatalf("%s at %s: %v", evs[i].Type, evs[i].Position, err)
		}
	}
}

func openViews(t *testing.T, dir string) *projections.Projector {
	t.Helper()
	p := projections.New(nil, quietLog())
	if err := p.OpenViews(dir); err != nil {
		t.Fatal(err)
	}
	return p
}

// Models stopped anywhere and resumed from their views answer every query
// as the models folded from the log in one go, and resume from the
// checkpoint instead of the log's start.
func TestResumedModelsAnswerAsTheFold(t *testing.T) {
	for name, evs := range logs(t) {
		want := projections.New(nil, quietLog())
		fold(t, want, evs)
		for _, stops := range [][]int{{1}, {len(evs) / 3, 2 * len(evs) / 3}, {len(evs)}} {
			dir := t.TempDir()
			done := 0
			var p *projections.Projector
			for _, stop := range stops {
				p = openViews(t, dir)
				if got := p.Position(); got.Commit != uint64(done) {
					t.Fatalf("%s: resumed at %s after %d events", name, got, done)
				}
				fold(t, p, evs[done:stop])
				if err := p.CloseViews(); err != nil {
					t.Fatal(err)
				}
				done = stop
			}
			p = openViews(t, dir)
			fold(t, p, evs[done:])
			if got, w := projectionstest.Dump(p), projectionstest.Dump(want); got != w {
				t.Fatalf("%s stopped at %v: the resumed models differ from the fold:\n%s", name, stops, firstDiff(got, w))
			}
			if err := p.CloseViews(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Models that commit after every event write each change they fold, not
// only what a batch created: resumed from those commits, they answer as
// the fold (a change not marked for saving would leave its stored form
// stale).
func TestViewsCommittedAfterEveryEventAnswerAsTheFold(t *testing.T) {
	for name, evs := range logs(t) {
		want := projections.New(nil, quietLog())
		fold(t, want, evs)
		dir := t.TempDir()
		p := projections.New(nil, quietLog(), projections.WithCommitEvery(1))
		if err := p.OpenViews(dir); err != nil {
			t.Fatal(err)
		}
		fold(t, p, evs)
		if err := p.CloseViews(); err != nil {
			t.Fatal(err)
		}
		p = openViews(t, dir)
		if got, w := projectionstest.Dump(p), projectionstest.Dump(want); got != w {
			t.Fatalf("%s: the models resumed from commits after every event differ from the fold:\n%s", name, firstDiff(got, w))
		}
		if err := p.CloseViews(); err != nil {
			t.Fatal(err)
		}
	}
}

// A model whose stored schema differs is rebuilt from the log's start,
// alone: the others resume from their checkpoints and skip what they hold.
func TestSchemaChangeRebuildsThatModelAlone(t *testing.T) {
	evs := logs(t)["corpus"]
	want := projections.New(nil, quietLog())
	fold(t, want, evs)
	dir := t.TempDir()
	p := openViews(t, dir)
	fold(t, p, evs[:len(evs)/2])
	if err := p.CloseViews(); err != nil {
		t.Fatal(err)
	}
	// Another build stored the grants in another form.
	vs, err := viewstore.Open(dir, "grants", 99, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	vs.Close()
	p = openViews(t, dir)
	if got := p.Position(); got != eventstore.Start {
		t.Fatalf("with the grants to rebuild, the feed starts at %s, want the log's start", got)
	}
	fold(t, p, evs)
	if got, w := projectionstest.Dump(p), projectionstest.Dump(want); got != w {
		t.Fatalf("after rebuilding the grants: the models differ from the fold:\n%s", firstDiff(got, w))
	}
	p.CloseViews()
}

// firstDiff shows where two dumps first differ.
func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-300)
	return "got:  …" + got[lo:min(len(got), i+300)] + "\nwant: …" + want[lo:min(len(want), i+300)]
}

// Views opened beside another log than the one they folded (a data
// directory restored or replaced) are not trusted: every model is rebuilt
// from the log at hand.
func TestViewsOfAnotherLogAreRebuilt(t *testing.T) {
	ctx := context.Background()
	a, _, _ := pointInTimeBooks(t)
	b, _, _ := pointInTimeBooks(t)
	dir := t.TempDir()
	p := projections.New(a.store, quietLog())
	if err := p.OpenViews(dir); err != nil {
		t.Fatal(err)
	}
	var evs []eventstore.Event
	it := a.store.ReadAll(ctx, eventstore.Start)
	for it.Next() {
		evs = append(evs, it.Event())
	}
	it.Close()
	fold(t, p, evs)
	if err := p.CloseViews(); err != nil {
		t.Fatal(err)
	}
	// The same log first: the others empty the views.
	for _, c := range []struct {
		name  string
		store eventstore.Store
	}{{"the same log", a.store}, {"another log", b.store}, {"an empty log", memstore.New()}} {
		name := c.name
		q := projections.New(c.store, quietLog())
		if err := q.OpenViews(dir); err != nil {
			t.Fatal(err)
		}
		want := eventstore.Start
		if name == "the same log" {
			want = evs[len(evs)-1].Position
		}
		if got := q.Position(); got != want {
			t.Errorf("views beside %s resume at %s, want %s", name, got, want)
		}
		if err := q.CloseViews(); err != nil {
			t.Fatal(err)
		}
	}
}

// Every model of this build persists: one kept in memory only would make
// every start fold the whole log again (the feed starts after the
// earliest checkpoint, the log's start for such a model).
func TestEveryModelPersists(t *testing.T) {
	for _, m := range projections.New(nil, quietLog()).Models() {
		if _, ok := m.(projections.Persistent); !ok {
			t.Errorf("model %s does not implement projections.Persistent", m.Name())
		}
	}
}
