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
	return n, err
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
	if g.applied == nil || g.approval != nil {
		return 0, nil
	}
	var held *entitlementUse
	if err := s.repo.view(ctx, streamTalent(g.applied.TalentID), newTalent, func(e *entry) error {
		if u := e.agg.(*talent).ents[grantID]; u != nil && !u.void {
			cp := *u
			held = &cp
		}
		return nil
	}); err != nil || held == nil {
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
	if err := s.reserve(ctx, m, a); err != nil {
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
	if term.Released.Sign() > 0 {
		bstream := streamBudget(term.ProgramID, term.FiscalYear)
		done := false
		if err := s.repo.view(ctx, bstream, newBudget, func(e *entry) error {
			_, done = e.ids[eventID(term.CommandID, bstream, 0)]
			return nil
		}); err != nil {
			return false, err
		}
		if !done {
			if _, err := s.releaseWithMeta(ctx, m, term.ProgramID, term.FiscalYear, term.GrantID, term.TalentID, term.Released, "grant terminated; installments cancelled"); err != nil {
				return false, err
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
