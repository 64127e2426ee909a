package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	"talentledger/projections"
)

// The scale store acknowledges appends before they are durable, so the
// real store must end up holding exactly what it acknowledged: every
// append in the order acknowledged, at the version acknowledged, written
// in a few large multi-stream appends rather than one call each; and a
// stream read back (the domain reads one it no longer caches) shows every
// append acknowledged on it.
func TestScaleStoreWritesInAcknowledgedOrder(t *testing.T) {
	ctx := context.Background()
	real, err := pebble.Open(t.TempDir(), pebble.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	var order []eventstore.EventID
	s := newScaleStore(real, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	heads := map[string]eventstore.Version{}
	const appends = 3000
	for i := range appends {
		stream := fmt.Sprintf("s-%d", rng.IntN(600))
		head, ok := heads[stream]
		if !ok {
			head = eventstore.NoStream
		}
		id := eventstore.DeriveEventID("test", stream, fmt.Sprint(i))
		if _, err := s.Append(ctx, stream, head, eventstore.EventData{ID: id, Type: "Test",
			Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, stream, head, eventstore.EventData{ID: eventstore.DeriveEventID("x", stream, fmt.Sprint(i)), Type: "Test",
			Data: []byte(`{}`)}); err == nil {
			t.Fatalf("append %d at a stale version acknowledged", i)
		}
		heads[stream] = head + 1
		order = append(order, id)
		if i%500 == 499 {
			it := s.ReadStream(ctx, stream, 0)
			var last eventstore.EventID
			n := 0
			for it.Next() {
				last = it.Event().ID
				n++
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			it.Close()
			if last != id || eventstore.Version(n-1) != heads[stream] {
				t.Fatalf("stream %s read back with %d events ending in %s, acknowledged up to %s", stream, n, last, id)
			}
		}
	}
	if err := s.Drain(); err != nil {
		t.Fatal(err)
	}
	it := real.ReadAll(ctx, eventstore.Start)
	i := 0
	for it.Next() {
		ev := it.Event()
		if i >= len(order) || ev.ID != order[i] {
			t.Fatalf("event at position %d is %s, acknowledged %d-th", ev.Position.Commit, ev.ID, i+1)
		}
		i++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it.Close()
	if i != len(order) {
		t.Fatalf("%d events written, %d acknowledged", i, len(order))
	}
	if s.calls > 7 {
		t.Fatalf("%d appends written in %d calls to the store: not batched", appends, s.calls)
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
