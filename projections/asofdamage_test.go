package projections_test

import (
	"errors"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
	"talentledger/projections/viewstore"
)

// damageAsOf overwrites the as-of index's stored values whose key starts
// with prefix with a well-formed vector of one figure.
func damageAsOf(t *testing.T, dir string, schema uint32, prefix string) int {
	t.Helper()
	vs, err := viewstore.Open(dir, "asof", schema, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	if err := vs.Scan([]byte(prefix), func(k, _ []byte) bool { keys = append(keys, append([]byte(nil), k...)); return true }); err != nil {
		t.Fatal(err)
	}
	b := vs.NewBatch()
	for _, k := range keys {
		b.Set(k, []byte{1, 2}) // one figure: 1
	}
	if err := b.Commit(vs.Checkpoint()); err != nil {
		t.Fatal(err)
	}
	vs.Close()
	return len(keys)
}

// Figures of the as-of index found short on disk are reported as damage:
// never a panic, never a trial balance that leaves accounts out.
func TestAsOfDamageIsDetected(t *testing.T) {
	for _, prefix := range []string{"f", "ea"} {
		t.Run(prefix, func(t *testing.T) {
			evs := logs(t)["work"]
			dir := t.TempDir()
			p := openViews(t, dir)
			fold(t, p, evs)
			pt := projections.PointInTime{AsOf: "2100-12-31"}
			want, err := p.AsOf().TrialBalance(pt)
			if err != nil || len(want.Accounts) == 0 {
				t.Fatalf("before damage: %v, %d accounts", err, len(want.Accounts))
			}
			schema := p.AsOf().Schema()
			if err := p.CloseViews(); err != nil {
				t.Fatal(err)
			}
			if damageAsOf(t, dir, schema, prefix) == 0 {
				t.Fatal("nothing damaged")
			}
			q := openViews(t, dir)
			defer q.CloseViews()
			var got projections.TrialBalance
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("a query of the damaged index panics: %v", r)
					}
				}()
				got, err = q.AsOf().TrialBalance(pt)
			}()
			if err == nil && len(got.Accounts) != len(want.Accounts) {
				t.Fatalf("the damaged index answers %d accounts of %d, without an error", len(got.Accounts), len(want.Accounts))
			}
			if err != nil && q.Stopped() == nil {
				t.Fatalf("the query found damage (%v), yet the read models go on", err)
			}
		})
	}
}

// A replica waiting for an upgrade still answers reads of what it folded;
// damage a query then finds in its views stops those too: the stop it
// reports is the damage, not the upgrade.
func TestDamageFoundWhileAwaitingAnUpgradeIsTheStop(t *testing.T) {
	evs := logs(t)["work"]
	dir := t.TempDir()
	p := openViews(t, dir)
	fold(t, p, evs)
	schema := p.AsOf().Schema()
	if err := p.CloseViews(); err != nil {
		t.Fatal(err)
	}
	if damageAsOf(t, dir, schema, "ea") == 0 {
		t.Fatal("nothing damaged")
	}
	q := openViews(t, dir)
	defer q.CloseViews()
	last := evs[len(evs)-1]
	newer := last
	newer.Type, newer.Position = "SomethingFromTheFuture", eventstore.Position{Commit: last.Position.Commit + 1, Prepare: last.Position.Prepare + 1}
	if err := q.Apply(&newer); !errors.Is(err, domain.ErrUpgradeRequired) {
		t.Fatalf("Apply(an event of a newer build) = %v, want an upgrade required", err)
	}
	if _, err := q.AsOf().TrialBalance(projections.PointInTime{AsOf: "2100-12-31"}); err == nil {
		t.Fatal("the damaged index answers without an error")
	}
	if err := q.Stopped(); err == nil || errors.Is(err, domain.ErrUpgradeRequired) {
		t.Fatalf("Stopped() = %v after a query found damage: the read models go on answering", err)
	}
}
