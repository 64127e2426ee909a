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
	now := s.now().UTC().Truncate(time.Microsecond)
	return &meta{CommandMeta: CommandMeta{Actor: systemActor, CommandID: commandID, Reason: truncate(reason, MaxTextLen)},
		date: Today(now), recordedAt: now}
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

// settleApproval completes or undoes an approval whose reservation exists
// but whose GrantApproved does not.
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
	// The approval would have reserved in the budget of its approval year;
	// look through the program's budgets that hold a live reservation.
	r, err := s.findReservation(ctx, g.applied.ProgramID, grantID)
	if err != nil || r == nil {
		return 0, err
	}
	def, err := s.loadProgram(ctx, g.applied.ProgramID)
	if err != nil {
		return 0, err
	}
	a := r.approval
	m := s.systemMeta(r.commandID, "completing an approval interrupted after its budget reservation")
	if err := g.approvable(def, m); err != nil {
		err := s.releaseReservation(ctx, r.commandID+":undo", a.ProgramID, a.FiscalYear, grantID, a.TalentID, "approval not completed: "+ErrorMessage(err))
		return 1, err
	}
	if _, err := s.completeApproval(ctx, ge, m, a, def); err != nil {
		return 0, err
	}
	return 1, nil
}

// findReservation returns the live reservation of a grant in the budgets of
// its program, looking at the years a grant can have been approved in.
func (s *Service) findReservation(ctx context.Context, programID, grantID string) (*reservation, error) {
	year := mustDate(Today(s.now())).Year()
	for fy := year + 1; fy >= 2000 && fy >= year-10; fy-- {
		var found *reservation
		err := s.repo.view(ctx, streamBudget(programID, fy), newBudget, func(e *entry) error {
			if r := e.agg.(*budget).reservations[grantID]; r != nil && r.released.Cmp(r.amount) < 0 {
				cp := *r
				found = &cp
			}
			return nil
		})
		if err != nil || found != nil {
			return found, err
		}
	}
	return nil, nil
}

// settleTermination appends the budget release of a terminated grant if it
// is missing.
// It reports whether it appended one.
func (s *Service) settleTermination(ctx context.Context, grantID string) (bool, error) {
	var term *GrantTerminated
	if err := s.repo.view(ctx, streamGrantChecked(grantID), newGrant, func(e *entry) error {
		term = e.agg.(*grant).termination
		return nil
	}); err != nil || term == nil || term.Released.Sign() <= 0 {
		return false, err
	}
	bstream := streamBudget(term.ProgramID, term.FiscalYear)
	done := false
	if err := s.repo.view(ctx, bstream, newBudget, func(e *entry) error {
		_, done = e.ids[eventID(term.CommandID, bstream, 0)]
		return nil
	}); err != nil || done {
		return false, err
	}
	m := s.systemMeta(term.CommandID, "grant terminated; installments cancelled")
	_, err := s.releaseWithMeta(ctx, m, term.ProgramID, term.FiscalYear, term.GrantID, term.TalentID, term.Released, "grant terminated; installments cancelled")
	return err == nil, err
}

// stackingDeduction sums what the talent has been paid under programs whose
// kinds this program deducts (rent already received comes off a later
// housing-purchase award), and names the grants it came from.
func (s *Service) stackingDeduction(ctx context.Context, def *ProgramDefined, a *GrantApplied) (Money, []string, error) {
	if len(def.DeductKinds) == 0 || s.talentGrants == nil {
		return Zero, nil, nil
	}
	ids, err := s.talentGrants(ctx, a.TalentID)
	if err != nil {
		return Zero, nil, err
	}
	total := Zero
	var from []string
	for _, id := range ids {
		if id == a.GrantID || !validGenerated(prefixGrant, id) {
			continue
		}
		var programID string
		var paid Money
		if err := s.repo.view(ctx, streamGrant(id), newGrant, func(e *entry) error {
			if g := e.agg.(*grant); g.applied != nil && g.applied.TalentID == a.TalentID {
				programID, paid = g.applied.ProgramID, g.paid
			}
			return nil
		}); err != nil {
			return Zero, nil, err
		}
		if programID == "" || paid.Sign() <= 0 {
			continue
		}
		other, err := s.loadProgram(ctx, programID)
		if err != nil {
			return Zero, nil, err
		}
		if contains(def.DeductKinds, other.Kind) {
			total = total.Add(paid)
			from = append(from, id)
		}
	}
	return total, from, nil
}
