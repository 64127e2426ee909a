// Package projections folds the global event log into the read models that
// queries are answered from: programs and budgets, talents, grants with
// their installments and payments, and the ledger's account balances.
//
// A Projector subscribes to the global log from the position it has
// reached and applies events one at a time, in order. Its models live in
// memory and are rebuilt from the log when the process starts; the log is
// the only state, so a restart can never leave the models out of step with
// it. WaitFor lets a client read its own writes (?min_position=).
package projections

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
)

// Projector maintains the read models. Queries are safe for concurrent use
// with Run.
type Projector struct {
	store eventstore.Store
	log   *slog.Logger

	mu sync.RWMutex
	// pos is the position of the last event applied.
	pos eventstore.Position
	// applied counts events applied since start.
	applied uint64
	// lastApplied is when the last event was applied, and lastRecorded
	// when that event was recorded: together they give the lag.
	lastApplied  time.Time
	lastRecorded time.Time
	// notify is closed and replaced whenever pos advances.
	notify chan struct{}
	// readyAt is the log's last position when Run started; the models are
	// ready once pos reaches it.
	readyAt eventstore.Position
	ready   bool
	err     error
	// stopped is the error of the event that stopped the folding (see
	// foldLocked); nothing is folded after it.
	stopped error
	// codec decodes the events.
	codec domain.Codec

	programs     map[string]*ProgramView
	programOrder []string
	budgets      map[budgetKey]*BudgetView
	talents      map[string]*TalentView
	talentOrder  []string
	grants       map[string]*GrantView
	grantOrder   []string
	// programGrants lists each program's grants in grantOrder's order, so
	// that a program's list is not found by scanning every grant.
	programGrants map[string][]string
	// grantCounts counts grants by state, in all programs and in each,
	// so that a list's total is known without scanning it.
	grantCounts   stateCounts
	programCounts map[string]*stateCounts
	ledger        *Ledger
	// pendingApproval holds grants with a budget reservation but no
	// GrantApproved yet; pendingRelease holds terminated grants whose
	// reservation is not yet released. Reconciliation looks at both.
	pendingApproval map[string]time.Time
	pendingRelease  map[string]time.Time
	// pendingCharge holds payments charged to (or taken back from) a
	// budget whose grant event is not yet recorded, by payment.
	pendingCharge map[string]pendingFlow
	// forward marks the grants' forward commitments, by year.
	forward map[forwardKey]bool
	// pendingClose holds closed years whose carry-overs and lapses are
	// not yet recorded on the next year's budget.
	pendingClose map[budgetKey]time.Time
	// pendingForward holds approvals whose forward commitments, appended
	// beside GrantApproved, are not all recorded.
	pendingForward map[string]forwardCount
	// commitments lists each budget's forward commitments in order.
	commitments map[budgetKey][]*CommitmentView
	// pendingTransfer holds approved budget transfers not yet received.
	pendingTransfer map[string]pendingTransfer

	fm    *fundModels
	flows *fundFlows
	// reports is the report model (reportmodel.go).
	reports *reportModel
	pm      *principalModels
	audit   *auditModels

	// extra holds appliers registered by other files (funds), so one
	// Projector serves every model.
	extra []func(ev *eventstore.Event, payload domain.Event)
}

type budgetKey struct {
	program string
	fy      int
}

// Option configures New.
type Option func(*Projector)

// WithCodec sets how events are decoded; the default is this build's
// Codec. Tests use it to play a newer build.
func WithCodec(c domain.Codec) Option { return func(p *Projector) { p.codec = c } }

// New returns a Projector over store. Call Run to feed it.
func New(store eventstore.Store, log *slog.Logger, opts ...Option) *Projector {
	if log == nil {
		log = slog.Default()
	}
	p := &Projector{
		store:           store,
		log:             log,
		notify:          make(chan struct{}),
		programs:        map[string]*ProgramView{},
		budgets:         map[budgetKey]*BudgetView{},
		talents:         map[string]*TalentView{},
		grants:          map[string]*GrantView{},
		programGrants:   map[string][]string{},
		programCounts:   map[string]*stateCounts{},
		ledger:          NewLedger(),
		pendingApproval: map[string]time.Time{},
		pendingRelease:  map[string]time.Time{},
		pendingCharge:   map[string]pendingFlow{},
		forward:         map[forwardKey]bool{},
		pendingClose:    map[budgetKey]time.Time{},
		pendingTransfer: map[string]pendingTransfer{},
		commitments:     map[budgetKey][]*CommitmentView{},
		pendingForward:  map[string]forwardCount{},
		audit:           &auditModels{tree: auditproof.NewTree()},
	}
	p.initFunds()
	p.initPrincipals()
	p.reports = newReportModel()
	p.extra = append(p.extra, p.reports.apply)
	for _, o := range opts {
		o(p)
	}
	return p
}

// Run feeds the models from the global log until ctx is done, the
// subscription fails or an event stops the folding (see Stopped). It
// starts after the last event applied, so it can be called again after a
// failure; after a stop it returns the stop's error at once.
func (p *Projector) Run(ctx context.Context) error {
	if err := p.Stopped(); err != nil {
		return err
	}
	last, err := p.store.LastPosition(ctx)
	if err != nil {
		return fmt.Errorf("projections: last position: %w", err)
	}
	p.mu.Lock()
	p.readyAt = last
	if !p.pos.Before(last) {
		p.ready = true
	}
	from := p.pos
	p.mu.Unlock()

	sub := p.store.Subscribe(ctx, from, eventstore.Filter{})
	defer sub.Close()
	err = p.feed(sub, nil, true)
	if err != nil && ctx.Err() == nil {
		p.setErr(err)
	}
	return err
}

func (p *Projector) setErr(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

// Apply folds one event into the models. Events must come in global order;
// an event at or before the current position is ignored, so replaying an
// overlap is harmless. An event that cannot be decoded stops the folding
// (see Stopped), and Apply returns the stop's error.
func (p *Projector) Apply(ev *eventstore.Event) error {
	var pr prepared
	pr.prepare(ev, p.codec)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.foldLocked(&pr, time.Now()) {
		p.notifyLocked()
	}
	return p.stopped
}

// Stopped returns the error of the event that stopped the folding, or nil.
// It matches domain.ErrUpgradeRequired when a newer build wrote the event:
// the models keep answering as of the event before it, and the projector
// is not ready until a build that reads it takes over.
func (p *Projector) Stopped() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.stopped
}

// Position returns the position of the last event applied.
func (p *Projector) Position() eventstore.Position {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.pos
}

// Ready reports whether the models have caught up with the log as it stood
// when Run started, and no error has stopped them.
func (p *Projector) Ready() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.ready && p.err == nil && p.stopped == nil
}

// Lag returns how many seconds the last applied event took from recording
// to being applied, and the events applied so far.
func (p *Projector) Lag() (seconds float64, applied uint64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.lastRecorded.IsZero() {
		seconds = p.lastApplied.Sub(p.lastRecorded).Seconds()
	}
	return seconds, p.applied
}

// ErrNotReached is returned by WaitFor when the deadline passes first.
var ErrNotReached = fmt.Errorf("projections: position not reached in time")

// WaitFor blocks until the models have applied position pos, ctx is done,
// or timeout passes (ErrNotReached).
func (p *Projector) WaitFor(ctx context.Context, pos eventstore.Position, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.RLock()
		reached := !p.pos.Before(pos)
		ch := p.notify
		p.mu.RUnlock()
		if reached {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return ErrNotReached
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// PendingGrants lists grants whose two-stream flows look unfinished and
// were last touched before cutoff, for reconciliation.
func (p *Projector) PendingGrants(cutoff time.Time) []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var ids []string
	for id, t := range p.pendingApproval {
		if t.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	for id, t := range p.pendingRelease {
		if _, dup := p.pendingApproval[id]; !dup && t.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	for _, f := range p.pendingCharge {
		if f.at.Before(cutoff) {
			ids = append(ids, f.grant)
		}
	}
	for id, f := range p.pendingForward {
		if f.want > 0 && f.at.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return slices.Compact(ids)
}

// PendingCloses lists closed budgets whose next year has not yet received
// their carry-overs and lapses, closed before cutoff, for reconciliation.
func (p *Projector) PendingCloses(cutoff time.Time) []domain.BudgetKey {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []domain.BudgetKey
	for k, t := range p.pendingClose {
		if t.Before(cutoff) {
			out = append(out, domain.BudgetKey{ProgramID: k.program, FiscalYear: k.fy})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ProgramID != out[j].ProgramID {
			return out[i].ProgramID < out[j].ProgramID
		}
		return out[i].FiscalYear < out[j].FiscalYear
	})
	return out
}

// PendingTransfers lists approved budget transfers not yet received by
// their target, approved before cutoff, for reconciliation.
func (p *Projector) PendingTransfers(cutoff time.Time) []domain.TransferKey {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []domain.TransferKey
	for _, t := range p.pendingTransfer {
		if t.at.Before(cutoff) {
			out = append(out, t.key)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AdjustmentID < out[j].AdjustmentID })
	return out
}

// TalentGrants lists a talent's grants; it backs the domain's no-stacking
// rule.
func (p *Projector) TalentGrants(_ context.Context, talentID string) ([]string, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	t := p.talents[talentID]
	if t == nil {
		return nil, nil
	}
	return append([]string(nil), t.Grants...), nil
}
