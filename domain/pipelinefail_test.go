package domain

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// failingStore is the embedded store whose next ordered append, once
// armed, is placed in the log but never taken: its sync fails, and, as
// eventstore.OrderedAppender promises, so does every append after it.
// The real store is left as a failed store leaves its log: without the
// append.
type failingStore struct {
	*pebble.Store
	mu      sync.Mutex
	armed   bool
	broken  bool          // the armed append was ordered
	release chan struct{} // closed: the failed sync is reported
	ordered chan struct{}
	pos     uint64
}

var errSyncFailed = errors.New("injected WAL sync failure")

func (f *failingStore) arm() {
	f.mu.Lock()
	f.armed, f.release, f.ordered = true, make(chan struct{}), make(chan struct{}, 16)
	f.mu.Unlock()
}

func (f *failingStore) failed() error {
	f.mu.Lock()
	broken, rel := f.broken, f.release
	f.mu.Unlock()
	if !broken {
		return nil
	}
	<-rel
	return errSyncFailed
}

func (f *failingStore) AppendMultiOrdered(ctx context.Context, callers int, parts ...eventstore.AppendPart) ([]eventstore.AppendResult, func() error, error) {
	f.mu.Lock()
	if !f.armed && !f.broken {
		f.mu.Unlock()
		return f.Store.AppendMultiOrdered(ctx, callers, parts...)
	}
	f.armed, f.broken = false, true
	if f.pos == 0 {
		last, _ := f.Store.LastPosition(ctx)
		f.pos = last.Commit
	}
	res := make([]eventstore.AppendResult, len(parts))
	for i, p := range parts {
		f.pos += uint64(len(p.Events))
		res[i] = eventstore.AppendResult{Version: p.Expected + eventstore.Version(len(p.Events)), Position: eventstore.Position{Commit: f.pos, Prepare: f.pos}}
	}
	rel := f.release
	f.mu.Unlock()
	f.ordered <- struct{}{}
	return res, func() error { <-rel; return errSyncFailed }, nil
}

func (f *failingStore) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := f.failed(); err != nil {
		return eventstore.AppendResult{}, err
	}
	return f.Store.Append(ctx, stream, expected, events...)
}

func (f *failingStore) AppendMulti(ctx context.Context, parts ...eventstore.AppendPart) ([]eventstore.AppendResult, error) {
	if err := f.failed(); err != nil {
		return nil, err
	}
	return f.Store.AppendMulti(ctx, parts...)
}

// openPebble opens an embedded store in a temporary folder, closed when
// the test ends.
func openPebble(t *testing.T) *pebble.Store {
	t.Helper()
	st, err := pebble.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newFailingService(t *testing.T) (*Service, *failingStore) {
	t.Helper()
	f := &failingStore{Store: openPebble(t)}
	s := newServiceOver(f, WithSoleWriter())
	if s.repo.multi() == nil {
		t.Fatal("no multi-stream append")
	}
	return s, f
}

// twoGrantsOneBudget: a budget with room for one approval's first-year
// share (240,000) only, and two grants ready for approval.
func twoGrantsOneBudget(t *testing.T, s *Service) []string {
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "300000")
	var grants []string
	for range 2 {
		gid := apply(t, s, registerTalent(t, s, "B"), "housing", "600000")
		toNoticeClosed(t, s, gid)
		grants = append(grants, gid)
	}
	on(approver, "2024-01-15")
	return grants
}

// approvalInFlight starts the approval of grant with f armed, and returns
// once the store has ordered its append; fail then fails its sync and
// checks that the approval is not acknowledged.
func approvalInFlight(t *testing.T, s *Service, f *failingStore, grant string) (fail func()) {
	t.Helper()
	f.arm()
	first := make(chan error, 1)
	go func() {
		_, err := s.ApproveGrant(context.Background(), ApproveGrant{Meta: CommandMeta{Actor: approver}, GrantID: grant})
		first <- err
	}()
	<-f.ordered
	return func() {
		t.Helper()
		close(f.release)
		if err := <-first; err == nil {
			t.Fatal("first approval acknowledged though its sync failed")
		}
	}
}

// TestAtomicRefusalOnFailedAppend: an approval refused because an
// approval in flight took the budget must not be answered with that
// refusal when the in-flight append fails: the budget the store holds has
// room for it.
func TestAtomicRefusalOnFailedAppend(t *testing.T) {
	ctx := context.Background()
	s, f := newFailingService(t)
	grants := twoGrantsOneBudget(t, s)

	fail := approvalInFlight(t, s, f, grants[0])
	second := make(chan error, 1)
	go func() {
		_, err := s.ApproveGrant(ctx, ApproveGrant{Meta: CommandMeta{Actor: approver}, GrantID: grants[1]})
		second <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the second decide on the in-flight state
	fail()
	err := <-second
	stored := budgetState(t, newServiceOver(f.Store), "housing", 2024)
	t.Logf("store holds committed %s; second approval answered %v", stored.Committed, err)
	if ErrorCode(err) == EINSUFFICIENTFUNDS && stored.Committed.Sign() == 0 {
		t.Fatalf("second approval refused %v, resting on an append the store did not take", err)
	}
}

// TestAtomicViewOnFailedAppend: a budget query waiting for an append in
// flight must not serve that append's events once it has failed.
func TestAtomicViewOnFailedAppend(t *testing.T) {
	ctx := context.Background()
	s, f := newFailingService(t)
	grants := twoGrantsOneBudget(t, s)

	fail := approvalInFlight(t, s, f, grants[0])
	type viewed struct {
		b   BudgetState
		err error
	}
	view := make(chan viewed, 1)
	go func() {
		b, err := s.Budget(ctx, "housing", 2024)
		view <- viewed{b, err}
	}()
	time.Sleep(50 * time.Millisecond) // let the query wait on the in-flight state
	fail()
	v := <-view
	stored := budgetState(t, newServiceOver(f.Store), "housing", 2024)
	if v.err == nil && v.b.Committed.Cmp(stored.Committed) != 0 {
		t.Fatalf("budget query served committed %s; the store holds %s", v.b.Committed, stored.Committed)
	}
}

// TestAtomicConcurrentApprovalsPipelinedSmallCache: 50 concurrent
// approvals on the embedded store, pipelined, with a cache far smaller
// than the streams touched, never overdraw, and the cached state agrees
// with the log.
func TestAtomicConcurrentApprovalsPipelinedSmallCache(t *testing.T) {
	st := openPebble(t)
	s := newServiceOver(st, WithSoleWriter(), WithCacheSize(4))
	grants := reviewedGrants(t, s, 50)
	ok := approveAll(t, grants, s)
	checkTenApproved(t, newServiceOver(st), grants, ok)
	wantMoney(t, "committed, cached", budgetState(t, s, "small", 2024).Committed, "1000000.00")
}

// TestAtomicBatchOnFailedAppend: a batch decided on a state holding an
// append in flight, whose commands refuse or write nothing, answers them
// with the store's error when that append fails: neither the refusal nor
// the success rests on what the store holds.
func TestAtomicBatchOnFailedAppend(t *testing.T) {
	for _, refuse := range []bool{true, false} {
		s, f := newFailingService(t)
		grants := twoGrantsOneBudget(t, s)
		fail := approvalInFlight(t, s, f, grants[0])
		saw := make(chan bool, 1)
		out := make(chan error, 1)
		go func() {
			_, err := s.repo.executeAtomic(context.Background(), streamBudget("housing", 2024), []step{{
				stream: streamBudget("housing", 2024), newAgg: newBudget, m: s.systemMeta("probe", ""),
				decide: func(e *entry) ([]Event, error) {
					r := e.agg.(*budget).reservations[grants[0]]
					reserved := r != nil && r.live()
					select {
					case saw <- reserved:
					default:
					}
					if refuse && reserved {
						return nil, Errorf(EINSUFFICIENTFUNDS, "the budget is reserved")
					}
					return nil, nil
				},
			}})
			out <- err
		}()
		if !<-saw {
			t.Fatal("the batch did not decide on the reservation in flight")
		}
		fail()
		err := <-out
		if err == nil || ErrorCode(err) == EINSUFFICIENTFUNDS {
			t.Errorf("refuse %v: answered %v on a reservation the store did not take", refuse, err)
		}
	}
}
