package domain

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// systemActor records the ledger's own corrective steps.
var systemActor = Actor{Principal: "system", Role: "system"}

// systemMeta is the metadata of a step the ledger takes on its own, such as
// completing an interrupted approval.
func (s *Service) systemMeta(commandID, reason string) *meta {
	now := s.now()
	return &meta{CommandMeta: CommandMeta{Actor: systemActor, CommandID: commandID, Reason: truncate(reason, MaxTextLen)},
		date: Today(now), today: Today(now), recordedAt: now.UTC().Truncate(time.Microsecond), settled: true}
}

// Reconcile finishes the two-stream flows of the given grants that a crash
// may have interrupted:
//
//   - a BudgetReserved without its GrantApproved: the approval is completed
//     if the grant can still be approved, or the reservation released;
//   - a GrantTerminated whose reservation was not released: the release is
//     appended.
//
// Each step uses the event IDs the interrupted command would have used, so
// running Reconcile again, or concurrently with the command, changes
// nothing twice. It returns how many grants it changed.
func (s *Service) Reconcile(ctx context.Context, grantIDs []string) (int, error) {
	changed := 0
	var errs []error
	for _, id := range grantIDs {
		n, err := s.settleGrant(ctx, id)
		changed += n
		if err != nil {
			errs = append(errs, fmt.Errorf("grant %s: %w", id, err))
		}
	}
	return changed, errors.Join(errs...)
}

func (s *Service) settleGrant(ctx context.Context, grantID string) (int, error) {
	n, err := s.settleApproval(ctx, grantID)
	if err != nil {
		return n, err
	}
	released, err := s.settleTermination(ctx, grantID)
	if released {
		n++
	}
	if err != nil {
		return n, err
	}
	p, err := s.settlePayments(ctx, grantID)
	return n + p, err
}

// settlePayments completes the releases and reversals of a grant's
// payments that a crash interrupted after their charge (or its reversal)
// was appended to a budget: the grant's event is appended as the charge
// carried it, recorded as the treasurer's and marked completed_by
// "reconcile". A charge whose payment is no longer approved is taken back.
// It returns how many it completed.
func (s *Service) settlePayments(ctx context.Context, grantID string) (int, error) {
	gstream := streamGrantChecked(grantID)
	defer s.repo.lock(gstream)()
	ge, err := s.repo.load(ctx, gstream, newGrant)
	if err != nil {
		return 0, err
	}
	g := ge.agg.(*grant)
	if g.approval == nil {
		return 0, nil
	}
	n := 0
	for _, y := range budgetYears(g.approval, Today(s.now())) {
		var charges []chargeState
		if err := s.repo.view(ctx, streamBudget(g.approval.ProgramID, y), newBudget, func(e *entry) error {
			for _, c := range e.agg.(*budget).charges {
				if c.charge.GrantID == grantID {
					charges = append(charges, *c)
				}
			}
			return nil
		}); err != nil {
			return n, err
		}
		for _, c := range charges {
			p := g.payments[c.charge.PaymentID]
			var ev Event
			var by chargeActor
			var want string
			switch {
			case !c.reversed && p != nil && p.state == PaymentStateApproved:
				rel := c.charge.Release
				ev, by, want = &rel, c.by, PaymentStateApproved
			case !c.reversed && (p == nil || p.state != PaymentStateReleased):
				reason := "release not recorded: the payment is no longer approved"
				if err := s.uncharge(ctx, s.systemMeta(c.charge.CommandID+":undo", reason), c.charge.PaymentID, c.charge.ProgramID, y, reason, nil); err != nil {
					return n, err
				}
				n++
				continue
			case c.reversed && c.reversal != nil && p != nil && p.state == PaymentStateReleased && p.chargedTo == y:
				rev := *c.reversal
				ev, by, want = &rev, c.reversedBy, PaymentStateReleased
			default:
				continue
			}
			m := s.systemMeta(by.commandID, "")
			m.Actor, m.CorrelationID = by.actor, by.correlation
			m.date, m.EffectiveDate = by.date, by.date
			m.completedBy = CompletedByReconcile
			pid := c.charge.PaymentID
			if _, err := s.repo.executeLocked(ctx, ge, m, func(e *entry) ([]Event, error) {
				if p := e.agg.(*grant).payments[pid]; p == nil || p.state != want {
					return nil, nil // another process acted on it meanwhile
				}
				return []Event{ev}, nil
			}); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// settleApproval completes or undoes an approval whose entitlement
// reservation exists but whose GrantApproved does not. The reservation on
// the talent's stream is the grant's one index of what its approval
// decided (and so of the budget it reserved in, whatever the year): the
// completion is recorded as the approver's, marked completed_by
// "reconcile".
func (s *Service) settleApproval(ctx context.Context, grantID string) (int, error) {
	gstream := streamGrantChecked(grantID)
	defer s.repo.lock(gstream)()
	ge, err := s.repo.load(ctx, gstream, newGrant)
	if err != nil {
		return 0, err
	}
	g := ge.agg.(*grant)
	if g.applied == nil {
		return 0, nil
	}
	if a := g.approval; a != nil {
		// Approved: its forward commitments, appended beside the
		// approval, may be missing. A terminated grant's are not made.
		if g.termination != nil || len(a.forwardShares()) == 0 {
			return 0, nil
		}
		missing, err := s.forwardsMissing(ctx, a)
		if err != nil || !missing {
			return 0, err
		}
		held, err := s.heldApproval(ctx, g)
		if err != nil || held == nil {
			return 0, err
		}
		_, err = s.commitForwards(ctx, s.continuation(held, CompletedByReconcile).secondary(), *a)
		return 1, err
	}
	held, err := s.heldApproval(ctx, g)
	if err != nil || held == nil {
		return 0, err
	}
	def, err := s.loadProgram(ctx, g.applied.ProgramID)
	if err != nil {
		return 0, err
	}
	a := held.approval
	m := s.continuation(held, CompletedByReconcile)
	if err := g.approvable(def, m); err != nil {
		return 1, s.undoApproval(ctx, a, "approval not completed: "+ErrorMessage(err))
	}
	if err := s.reserveShares(ctx, m, a); err != nil {
		if isRefusal(err) {
			return 1, s.undoApproval(ctx, a, "approval not completed: "+ErrorMessage(err))
		}
		return 0, err
	}
	if _, err := s.completeApproval(ctx, ge, m, a, def); err != nil {
		return 0, err
	}
	return 1, nil
}

// heldApproval returns the grant's live entitlement reservation, which
// holds its approval as decided, or nil.
func (s *Service) heldApproval(ctx context.Context, g *grant) (*entitlementUse, error) {
	var held *entitlementUse
	err := s.repo.view(ctx, streamTalent(g.applied.TalentID), newTalent, func(e *entry) error {
		if u := e.agg.(*talent).ents[g.applied.GrantID]; u != nil && !u.void {
			cp := *u
			held = &cp
		}
		return nil
	})
	return held, err
}

// forwardsMissing reports whether an approval's forward commitments are
// not all recorded.
func (s *Service) forwardsMissing(ctx context.Context, a *GrantApproved) (bool, error) {
	for _, sh := range a.forwardShares() {
		stream := streamBudget(a.ProgramID, sh.FiscalYear)
		found := false
		if err := s.repo.view(ctx, stream, newBudget, func(e *entry) error {
			_, found = e.ids[eventID(a.CommandID, stream, 0)]
			return nil
		}); err != nil {
			return false, err
		}
		if !found {
			return true, nil
		}
	}
	return false, nil
}

// CompletedByReconcile marks steps the ledger completed on its own.
const CompletedByReconcile = "reconcile"

// settleTermination appends the budget release and the entitlement release
// of a terminated grant where they are missing. It reports whether it
// appended one.
func (s *Service) settleTermination(ctx context.Context, grantID string) (bool, error) {
	var term *GrantTerminated
	if err := s.repo.view(ctx, streamGrantChecked(grantID), newGrant, func(e *entry) error {
		term = e.agg.(*grant).termination
		return nil
	}); err != nil || term == nil {
		return false, err
	}
	changed := false
	m := s.systemMeta(term.CommandID, "grant terminated; installments cancelled")
	m.completedBy = CompletedByReconcile
	for _, rel := range term.releases() {
		bstream := streamBudget(term.ProgramID, rel.FiscalYear)
		done := false
		if err := s.repo.view(ctx, bstream, newBudget, func(e *entry) error {
			_, done = e.ids[eventID(term.CommandID, bstream, 0)]
			return nil
		}); err != nil {
			return changed, err
		}
		if !done {
			if _, err := s.releaseWithMeta(ctx, m, term.ProgramID, rel.FiscalYear, term.GrantID, term.TalentID, rel.Amount, "grant terminated; installments cancelled"); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	if len(term.Cancelled) > 0 {
		done, err := s.entitlementReleased(ctx, term.TalentID, term.CommandID)
		if err != nil {
			return changed, err
		}
		if !done {
			if _, err := s.releaseEntitlement(ctx, m, term.TalentID, term.GrantID, term.Cancelled, "grant terminated; installments cancelled"); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	return changed, nil
}
