package projections_test

import (
	"testing"

	"talentledger/projections"
)

// What a model saved is readable until its batch is committed: a query
// between a model's Save and the commit (the feed's lock is not the
// model's) answers what the models folded, never the store's older state.
func TestQueriesBetweenSaveAndCommit(t *testing.T) {
	evs := logs(t)["work"]
	p := projections.New(nil, quietLog(), projections.WithCommitEvery(1))
	if err := p.OpenViews(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	defer p.CloseViews()
	ref := projections.New(nil, quietLog())
	checked := 0
	defer projections.SetSavedHook(func(model string) {
		if model != "work" && model != "grants" {
			return
		}
		checked++
		_, got, _ := p.Work().Payments(projections.PaymentFilter{After: -1, Limit: 1})
		_, want, _ := ref.Work().Payments(projections.PaymentFilter{After: -1, Limit: 1})
		if got != want {
			t.Errorf("after %s saved, before its commit: %d payments in the register, the fold has %d", model, got, want)
		}
		_, gotGrants := p.GrantSummaries(projections.GrantFilter{Limit: 1})
		_, wantGrants := ref.GrantSummaries(projections.GrantFilter{Limit: 1})
		if gotGrants != wantGrants {
			t.Errorf("after %s saved, before its commit: %d grants listed, the fold has %d", model, gotGrants, wantGrants)
		}
	})()
	for i := range evs {
		if err := ref.Apply(&evs[i]); err != nil {
			t.Fatal(err)
		}
		if err := p.Apply(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Fatal("no commit of the work or grants model was seen")
	}
}
