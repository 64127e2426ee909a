package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/eventstore/pebble"
	"talentledger/projections"
)

// The scale store may write appends in another order than it acknowledged
// them, but never one of a chain before an earlier one of that chain, nor
// a stream's out of its order.
func TestScaleStoreKeepsChainAndStreamOrder(t *testing.T) {
	ctx := context.Background()
	real := memstore.New()
	type acked struct {
		chain string
		id    eventstore.EventID
	}
	var order []acked
	s := newScaleStore(real, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	heads := map[string]eventstore.Version{}
	for i := range 3000 {
		chain := fmt.Sprintf("chain-%d", rng.IntN(40))
		stream := fmt.Sprintf("s-%d", rng.IntN(60))
		head, ok := heads[stream]
		if !ok {
			head = eventstore.NoStream
		}
		id := eventstore.DeriveEventID("test", stream, fmt.Sprint(i))
		if _, err := s.Append(withChain(ctx, chain), stream, head, eventstore.EventData{ID: id, Type: "Test",
			Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		heads[stream] = head + 1
		order = append(order, acked{chain, id})
	}
	if err := s.Drain(); err != nil {
		t.Fatal(err)
	}
	at := map[eventstore.EventID]uint64{}
	it := real.ReadAll(ctx, eventstore.Start)
	for it.Next() {
		ev := it.Event()
		at[ev.ID] = ev.Position.Commit
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it.Close()
	if len(at) != len(order) {
		t.Fatalf("%d events written, %d acknowledged", len(at), len(order))
	}
	last := map[string]uint64{}
	reordered := false
	for i, a := range order {
		p := at[a.id]
		if p <= last[a.chain] {
			t.Fatalf("append %d of %s written at %d, before its chain's previous at %d", i, a.chain, p, last[a.chain])
		}
		last[a.chain] = p
		if p != uint64(i+1) {
			reordered = true
		}
	}
	if !reordered {
		t.Fatal("every append was written in the order acknowledged: the waves grouped nothing")
	}
}

// The generated history is what the domain decided: every stream's hash
// chain verifies, every event folds, and the books balance with no
// non-negative account below zero and no two-stream flow left unfinished.
func TestScaleHistoryIsValid(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few thousand events")
	}
	ctx := context.Background()
	store, err := pebble.Open(t.TempDir(), pebble.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const target = 6000
	if _, err := generateScale(ctx, store, target, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := domain.VerifyLog(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Events < target {
		t.Fatalf("verify: %+v", rep)
	}
	p, err := projections.Replay(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb := p.TrialBalance()
	if len(tb.Violations) != 0 || !tb.Total.IsZero() {
		t.Fatalf("trial balance: total %s, violations %v", tb.Total, tb.Violations)
	}
	farFuture := scaleEnd.AddDate(10, 0, 0)
	if g := p.PendingGrants(farFuture); len(g) != 0 {
		t.Fatalf("unfinished approvals, releases or charges: %v", g)
	}
	types := map[string]int{}
	it := store.ReadAll(ctx, eventstore.Start)
	for it.Next() {
		typ, _, _ := strings.Cut(it.Event().Type, ".")
		types[typ]++
	}
	it.Close()
	for _, want := range []string{"TalentRegistered", "GrantApplied", "PublicNoticeClosed", "GrantApproved",
		"BudgetReserved", "ForwardCommitted", "PaymentReleased", "PaymentCharged", "PaymentFailed", "CapitalPaidIn",
		"InvestmentFunded", "ValuationUpdated"} {
		if types[want] == 0 {
			t.Errorf("no %s in the history: %v", want, types)
		}
	}
}
