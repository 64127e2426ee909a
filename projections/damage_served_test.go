package projections_test

import (
	"strings"
	"testing"

	"talentledger/projections"
	"talentledger/projections/projectionstest"
)

// A work store damaged on disk is never served: a query that meets the
// damage either answers in full or the projector says it stopped before
// anything is answered from it.
func TestWorkStoreDamageIsNotServed(t *testing.T) {
	evs := logs(t)["work"]
	half := 0
	for half < len(evs) && !strings.HasPrefix(evs[half].Type, "PaymentPrepared") {
		half++
	}
	half++
	dir := t.TempDir()
	p := openViews(t, dir)
	fold(t, p, evs[:half])
	_, want, _ := p.Work().Payments(projections.PaymentFilter{After: -1, Limit: 10})
	if want == 0 {
		t.Fatal("no payment before the cut")
	}
	if err := p.CloseViews(); err != nil {
		t.Fatal(err)
	}
	if projectionstest.DamageRecords(t, dir, "work", p.Work().Schema(), "p/") == 0 {
		t.Fatal("no payment record in the work model's store")
	}
	q := projections.New(nil, quietLog(), projections.WithCommitEvery(1))
	if err := q.OpenViews(dir); err != nil {
		t.Fatal(err)
	}
	defer q.CloseViews()
	_, total, _ := q.Work().Payments(projections.PaymentFilter{After: -1, Limit: 10})
	if total != want && q.Stopped() == nil {
		t.Fatalf("the damaged register answers %d payments of %d, and the projector reports nothing stopped: the damage is served", total, want)
	}
}
