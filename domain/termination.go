package domain

import (
	"context"
	"fmt"

	"talentledger/eventstore"
)

// TerminateGrant ends a grant after the talent's departure.
type TerminateGrant struct {
	Meta    CommandMeta
	GrantID string
}

// TerminateGrant ends an approved or completed grant whose talent has
// departed. Only an approver may. It cancels the installments not yet paid,
// releases their reservation, and assesses the clawback:
//
//	due = max(0, paid − amount × months served ÷ months required)
//
// GrantTerminated and ClawbackAssessed are appended to the grant's stream
// together; the release is then appended to the budget's stream, and the
// cancelled installments are given back on the talent's stream. If the
// process stops in between, Reconcile appends the releases (their event
// IDs derive from the termination's command, so each happens once).
//
// Errors: ENOTFOUND, ECONFLICT (not departed, payment with the bank, wrong
// state).
func (s *Service) TerminateGrant(ctx context.Context, c TerminateGrant) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return Result{}, err
	}
	t, err := s.grantTalent(ctx, c.GrantID)
	if err != nil {
		return Result{}, err
	}
	if t.departure == "" {
		return Result{}, Errorf(ECONFLICT, "talent %s has no departure recorded; report it first", t.reg.TalentID)
	}
	var term *GrantTerminated
	res, err := s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		if g.approval == nil {
			return nil, Errorf(ECONFLICT, "grant %s is %s; only an approved or completed grant can be terminated", c.GrantID, g.state)
		}
		// What is given back is what the budgets hold of the grant now,
		// wherever a carry-over or a lapse moved it.
		holdings, err := s.grantHoldings(ctx, g.approval, m.today)
		if err != nil {
			return nil, err
		}
		if g.state != GrantStateApproved && g.state != GrantStateCompleted {
			return nil, Errorf(ECONFLICT, "grant %s is %s; only an approved or completed grant can be terminated", c.GrantID, g.state)
		}
		for _, p := range g.payments {
			if p.state == PaymentStateApproved {
				return nil, Errorf(ECONFLICT, "payment %s is approved and with the bank; release or fail it first", p.id)
			}
		}
		a := g.approval
		served := MonthsBetween(a.ServiceStart, t.departure)
		required := a.ServiceMonths
		var cancelled []int
		for _, inst := range a.Installments {
			if _, paid := g.installmentPaid[inst.N]; !paid {
				cancelled = append(cancelled, inst.N)
			}
		}
		term = &GrantTerminated{GrantID: a.GrantID, TalentID: a.TalentID, ProgramID: a.ProgramID,
			FiscalYear: a.FiscalYear, DepartureDate: t.departure, MonthsServed: served, MonthsRequired: required,
			Paid: g.paid, Cancelled: cancelled, Released: a.Amount.Sub(g.paid), CommandID: m.CommandID}
		term.Releases = holdings
		if a.legacy() {
			// Its payments before fiscal-year charging are not charged
			// to the budget, which would overstate what it holds: what
			// is given back is the award less what was paid, as then.
			term.Releases = nil
		}
		evs := []Event{term}
		if due := clawback(g.paid, a.Amount, served, required); due.Sign() > 0 {
			evs = append(evs, &ClawbackAssessed{GrantID: a.GrantID, TalentID: a.TalentID, FiscalYear: a.FiscalYear, Amount: due,
				Formula: fmt.Sprintf("max(0, %s − %s × %d ÷ %d)", g.paid, a.Amount, served, required)})
		}
		return evs, nil
	})
	if err != nil {
		return res, err
	}
	if term == nil {
		// A retry of a termination already recorded: make sure its release
		// happened too, and answer with the position of that release, as
		// the first attempt did.
		if _, err := s.settleTermination(ctx, c.GrantID); err != nil {
			return res, err
		}
		pos, ok, err := s.releasePosition(ctx, c.GrantID)
		if ok {
			res.Position = pos
		}
		return res, err
	}
	m = m.secondary()
	for _, rel := range term.releases() {
		r, err := s.releaseWithMeta(ctx, m, term.ProgramID, rel.FiscalYear, term.GrantID, term.TalentID, rel.Amount, "grant terminated; installments cancelled")
		if err != nil {
			return res, err
		}
		res.Position = r.Position
	}
	// The cancelled installments no longer count against what the talent
	// may receive.
	if len(term.Cancelled) > 0 {
		r, err := s.releaseEntitlement(ctx, m, term.TalentID, term.GrantID, term.Cancelled, "grant terminated; installments cancelled")
		if err != nil {
			return res, err
		}
		res.Position = r.Position
	}
	return res, nil
}

// releasePosition returns where the last step of a terminated grant's
// termination landed: the release of its entitlement, or of its budget
// reservation.
func (s *Service) releasePosition(ctx context.Context, grantID string) (eventstore.Position, bool, error) {
	var term *GrantTerminated
	if err := s.repo.view(ctx, streamGrant(grantID), newGrant, func(e *entry) error {
		term = e.agg.(*grant).termination
		return nil
	}); err != nil || term == nil {
		return eventstore.Position{}, false, err
	}
	var pos eventstore.Position
	ok := false
	err := s.repo.view(ctx, streamTalent(term.TalentID), newTalent, func(e *entry) error {
		pos, ok = e.replayed(term.CommandID)
		return nil
	})
	if err != nil || ok {
		return pos, ok, err
	}
	rels := term.releases()
	for i := len(rels) - 1; i >= 0 && !ok && err == nil; i-- {
		err = s.repo.view(ctx, streamBudget(term.ProgramID, rels[i].FiscalYear), newBudget, func(e *entry) error {
			pos, ok = e.replayed(term.CommandID)
			return nil
		})
	}
	return pos, ok, err
}

// releases lists what a termination gives back, by fiscal year. A
// termination recorded before releases were split by year gives back its
// whole release in its grant's year.
func (t *GrantTerminated) releases() []YearShare {
	if t.Releases != nil {
		return t.Releases
	}
	if t.Released.Sign() <= 0 {
		return nil
	}
	return []YearShare{{FiscalYear: t.FiscalYear, Amount: t.Released, Installments: t.Cancelled}}
}

// clawback returns max(0, paid − amount × served ÷ required); nothing is due
// once the service is served or when none is required.
func clawback(paid, amount Money, served, required int) Money {
	if required <= 0 || served >= required {
		return Zero
	}
	return paid.Sub(amount.MulRatio(int64(served), int64(required))).Max(Zero)
}

// releaseWithMeta appends a release of a grant's reservation to its budget
// stream, with event IDs derived from m's command ID.
func (s *Service) releaseWithMeta(ctx context.Context, m *meta, program string, fy int, grantID, talentID string, amount Money, reason string) (Result, error) {
	stream := streamBudget(program, fy)
	res, err := s.repo.execute(ctx, stream, newBudget, m, func(e *entry) ([]Event, error) {
		r := e.agg.(*budget).reservations[grantID]
		if r == nil {
			return nil, Errorf(ECONFLICT, "grant %s has no reservation in budget %s %d", grantID, program, fy)
		}
		if left := r.left(); left.Cmp(amount) < 0 {
			amount = left
		}
		if amount.Sign() <= 0 {
			return nil, nil
		}
		// What was never covered is given back first, then money.
		var evs []Event
		if u := r.uncov.Min(amount); u.Sign() > 0 {
			evs = append(evs, &BudgetReservationReleased{ProgramID: program, FiscalYear: fy, GrantID: grantID, TalentID: talentID,
				Amount: u, Reason: reason, Uncovered: true})
			amount = amount.Sub(u)
		}
		if amount.Sign() > 0 {
			evs = append(evs, &BudgetReservationReleased{ProgramID: program, FiscalYear: fy, GrantID: grantID, TalentID: talentID,
				Amount: amount, Reason: reason})
		}
		return evs, nil
	})
	return result(grantID, res), err
}

// releaseReservation releases whatever is left of a grant's reservation,
// under a system command ID.
func (s *Service) releaseReservation(ctx context.Context, commandID, program string, fy int, grantID, talentID, reason string) error {
	m := s.systemMeta(commandID, reason)
	var left Money
	err := s.repo.view(ctx, streamBudget(program, fy), newBudget, func(e *entry) error {
		if r := e.agg.(*budget).reservations[grantID]; r != nil {
			left = r.left()
		}
		return nil
	})
	if err != nil || left.Sign() <= 0 {
		return err
	}
	_, err = s.releaseWithMeta(ctx, m, program, fy, grantID, talentID, left, reason)
	return err
}

// RecoveryCommand records money recovered, or forgiven, against a clawback.
type RecoveryCommand struct {
	Meta          CommandMeta
	GrantID       string
	Amount        Money
	BankReference string
}

// RecordRecovery records money paid back. Only a treasurer may, up to the
// amount still due; the bank reference is required.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) RecordRecovery(ctx context.Context, c RecoveryCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleTreasurer)
	if err != nil {
		return Result{}, err
	}
	if err := c.Amount.CheckAmount("amount"); err != nil {
		return Result{}, err
	}
	if err := checkText("bank_reference", c.BankReference, true); err != nil {
		return Result{}, err
	}
	return s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		if out := g.outstanding(); out.Cmp(c.Amount) < 0 {
			return nil, Errorf(ECONFLICT, "only %s of the clawback is outstanding", out)
		}
		return []Event{&RecoveryReceived{GrantID: c.GrantID, TalentID: g.applied.TalentID, FiscalYear: g.approval.FiscalYear,
			Amount: c.Amount, BankReference: c.BankReference}}, nil
	})
}

// WaiveRecovery forgives part or all of a clawback. Only an approver may,
// with a reason.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) WaiveRecovery(ctx context.Context, c RecoveryCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return Result{}, err
	}
	if err := c.Amount.CheckAmount("amount"); err != nil {
		return Result{}, err
	}
	if err := checkText("reason", m.Reason, true); err != nil {
		return Result{}, err
	}
	return s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		if out := g.outstanding(); out.Cmp(c.Amount) < 0 {
			return nil, Errorf(ECONFLICT, "only %s of the clawback is outstanding", out)
		}
		return []Event{&RecoveryWaived{GrantID: c.GrantID, TalentID: g.applied.TalentID, FiscalYear: g.approval.FiscalYear,
			Amount: c.Amount, Reason: m.Reason}}, nil
	})
}

// grantTalent returns the state of a grant's talent, or ENOTFOUND for an
// unknown grant.
func (s *Service) grantTalent(ctx context.Context, grantID string) (talent, error) {
	var talentID string
	if err := s.repo.view(ctx, streamGrantChecked(grantID), newGrant, func(e *entry) error {
		if g := e.agg.(*grant); g.applied != nil {
			talentID = g.applied.TalentID
		}
		return nil
	}); err != nil {
		return talent{}, err
	}
	if talentID == "" {
		return talent{}, Errorf(ENOTFOUND, "grant %q not found", truncate(grantID, 40))
	}
	return s.loadTalent(ctx, talentID)
}
