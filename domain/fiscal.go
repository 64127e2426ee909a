package domain

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"talentledger/eventstore"
)

// Fiscal years. The fiscal year is the calendar year. Each installment is
// charged to the budget of the year it falls due in: an approval reserves
// the current year's share in the current year's budget and records each
// later year's share as a forward commitment on that year's budget stream.
// A forward commitment is covered (reserved) when the year's budget can
// take it, in the order the approvals were made; until then it is
// uncovered, and once the year has an appropriation that cannot cover it,
// flagged. A payment is charged to the budget of the year of its release.

// YearShare is the part of an award charged to one fiscal year: the
// installments falling due in it.
type YearShare struct {
	FiscalYear   int   `json:"fiscal_year"`
	Amount       Money `json:"amount"`
	Installments []int `json:"installments"`
}

// Event types of the fiscal years.
const (
	TypeForwardCommitted         = "ForwardCommitted"
	TypeForwardCommitmentCovered = "ForwardCommitmentCovered"
	TypePaymentCharged           = "PaymentCharged"
	TypePaymentChargeReversed    = "PaymentChargeReversed"
)

// ForwardCommitted records, on the budget stream of a later fiscal year,
// the share of an approved award that falls due in that year. Covered is
// set when the year's budget reserved it at once; otherwise it waits for
// an appropriation (ForwardCommitmentCovered).
type ForwardCommitted struct {
	ProgramID    string `json:"program_id"`
	FiscalYear   int    `json:"fiscal_year"`
	GrantID      string `json:"grant_id"`
	TalentID     string `json:"talent_id"`
	Amount       Money  `json:"amount"`
	Installments []int  `json:"installments"`
	ApprovedIn   int    `json:"approved_in"`
	Covered      bool   `json:"covered"`
	CommandID    string `json:"command_id"`
	// LapsedFrom is set on installments whose year closed with them
	// unpaid and lapsed (结余): they are committed to the next year.
	LapsedFrom int `json:"lapsed_from,omitempty"`
}

// ForwardCommitmentCovered reserves an uncovered forward commitment in its
// year's budget, once an appropriation can take it.
type ForwardCommitmentCovered struct {
	ProgramID  string `json:"program_id"`
	FiscalYear int    `json:"fiscal_year"`
	GrantID    string `json:"grant_id"`
	TalentID   string `json:"talent_id"`
	Amount     Money  `json:"amount"`
}

// PaymentCharged charges a payment to the budget of the year of its
// release. It is appended before the grant's PaymentReleased and carries
// it whole, so that a release interrupted between the two is completed by
// Reconcile.
type PaymentCharged struct {
	ProgramID   string          `json:"program_id"`
	FiscalYear  int             `json:"fiscal_year"`
	GrantID     string          `json:"grant_id"`
	TalentID    string          `json:"talent_id"`
	PaymentID   string          `json:"payment_id"`
	Installment int             `json:"installment"`
	Amount      Money           `json:"amount"`
	CommandID   string          `json:"command_id"`
	Release     PaymentReleased `json:"release"`
}

// PaymentChargeReversed takes a charge back: the installment is reserved
// again in the year it was charged to. With Reversal set it comes before
// the grant's PaymentReversed and carries it whole; without, it undoes a
// charge whose release could not be recorded.
type PaymentChargeReversed struct {
	ProgramID   string           `json:"program_id"`
	FiscalYear  int              `json:"fiscal_year"`
	GrantID     string           `json:"grant_id"`
	PaymentID   string           `json:"payment_id"`
	Installment int              `json:"installment"`
	Amount      Money            `json:"amount"`
	Reason      string           `json:"reason"`
	CommandID   string           `json:"command_id"`
	Reversal    *PaymentReversed `json:"reversal,omitempty"`
}

// EventType implements Event.
func (*ForwardCommitted) EventType() string { return TypeForwardCommitted }

// EventType implements Event.
func (*ForwardCommitmentCovered) EventType() string { return TypeForwardCommitmentCovered }

// EventType implements Event.
func (*PaymentCharged) EventType() string { return TypePaymentCharged }

// EventType implements Event.
func (*PaymentChargeReversed) EventType() string { return TypePaymentChargeReversed }

// Postings: a covered forward commitment is a reservation; an uncovered
// one is promised beyond what the year has, and is kept on its own pair of
// accounts so that no available budget goes below zero. Charges move no
// money: the release they carry does.
func (e *ForwardCommitted) Postings() []Posting {
	if e.Covered {
		return []Posting{{accountBudgetAvailable(e.ProgramID, e.FiscalYear), accountBudgetEncumbered(e.ProgramID, e.FiscalYear), e.Amount}}
	}
	return []Posting{{accountBudgetCommitments(e.ProgramID, e.FiscalYear), accountBudgetUncovered(e.ProgramID, e.FiscalYear), e.Amount}}
}

// Postings implements the postings of a covered forward commitment.
func (e *ForwardCommitmentCovered) Postings() []Posting {
	return []Posting{
		{accountBudgetUncovered(e.ProgramID, e.FiscalYear), accountBudgetCommitments(e.ProgramID, e.FiscalYear), e.Amount},
		{accountBudgetAvailable(e.ProgramID, e.FiscalYear), accountBudgetEncumbered(e.ProgramID, e.FiscalYear), e.Amount},
	}
}

// accountBudgetUncovered holds forward commitments of a year its budget
// does not yet cover; accountBudgetCommitments is its counterpart.
func accountBudgetUncovered(program string, fy int) string {
	return fmt.Sprintf("budget:%s:%d:uncovered", program, fy)
}

func accountBudgetCommitments(program string, fy int) string {
	return fmt.Sprintf("budget:%s:%d:forward_commitments", program, fy)
}

// fiscalYearOf is the year an installment is charged to when approved in
// fy: the year it falls due, or fy for one due before it (an approval
// backdated over the new year).
func fiscalYearOf(inst Installment, fy int) int {
	return max(mustDate(inst.DueDate).Year(), fy)
}

// yearShares splits installments by the fiscal year they are charged to,
// the approval's year first.
func yearShares(installments []Installment, fy int) []YearShare {
	var out []YearShare
	for _, inst := range installments {
		y := fiscalYearOf(inst, fy)
		if n := len(out); n > 0 && out[n-1].FiscalYear == y {
			out[n-1].Amount = out[n-1].Amount.Add(inst.Amount)
			out[n-1].Installments = append(out[n-1].Installments, inst.N)
			continue
		}
		out = append(out, YearShare{FiscalYear: y, Amount: inst.Amount, Installments: []int{inst.N}})
	}
	if len(out) == 0 || out[0].FiscalYear != fy {
		out = append([]YearShare{{FiscalYear: fy, Amount: Zero}}, out...)
	}
	return out
}

// shares returns the approval's shares by year. An approval recorded
// before installments were charged by year (Years empty, see legacy) is
// all in its own year.
func (a *GrantApproved) shares() []YearShare {
	if len(a.Years) > 0 {
		return a.Years
	}
	ns := make([]int, len(a.Installments))
	for i, inst := range a.Installments {
		ns[i] = inst.N
	}
	return []YearShare{{FiscalYear: a.FiscalYear, Amount: a.Amount, Installments: ns}}
}

// Shares returns the approval's shares by fiscal year, its own year's
// first.
func (a *GrantApproved) Shares() []YearShare { return a.shares() }

// legacy reports whether the approval was recorded before installments
// were charged to the year they fall due: its whole award was reserved
// in its year, and its payments released then were not charged to a
// budget.
func (a *GrantApproved) legacy() bool { return len(a.Years) == 0 }

// YearOfInstallment returns the fiscal year installment n is charged to.
func (a *GrantApproved) YearOfInstallment(n int) int {
	for _, sh := range a.shares() {
		for _, m := range sh.Installments {
			if m == n {
				return sh.FiscalYear
			}
		}
	}
	return a.FiscalYear
}

// currentShare is the share reserved at approval, in the approval's year.
func (a *GrantApproved) currentShare() YearShare { return a.shares()[0] }

// forwardShares are the shares of the years after the approval's.
func (a *GrantApproved) forwardShares() []YearShare { return a.shares()[1:] }

// commitForward appends the forward commitment of one later year's share
// to that year's budget stream. It is never refused for want of money: a
// commitment the year cannot cover is recorded uncovered, to be covered
// by an appropriation or acted on. A retry finds what it recorded.
func (s *Service) commitForward(ctx context.Context, m *meta, a GrantApproved, sh YearShare) (eventstore.Position, error) {
	res, err := s.repo.execute(ctx, streamBudget(a.ProgramID, sh.FiscalYear), newBudget, m, forwardDecision(a, sh))
	return res.Position, err
}

// forwardDecision decides the forward commitment of one later year's share.
func forwardDecision(a GrantApproved, sh YearShare) decideFunc {
	return func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		if r := b.reservations[a.GrantID]; r != nil && r.live() {
			if r.commandID == a.CommandID {
				return nil, nil
			}
			return nil, Errorf(ECONFLICT, "grant %s already has a commitment in budget %s %d", a.GrantID, a.ProgramID, sh.FiscalYear)
		}
		covered := b.canCover(sh.Amount)
		return []Event{&ForwardCommitted{ProgramID: a.ProgramID, FiscalYear: sh.FiscalYear, GrantID: a.GrantID,
			TalentID: a.TalentID, Amount: sh.Amount, Installments: sh.Installments, ApprovedIn: a.FiscalYear,
			Covered: covered, CommandID: a.CommandID}}, nil
	}
}

// canCover reports whether a new forward commitment of amount is covered
// at once: the year has a budget, open, with nothing waiting before it and
// enough available.
func (b *budget) canCover(amount Money) bool {
	return b.exists && b.closed == nil && b.uncovered.IsZero() && b.available().Cmp(amount) >= 0
}

// reserveShares reserves an approval's current-year share, then records
// its forward commitments. Each step finds what an earlier attempt of the
// same approval did.
func (s *Service) reserveShares(ctx context.Context, m *meta, a GrantApproved) error {
	if err := s.reserve(ctx, m, a); err != nil {
		return err
	}
	_, err := s.commitForwards(ctx, m, a)
	return err
}

// commitForwards records an approval's forward commitments, each year's
// on its own stream, side by side. It returns the latest position they
// were written at, for the command's answer to cover them.
func (s *Service) commitForwards(ctx context.Context, m *meta, a GrantApproved) (eventstore.Position, error) {
	fwd := a.forwardShares()
	switch len(fwd) {
	case 0:
		return eventstore.Position{}, nil
	case 1:
		return s.commitForward(ctx, m, a, fwd[0])
	}
	errs := make([]error, len(fwd))
	pos := make([]eventstore.Position, len(fwd))
	var wg sync.WaitGroup
	for i, sh := range fwd {
		wg.Go(func() { pos[i], errs[i] = s.commitForward(ctx, m, a, sh) })
	}
	wg.Wait()
	last := eventstore.Position{}
	for _, p := range pos {
		if last.Before(p) {
			last = p
		}
	}
	return last, errors.Join(errs...)
}

// coverForward returns the ForwardCommitmentCovered events an
// appropriation of amount lets the budget b take: its uncovered forward
// commitments in the order they were made, up to the first it cannot
// cover, which stays flagged with all after it.
func (b *budget) coverForward(amount Money) []Event {
	avail := b.available().Add(amount)
	var out []Event
	for _, g := range b.order {
		r := b.reservations[g]
		if r == nil || r.uncov.Sign() <= 0 {
			continue
		}
		if avail.Cmp(r.uncov) < 0 {
			break
		}
		avail = avail.Sub(r.uncov)
		out = append(out, &ForwardCommitmentCovered{ProgramID: b.programID, FiscalYear: b.fiscalYear, GrantID: g,
			TalentID: r.talentID, Amount: r.uncov})
	}
	return out
}

// appropriation returns the events of an appropriation to b: the
// appropriation and the forward commitments it covers.
func (b *budget) appropriation(ev *BudgetAppropriated) ([]Event, error) {
	if b.closed != nil {
		return nil, Errorf(EYEARCLOSED, "the %d budget of %s is closed; it takes no more appropriations", ev.FiscalYear, ev.ProgramID)
	}
	if b.programID == "" {
		b2 := *b
		b2.programID, b2.fiscalYear = ev.ProgramID, ev.FiscalYear
		b = &b2
	}
	return append([]Event{ev}, b.coverForward(ev.Amount)...), nil
}

// charge appends PaymentCharged to the budget of the release's year,
// refused unless that budget holds the installment's reservation.
func (s *Service) charge(ctx context.Context, m *meta, rel PaymentReleased) error {
	_, err := s.repo.execute(ctx, streamBudget(rel.ProgramID, rel.FiscalYear), newBudget, m, chargeDecision(m, rel))
	return err
}

// chargeDecision decides the charge of a release to its year's budget.
func chargeDecision(m *meta, rel PaymentReleased) decideFunc {
	return func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		if c := b.charges[rel.PaymentID]; c != nil && !c.reversed {
			if c.charge.CommandID == m.CommandID {
				return nil, nil
			}
			return nil, Errorf(ECONFLICT, "payment %s is already charged to budget %s %d", rel.PaymentID, rel.ProgramID, rel.FiscalYear)
		}
		if err := b.canCharge(rel.GrantID, rel.Installment, rel.Amount); err != nil {
			return nil, err
		}
		return []Event{&PaymentCharged{ProgramID: rel.ProgramID, FiscalYear: rel.FiscalYear, GrantID: rel.GrantID,
			TalentID: rel.TalentID, PaymentID: rel.PaymentID, Installment: rel.Installment, Amount: rel.Amount,
			CommandID: m.CommandID, Release: rel}}, nil
	}
}

// canCharge refuses a charge of installment n of a grant that b does not
// hold reserved.
func (b *budget) canCharge(grantID string, n int, amount Money) error {
	r := b.reservations[grantID]
	switch {
	case b.closed != nil:
		return Errorf(EYEARCLOSED, "the %d budget of %s is closed; nothing more is paid from it", b.fiscalYear, b.programIDOr())
	case !b.exists:
		return Errorf(ENOTRESERVED, "program %s has no budget for %d; the payment is charged to the year of its release", b.programIDOr(), b.fiscalYear)
	case r == nil || !r.live() || !r.installments[n]:
		return Errorf(ENOTRESERVED, "installment %d of grant %s is not reserved in the %d budget, the year of its release", n, grantID, b.fiscalYear)
	case r.uncovInst[n]:
		return Errorf(ENOTRESERVED, "installment %d of grant %s is a forward commitment the %d budget has not covered; appropriate more", n, grantID, b.fiscalYear)
	case r.paidInst[n]:
		return Errorf(ECONFLICT, "installment %d of grant %s is already charged to the %d budget", n, grantID, b.fiscalYear)
	case r.coveredLeft().Cmp(amount) < 0:
		return Errorf(ENOTRESERVED, "the %d budget holds %s of grant %s, %s needed", b.fiscalYear, r.coveredLeft(), grantID, amount)
	}
	return nil
}

func (b *budget) programIDOr() string {
	if b.programID != "" {
		return b.programID
	}
	return "?"
}

// unchargeEvent returns the event taking a charge back, or nil when the
// payment has no live charge in b.
func (b *budget) unchargeEvent(paymentID, reason, commandID string, rev *PaymentReversed) Event {
	c := b.charges[paymentID]
	if c == nil || c.reversed {
		return nil
	}
	ch := c.charge
	return &PaymentChargeReversed{ProgramID: ch.ProgramID, FiscalYear: ch.FiscalYear, GrantID: ch.GrantID,
		PaymentID: ch.PaymentID, Installment: ch.Installment, Amount: ch.Amount, Reason: reason, CommandID: commandID, Reversal: rev}
}

// budgetYears lists the fiscal years a grant's money may lie in: its
// shares' years and every year up to today's.
func budgetYears(a *GrantApproved, today string) []int {
	seen := map[int]bool{}
	var ys []int
	add := func(y int) {
		if !seen[y] {
			seen[y] = true
			ys = append(ys, y)
		}
	}
	for _, sh := range a.shares() {
		add(sh.FiscalYear)
	}
	for y := a.FiscalYear; y <= mustDate(today).Year(); y++ {
		add(y)
	}
	sort.Ints(ys)
	return ys
}
