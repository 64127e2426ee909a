package domain

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"talentledger/eventstore"
)

// combineFixture is a sole writer whose store can hold the first append
// to a stream until the test lets it go.
type combineFixture struct {
	t       *testing.T
	fs      *faultStore
	s       *Service
	stream  string
	mu      sync.Mutex
	appends int
	hold    chan struct{}
	fail    error
}

func newCombineFixture(t *testing.T) *combineFixture {
	f := &combineFixture{t: t, fs: &faultStore{Store: newTestStore(t)}}
	f.s = newServiceOver(f.fs, WithSoleWriter())
	defineHousing(t, f.s, "housing", 0)
	appropriate(t, f.s, "housing", 2024, "1000000")
	f.stream = streamBudget("housing", 2024)
	f.fs.onAppend = func(stream string, _ []eventstore.EventData) error {
		if stream != f.stream {
			return nil
		}
		f.mu.Lock()
		f.appends++
		hold := f.hold
		f.hold = nil
		f.mu.Unlock()
		if hold != nil {
			<-hold
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.fail
	}
	return f
}

// appropriation runs a command appending one appropriation of amount to
// the budget through the repo, as every command on a stream does.
func (f *combineFixture) appropriation(commandID, amount string, refuse bool) (eventstore.AppendResult, error) {
	m, err := f.s.newMeta(CommandMeta{Actor: approver, CommandID: commandID}, RoleApprover)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return f.s.repo.execute(context.Background(), f.stream, newBudget, m, func(e *entry) ([]Event, error) {
		if refuse {
			return nil, Errorf(ECONFLICT, "refused")
		}
		return []Event{&BudgetAppropriated{ProgramID: "housing", FiscalYear: 2024, Amount: money(f.t, amount), FundingSource: "treasury"}}, nil
	})
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// hold1 starts a command whose append the store holds, and returns once
// it is held, with the function that lets it go.
func (f *combineFixture) hold1() (release func(), result func() (eventstore.AppendResult, error)) {
	hold := make(chan struct{})
	f.mu.Lock()
	f.hold = hold
	start := f.appends
	f.mu.Unlock()
	var res eventstore.AppendResult
	var err error
	done := make(chan struct{})
	go func() { res, err = f.appropriation("first", "1.00", false); close(done) }()
	waitFor(f.t, "the first append", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.appends == start+1 })
	return func() { close(hold) }, func() (eventstore.AppendResult, error) { <-done; return res, err }
}

func (f *combineFixture) queued() int {
	c := &f.s.repo.combine
	c.mu.Lock()
	defer c.mu.Unlock()
	if q := c.queues[f.stream]; q != nil {
		return len(q.pending)
	}
	return 0
}

// TestCombinedCommandsShareOneAppend: commands that wait for a stream
// while its append is being made are decided one after another on it and
// stored in one append; each is answered as if it had run alone, a refused
// one writes nothing, a retry within the batch writes nothing twice, and
// the cached state and hash chain are the log's.
func TestCombinedCommandsShareOneAppend(t *testing.T) {
	f := newCombineFixture(t)
	release, first := f.hold1()
	type outcome struct {
		res eventstore.AppendResult
		err error
	}
	const n = 10
	out := make([]outcome, n+2)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].res, out[i].err = f.appropriation(fmt.Sprintf("cmd-%d", i), fmt.Sprintf("%d.00", i+1), false)
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); out[n].res, out[n].err = f.appropriation("refused", "5000.00", true) }()
	go func() { defer wg.Done(); out[n+1].res, out[n+1].err = f.appropriation("cmd-3", "4.00", false) }() // cmd-3 again
	waitFor(t, "twelve commands waiting", func() bool { return f.queued() == n+2 })
	release()
	if _, err := first(); err != nil {
		t.Fatalf("the held command: %v", err)
	}
	wg.Wait()
	if f.appends != 2 {
		t.Errorf("%d appends to the budget, want 2: the held one, then the waiting ones together", f.appends)
	}
	wantCode(t, out[n].err, ECONFLICT)
	var pos eventstore.Position
	for i := range n {
		if out[i].err != nil {
			t.Fatalf("command %d: %v", i, out[i].err)
		}
		if i == 0 {
			pos = out[i].res.Position
		} else if out[i].res.Position != pos {
			t.Errorf("command %d answered position %s, the batch's is %s", i, out[i].res.Position, pos)
		}
	}
	if out[n+1].err != nil || out[n+1].res.Position != out[3].res.Position {
		t.Errorf("the retry of cmd-3 answered %+v, %v; cmd-3 %+v", out[n+1].res, out[n+1].err, out[3].res)
	}
	// 1,000,000 + 1 + (1 + 2 + … + 10): the refused command and the retry
	// added nothing.
	wantMoney(t, "appropriated", budgetState(t, f.s, "housing", 2024).Appropriated, "1000056.00")
	if got := countEvents(t, f.fs, TypeBudgetAppropriated); got != 1+1+n {
		t.Errorf("%d appropriations in the log, want %d", got, 2+n)
	}
	fresh := newServiceOver(f.fs)
	var cached, stored entry
	f.s.repo.view(context.Background(), f.stream, newBudget, func(e *entry) error { cached = *e; return nil })
	fresh.repo.view(context.Background(), f.stream, newBudget, func(e *entry) error { stored = *e; return nil })
	if cached.version != stored.version || cached.lastHash != stored.lastHash || len(cached.ids) != len(stored.ids) {
		t.Errorf("cached budget at %d %s with %d IDs, the log's at %d %s with %d", cached.version, cached.lastHash, len(cached.ids), stored.version, stored.lastHash, len(stored.ids))
	}
	// A sole writer maps the events of one append to its last position,
	// which answers a retry of any of them.
	for id, p := range stored.ids {
		if c, ok := cached.ids[id]; !ok || c.Before(p) {
			t.Errorf("event %s cached at %s (%v), stored at %s", id, c, ok, p)
		}
	}
	verifyChains(t, f.fs)
}

// TestCombinedAppendThatFails: when the store fails a combined append,
// every command of it is answered with the failure, nothing of it is kept
// in the cache, and the next command decides on the log as it is.
func TestCombinedAppendThatFails(t *testing.T) {
	f := newCombineFixture(t)
	release, first := f.hold1()
	boom := errors.New("disk full")
	var errs [3]error
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = f.appropriation(fmt.Sprintf("c%d", i), "10.00", false) }()
	}
	waitFor(t, "three commands waiting", func() bool { return f.queued() == 3 })
	f.mu.Lock()
	f.fail = boom
	f.mu.Unlock()
	release()
	// The held append fails too (it reads fail after it is let go).
	if _, err := first(); !errors.Is(err, boom) {
		t.Errorf("the held command: %v, want the store's failure", err)
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Errorf("command %d: %v, want the store's failure", i, err)
		}
	}
	f.mu.Lock()
	f.fail = nil
	f.mu.Unlock()
	if _, err := f.appropriation("after", "7.00", false); err != nil {
		t.Fatal(err)
	}
	wantMoney(t, "appropriated", budgetState(t, f.s, "housing", 2024).Appropriated, "1000007.00")
	wantMoney(t, "the log's", budgetState(t, newServiceOver(f.fs), "housing", 2024).Appropriated, "1000007.00")
	verifyChains(t, f.fs)
}
