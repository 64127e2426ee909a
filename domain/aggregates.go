package domain

import (
	"slices"
	"sort"
	"strings"

	"talentledger/eventstore"
)

// aggregate is the state folded from one stream. apply never fails: events
// are facts, validated before they were recorded.
type aggregate interface {
	apply(e Event)
}

// Program kinds.
const (
	KindHousingPurchase  = "housing_purchase"
	KindLivingAllowance  = "living_allowance"
	KindTransport        = "transport"
	KindRent             = "rent"
	KindApartmentRent    = "apartment_rent"
	KindMedicalInsurance = "medical_insurance"
	KindSpecialFundGrant = "special_fund_grant"
)

// ProgramKinds lists the kinds a program may have.
var ProgramKinds = []string{KindHousingPurchase, KindLivingAllowance, KindTransport, KindRent,
	KindApartmentRent, KindMedicalInsurance, KindSpecialFundGrant}

// Tiers lists the local talent tiers.
var Tiers = []string{"A", "B", "C", "D", "E"}

// PermitCategories lists the permit categories a talent may have.
var PermitCategories = []string{"A", "B", "C", "permanent_resident"}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fundOfSource returns the fund ID of a "fund:<id>" funding source.
func fundOfSource(source string) (string, bool) {
	return strings.CutPrefix(source, "fund:")
}

// program is the state of a program stream.
type program struct {
	def     *ProgramDefined
	version int
}

func (p *program) apply(e Event) {
	if d, ok := e.(*ProgramDefined); ok {
		p.def = d
	}
}

// budget is the state of a budget stream: one program's fiscal year.
type budget struct {
	exists       bool
	programID    string
	fiscalYear   int
	source       string
	appropriated Money
	// carriedIn is what earlier years carried over (结转) into this one,
	// reserved for the grants it was carried for.
	carriedIn Money
	// carriedOut is what this year carried over into the next at its
	// close.
	carriedOut Money
	// committed is reserved plus paid: what is no longer available.
	committed Money
	// uncovered is what forward commitments promise beyond what the
	// budget has covered.
	uncovered Money
	// paid is what payments charged to the year.
	paid         Money
	reservations map[string]*reservation
	// order lists the grants with a forward commitment in the year, in
	// the order they were committed: the order they are covered in.
	order   []string
	charges map[string]*chargeState
	// closeRequest is a year-end close awaiting confirmation; closed is
	// the close, once confirmed.
	closeRequest *closeRequest
	closed       *YearEndClosed
	// adjusted is what approved adjustments added (increases, transfers
	// in) less what they took (decreases, transfers out).
	adjusted    Money
	adjustments map[string]*adjustment
}

// closeRequest is a requested year-end close and who requested it.
type closeRequest struct {
	YearEndCloseRequested
	by, reason, documentRef string
	commandID               string
}

// reservation is one grant's money in a budget: its share reserved at
// approval, a forward commitment (uncovered until the year covers it), or
// funds carried over from the year before.
type reservation struct {
	amount   Money // reserved or committed, covered or not
	released Money // returned
	charged  Money // paid out of it
	// uncov is the part of amount − released not yet covered, and
	// uncovInst the installments it is for.
	uncov        Money
	installments map[int]bool
	paidInst     map[int]bool
	uncovInst    map[int]bool
	talentID     string
	commandID    string
	approval     GrantApproved
}

// live reports whether anything of the reservation is left unreleased.
func (r *reservation) live() bool { return r.released.Cmp(r.amount) < 0 }

// left is what the reservation still holds for payments, covered or not.
func (r *reservation) left() Money { return r.amount.Sub(r.released).Sub(r.charged) }

// coveredLeft is what the reservation holds for payments in money.
func (r *reservation) coveredLeft() Money { return r.left().Sub(r.uncov) }

// unpaid lists the installments of the reservation not paid, in order.
func (r *reservation) unpaid() []int {
	var ns []int
	for n := range r.installments {
		if !r.paidInst[n] {
			ns = append(ns, n)
		}
	}
	sort.Ints(ns)
	return ns
}

type chargeState struct {
	charge   *PaymentCharged
	reversed bool
	// reversal is the PaymentReversed a charge's reversal carried.
	reversal       *PaymentReversed
	by, reversedBy chargeActor
}

// chargeActor is who recorded a charge or its reversal, and when.
type chargeActor struct {
	actor       Actor
	correlation string
	date        string
	commandID   string
}

// applyWith folds an event, remembering who charged each payment, who
// took the charge back and who requested a close.
func (b *budget) applyWith(e Event, md *eventstore.Metadata) {
	b.apply(e)
	by := chargeActor{actor: Actor{Principal: md.Principal, Role: md.Role}, correlation: md.CorrelationID, date: businessDate(md)}
	switch e := e.(type) {
	case *PaymentCharged:
		by.commandID = e.CommandID
		b.charges[e.PaymentID].by = by
	case *PaymentChargeReversed:
		if c := b.charges[e.PaymentID]; c != nil {
			by.commandID = e.CommandID
			c.reversedBy = by
		}
	case *YearEndCloseRequested:
		b.closeRequest.by, b.closeRequest.reason, b.closeRequest.documentRef = md.Principal, md.Reason, md.DocumentRef
	case *BudgetAdjustmentRequested:
		b.adjustments[e.AdjustmentID].by = md.Principal
	}
}

func (b *budget) available() Money {
	return b.appropriated.Add(b.carriedIn).Add(b.adjusted).Sub(b.committed).Sub(b.carriedOut)
}

// hold adds money for a grant's installments to its reservation, making
// one when it has none live.
func (b *budget) hold(grantID, talentID, commandID string, amount Money, installments []int, covered bool) *reservation {
	if b.reservations == nil {
		b.reservations = map[string]*reservation{}
	}
	r := b.reservations[grantID]
	if r == nil || !r.live() {
		r = &reservation{installments: map[int]bool{}, paidInst: map[int]bool{}, uncovInst: map[int]bool{},
			talentID: talentID, commandID: commandID}
		b.reservations[grantID] = r
	}
	r.amount = r.amount.Add(amount)
	for _, n := range installments {
		r.installments[n] = true
		if !covered {
			r.uncovInst[n] = true
		}
	}
	if covered {
		b.committed = b.committed.Add(amount)
	} else {
		r.uncov = r.uncov.Add(amount)
		b.uncovered = b.uncovered.Add(amount)
		if !slices.Contains(b.order, grantID) {
			b.order = append(b.order, grantID)
		}
	}
	return r
}

// release gives back amount of a grant's reservation, from its uncovered
// part or from what it holds in money.
func (b *budget) release(grantID string, amount Money, uncovered bool) {
	r := b.reservations[grantID]
	if r == nil {
		return
	}
	r.released = r.released.Add(amount)
	if uncovered {
		r.uncov = r.uncov.Sub(amount)
		b.uncovered = b.uncovered.Sub(amount)
		if r.uncov.IsZero() {
			clear(r.uncovInst)
		}
	} else {
		b.committed = b.committed.Sub(amount)
	}
}

func (b *budget) apply(e Event) {
	switch e := e.(type) {
	case *BudgetAppropriated:
		b.exists = true
		b.programID, b.fiscalYear, b.source = e.ProgramID, e.FiscalYear, e.FundingSource
		b.appropriated = b.appropriated.Add(e.Amount)
	case *BudgetReserved:
		r := b.hold(e.GrantID, e.TalentID, e.CommandID, e.Amount, e.Approval.currentShare().Installments, true)
		r.approval = e.Approval
	case *ForwardCommitted:
		b.programID, b.fiscalYear = e.ProgramID, e.FiscalYear
		b.hold(e.GrantID, e.TalentID, e.CommandID, e.Amount, e.Installments, e.Covered)
	case *ForwardCommitmentCovered:
		b.uncovered = b.uncovered.Sub(e.Amount)
		b.committed = b.committed.Add(e.Amount)
		if r := b.reservations[e.GrantID]; r != nil {
			r.uncov = r.uncov.Sub(e.Amount)
			clear(r.uncovInst)
		}
	case *BudgetCarriedOver:
		b.exists = true
		b.programID, b.fiscalYear = e.ProgramID, e.FiscalYear
		b.carriedIn = b.carriedIn.Add(e.Amount)
		b.hold(e.GrantID, e.TalentID, e.CommandID, e.Amount, e.Installments, true)
	case *BudgetReservationReleased:
		b.release(e.GrantID, e.Amount, e.Uncovered)
	case *PaymentCharged:
		b.paid = b.paid.Add(e.Amount)
		if r := b.reservations[e.GrantID]; r != nil {
			r.charged = r.charged.Add(e.Amount)
			r.paidInst[e.Installment] = true
		}
		if b.charges == nil {
			b.charges = map[string]*chargeState{}
		}
		b.charges[e.PaymentID] = &chargeState{charge: e}
	case *PaymentChargeReversed:
		b.paid = b.paid.Sub(e.Amount)
		if r := b.reservations[e.GrantID]; r != nil {
			r.charged = r.charged.Sub(e.Amount)
			delete(r.paidInst, e.Installment)
		}
		if c := b.charges[e.PaymentID]; c != nil {
			c.reversed = true
			c.reversal = e.Reversal
		}
	case *BudgetAdjustmentRequested:
		if b.adjustments == nil {
			b.adjustments = map[string]*adjustment{}
		}
		b.adjustments[e.AdjustmentID] = &adjustment{req: *e}
	case *BudgetAdjusted:
		if a := b.adjustments[e.AdjustmentID]; a != nil {
			a.done = e
		}
		if e.Kind == AdjustIncrease {
			b.adjusted = b.adjusted.Add(e.Amount)
		} else {
			b.adjusted = b.adjusted.Sub(e.Amount)
		}
	case *BudgetTransferReceived:
		b.exists = true
		b.programID, b.fiscalYear = e.ProgramID, e.FiscalYear
		b.adjusted = b.adjusted.Add(e.Amount)
	case *YearEndCloseRequested:
		b.closeRequest = &closeRequest{YearEndCloseRequested: *e, commandID: e.CommandID}
	case *YearEndClosed:
		b.closed = e
		b.closeRequest = nil
		for _, it := range e.Carried {
			// The money leaves the year with its reservation: what the
			// year has available does not change.
			b.release(it.GrantID, it.Amount, false)
			b.carriedOut = b.carriedOut.Add(it.Amount)
		}
		for _, it := range e.Lapsed {
			if it.Amount.Sign() > 0 {
				b.release(it.GrantID, it.Amount, false)
			}
			if it.Uncovered.Sign() > 0 {
				b.release(it.GrantID, it.Uncovered, true)
			}
		}
	}
}

// talent is the state of a talent stream.
type talent struct {
	reg       *TalentRegistered
	departure string
	// ents holds the talent's entitlement reservations by grant, entOrder
	// their grants in the order reserved. Only read under the stream's
	// lock.
	ents     map[string]*entitlementUse
	entOrder []string
	// keyed: the talent's personal fields are sealed under a data key;
	// keys are its keys' IDs, oldest first. Never changed in place.
	keyed   bool
	keys    []string
	erasure *erasure
}

func (t *talent) apply(e Event) { t.applyWith(e, &eventstore.Metadata{}) }

func (t *talent) applyWith(e Event, md *eventstore.Metadata) {
	switch e := e.(type) {
	case *TalentRegistered:
		t.reg = e
	case *TalentDeparted:
		t.departure = e.DepartureDate
	case *EntitlementReserved, *EntitlementReleased:
		t.applyEntitlement(e, md)
	case *TalentKeyCreated, *TalentKeyRotated, *TalentKeyDestroyed, *TalentErasureRequested, *TalentErasureApproved:
		t.applyErasure(e, md)
	}
}

// Grant states.
const (
	GrantStateApplied      = "applied"
	GrantStateReviewed     = "reviewed"
	GrantStateInNotice     = "in_notice"
	GrantStateNoticeClosed = "notice_closed"
	GrantStateApproved     = "approved"
	GrantStateCompleted    = "completed"
	GrantStateTerminated   = "terminated"
	GrantStateRejected     = "rejected"
)

// GrantStates lists every grant state.
var GrantStates = []string{GrantStateApplied, GrantStateReviewed, GrantStateInNotice, GrantStateNoticeClosed,
	GrantStateApproved, GrantStateCompleted, GrantStateTerminated, GrantStateRejected}

// Payment states.
const (
	PaymentStatePrepared = "prepared"
	PaymentStateApproved = "approved"
	PaymentStateReleased = "released"
	PaymentStateFailed   = "failed"
	PaymentStateReversed = "reversed"
)

// grant is the state of a grant stream, payments included: keeping a
// grant's payments in its own stream is what lets one optimistic check stop
// two payments of the same installment.
type grant struct {
	applied    *GrantApplied
	state      string
	appliedBy  string
	reviewedBy string
	noticeOpen string // date the notice opened
	objections map[string]bool
	upheld     bool
	approval   *GrantApproved
	payments   map[string]*payment
	// installmentPaid[n] holds the released payment's ID for installment n.
	installmentPaid map[int]string
	paid            Money
	termination     *GrantTerminated
	clawbackDue     Money
	recovered       Money
	waived          Money
	// lastMoney is the business date of the grant's last payment,
	// reversal, recovery or waiver.
	lastMoney string
}

type payment struct {
	id          string
	installment int
	amount      Money
	state       string
	preparedBy  string
	approvedBy  string
	releasedBy  string
	// chargedTo is the fiscal year the released payment was charged to.
	chargedTo int
}

// applyWith folds an event, remembering who recorded it where
// maker-checker rules need to know.
func (g *grant) applyWith(e Event, md *eventstore.Metadata) {
	principal := md.Principal
	g.apply(e)
	switch e := e.(type) {
	case *GrantApplied:
		g.appliedBy = principal
	case *GrantReviewed:
		g.reviewedBy = principal
	case *PaymentPrepared:
		g.payments[e.PaymentID].preparedBy = principal
	case *PaymentApproved:
		g.payments[e.PaymentID].approvedBy = principal
	case *PaymentReleased:
		g.payments[e.PaymentID].releasedBy = principal
	}
	switch e.(type) {
	case *PaymentReleased, *PaymentReversed, *RecoveryReceived, *RecoveryWaived:
		g.lastMoney = max(g.lastMoney, businessDate(md))
	}
}

func (g *grant) apply(e Event) {
	switch e := e.(type) {
	case *GrantApplied:
		g.applied = e
		g.objections = map[string]bool{}
		g.payments = map[string]*payment{}
		g.installmentPaid = map[int]string{}
	case *PublicNoticeOpened:
		g.noticeOpen = e.OpenedOn
	case *ObjectionRaised:
		g.objections[e.ObjectionID] = true
	case *ObjectionResolved:
		delete(g.objections, e.ObjectionID)
		if e.Upheld {
			g.upheld = true
		}
	case *GrantApproved:
		g.approval = e
	case *PaymentPrepared:
		g.payments[e.PaymentID] = &payment{id: e.PaymentID, installment: e.Installment, amount: e.Amount}
		g.paymentStep(g.payments[e.PaymentID], e)
	case *PaymentApproved:
		g.paymentStep(g.payments[e.PaymentID], e)
	case *PaymentReleased:
		g.paymentStep(g.payments[e.PaymentID], e)
		g.payments[e.PaymentID].chargedTo = e.FiscalYear
		g.installmentPaid[e.Installment] = e.PaymentID
		g.paid = g.paid.Add(e.Amount)
	case *PaymentFailed:
		g.paymentStep(g.payments[e.PaymentID], e)
	case *PaymentReversed:
		g.paymentStep(g.payments[e.PaymentID], e)
		delete(g.installmentPaid, e.Installment)
		g.paid = g.paid.Sub(e.Amount)
	case *GrantTerminated:
		g.termination = e
		for _, p := range g.payments {
			g.paymentStep(p, e)
		}
	case *ClawbackAssessed:
		g.clawbackDue = g.clawbackDue.Add(e.Amount)
	case *RecoveryReceived:
		g.recovered = g.recovered.Add(e.Amount)
	case *RecoveryWaived:
		g.waived = g.waived.Add(e.Amount)
	}
	g.state = GrantStateAfter(g.state, e, g.approval != nil && len(g.installmentPaid) == len(g.approval.Installments))
}

// paymentStep moves a payment to the state e leaves it in.
func (g *grant) paymentStep(p *payment, e Event) { p.state = PaymentStateAfter(p.state, e) }

// outstanding is the clawback still owed.
func (g *grant) outstanding() Money { return g.clawbackDue.Sub(g.recovered).Sub(g.waived) }

// activePayment returns the payment of installment n that is prepared or
// approved, if any.
func (g *grant) activePayment(n int) *payment {
	for _, p := range g.payments {
		if p.installment == n && (p.state == PaymentStatePrepared || p.state == PaymentStateApproved) {
			return p
		}
	}
	return nil
}

// attempts counts the payments ever prepared for installment n.
func (g *grant) attempts(n int) int {
	c := 0
	for _, p := range g.payments {
		if p.installment == n {
			c++
		}
	}
	return c
}
