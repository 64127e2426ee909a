package domain

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Year-end close (年终结账). A program's fiscal year is closed by two
// approvers: one requests the close, naming the reservations to carry over
// (结转) to the next year and why; another confirms it. From then on
// nothing is reserved in, paid from, appropriated to or corrected in that
// year. At the close every reservation still unpaid is either carried
// over, its money moving to the next year's budget as carried-over funds
// reserved for the same installments, or lapses (结余): the money goes
// back to the closed year, and the installments are committed to the next
// year's own budget, covered when it can take them, flagged when not.
//
// The close is recorded on the closed year's stream (YearEndClosed,
// carrying every carry-over and lapse), then carried out on the next
// year's in one append (BudgetCarriedOver, ForwardCommitted); a close
// interrupted between the two is completed by a retry or by
// ReconcileCloses, with the event IDs the close would have used.

// Event types of the year-end close.
const (
	TypeYearEndCloseRequested = "YearEndCloseRequested"
	TypeYearEndClosed         = "YearEndClosed"
	TypeBudgetCarriedOver     = "BudgetCarriedOver"
)

// CarryOver names a reservation to carry over, and why.
type CarryOver struct {
	GrantID string `json:"grant_id"`
	Reason  string `json:"reason"`
}

// YearEndCloseRequested asks for a fiscal year's close. The reservations
// listed are to be carried over; every other unpaid one lapses.
type YearEndCloseRequested struct {
	ProgramID  string      `json:"program_id"`
	FiscalYear int         `json:"fiscal_year"`
	CarryOver  []CarryOver `json:"carry_over"`
	CommandID  string      `json:"command_id"`
}

// YearEndItem is what a close does with one grant's unpaid reservation:
// Amount is its money, Uncovered what was committed but never covered.
type YearEndItem struct {
	GrantID      string `json:"grant_id"`
	TalentID     string `json:"talent_id"`
	Amount       Money  `json:"amount"`
	Uncovered    Money  `json:"uncovered"`
	Installments []int  `json:"installments"`
	Reason       string `json:"reason,omitempty"`
}

// YearEndClosed closes a fiscal year: Carried moves to the next year as
// carried-over funds; Lapsed goes back to this year (结余) and is committed
// to the next year's budget.
type YearEndClosed struct {
	ProgramID   string `json:"program_id"`
	FiscalYear  int    `json:"fiscal_year"`
	RequestedBy string `json:"requested_by"`
	// Reason and DocumentRef are the request's.
	Reason      string        `json:"reason"`
	DocumentRef string        `json:"document_ref"`
	Carried     []YearEndItem `json:"carried"`
	Lapsed      []YearEndItem `json:"lapsed"`
	CommandID   string        `json:"command_id"`
}

// BudgetCarriedOver brings a grant's unpaid reservation from the closed
// year before into this year's budget, as carried-over funds reserved for
// the same installments.
type BudgetCarriedOver struct {
	ProgramID    string `json:"program_id"`
	FiscalYear   int    `json:"fiscal_year"`
	FromYear     int    `json:"from_year"`
	GrantID      string `json:"grant_id"`
	TalentID     string `json:"talent_id"`
	Amount       Money  `json:"amount"`
	Installments []int  `json:"installments"`
	Reason       string `json:"reason"`
	DocumentRef  string `json:"document_ref"`
	CommandID    string `json:"command_id"`
}

// EventType implements Event.
func (*YearEndCloseRequested) EventType() string { return TypeYearEndCloseRequested }

// EventType implements Event.
func (*YearEndClosed) EventType() string { return TypeYearEndClosed }

// EventType implements Event.
func (*BudgetCarriedOver) EventType() string { return TypeBudgetCarriedOver }

// Postings of a close: what lapses goes back to the closed year's
// available budget, what was never covered leaves its forward
// commitments. What is carried over moves with BudgetCarriedOver.
func (e *YearEndClosed) Postings() []Posting {
	var ps []Posting
	for _, it := range e.Lapsed {
		if it.Amount.Sign() > 0 {
			ps = append(ps, Posting{accountBudgetEncumbered(e.ProgramID, e.FiscalYear), accountBudgetAvailable(e.ProgramID, e.FiscalYear), it.Amount})
		}
		if it.Uncovered.Sign() > 0 {
			ps = append(ps, Posting{accountBudgetUncovered(e.ProgramID, e.FiscalYear), accountBudgetCommitments(e.ProgramID, e.FiscalYear), it.Uncovered})
		}
	}
	return ps
}

// Postings moves the reservation from the closed year to this one.
func (e *BudgetCarriedOver) Postings() []Posting {
	return []Posting{{accountBudgetEncumbered(e.ProgramID, e.FromYear), accountBudgetEncumbered(e.ProgramID, e.FiscalYear), e.Amount}}
}

// YearEndCommand requests or confirms a fiscal year's close.
type YearEndCommand struct {
	Meta       CommandMeta
	ProgramID  string
	FiscalYear int
	// CarryOver lists the reservations to carry over (request only).
	CarryOver []CarryOver
}

// RequestYearEndClose asks to close a program's fiscal year, once the year
// has ended by the server's clock. Only an approver may; the reason and
// the document reference are required, and each carry-over needs its own
// reason. A request not yet confirmed may be replaced by a new one.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT, EYEARCLOSED.
func (s *Service) RequestYearEndClose(ctx context.Context, c YearEndCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("reason", m.Reason, true); err != nil {
		return Result{}, err
	}
	if err := checkText("document_ref", m.DocumentRef, true); err != nil {
		return Result{}, err
	}
	seen := map[string]bool{}
	for _, co := range c.CarryOver {
		if !validGenerated(prefixGrant, co.GrantID) || seen[co.GrantID] {
			return Result{}, Errorf(EINVALID, "carry_over names grant %q twice or not at all", truncate(co.GrantID, 40))
		}
		seen[co.GrantID] = true
		if err := checkText("carry_over reason", co.Reason, true); err != nil {
			return Result{}, err
		}
	}
	stream := streamBudget(c.ProgramID, c.FiscalYear)
	res, err := s.repo.execute(ctx, stream, newBudget, m, func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		if err := b.closable(c.ProgramID, c.FiscalYear, m.today); err != nil {
			return nil, err
		}
		for _, co := range c.CarryOver {
			r := b.reservations[co.GrantID]
			switch {
			case r == nil || r.coveredLeft().Sign() <= 0:
				return nil, Errorf(ECONFLICT, "grant %s has nothing unpaid reserved in the %d budget to carry over", co.GrantID, c.FiscalYear)
			case r.uncov.Sign() > 0:
				return nil, Errorf(ECONFLICT, "grant %s has %s committed to %d that the budget never covered; only money is carried over, so it lapses", co.GrantID, r.uncov, c.FiscalYear)
			}
		}
		return []Event{&YearEndCloseRequested{ProgramID: c.ProgramID, FiscalYear: c.FiscalYear,
			CarryOver: c.CarryOver, CommandID: m.CommandID}}, nil
	})
	return result(stream, res), err
}

// closable refuses to close a budget that does not exist, is closed, or
// whose year has not ended by today.
func (b *budget) closable(program string, fy int, today string) error {
	switch {
	case !b.exists:
		return Errorf(ENOTFOUND, "no budget for %s in %d", program, fy)
	case b.closed != nil:
		return Errorf(EYEARCLOSED, "the %d budget of %s is already closed", fy, program)
	case mustDate(today).Year() <= fy:
		return Errorf(ECONFLICT, "fiscal year %d has not ended; it closes from %d-01-01", fy, fy+1)
	}
	return nil
}

// ConfirmYearEndClose confirms a requested close. Only an approver other
// than the requester may. It closes the year and carries its unpaid
// reservations over or lets them lapse, as requested; a retry completes
// what an interrupted confirmation left undone.
//
// Errors: ENOTFOUND, ECONFLICT, ESEGREGATION, EYEARCLOSED.
func (s *Service) ConfirmYearEndClose(ctx context.Context, c YearEndCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return Result{}, err
	}
	stream := streamBudget(c.ProgramID, c.FiscalYear)
	var closed *YearEndClosed
	res, err := s.repo.execute(ctx, stream, newBudget, m, func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		if b.closed != nil {
			if b.closed.CommandID == m.CommandID {
				return nil, nil
			}
			return nil, Errorf(EYEARCLOSED, "the %d budget of %s is already closed", c.FiscalYear, c.ProgramID)
		}
		if err := b.closable(c.ProgramID, c.FiscalYear, m.today); err != nil {
			return nil, err
		}
		req := b.closeRequest
		if req == nil {
			return nil, Errorf(ECONFLICT, "no close of the %d budget of %s is requested", c.FiscalYear, c.ProgramID)
		}
		if g := b.legacyUnpaid(); g != "" {
			return nil, Errorf(ECONFLICT, "grant %s was approved before installments were charged to the year they fall due; "+
				"its reservation in %d does not show what it paid, so the year cannot be closed until it is settled", g, c.FiscalYear)
		}
		if req.by == m.Actor.Principal {
			return nil, Errorf(ESEGREGATION, "whoever requests a year-end close may not confirm it")
		}
		closed = b.closeOf(req, m.CommandID)
		return []Event{closed}, nil
	})
	if err != nil {
		return result(stream, res), err
	}
	r, err := s.settleClose(ctx, c.ProgramID, c.FiscalYear, m.secondary())
	if r.Position.Commit != 0 || r.Position.Prepare != 0 {
		res.Position = r.Position
	}
	return result(stream, res), err
}

// legacyUnpaid returns a grant whose reservation in b was made by an
// approval recorded before fiscal-year charging and is not settled, or "".
func (b *budget) legacyUnpaid() string {
	var gs []string
	for g, r := range b.reservations {
		if r.approval.GrantID != "" && r.approval.legacy() && r.left().Sign() > 0 {
			gs = append(gs, g)
		}
	}
	if len(gs) == 0 {
		return ""
	}
	sort.Strings(gs)
	return gs[0]
}

// closeOf works out a close: each grant's unpaid reservation carried over
// when the request names it, lapsing otherwise.
func (b *budget) closeOf(req *closeRequest, commandID string) *YearEndClosed {
	carry := map[string]string{}
	for _, co := range req.CarryOver {
		carry[co.GrantID] = co.Reason
	}
	out := &YearEndClosed{ProgramID: b.programID, FiscalYear: b.fiscalYear, RequestedBy: req.by, CommandID: commandID,
		Reason: req.reason, DocumentRef: req.documentRef,
		Carried: []YearEndItem{}, Lapsed: []YearEndItem{}}
	grants := make([]string, 0, len(b.reservations))
	for g := range b.reservations {
		grants = append(grants, g)
	}
	sort.Strings(grants)
	for _, g := range grants {
		r := b.reservations[g]
		if r.left().Sign() <= 0 {
			continue
		}
		it := YearEndItem{GrantID: g, TalentID: r.talentID, Amount: r.coveredLeft(), Uncovered: r.uncov, Installments: r.unpaid()}
		if reason, ok := carry[g]; ok && r.uncov.IsZero() {
			it.Reason = reason
			out.Carried = append(out.Carried, it)
			continue
		}
		out.Lapsed = append(out.Lapsed, it)
	}
	return out
}

// settleClose carries out a close on the next year's budget stream, if
// it has not been: carried-over funds and lapsed installments committed
// again, in one append with the close's event IDs. m is the confirming
// command's metadata, or nil to complete another command's close.
func (s *Service) settleClose(ctx context.Context, program string, fy int, m *meta) (Result, error) {
	var closed *YearEndClosed
	var md *meta
	stream := streamBudget(program, fy)
	if err := s.repo.view(ctx, stream, newBudget, func(e *entry) error {
		b := e.agg.(*budget)
		closed = b.closed
		return nil
	}); err != nil || closed == nil || len(closed.Carried)+len(closed.Lapsed) == 0 {
		return Result{}, err
	}
	md = m
	if md == nil || md.CommandID != closed.CommandID {
		md = s.systemMeta(closed.CommandID, fmt.Sprintf("year-end close of %d", fy))
		md.completedBy = CompletedByReconcile
	}
	next := streamBudget(program, fy+1)
	res, err := s.repo.execute(ctx, next, newBudget, md, func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		if b.closed != nil {
			return nil, Errorf(EYEARCLOSED, "the %d budget of %s is closed before the year before it", fy+1, program)
		}
		var evs []Event
		for _, it := range closed.Carried {
			evs = append(evs, &BudgetCarriedOver{ProgramID: program, FiscalYear: fy + 1, FromYear: fy, GrantID: it.GrantID,
				TalentID: it.TalentID, Amount: it.Amount, Installments: it.Installments, Reason: it.Reason,
				DocumentRef: closed.DocumentRef, CommandID: closed.CommandID})
		}
		// Lapsed installments join the next year's commitments, in the
		// order of the close, covered while it can take them.
		nb := *b
		nb.programID, nb.fiscalYear = program, fy+1
		for _, it := range closed.Lapsed {
			amount := it.Amount.Add(it.Uncovered)
			covered := nb.canCover(amount)
			if covered {
				nb.committed = nb.committed.Add(amount)
			} else {
				nb.uncovered = nb.uncovered.Add(amount)
			}
			evs = append(evs, &ForwardCommitted{ProgramID: program, FiscalYear: fy + 1, GrantID: it.GrantID, TalentID: it.TalentID,
				Amount: amount, Installments: it.Installments, ApprovedIn: fy, Covered: covered, CommandID: closed.CommandID, LapsedFrom: fy})
		}
		return evs, nil
	})
	return result(next, res), err
}

// ReconcileCloses completes the closes of the given budgets (program and
// fiscal year) that a crash interrupted. It returns how many it completed.
func (s *Service) ReconcileCloses(ctx context.Context, budgets []BudgetKey) (int, error) {
	n := 0
	var errs []error
	for _, k := range budgets {
		done := false
		next := streamBudget(k.ProgramID, k.FiscalYear+1)
		var cmd string
		if err := s.repo.view(ctx, streamBudget(k.ProgramID, k.FiscalYear), newBudget, func(e *entry) error {
			if c := e.agg.(*budget).closed; c != nil {
				cmd = c.CommandID
			}
			return nil
		}); err != nil {
			errs = append(errs, err)
			continue
		}
		if cmd == "" {
			continue
		}
		if err := s.repo.view(ctx, next, newBudget, func(e *entry) error {
			_, done = e.ids[eventID(cmd, next, 0)]
			return nil
		}); err != nil {
			errs = append(errs, err)
			continue
		}
		if done {
			continue
		}
		if _, err := s.settleClose(ctx, k.ProgramID, k.FiscalYear, nil); err != nil {
			errs = append(errs, fmt.Errorf("close of %s %d: %w", k.ProgramID, k.FiscalYear, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// BudgetKey names a program's budget of one fiscal year.
type BudgetKey struct {
	ProgramID  string
	FiscalYear int
}

// grantHoldings lists, by fiscal year, what the budgets hold of a grant
// unpaid: where its money lies now, after any carry-over or lapse.
func (s *Service) grantHoldings(ctx context.Context, a *GrantApproved, today string) ([]YearShare, error) {
	out := []YearShare{}
	for _, y := range budgetYears(a, today) {
		err := s.repo.view(ctx, streamBudget(a.ProgramID, y), newBudget, func(e *entry) error {
			b := e.agg.(*budget)
			if r := b.reservations[a.GrantID]; r != nil && b.closed == nil && r.left().Sign() > 0 {
				out = append(out, YearShare{FiscalYear: y, Amount: r.left(), Installments: r.unpaid()})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
