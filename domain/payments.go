package domain

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// PaymentID names a payment: the grant, the installment and the attempt,
// "g0123456789abcdef-2-1". Payments live in their grant's stream, so that
// one optimistic check stops two payments of the same installment.
func PaymentID(grantID string, installment, attempt int) string {
	return grantID + "-" + strconv.Itoa(installment) + "-" + strconv.Itoa(attempt)
}

// ParsePaymentID splits a payment ID into its grant and installment.
func ParsePaymentID(id string) (grantID string, installment int, ok bool) {
	parts := strings.Split(id, "-")
	if len(parts) != 3 || !validGenerated(prefixGrant, parts[0]) {
		return "", 0, false
	}
	n, err1 := strconv.Atoi(parts[1])
	a, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || n < 1 || a < 1 || PaymentID(parts[0], n, a) != id {
		return "", 0, false
	}
	return parts[0], n, true
}

// PreparePayment is the maker's entry of one installment's payment.
type PreparePayment struct {
	Meta        CommandMeta
	GrantID     string
	Installment int
}

// PreparePayment enters the payment of an installment and returns the
// payment's ID. Only a clerk may. Installments are paid in order, not before
// they are due, and only while the talent is still employed locally.
//
// Errors: ENOTFOUND, ECONFLICT, ENOTELIGIBLE.
func (s *Service) PreparePayment(ctx context.Context, c PreparePayment) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleClerk)
	if err != nil {
		return Result{}, err
	}
	// Later installments are re-checked: the talent must still be here.
	t, err := s.grantTalent(ctx, c.GrantID)
	if err != nil {
		return Result{}, err
	}
	var pid string
	res, err := s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		// Checked here, where a retry of a command already carried out
		// never gets to, so that the retry still answers with its payment.
		if t.departure != "" {
			return nil, Errorf(ENOTELIGIBLE, "talent %s departed on %s; terminate the grant instead", t.reg.TalentID, t.departure)
		}
		if g.state != GrantStateApproved {
			return nil, Errorf(ECONFLICT, "grant %s is %s; payments are prepared for approved grants", c.GrantID, g.state)
		}
		if c.Installment < 1 || c.Installment > len(g.approval.Installments) {
			return nil, Errorf(ENOTFOUND, "grant %s has no installment %d", c.GrantID, c.Installment)
		}
		if _, paid := g.installmentPaid[c.Installment]; paid {
			return nil, Errorf(ECONFLICT, "installment %d of grant %s is already paid", c.Installment, c.GrantID)
		}
		if p := g.activePayment(c.Installment); p != nil {
			return nil, Errorf(ECONFLICT, "installment %d of grant %s already has payment %s (%s)", c.Installment, c.GrantID, p.id, p.state)
		}
		for n := 1; n < c.Installment; n++ {
			if _, paid := g.installmentPaid[n]; !paid {
				return nil, Errorf(ECONFLICT, "installment %d must be paid before installment %d", n, c.Installment)
			}
		}
		// Due by the server's date, not by a date the clerk chose.
		inst := g.approval.Installments[c.Installment-1]
		if inst.DueDate > m.today {
			return nil, Errorf(ENOTDUE, "installment %d is due on %s, not yet", c.Installment, inst.DueDate)
		}
		pid = PaymentID(c.GrantID, c.Installment, g.attempts(c.Installment)+1)
		return []Event{&PaymentPrepared{GrantID: c.GrantID, PaymentID: pid, Installment: c.Installment, Amount: inst.Amount}}, nil
	})
	if pid == "" && err == nil {
		// A retried command: recover the ID it created.
		pid = s.paymentOfCommand(ctx, c.GrantID, m.CommandID)
	}
	res.ID = pid
	return res, err
}

func streamGrantChecked(id string) string {
	if !validGenerated(prefixGrant, id) {
		return streamGrant("g0000000000000000")
	}
	return streamGrant(id)
}

// paymentOfCommand finds the payment a retried command prepared, by reading
// the grant's stream for the event the command wrote.
func (s *Service) paymentOfCommand(ctx context.Context, grantID, commandID string) string {
	stream := streamGrant(grantID)
	want := eventID(commandID, stream, 0)
	it := s.repo.store.ReadStream(ctx, stream, 0)
	defer it.Close()
	for it.Next() {
		if ev := it.Event(); ev.ID == want {
			if p, err := s.repo.codec.Decode(ev.Type, ev.Data); err == nil {
				if pp, ok := p.(*PaymentPrepared); ok {
					return pp.PaymentID
				}
			}
		}
	}
	return ""
}

// PaymentCommand acts on one payment.
type PaymentCommand struct {
	Meta      CommandMeta
	PaymentID string
	// BankReference is required to release.
	BankReference string
	// Reason is required to fail or reverse.
	Reason string
}

func (s *Service) paymentCommand(ctx context.Context, m *meta, paymentID string, decide func(g *grant, p *payment) ([]Event, error)) (Result, error) {
	grantID, _, ok := ParsePaymentID(paymentID)
	if !ok {
		return Result{}, Errorf(ENOTFOUND, "payment %q not found", truncate(paymentID, 60))
	}
	res, err := s.grantCommand(ctx, m, grantID, func(g *grant) ([]Event, error) {
		p := g.payments[paymentID]
		if p == nil {
			return nil, Errorf(ENOTFOUND, "payment %s not found", paymentID)
		}
		return decide(g, p)
	})
	res.ID = paymentID
	return res, err
}

// ApprovePayment is the checker's approval. Only an approver may, and not
// the clerk who prepared the payment.
//
// Errors: ENOTFOUND, ECONFLICT, ESEGREGATION.
func (s *Service) ApprovePayment(ctx context.Context, c PaymentCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return Result{}, err
	}
	return s.paymentCommand(ctx, m, c.PaymentID, func(g *grant, p *payment) ([]Event, error) {
		if p.state != PaymentStatePrepared {
			return nil, Errorf(ECONFLICT, "payment %s is %s, not prepared", p.id, p.state)
		}
		if p.preparedBy == m.Actor.Principal {
			return nil, Errorf(ESEGREGATION, "whoever prepares a payment may not approve it")
		}
		return []Event{&PaymentApproved{GrantID: g.applied.GrantID, PaymentID: p.id}}, nil
	})
}

// ReleasePayment records that the bank paid. Only a treasurer may, and not
// whoever approved or prepared the payment. The bank reference is required.
//
// The payment is charged to the budget of the year of its release, by the
// server's date: PaymentCharged on that budget's stream first, refused
// unless the budget holds the installment's reservation, then
// PaymentReleased on the grant's. The charge carries the release whole, so
// that Reconcile completes a release interrupted between the two.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT, ESEGREGATION, ENOTRESERVED.
func (s *Service) ReleasePayment(ctx context.Context, c PaymentCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleTreasurer)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("bank_reference", c.BankReference, true); err != nil {
		return Result{}, err
	}
	decide := func(g *grant, p *payment) (Event, error) {
		if p.state != PaymentStateApproved {
			return nil, Errorf(ECONFLICT, "payment %s is %s, not approved", p.id, p.state)
		}
		if m.Actor.Principal == p.approvedBy || m.Actor.Principal == p.preparedBy {
			return nil, Errorf(ESEGREGATION, "whoever approves or prepares a payment may not release it")
		}
		a := g.approval
		return &PaymentReleased{GrantID: a.GrantID, PaymentID: p.id, Installment: p.installment,
			TalentID: a.TalentID, ProgramID: a.ProgramID, FiscalYear: mustDate(m.today).Year(), Amount: p.amount,
			BankReference: c.BankReference, ReleasedOn: m.date}, nil
	}
	return s.chargedPaymentCommand(ctx, m, c.PaymentID, decide)
}

// chargedPaymentCommand runs a payment command that changes what a budget
// has paid: it decides on the grant's stream under the grant's lock,
// appends the charge (or its reversal) carrying the decided event to the
// budget's stream, then the event to the grant's stream. If the grant
// changed meanwhile (another process), the charge is taken back.
func (s *Service) chargedPaymentCommand(ctx context.Context, m *meta, paymentID string, decide func(g *grant, p *payment) (Event, error)) (Result, error) {
	grantID, _, ok := ParsePaymentID(paymentID)
	if !ok {
		return Result{}, Errorf(ENOTFOUND, "payment %q not found", truncate(paymentID, 60))
	}
	gstream := streamGrant(grantID)
	defer s.repo.lock(gstream)()
	ge, err := s.repo.load(ctx, gstream, newGrant)
	if err != nil {
		return Result{}, err
	}
	if pos, ok := ge.replayed(m.CommandID); ok {
		return Result{ID: paymentID, Position: pos}, nil
	}
	find := func(g *grant) (*payment, error) {
		if g.applied == nil {
			return nil, Errorf(ENOTFOUND, "grant %s not found", grantID)
		}
		p := g.payments[paymentID]
		if p == nil {
			return nil, Errorf(ENOTFOUND, "payment %s not found", paymentID)
		}
		return p, nil
	}
	p, err := find(ge.agg.(*grant))
	if err != nil {
		return Result{}, err
	}
	if err := m.checkDate(ge); err != nil {
		return Result{}, err
	}
	ev, err := decide(ge.agg.(*grant), p)
	if err != nil {
		return Result{}, err
	}
	var refusal error
	record := func(e *entry) ([]Event, error) {
		g := e.agg.(*grant)
		p, err := find(g)
		if err == nil {
			_, err = decide(g, p)
		}
		if err != nil {
			refusal = err
			return nil, err
		}
		return []Event{ev}, nil
	}
	bm := m.secondary()
	budget := step{newAgg: newBudget, m: bm}
	switch ev := ev.(type) {
	case *PaymentReleased:
		budget.stream, budget.decide = streamBudget(ev.ProgramID, ev.FiscalYear), chargeDecision(bm, *ev)
	case *PaymentReversed:
		budget.stream = streamBudget(ev.ProgramID, ev.FiscalYear)
		budget.decide = unchargeDecision(bm, paymentID, ev.ProgramID, ev.FiscalYear, ev.Reason, ev)
	}
	if s.repo.multi() != nil {
		// The charge and the grant's event in one append: nothing to
		// take back if the grant refuses, nothing to finish after a
		// crash.
		res, err := s.repo.executeAtomic(ctx, budget.stream, []step{budget, {stream: gstream, newAgg: newGrant, m: m, decide: record, held: ge}})
		if !errors.Is(err, errStepwise) {
			return Result{ID: paymentID, Position: lastPosition(res)}, err
		}
		refusal = nil
	}
	if _, err := s.repo.execute(ctx, budget.stream, budget.newAgg, budget.m, budget.decide); err != nil {
		return Result{}, err
	}
	res, err := s.repo.executeLocked(ctx, ge, m, record)
	if err != nil && refusal != nil {
		if rel, ok := ev.(*PaymentReleased); ok {
			reason := "release not recorded: " + ErrorMessage(refusal)
			if uerr := s.uncharge(ctx, s.systemMeta(m.CommandID+":undo", reason), paymentID, rel.ProgramID, rel.FiscalYear, reason, nil); uerr != nil {
				return Result{}, errors.Join(err, uerr)
			}
		}
	}
	return Result{ID: paymentID, Position: res.Position}, err
}

// uncharge appends PaymentChargeReversed for a payment's live charge in a
// year's budget. It does nothing when there is none, or when this command
// already took it back.
func (s *Service) uncharge(ctx context.Context, m *meta, paymentID, program string, fy int, reason string, rev *PaymentReversed) error {
	_, err := s.repo.execute(ctx, streamBudget(program, fy), newBudget, m, unchargeDecision(m, paymentID, program, fy, reason, rev))
	return err
}

// unchargeDecision decides taking a payment's charge back.
func unchargeDecision(m *meta, paymentID, program string, fy int, reason string, rev *PaymentReversed) decideFunc {
	return func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		if rev != nil && b.closed != nil {
			return nil, Errorf(EYEARCLOSED, "payment %s was charged to the %d budget of %s, which is closed", paymentID, fy, program)
		}
		ev := b.unchargeEvent(paymentID, reason, m.CommandID, rev)
		if ev == nil {
			if rev != nil {
				return nil, Errorf(ECONFLICT, "payment %s is not charged to budget %s %d", paymentID, program, fy)
			}
			return nil, nil
		}
		return []Event{ev}, nil
	}
}

// FailPayment records that the bank did not pay an approved payment. Only a
// treasurer may. The installment may then be prepared again.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) FailPayment(ctx context.Context, c PaymentCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleTreasurer)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("reason", c.Reason, true); err != nil {
		return Result{}, err
	}
	return s.paymentCommand(ctx, m, c.PaymentID, func(g *grant, p *payment) ([]Event, error) {
		if p.state != PaymentStateApproved && p.state != PaymentStatePrepared {
			return nil, Errorf(ECONFLICT, "payment %s is %s; only a prepared or approved payment can fail", p.id, p.state)
		}
		return []Event{&PaymentFailed{GrantID: g.applied.GrantID, PaymentID: p.id, Reason: c.Reason}}, nil
	})
}

// ReversePayment corrects a released payment with a reversing entry: the
// amount goes back to the grant's reservation in the year the payment was
// charged to (PaymentChargeReversed on that budget first, carrying the
// reversal), and the installment may be paid again. Only a treasurer may, and not whoever released it.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT, ESEGREGATION.
func (s *Service) ReversePayment(ctx context.Context, c PaymentCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleTreasurer)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("reason", c.Reason, true); err != nil {
		return Result{}, err
	}
	return s.chargedPaymentCommand(ctx, m, c.PaymentID, func(g *grant, p *payment) (Event, error) {
		if p.state != PaymentStateReleased {
			return nil, Errorf(ECONFLICT, "payment %s is %s, not released", p.id, p.state)
		}
		if g.state != GrantStateApproved && g.state != GrantStateCompleted {
			return nil, Errorf(ECONFLICT, "grant %s is %s; its payments can no longer be reversed", g.applied.GrantID, g.state)
		}
		if m.Actor.Principal == p.releasedBy {
			return nil, Errorf(ESEGREGATION, "whoever released a payment may not reverse it")
		}
		a := g.approval
		// The reversal goes back to the year the payment was charged to.
		return &PaymentReversed{GrantID: a.GrantID, PaymentID: p.id, Installment: p.installment,
			TalentID: a.TalentID, ProgramID: a.ProgramID, FiscalYear: p.chargedTo, Amount: p.amount, Reason: c.Reason}, nil
	})
}
