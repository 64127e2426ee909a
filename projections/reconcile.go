package projections

import (
	"slices"
	"sort"
	"sync"
	"time"

	"talentledger/domain"
)

// Pending is the flows over several streams that look unfinished, for
// reconciliation to complete: approvals, terminations, payment charges,
// forward commitments, year-end closes and budget transfers whose later
// events are not all recorded yet.
type Pending struct {
	mu sync.RWMutex
	// approval holds grants with a budget reservation but no
	// GrantApproved yet; release holds terminated grants whose
	// reservation is not yet released; approved marks the grants seen
	// approved.
	approval map[string]time.Time
	release  map[string]time.Time
	approved map[string]bool
	// charge holds payments charged to (or taken back from) a budget
	// whose grant event is not yet recorded, by payment.
	charge map[string]pendingFlow
	// forward holds approvals whose forward commitments, appended beside
	// GrantApproved, are not all recorded.
	forward map[string]forwardCount
	// close holds closed years whose carry-overs and lapses are not yet
	// recorded on the next year's budget.
	close map[budgetKey]time.Time
	// transfer holds approved budget transfers not yet received.
	transfer map[string]pendingTransfer
}

// pendingFlow is a two-stream flow's grant and when it began.
type pendingFlow struct {
	grant string
	at    time.Time
}

// forwardCount counts an approval's forward commitments recorded against
// those it has (want, known once GrantApproved is seen).
type forwardCount struct {
	want, seen int
	at         time.Time
}

// pendingTransfer is an approved transfer not yet received.
type pendingTransfer struct {
	key domain.TransferKey
	at  time.Time
}

// NewPending returns an empty model of pending flows.
func NewPending() *Pending {
	return &Pending{approval: map[string]time.Time{}, release: map[string]time.Time{}, approved: map[string]bool{},
		charge: map[string]pendingFlow{}, forward: map[string]forwardCount{}, close: map[budgetKey]time.Time{},
		transfer: map[string]pendingTransfer{}}
}

// Name implements Model.
func (m *Pending) Name() string { return "pending" }

// Apply implements Model.
func (m *Pending) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Changes {
		c := &b.Changes[i]
		m.apply(c)
	}
}

func (m *Pending) apply(c *Change) {
	switch e := c.Payload.(type) {
	case *domain.BudgetReserved:
		if !m.approved[e.GrantID] {
			m.approval[e.GrantID] = eventTime(c.Event)
		}
	case *domain.EntitlementReserved:
		// The first step of an approval: pending until GrantApproved, or
		// until the approval is undone and the entitlement given back.
		if !m.approved[e.GrantID] {
			m.approval[e.GrantID] = eventTime(c.Event)
		}
	case *domain.EntitlementReleased:
		// The last step of an undone approval or of a termination.
		delete(m.approval, e.GrantID)
		delete(m.release, e.GrantID)
	case *domain.GrantApproved:
		m.approved[e.GrantID] = true
		delete(m.approval, e.GrantID)
		if n := len(e.Years); n > 1 {
			f := m.forward[e.GrantID]
			f.want, f.at = n-1, eventTime(c.Event)
			if f.seen < f.want {
				m.forward[e.GrantID] = f
			} else {
				delete(m.forward, e.GrantID)
			}
		}
	case *domain.GrantTerminated:
		if e.Released.Sign() > 0 || len(e.Releases) > 0 {
			m.release[e.GrantID] = eventTime(c.Event)
		}
	case *domain.PaymentCharged:
		m.charge[e.PaymentID] = pendingFlow{e.GrantID, eventTime(c.Event)}
	case *domain.PaymentChargeReversed:
		if e.Reversal != nil {
			m.charge[e.PaymentID] = pendingFlow{e.GrantID, eventTime(c.Event)}
		} else {
			delete(m.charge, e.PaymentID)
		}
	case *domain.PaymentReleased:
		delete(m.charge, e.PaymentID)
	case *domain.PaymentReversed:
		delete(m.charge, e.PaymentID)
	case *domain.YearEndClosed:
		if len(e.Carried)+len(e.Lapsed) > 0 {
			m.close[budgetKey{e.ProgramID, e.FiscalYear}] = eventTime(c.Event)
		}
	case *domain.BudgetCarriedOver:
		delete(m.close, budgetKey{e.ProgramID, e.FromYear})
	case *domain.ForwardCommitted:
		if e.LapsedFrom != 0 {
			delete(m.close, budgetKey{e.ProgramID, e.LapsedFrom})
		} else {
			m.forwardSeen(e.GrantID)
		}
	case *domain.BudgetAdjusted:
		if e.Kind == domain.AdjustTransfer {
			m.transfer[e.AdjustmentID] = pendingTransfer{domain.TransferKey{ProgramID: e.ProgramID, FiscalYear: e.FiscalYear,
				AdjustmentID: e.AdjustmentID}, eventTime(c.Event)}
		}
	case *domain.BudgetTransferReceived:
		delete(m.transfer, e.AdjustmentID)
	}
}

// forwardSeen counts a forward commitment made at an approval.
func (m *Pending) forwardSeen(grant string) {
	f := m.forward[grant]
	f.seen++
	if f.want > 0 && f.seen >= f.want {
		delete(m.forward, grant)
		return
	}
	m.forward[grant] = f
}

// Grants lists grants whose two-stream flows look unfinished and were
// last touched before cutoff.
func (m *Pending) Grants(cutoff time.Time) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var ids []string
	for id, t := range m.approval {
		if t.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	for id, t := range m.release {
		if _, dup := m.approval[id]; !dup && t.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	for _, f := range m.charge {
		if f.at.Before(cutoff) {
			ids = append(ids, f.grant)
		}
	}
	for id, f := range m.forward {
		if f.want > 0 && f.at.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return slices.Compact(ids)
}

// Closes lists closed budgets whose next year has not yet received their
// carry-overs and lapses, closed before cutoff.
func (m *Pending) Closes(cutoff time.Time) []domain.BudgetKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []domain.BudgetKey
	for k, t := range m.close {
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

// Transfers lists approved budget transfers not yet received by their
// target, approved before cutoff.
func (m *Pending) Transfers(cutoff time.Time) []domain.TransferKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []domain.TransferKey
	for _, t := range m.transfer {
		if t.at.Before(cutoff) {
			out = append(out, t.key)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AdjustmentID < out[j].AdjustmentID })
	return out
}

var _ Model = (*Pending)(nil)
