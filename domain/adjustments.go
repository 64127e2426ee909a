package domain

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Budget adjustments (预算调整): an increase, a decrease, or a transfer to
// another program's budget of the same fiscal year, each with its reason
// and document, requested by one approver and approved by another. A
// decrease or a transfer never takes a budget below what it has reserved
// and paid: only what is available may leave it.
//
// A transfer is approved on the source budget's stream (BudgetAdjusted,
// the money leaving for the target's in-transit account) and then
// received on the target's (BudgetTransferReceived); a transfer
// interrupted between the two is completed by a retry or by
// ReconcileTransfers.

// Kinds of budget adjustment.
const (
	AdjustIncrease = "increase"
	AdjustDecrease = "decrease"
	AdjustTransfer = "transfer"
)

const prefixAdjustment = "a"

// Event types of budget adjustments.
const (
	TypeBudgetAdjustmentRequested = "BudgetAdjustmentRequested"
	TypeBudgetAdjusted            = "BudgetAdjusted"
	TypeBudgetTransferReceived    = "BudgetTransferReceived"
)

// BudgetAdjustmentRequested asks for an adjustment of a budget.
type BudgetAdjustmentRequested struct {
	AdjustmentID  string `json:"adjustment_id"`
	ProgramID     string `json:"program_id"`
	FiscalYear    int    `json:"fiscal_year"`
	Kind          string `json:"kind"`
	Amount        Money  `json:"amount"`
	ToProgram     string `json:"to_program,omitempty"`
	FundingSource string `json:"funding_source"`
}

// BudgetAdjusted carries out an approved adjustment on the budget it was
// requested for.
type BudgetAdjusted struct {
	AdjustmentID  string `json:"adjustment_id"`
	ProgramID     string `json:"program_id"`
	FiscalYear    int    `json:"fiscal_year"`
	Kind          string `json:"kind"`
	Amount        Money  `json:"amount"`
	ToProgram     string `json:"to_program,omitempty"`
	FundingSource string `json:"funding_source"`
	RequestedBy   string `json:"requested_by"`
	CommandID     string `json:"command_id"`
}

// BudgetTransferReceived credits a transfer to the target budget.
type BudgetTransferReceived struct {
	AdjustmentID string `json:"adjustment_id"`
	ProgramID    string `json:"program_id"`
	FiscalYear   int    `json:"fiscal_year"`
	FromProgram  string `json:"from_program"`
	Amount       Money  `json:"amount"`
}

// EventType implements Event.
func (*BudgetAdjustmentRequested) EventType() string { return TypeBudgetAdjustmentRequested }

// EventType implements Event.
func (*BudgetAdjusted) EventType() string { return TypeBudgetAdjusted }

// EventType implements Event.
func (*BudgetTransferReceived) EventType() string { return TypeBudgetTransferReceived }

func accountBudgetTransit(program string, fy int) string {
	return "budget:" + program + ":" + strconv.Itoa(fy) + ":in_transit"
}

// Postings of an adjustment: an increase comes from the budget's funding
// source, a decrease goes back to it, a transfer leaves for the target's
// in-transit account.
func (e *BudgetAdjusted) Postings() []Posting {
	avail := accountBudgetAvailable(e.ProgramID, e.FiscalYear)
	switch e.Kind {
	case AdjustIncrease:
		return []Posting{{accountFundingSource(e.FundingSource, e.FiscalYear), avail, e.Amount}}
	case AdjustDecrease:
		return []Posting{{avail, accountFundingSource(e.FundingSource, e.FiscalYear), e.Amount}}
	case AdjustTransfer:
		return []Posting{{avail, accountBudgetTransit(e.ToProgram, e.FiscalYear), e.Amount}}
	}
	return nil
}

// Postings of a received transfer.
func (e *BudgetTransferReceived) Postings() []Posting {
	return []Posting{{accountBudgetTransit(e.ProgramID, e.FiscalYear), accountBudgetAvailable(e.ProgramID, e.FiscalYear), e.Amount}}
}

// adjustment is a requested adjustment on a budget's stream.
type adjustment struct {
	req       BudgetAdjustmentRequested
	by        string
	done      *BudgetAdjusted
	commandID string
}

// AdjustBudget requests or approves an adjustment.
type AdjustBudget struct {
	Meta       CommandMeta
	ProgramID  string
	FiscalYear int
	// Kind, Amount and ToProgram describe a request.
	Kind      string
	Amount    Money
	ToProgram string
	// AdjustmentID names the adjustment an approval approves.
	AdjustmentID string
}

// RequestBudgetAdjustment records a requested adjustment and returns its
// ID. Only an approver may; the reason and document reference are
// required. A decrease or transfer is refused when the budget does not
// have the amount available now (and is checked again at approval).
//
// Errors: EINVALID, ENOTFOUND, EINSUFFICIENTFUNDS, EYEARCLOSED.
func (s *Service) RequestBudgetAdjustment(ctx context.Context, c AdjustBudget) (Result, error) {
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
	if err := c.Amount.CheckAmount("amount"); err != nil {
		return Result{}, err
	}
	switch c.Kind {
	case AdjustIncrease, AdjustDecrease:
		if c.ToProgram != "" {
			return Result{}, Errorf(EINVALID, "to_program is only for a transfer")
		}
	case AdjustTransfer:
		if c.ToProgram == c.ProgramID {
			return Result{}, Errorf(EINVALID, "a transfer goes to another program")
		}
		to, err := s.loadProgram(ctx, c.ToProgram)
		if err != nil {
			return Result{}, err
		}
		if _, fund := fundOfSource(to.FundingSource); fund {
			return Result{}, Errorf(EINVALID, "program %s is financed by a fund; its budget takes no transfers", c.ToProgram)
		}
		if err := s.openBudget(ctx, c.ToProgram, c.FiscalYear); err != nil {
			return Result{}, err
		}
	default:
		return Result{}, Errorf(EINVALID, "kind must be %q, %q or %q", AdjustIncrease, AdjustDecrease, AdjustTransfer)
	}
	def, err := s.loadProgram(ctx, c.ProgramID)
	if err != nil {
		return Result{}, err
	}
	if _, fund := fundOfSource(def.FundingSource); fund && c.Kind != AdjustTransfer {
		return Result{}, Errorf(EINVALID, "program %s is financed by a fund; appropriate from the fund instead", c.ProgramID)
	}
	id := newID(prefixAdjustment, m.CommandID, "adjustment")
	stream := streamBudget(c.ProgramID, c.FiscalYear)
	res, err := s.repo.execute(ctx, stream, newBudget, m, func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		if err := b.adjustable(c.ProgramID, c.FiscalYear, c.Kind, c.Amount); err != nil {
			return nil, err
		}
		return []Event{&BudgetAdjustmentRequested{AdjustmentID: id, ProgramID: c.ProgramID, FiscalYear: c.FiscalYear,
			Kind: c.Kind, Amount: c.Amount, ToProgram: c.ToProgram, FundingSource: def.FundingSource}}, nil
	})
	return result(id, res), err
}

// openBudget refuses a budget that is closed.
func (s *Service) openBudget(ctx context.Context, program string, fy int) error {
	return s.repo.view(ctx, streamBudget(program, fy), newBudget, func(e *entry) error {
		if e.agg.(*budget).closed != nil {
			return Errorf(EYEARCLOSED, "the %d budget of %s is closed", fy, program)
		}
		return nil
	})
}

// adjustable refuses an adjustment a budget cannot take: closed, missing,
// or, for what leaves it, more than it has available.
func (b *budget) adjustable(program string, fy int, kind string, amount Money) error {
	switch {
	case b.closed != nil:
		return Errorf(EYEARCLOSED, "the %d budget of %s is closed", fy, program)
	case !b.exists:
		return Errorf(ENOTFOUND, "no budget for %s in %d", program, fy)
	case kind != AdjustIncrease && b.available().Cmp(amount) < 0:
		return Errorf(EINSUFFICIENTFUNDS, "budget %s %d has %s available beyond what it reserved and paid, %s asked for", program, fy, b.available(), amount)
	}
	return nil
}

// ApproveBudgetAdjustment approves a requested adjustment. Only an
// approver other than the requester may. An increase also covers the
// year's waiting forward commitments, as an appropriation does.
//
// Errors: ENOTFOUND, ECONFLICT, ESEGREGATION, EINSUFFICIENTFUNDS,
// EYEARCLOSED.
func (s *Service) ApproveBudgetAdjustment(ctx context.Context, c AdjustBudget) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return Result{}, err
	}
	if !validGenerated(prefixAdjustment, c.AdjustmentID) {
		return Result{}, Errorf(ENOTFOUND, "adjustment %q not found", truncate(c.AdjustmentID, 40))
	}
	stream := streamBudget(c.ProgramID, c.FiscalYear)
	var adj *BudgetAdjusted
	res, err := s.repo.execute(ctx, stream, newBudget, m, func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		a := b.adjustments[c.AdjustmentID]
		switch {
		case a == nil:
			return nil, Errorf(ENOTFOUND, "adjustment %s not found in budget %s %d", c.AdjustmentID, c.ProgramID, c.FiscalYear)
		case a.done != nil:
			return nil, Errorf(ECONFLICT, "adjustment %s is already approved", c.AdjustmentID)
		case a.by == m.Actor.Principal:
			return nil, Errorf(ESEGREGATION, "whoever requests a budget adjustment may not approve it")
		}
		if err := b.adjustable(c.ProgramID, c.FiscalYear, a.req.Kind, a.req.Amount); err != nil {
			return nil, err
		}
		adj = &BudgetAdjusted{AdjustmentID: a.req.AdjustmentID, ProgramID: a.req.ProgramID, FiscalYear: a.req.FiscalYear,
			Kind: a.req.Kind, Amount: a.req.Amount, ToProgram: a.req.ToProgram, FundingSource: a.req.FundingSource,
			RequestedBy: a.by, CommandID: m.CommandID}
		evs := []Event{adj}
		if adj.Kind == AdjustIncrease {
			evs = append(evs, b.coverForward(adj.Amount)...)
		}
		return evs, nil
	})
	if err != nil {
		return result(c.AdjustmentID, res), err
	}
	if adj == nil {
		// A retry: complete the transfer this command approved, if it
		// did not reach its target.
		if err := s.repo.view(ctx, stream, newBudget, func(e *entry) error {
			if a := e.agg.(*budget).adjustments[c.AdjustmentID]; a != nil && a.done != nil && a.done.CommandID == m.CommandID {
				adj = a.done
			}
			return nil
		}); err != nil {
			return result(c.AdjustmentID, res), err
		}
	}
	if adj == nil || adj.Kind != AdjustTransfer {
		return result(c.AdjustmentID, res), nil
	}
	r, err := s.receiveTransfer(ctx, adj, m.secondary())
	if err == nil && r.Position != (Result{}).Position {
		res.Position = r.Position
	}
	return result(c.AdjustmentID, res), err
}

// receiveTransfer credits an approved transfer to its target budget, once,
// and covers the target's waiting forward commitments with it. m is the
// approving command's metadata, or nil to complete another's.
func (s *Service) receiveTransfer(ctx context.Context, adj *BudgetAdjusted, m *meta) (Result, error) {
	if m == nil || m.CommandID != adj.CommandID {
		m = s.systemMeta(adj.CommandID, "budget transfer from "+adj.ProgramID)
		m.completedBy = CompletedByReconcile
	}
	stream := streamBudget(adj.ToProgram, adj.FiscalYear)
	res, err := s.repo.execute(ctx, stream, newBudget, m, func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		if b.closed != nil {
			return nil, Errorf(EYEARCLOSED, "the %d budget of %s closed before the transfer %s reached it", adj.FiscalYear, adj.ToProgram, adj.AdjustmentID)
		}
		nb := *b
		nb.programID, nb.fiscalYear = adj.ToProgram, adj.FiscalYear
		return append([]Event{&BudgetTransferReceived{AdjustmentID: adj.AdjustmentID, ProgramID: adj.ToProgram,
			FiscalYear: adj.FiscalYear, FromProgram: adj.ProgramID, Amount: adj.Amount}}, nb.coverForward(adj.Amount)...), nil
	})
	return result(stream, res), err
}

// TransferKey names an approved transfer: its source budget and ID.
type TransferKey struct {
	ProgramID    string
	FiscalYear   int
	AdjustmentID string
}

// ReconcileTransfers credits approved transfers that a crash left
// uncredited. It returns how many it completed.
func (s *Service) ReconcileTransfers(ctx context.Context, keys []TransferKey) (int, error) {
	n := 0
	var errs []error
	for _, k := range keys {
		var adj *BudgetAdjusted
		if err := s.repo.view(ctx, streamBudget(k.ProgramID, k.FiscalYear), newBudget, func(e *entry) error {
			if a := e.agg.(*budget).adjustments[k.AdjustmentID]; a != nil && a.done != nil && a.done.Kind == AdjustTransfer {
				adj = a.done
			}
			return nil
		}); err != nil || adj == nil {
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		target := streamBudget(adj.ToProgram, adj.FiscalYear)
		done := false
		if err := s.repo.view(ctx, target, newBudget, func(e *entry) error {
			_, done = e.ids[eventID(adj.CommandID, target, 0)]
			return nil
		}); err != nil {
			errs = append(errs, err)
			continue
		}
		if done {
			continue
		}
		if _, err := s.receiveTransfer(ctx, adj, nil); err != nil {
			errs = append(errs, fmt.Errorf("transfer %s: %w", k.AdjustmentID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
