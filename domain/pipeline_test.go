package domain

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// gatedStore is the embedded store with its syncs held back at will:
// while gated, an append the store has ordered does not report itself
// durable until the gate opens, and no append ordered after it reports
// itself durable before it does, as the store's one log guarantees.
type gatedStore struct {
	*pebble.Store
	mu      sync.Mutex
	gate    chan struct{} // nil: not gated
	prev    chan struct{} // closed once the last ordered append is durable
	ordered chan struct{} // one send for each append ordered while gated
}

func (g *gatedStore) AppendMultiOrdered(ctx context.Context, callers int, parts ...eventstore.AppendPart) ([]eventstore.AppendResult, func() error, error) {
	res, wait, err := g.Store.AppendMultiOrdered(ctx, callers, parts...)
	if err != nil {
		return res, wait, err
	}
	g.mu.Lock()
	before, gate, mine := g.prev, g.gate, make(chan struct{})
	g.prev = mine
	g.mu.Unlock()
	if gate != nil {
		g.ordered <- struct{}{}
	}
	return res, func() error {
		err := wait()
		if gate != nil {
			<-gate
		}
		if before != nil {
			<-before
		}
		close(mine)
		return err
	}, nil
}

// closeGate holds back the syncs of every append ordered from now on; the
// function returned lets them through.
func (g *gatedStore) closeGate() (open func()) {
	gate := make(chan struct{})
	g.mu.Lock()
	g.gate, g.ordered = gate, make(chan struct{}, 64)
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.gate = nil
		g.mu.Unlock()
		close(gate)
	}
}

func newGatedService(t *testing.T) (*Service, *gatedStore) {
	t.Helper()
	g := &gatedStore{Store: openPebble(t)}
	s := newServiceOver(g, WithSoleWriter())
	if s.repo.multi() == nil {
		t.Fatal("the gated store does not append to several streams at once")
	}
	return s, g
}

// waitOrdered waits until n more appends are ordered behind the gate.
func (g *gatedStore) waitOrdered(t *testing.T, n int, what string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for range n {
		select {
		case <-g.ordered:
		case <-timeout:
			t.Fatalf("%s: the store never received the append", what)
		}
	}
}

// TestAtomicBatchesPipelined: two releases charging the same year's budget
// are decided and handed to the store one after the other without the
// second waiting for the first's sync, yet neither is answered before its
// append is durable.
func TestAtomicBatchesPipelined(t *testing.T) {
	ctx := context.Background()
	s, g := newGatedService(t)
	_, g1 := approvedHousing(t, s)
	g2 := apply(t, s, registerTalent(t, s, "B"), "housing", "300000")
	toNoticeClosed(t, s, g2)
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: g2}))
	var pays []string
	for _, gid := range []string{g1, g2} {
		p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2024-01-15"), GrantID: gid, Installment: 1}))
		must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2024-01-15"), PaymentID: p.ID}))
		pays = append(pays, p.ID)
	}

	open := g.closeGate()
	var answered atomic.Bool
	release := func(i int) chan error {
		out := make(chan error, 1)
		go func() {
			_, err := s.ReleasePayment(ctx, PaymentCommand{Meta: CommandMeta{Actor: treasurer}, PaymentID: pays[i], BankReference: "B" + pays[i]})
			answered.Store(true)
			out <- err
		}()
		return out
	}
	first := release(0)
	g.waitOrdered(t, 1, "first release")
	// The budget's lock and batch are free while the first append syncs:
	// the second release reaches the store behind it.
	second := release(1)
	g.waitOrdered(t, 1, "second release, while the first is not durable")
	if answered.Load() {
		t.Fatal("a release was answered before its append was durable")
	}
	open()
	for i, c := range []chan error{first, second} {
		if err := <-c; err != nil {
			t.Fatalf("release %d: %v", i+1, err)
		}
	}
	fresh := newServiceOver(g.Store)
	wantMoney(t, "paid in 2024, as the log holds it", budgetState(t, fresh, "housing", 2024).Paid, "360000.00")
	wantMoney(t, "paid in 2024, as the cached state holds it", budgetState(t, s, "housing", 2024).Paid, "360000.00")
	verifyChains(t, g.Store)
}

// TestAtomicRefusalWaitsForDurableState: an approval refused because an
// approval whose append is not yet durable took the budget is answered
// only once that append is durable.
func TestAtomicRefusalWaitsForDurableState(t *testing.T) {
	ctx := context.Background()
	s, g := newGatedService(t)
	grants := twoGrantsOneBudget(t, s)

	open := g.closeGate()
	var opened atomic.Bool
	approve := func(gid string) chan error {
		out := make(chan error, 1)
		go func() {
			_, err := s.ApproveGrant(ctx, ApproveGrant{Meta: CommandMeta{Actor: approver}, GrantID: gid})
			if !opened.Load() {
				err = errAnsweredEarly
			}
			out <- err
		}()
		return out
	}
	first := approve(grants[0])
	g.waitOrdered(t, 1, "first approval")
	second := approve(grants[1])
	// Give the second approval every chance to answer early.
	time.Sleep(50 * time.Millisecond)
	opened.Store(true)
	open()
	if err := <-first; err != nil {
		t.Fatalf("first approval: %v", err)
	}
	if err := <-second; ErrorCode(err) != EINSUFFICIENTFUNDS {
		t.Fatalf("second approval: %v, want %s once the first is durable", err, EINSUFFICIENTFUNDS)
	}
	wantMoney(t, "committed in 2024", budgetState(t, newServiceOver(g.Store), "housing", 2024).Committed, "240000.00")
}

var errAnsweredEarly = Errorf(EINTERNAL, "answered before the state it rests on was durable")
