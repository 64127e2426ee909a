package projections

import (
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/eventstore"
)

// ProgramView is a program with its budgets.
type ProgramView struct {
	ID               string                  `json:"id"`
	Name             string                  `json:"name"`
	Kind             string                  `json:"kind"`
	Caps             map[string]domain.Money `json:"caps"`
	Schedule         domain.Schedule         `json:"schedule"`
	ServiceMonths    int                     `json:"service_months"`
	NoticeDays       int                     `json:"notice_days"`
	PermitCategories []string                `json:"permit_categories,omitempty"`
	DeductKinds      []string                `json:"deduct_kinds,omitempty"`
	FundingSource    string                  `json:"funding_source"`
	Budgets          []BudgetView            `json:"budgets"`
}

// BudgetView is a program's budget for one fiscal year: its execution
// (预算执行情况). Available = Appropriated − Reserved − Paid. Paid counts
// only the payments released in the year. Uncovered is what forward
// commitments of earlier approvals promise the year beyond what it has
// covered; Flagged is set when the year has an appropriation and still
// leaves some uncovered.
type BudgetView struct {
	ProgramID    string       `json:"program_id"`
	FiscalYear   int          `json:"fiscal_year"`
	Appropriated domain.Money `json:"appropriated"`
	Reserved     domain.Money `json:"reserved"`
	Paid         domain.Money `json:"paid"`
	Available    domain.Money `json:"available"`
	// ForwardCommitted is what earlier years' approvals committed to the
	// year, covered or not; Uncovered the part not covered yet.
	ForwardCommitted domain.Money `json:"forward_committed"`
	Uncovered        domain.Money `json:"uncovered"`
	Flagged          bool         `json:"flagged"`
	// CarriedOver is what the year before carried over (结转) into this
	// one at its close; CarriedOut what this year carried into the next,
	// and Lapsed what went back to it unspent (结余) at its close.
	CarriedOver domain.Money `json:"carried_over"`
	CarriedOut  domain.Money `json:"carried_out"`
	Lapsed      domain.Money `json:"lapsed"`
	// Adjustments is what approved budget adjustments (预算调整) added:
	// increases and transfers in, less decreases and transfers out.
	Adjustments domain.Money `json:"adjustments"`
	// Closed is set once the year is closed at year end (年终结账).
	Closed bool `json:"closed"`
	// ExecutionRate is Paid ÷ (Appropriated + CarriedOver + Adjustments),
	// in percent with two decimals.
	ExecutionRate string `json:"execution_rate"`
	Grants        int    `json:"grants"`
}

// CommitmentView is one grant's forward commitment to a fiscal year: the
// installments falling due in it, committed when the grant was approved
// in an earlier year (or when its year closed with them lapsed). Covered
// is what the year's budget reserved for it; Uncovered waits for an
// appropriation, and is flagged once the year has one.
type CommitmentView struct {
	GrantID      string       `json:"grant_id"`
	TalentID     string       `json:"talent_id"`
	Amount       domain.Money `json:"amount"`
	Covered      domain.Money `json:"covered"`
	Uncovered    domain.Money `json:"uncovered"`
	Released     domain.Money `json:"released"`
	Installments []int        `json:"installments"`
	ApprovedIn   int          `json:"approved_in"`
	LapsedFrom   int          `json:"lapsed_from,omitempty"`
	Flagged      bool         `json:"flagged"`
}

// TalentView is a talent with the totals of their grants.
type TalentView struct {
	ID               string       `json:"id"`
	Name             string       `json:"name"`
	PermitCategory   string       `json:"permit_category,omitempty"`
	Tier             string       `json:"tier"`
	Employer         string       `json:"employer"`
	OverseasEngineer bool         `json:"overseas_engineer"`
	RegisteredOn     string       `json:"registered_on"`
	DepartureDate    string       `json:"departure_date,omitempty"`
	Grants           []string     `json:"grants"`
	TotalAwarded     domain.Money `json:"total_awarded"`
	TotalPaid        domain.Money `json:"total_paid"`
	ClawbackDue      domain.Money `json:"clawback_due"`
	Recovered        domain.Money `json:"recovered"`
	Waived           domain.Money `json:"waived"`
}

// GrantView is a grant's state with its installments and payments.
type GrantView struct {
	ID              string            `json:"id"`
	TalentID        string            `json:"talent_id"`
	ProgramID       string            `json:"program_id"`
	State           string            `json:"state"`
	AmountRequested domain.Money      `json:"amount_requested"`
	AppliedOn       string            `json:"applied_on"`
	Review          *ReviewView       `json:"review,omitempty"`
	Notice          *NoticeView       `json:"notice,omitempty"`
	Award           domain.Money      `json:"award"`
	Deduction       domain.Money      `json:"deduction"`
	Amount          domain.Money      `json:"amount"`
	FiscalYear      int               `json:"fiscal_year,omitempty"`
	ApprovedOn      string            `json:"approved_on,omitempty"`
	ServiceStart    string            `json:"service_start,omitempty"`
	ServiceMonths   int               `json:"service_months"`
	Installments    []InstallmentView `json:"installments"`
	Payments        []PaymentView     `json:"payments"`
	// Paid is what has been released, net of reversals; Due is what is
	// still scheduled to be paid.
	Paid        domain.Money     `json:"paid"`
	Due         domain.Money     `json:"due"`
	Termination *TerminationView `json:"termination,omitempty"`
	Clawback    ClawbackView     `json:"clawback"`
	Rejection   string           `json:"rejection,omitempty"`
	// Position is where the grant's last event stands in the global log.
	Position eventstore.Position `json:"position"`

	counts *stateCounts // its program's grant counts
}

// ReviewView is the talent office's review.
type ReviewView struct {
	Decision   string `json:"decision"`
	Note       string `json:"note,omitempty"`
	ReviewedBy string `json:"reviewed_by"`
}

// NoticeView is the public notice.
type NoticeView struct {
	OpenedOn   string          `json:"opened_on"`
	ClosedOn   string          `json:"closed_on,omitempty"`
	Objections []ObjectionView `json:"objections"`
}

// ObjectionView is one objection.
type ObjectionView struct {
	ID         string `json:"id"`
	Summary    string `json:"summary"`
	Resolved   bool   `json:"resolved"`
	Upheld     bool   `json:"upheld"`
	Resolution string `json:"resolution,omitempty"`
}

// Installment states.
const (
	InstallmentScheduled = "scheduled"
	InstallmentPrepared  = "prepared"
	InstallmentApproved  = "approved"
	InstallmentPaid      = "paid"
	InstallmentCancelled = "cancelled"
)

// InstallmentView is one scheduled payout.
type InstallmentView struct {
	N         int          `json:"n"`
	Amount    domain.Money `json:"amount"`
	DueDate   string       `json:"due_date"`
	State     string       `json:"state"`
	PaymentID string       `json:"payment_id,omitempty"`
	// FiscalYear is the year the installment is charged to: the year it
	// falls due, or, once paid, the year of its release.
	FiscalYear int `json:"fiscal_year"`
}

// PaymentView is one payment.
type PaymentView struct {
	ID            string       `json:"id"`
	GrantID       string       `json:"grant_id"`
	Installment   int          `json:"installment"`
	Amount        domain.Money `json:"amount"`
	State         string       `json:"state"`
	PreparedBy    string       `json:"prepared_by"`
	ApprovedBy    string       `json:"approved_by,omitempty"`
	ReleasedBy    string       `json:"released_by,omitempty"`
	BankReference string       `json:"bank_reference,omitempty"`
	ReleasedOn    string       `json:"released_on,omitempty"`
	// FiscalYear is the year a released payment was charged to.
	FiscalYear int    `json:"fiscal_year,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// TerminationView is how a grant ended early.
type TerminationView struct {
	DepartureDate  string       `json:"departure_date"`
	MonthsServed   int          `json:"months_served"`
	MonthsRequired int          `json:"months_required"`
	Cancelled      []int        `json:"cancelled_installments"`
	Released       domain.Money `json:"released"`
}

// ClawbackView is what a talent owes back on a grant.
type ClawbackView struct {
	Assessed    domain.Money `json:"assessed"`
	Recovered   domain.Money `json:"recovered"`
	Waived      domain.Money `json:"waived"`
	Outstanding domain.Money `json:"outstanding"`
	Formula     string       `json:"formula,omitempty"`
}

// apply folds one decoded event into the models. p.mu is held.
func (p *Projector) apply(ev *eventstore.Event, payload domain.Event) {
	p.ledger.Post(domain.Postings(payload))
	switch e := payload.(type) {
	case *domain.ProgramDefined:
		p.programs[e.ProgramID] = &ProgramView{ID: e.ProgramID, Name: e.Name, Kind: e.Kind, Caps: e.Caps,
			Schedule: e.Schedule, ServiceMonths: e.ServiceMonths, NoticeDays: e.NoticeDays,
			PermitCategories: e.PermitCategories, DeductKinds: e.DeductKinds, FundingSource: e.FundingSource}
		p.programOrder = append(p.programOrder, e.ProgramID)
	case *domain.BudgetAppropriated:
		b := p.budget(e.ProgramID, e.FiscalYear)
		b.Appropriated = b.Appropriated.Add(e.Amount)
		b.settle()
	case *domain.BudgetReserved:
		b := p.budget(e.ProgramID, e.FiscalYear)
		b.Reserved = b.Reserved.Add(e.Amount)
		b.Grants++
		b.settle()
		if g := p.grants[e.GrantID]; g == nil || g.ApprovedOn == "" {
			p.pendingApproval[e.GrantID] = p.eventTime(ev)
		}
	case *domain.BudgetReservationReleased:
		b := p.budget(e.ProgramID, e.FiscalYear)
		if e.Uncovered {
			b.Uncovered = b.Uncovered.Sub(e.Amount)
		} else {
			b.Reserved = b.Reserved.Sub(e.Amount)
		}
		b.ForwardCommitted = b.ForwardCommitted.Sub(p.forwardReleased(e))
		b.settle()
		if c := p.commitment(e.ProgramID, e.FiscalYear, e.GrantID); c != nil {
			c.Released = c.Released.Add(e.Amount)
			if e.Uncovered {
				c.Uncovered = c.Uncovered.Sub(e.Amount)
			}
		}
	case *domain.YearEndClosed:
		b := p.budget(e.ProgramID, e.FiscalYear)
		b.Closed = true
		for _, it := range e.Carried {
			b.Reserved = b.Reserved.Sub(it.Amount)
			b.CarriedOut = b.CarriedOut.Add(it.Amount)
		}
		for _, it := range e.Lapsed {
			if c := p.commitment(e.ProgramID, e.FiscalYear, it.GrantID); c != nil && it.Uncovered.Sign() > 0 {
				c.Uncovered = c.Uncovered.Sub(it.Uncovered)
				c.Released = c.Released.Add(it.Uncovered)
			}
			b.Reserved = b.Reserved.Sub(it.Amount)
			b.Uncovered = b.Uncovered.Sub(it.Uncovered)
			b.Lapsed = b.Lapsed.Add(it.Amount)
		}
		b.settle()
		if len(e.Carried)+len(e.Lapsed) > 0 {
			p.pendingClose[budgetKey{e.ProgramID, e.FiscalYear}] = p.eventTime(ev)
		}
	case *domain.BudgetAdjusted:
		b := p.budget(e.ProgramID, e.FiscalYear)
		if e.Kind == domain.AdjustIncrease {
			b.Adjustments = b.Adjustments.Add(e.Amount)
		} else {
			b.Adjustments = b.Adjustments.Sub(e.Amount)
		}
		b.settle()
		if e.Kind == domain.AdjustTransfer {
			p.pendingTransfer[e.AdjustmentID] = pendingTransfer{domain.TransferKey{ProgramID: e.ProgramID, FiscalYear: e.FiscalYear,
				AdjustmentID: e.AdjustmentID}, p.eventTime(ev)}
		}
	case *domain.BudgetTransferReceived:
		b := p.budget(e.ProgramID, e.FiscalYear)
		b.Adjustments = b.Adjustments.Add(e.Amount)
		b.settle()
		delete(p.pendingTransfer, e.AdjustmentID)
	case *domain.BudgetCarriedOver:
		b := p.budget(e.ProgramID, e.FiscalYear)
		b.CarriedOver = b.CarriedOver.Add(e.Amount)
		b.Reserved = b.Reserved.Add(e.Amount)
		b.settle()
		delete(p.pendingClose, budgetKey{e.ProgramID, e.FromYear})
		p.movedTo(e.GrantID, e.FiscalYear, e.Installments)
	case *domain.ForwardCommitted:
		if e.LapsedFrom != 0 {
			delete(p.pendingClose, budgetKey{e.ProgramID, e.LapsedFrom})
			p.movedTo(e.GrantID, e.FiscalYear, e.Installments)
		} else {
			p.forwardSeen(e.GrantID)
		}
		b := p.budget(e.ProgramID, e.FiscalYear)
		if e.Covered {
			b.Reserved = b.Reserved.Add(e.Amount)
		} else {
			b.Uncovered = b.Uncovered.Add(e.Amount)
		}
		b.ForwardCommitted = b.ForwardCommitted.Add(e.Amount)
		b.Grants++
		b.settle()
		p.forward[forwardKey{e.ProgramID, e.FiscalYear, e.GrantID}] = true
		c := &CommitmentView{GrantID: e.GrantID, TalentID: e.TalentID, Amount: e.Amount, Installments: e.Installments,
			ApprovedIn: e.ApprovedIn, LapsedFrom: e.LapsedFrom}
		if e.Covered {
			c.Covered = e.Amount
		} else {
			c.Uncovered = e.Amount
		}
		k := budgetKey{e.ProgramID, e.FiscalYear}
		p.commitments[k] = append(p.commitments[k], c)
	case *domain.ForwardCommitmentCovered:
		if c := p.commitment(e.ProgramID, e.FiscalYear, e.GrantID); c != nil {
			c.Covered = c.Covered.Add(e.Amount)
			c.Uncovered = c.Uncovered.Sub(e.Amount)
		}
		b := p.budget(e.ProgramID, e.FiscalYear)
		b.Uncovered = b.Uncovered.Sub(e.Amount)
		b.Reserved = b.Reserved.Add(e.Amount)
		b.settle()
	case *domain.PaymentCharged:
		p.pendingCharge[e.PaymentID] = pendingFlow{e.GrantID, p.eventTime(ev)}
	case *domain.PaymentChargeReversed:
		if e.Reversal != nil {
			p.pendingCharge[e.PaymentID] = pendingFlow{e.GrantID, p.eventTime(ev)}
		} else {
			delete(p.pendingCharge, e.PaymentID)
		}
	case *domain.EntitlementReserved:
		// The first step of an approval: pending until GrantApproved, or
		// until the approval is undone and the entitlement given back.
		if g := p.grants[e.GrantID]; g == nil || g.ApprovedOn == "" {
			p.pendingApproval[e.GrantID] = p.eventTime(ev)
		}
	case *domain.EntitlementReleased:
		// The last step of an undone approval or of a termination.
		delete(p.pendingApproval, e.GrantID)
		delete(p.pendingRelease, e.GrantID)
	case *domain.TalentRegistered:
		p.talents[e.TalentID] = &TalentView{ID: e.TalentID, Name: e.Name, PermitCategory: e.PermitCategory, Tier: e.Tier,
			Employer: e.Employer, OverseasEngineer: e.OverseasEngineer, RegisteredOn: e.RegisteredOn, Grants: []string{}}
		p.talentOrder = append(p.talentOrder, e.TalentID)
	case *domain.TalentDeparted:
		if t := p.talents[e.TalentID]; t != nil {
			t.DepartureDate = e.DepartureDate
		}
	case *domain.PaymentReleased:
		delete(p.pendingCharge, e.PaymentID)
		b := p.budget(e.ProgramID, e.FiscalYear)
		b.Reserved = b.Reserved.Sub(e.Amount)
		b.Paid = b.Paid.Add(e.Amount)
		b.settle()
		if t := p.talents[e.TalentID]; t != nil {
			t.TotalPaid = t.TotalPaid.Add(e.Amount)
		}
	case *domain.PaymentReversed:
		delete(p.pendingCharge, e.PaymentID)
		b := p.budget(e.ProgramID, e.FiscalYear)
		b.Reserved = b.Reserved.Add(e.Amount)
		b.Paid = b.Paid.Sub(e.Amount)
		b.settle()
		if t := p.talents[e.TalentID]; t != nil {
			t.TotalPaid = t.TotalPaid.Sub(e.Amount)
		}
	case *domain.GrantApplied:
		p.grants[e.GrantID] = &GrantView{ID: e.GrantID, TalentID: e.TalentID, ProgramID: e.ProgramID,
			State: domain.GrantStateApplied, AmountRequested: e.AmountRequested, AppliedOn: e.AppliedOn,
			Installments: []InstallmentView{}, Payments: []PaymentView{}, Position: ev.Position}
		p.grantOrder = append(p.grantOrder, e.GrantID)
		p.programGrants[e.ProgramID] = append(p.programGrants[e.ProgramID], e.GrantID)
		c := p.programCounts[e.ProgramID]
		if c == nil {
			c = &stateCounts{}
			p.programCounts[e.ProgramID] = c
		}
		p.grants[e.GrantID].counts = c
		p.countGrant(c, domain.GrantStateApplied, 1)
		if t := p.talents[e.TalentID]; t != nil {
			t.Grants = append(t.Grants, e.GrantID)
		}
	case *domain.GrantApproved:
		delete(p.pendingApproval, e.GrantID)
		if n := len(e.Years); n > 1 {
			f := p.pendingForward[e.GrantID]
			f.want, f.at = n-1, p.eventTime(ev)
			if f.seen < f.want {
				p.pendingForward[e.GrantID] = f
			} else {
				delete(p.pendingForward, e.GrantID)
			}
		}
		if t := p.talents[e.TalentID]; t != nil {
			t.TotalAwarded = t.TotalAwarded.Add(e.Amount)
		}
	case *domain.GrantTerminated:
		if e.Released.Sign() > 0 || len(e.Releases) > 0 {
			p.pendingRelease[e.GrantID] = p.eventTime(ev)
		}
	case *domain.ClawbackAssessed:
		if t := p.talents[e.TalentID]; t != nil {
			t.ClawbackDue = t.ClawbackDue.Add(e.Amount)
		}
	case *domain.RecoveryReceived:
		if t := p.talents[e.TalentID]; t != nil {
			t.ClawbackDue = t.ClawbackDue.Sub(e.Amount)
			t.Recovered = t.Recovered.Add(e.Amount)
		}
	case *domain.RecoveryWaived:
		if t := p.talents[e.TalentID]; t != nil {
			t.ClawbackDue = t.ClawbackDue.Sub(e.Amount)
			t.Waived = t.Waived.Add(e.Amount)
		}
	}
	if gid := grantOf(payload); gid != "" {
		if g := p.grants[gid]; g != nil {
			was := g.State
			g.apply(ev, payload)
			if g.State != was {
				p.countGrant(g.counts, was, -1)
				p.countGrant(g.counts, g.State, 1)
			}
		}
	}
	for _, f := range p.extra {
		f(ev, payload)
	}
}

// stateCounts counts grants by state: one count per domain.GrantStates,
// then one for grants in any state. Counting is on the path of every
// grant event, so it indexes an array rather than hashing strings.
type stateCounts [9]int

const anyState = 8

// stateIndex returns a state's index in stateCounts, anyState for "", or
// -1 for a state it does not know.
func stateIndex(state string) int {
	switch state {
	case "":
		return anyState
	case domain.GrantStateApplied:
		return 0
	case domain.GrantStateReviewed:
		return 1
	case domain.GrantStateInNotice:
		return 2
	case domain.GrantStateNoticeClosed:
		return 3
	case domain.GrantStateApproved:
		return 4
	case domain.GrantStateCompleted:
		return 5
	case domain.GrantStateTerminated:
		return 6
	case domain.GrantStateRejected:
		return 7
	}
	return -1
}

// countGrant adds n to the counts a grant in state is part of: its
// program's, c, and the whole ledger's.
func (p *Projector) countGrant(c *stateCounts, state string, n int) {
	if i := stateIndex(state); i >= 0 && i != anyState {
		c[i] += n
		p.grantCounts[i] += n
	}
	c[anyState] += n
	p.grantCounts[anyState] += n
}

func (p *Projector) eventTime(ev *eventstore.Event) time.Time {
	if ev.Metadata.RecordedAt.IsZero() {
		return time.Now()
	}
	return ev.Metadata.RecordedAt
}

func (p *Projector) budget(program string, fy int) *BudgetView {
	k := budgetKey{program, fy}
	b := p.budgets[k]
	if b == nil {
		b = &BudgetView{ProgramID: program, FiscalYear: fy}
		p.budgets[k] = b
	}
	return b
}

func (b *BudgetView) settle() {
	b.Available = b.Appropriated.Add(b.CarriedOver).Add(b.Adjustments).Sub(b.Reserved).Sub(b.Paid).Sub(b.CarriedOut)
	b.Flagged = b.Appropriated.Sign() > 0 && b.Uncovered.Sign() > 0
}

// read returns a copy of the view to answer with, its execution rate
// worked out.
func (b *BudgetView) read() BudgetView {
	v := *b
	v.ExecutionRate = "0.00"
	if funds := b.Appropriated.Add(b.CarriedOver).Add(b.Adjustments); funds.Sign() > 0 {
		v.ExecutionRate = b.Paid.Decimal().Mul(hundred).Div(funds.Decimal()).StringFixed(2)
	}
	return v
}

var hundred = decimal.NewFromInt(100)

// commitment returns a grant's latest forward commitment to a year.
func (p *Projector) commitment(program string, fy int, grant string) *CommitmentView {
	cs := p.commitments[budgetKey{program, fy}]
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i].GrantID == grant {
			return cs[i]
		}
	}
	return nil
}

// Commitments lists the forward commitments to a program's fiscal year,
// in the order they were made: the order they are covered in, and the
// basis of that year's budget request.
func (p *Projector) Commitments(program string, fy int) []CommitmentView {
	p.mu.RLock()
	defer p.mu.RUnlock()
	b := p.budgets[budgetKey{program, fy}]
	out := []CommitmentView{}
	for _, c := range p.commitments[budgetKey{program, fy}] {
		v := *c
		v.Flagged = b != nil && b.Appropriated.Add(b.CarriedOver).Add(b.Adjustments).Sign() > 0 && v.Uncovered.Sign() > 0
		out = append(out, v)
	}
	return out
}

// forwardKey names one grant's forward commitment to one year.
type forwardKey struct {
	program string
	fy      int
	grant   string
}

// forwardReleased is what a release gives back of a forward commitment.
func (p *Projector) forwardReleased(e *domain.BudgetReservationReleased) domain.Money {
	if p.forward[forwardKey{e.ProgramID, e.FiscalYear, e.GrantID}] {
		return e.Amount
	}
	return domain.Zero
}

// pendingTransfer is an approved transfer not yet received.
type pendingTransfer struct {
	key domain.TransferKey
	at  time.Time
}

// movedTo records on a grant's page that its unpaid installments are now
// charged to fy, carried over or lapsed there at a year-end close.
func (p *Projector) movedTo(grantID string, fy int, installments []int) {
	g := p.grants[grantID]
	if g == nil {
		return
	}
	for _, n := range installments {
		if n >= 1 && n <= len(g.Installments) && g.Installments[n-1].State != InstallmentPaid {
			g.Installments[n-1].FiscalYear = fy
		}
	}
}

// forwardCount counts an approval's forward commitments recorded against
// those it has (want, known once GrantApproved is seen).
type forwardCount struct {
	want, seen int
	at         time.Time
}

// forwardSeen counts a forward commitment made at an approval.
func (p *Projector) forwardSeen(grant string) {
	f := p.pendingForward[grant]
	f.seen++
	if f.want > 0 && f.seen >= f.want {
		delete(p.pendingForward, grant)
		return
	}
	p.pendingForward[grant] = f
}

// pendingFlow is a two-stream flow's grant and when it began.
type pendingFlow struct {
	grant string
	at    time.Time
}

// grantOf returns the grant an event of a grant stream belongs to.
func grantOf(e domain.Event) string {
	switch e := e.(type) {
	case *domain.GrantReviewed:
		return e.GrantID
	case *domain.PublicNoticeOpened:
		return e.GrantID
	case *domain.ObjectionRaised:
		return e.GrantID
	case *domain.ObjectionResolved:
		return e.GrantID
	case *domain.PublicNoticeClosed:
		return e.GrantID
	case *domain.GrantApproved:
		return e.GrantID
	case *domain.GrantRejected:
		return e.GrantID
	case *domain.PaymentPrepared:
		return e.GrantID
	case *domain.PaymentApproved:
		return e.GrantID
	case *domain.PaymentReleased:
		return e.GrantID
	case *domain.PaymentFailed:
		return e.GrantID
	case *domain.PaymentReversed:
		return e.GrantID
	case *domain.GrantTerminated:
		return e.GrantID
	case *domain.ClawbackAssessed:
		return e.GrantID
	case *domain.RecoveryReceived:
		return e.GrantID
	case *domain.RecoveryWaived:
		return e.GrantID
	}
	return ""
}

// apply folds an event of the grant's own stream.
func (g *GrantView) apply(ev *eventstore.Event, payload domain.Event) {
	g.Position = ev.Position
	by := ev.Metadata.Principal
	switch e := payload.(type) {
	case *domain.GrantReviewed:
		g.Review = &ReviewView{Decision: e.Decision, Note: e.Note, ReviewedBy: by}
		if e.Decision == "approve" {
			g.State = domain.GrantStateReviewed
		}
	case *domain.PublicNoticeOpened:
		g.Notice = &NoticeView{OpenedOn: e.OpenedOn, Objections: []ObjectionView{}}
		g.State = domain.GrantStateInNotice
	case *domain.ObjectionRaised:
		if g.Notice != nil {
			g.Notice.Objections = append(g.Notice.Objections, ObjectionView{ID: e.ObjectionID, Summary: e.Summary})
		}
	case *domain.ObjectionResolved:
		if g.Notice != nil {
			for i := range g.Notice.Objections {
				if o := &g.Notice.Objections[i]; o.ID == e.ObjectionID {
					o.Resolved, o.Upheld, o.Resolution = true, e.Upheld, e.Resolution
				}
			}
		}
	case *domain.PublicNoticeClosed:
		if g.Notice != nil {
			g.Notice.ClosedOn = e.ClosedOn
		}
		g.State = domain.GrantStateNoticeClosed
	case *domain.GrantApproved:
		g.State = domain.GrantStateApproved
		g.Award, g.Deduction, g.Amount = e.Award, e.Deduction, e.Amount
		g.FiscalYear, g.ApprovedOn, g.ServiceStart, g.ServiceMonths = e.FiscalYear, e.ApprovedOn, e.ServiceStart, e.ServiceMonths
		g.Installments = make([]InstallmentView, len(e.Installments))
		for i, in := range e.Installments {
			g.Installments[i] = InstallmentView{N: in.N, Amount: in.Amount, DueDate: in.DueDate, State: InstallmentScheduled,
				FiscalYear: e.YearOfInstallment(in.N)}
		}
		g.Due = e.Amount
	case *domain.GrantRejected:
		g.State = domain.GrantStateRejected
		g.Rejection = e.Reason
	case *domain.PaymentPrepared:
		g.Payments = append(g.Payments, PaymentView{ID: e.PaymentID, GrantID: e.GrantID, Installment: e.Installment,
			Amount: e.Amount, State: domain.PaymentStatePrepared, PreparedBy: by})
		g.installment(e.Installment, InstallmentPrepared, e.PaymentID)
	case *domain.PaymentApproved:
		if pv := g.payment(e.PaymentID); pv != nil {
			pv.State, pv.ApprovedBy = domain.PaymentStateApproved, by
			g.installment(pv.Installment, InstallmentApproved, pv.ID)
		}
	case *domain.PaymentReleased:
		if pv := g.payment(e.PaymentID); pv != nil {
			pv.State, pv.ReleasedBy, pv.BankReference, pv.ReleasedOn = domain.PaymentStateReleased, by, e.BankReference, e.ReleasedOn
		}
		g.installment(e.Installment, InstallmentPaid, e.PaymentID)
		if n := e.Installment; n >= 1 && n <= len(g.Installments) {
			g.Installments[n-1].FiscalYear = e.FiscalYear
		}
		if pv := g.payment(e.PaymentID); pv != nil {
			pv.FiscalYear = e.FiscalYear
		}
		g.Paid = g.Paid.Add(e.Amount)
		g.Due = g.Due.Sub(e.Amount)
		if g.allPaid() {
			g.State = domain.GrantStateCompleted
		}
	case *domain.PaymentFailed:
		if pv := g.payment(e.PaymentID); pv != nil {
			pv.State, pv.Reason = domain.PaymentStateFailed, e.Reason
			g.installment(pv.Installment, InstallmentScheduled, "")
		}
	case *domain.PaymentReversed:
		if pv := g.payment(e.PaymentID); pv != nil {
			pv.State, pv.Reason = domain.PaymentStateReversed, e.Reason
		}
		g.installment(e.Installment, InstallmentScheduled, "")
		g.Paid = g.Paid.Sub(e.Amount)
		g.Due = g.Due.Add(e.Amount)
		if g.State == domain.GrantStateCompleted {
			g.State = domain.GrantStateApproved
		}
	case *domain.GrantTerminated:
		g.State = domain.GrantStateTerminated
		g.Termination = &TerminationView{DepartureDate: e.DepartureDate, MonthsServed: e.MonthsServed,
			MonthsRequired: e.MonthsRequired, Cancelled: e.Cancelled, Released: e.Released}
		for _, n := range e.Cancelled {
			g.installment(n, InstallmentCancelled, "")
		}
		for i := range g.Payments {
			if g.Payments[i].State == domain.PaymentStatePrepared {
				g.Payments[i].State = domain.PaymentStateFailed
				g.Payments[i].Reason = "grant terminated"
			}
		}
		g.Due = domain.Zero
	case *domain.ClawbackAssessed:
		g.Clawback.Assessed = g.Clawback.Assessed.Add(e.Amount)
		g.Clawback.Formula = e.Formula
		g.Clawback.settle()
	case *domain.RecoveryReceived:
		g.Clawback.Recovered = g.Clawback.Recovered.Add(e.Amount)
		g.Clawback.settle()
	case *domain.RecoveryWaived:
		g.Clawback.Waived = g.Clawback.Waived.Add(e.Amount)
		g.Clawback.settle()
	}
}

// settle works out what is still owed. Only the clawback's own events
// change it: recomputing it on every event of every grant would allocate
// for nothing on each replay.
func (c *ClawbackView) settle() {
	c.Outstanding = c.Assessed.Sub(c.Recovered).Sub(c.Waived)
}

func (g *GrantView) payment(id string) *PaymentView {
	for i := range g.Payments {
		if g.Payments[i].ID == id {
			return &g.Payments[i]
		}
	}
	return nil
}

func (g *GrantView) installment(n int, state, paymentID string) {
	if n >= 1 && n <= len(g.Installments) {
		g.Installments[n-1].State = state
		g.Installments[n-1].PaymentID = paymentID
	}
}

// BudgetYears lists the fiscal years whose budgets hold the grant's money:
// the year of its approval and each year an installment is charged to.
func (g *GrantView) BudgetYears() []int {
	var ys []int
	add := func(y int) {
		if y != 0 && !slices.Contains(ys, y) {
			ys = append(ys, y)
		}
	}
	add(g.FiscalYear)
	for _, in := range g.Installments {
		add(in.FiscalYear)
	}
	for _, pv := range g.Payments {
		add(pv.FiscalYear)
	}
	slices.Sort(ys)
	return ys
}

func (g *GrantView) allPaid() bool {
	for _, in := range g.Installments {
		if in.State != InstallmentPaid {
			return false
		}
	}
	return len(g.Installments) > 0
}

// Programs lists the programs in the order they were defined, with their
// budgets.
func (p *Projector) Programs() []ProgramView {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]ProgramView, 0, len(p.programOrder))
	for _, id := range p.programOrder {
		out = append(out, p.programLocked(id))
	}
	return out
}

// Program returns one program.
func (p *Projector) Program(id string) (ProgramView, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.programs[id] == nil {
		return ProgramView{}, false
	}
	return p.programLocked(id), true
}

func (p *Projector) programLocked(id string) ProgramView {
	v := *p.programs[id]
	v.Budgets = []BudgetView{}
	for k, b := range p.budgets {
		if k.program == id {
			v.Budgets = append(v.Budgets, b.read())
		}
	}
	sort.Slice(v.Budgets, func(i, j int) bool { return v.Budgets[i].FiscalYear < v.Budgets[j].FiscalYear })
	return v
}

// Budget returns a program's budget for a fiscal year.
func (p *Projector) Budget(program string, fy int) (BudgetView, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	b := p.budgets[budgetKey{program, fy}]
	if b == nil {
		return BudgetView{}, false
	}
	return b.read(), true
}

// Talent returns one talent.
func (p *Projector) Talent(id string) (TalentView, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	t := p.talents[id]
	if t == nil {
		return TalentView{}, false
	}
	v := *t
	v.Grants = append([]string{}, t.Grants...)
	return v, true
}

// Grant returns one grant.
func (p *Projector) Grant(id string) (GrantView, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	g := p.grants[id]
	if g == nil {
		return GrantView{}, false
	}
	return g.clone(), true
}

func (g *GrantView) clone() GrantView {
	v := *g
	v.Installments = append([]InstallmentView{}, g.Installments...)
	v.Payments = append([]PaymentView{}, g.Payments...)
	if g.Notice != nil {
		n := *g.Notice
		n.Objections = append([]ObjectionView{}, g.Notice.Objections...)
		v.Notice = &n
	}
	if g.Termination != nil {
		t := *g.Termination
		v.Termination = &t
	}
	if g.Review != nil {
		r := *g.Review
		v.Review = &r
	}
	return v
}

// GrantFilter selects grants; empty fields match all.
type GrantFilter struct {
	ProgramID string
	State     string
	TalentID  string
	// AppliedFrom … ApprovedTo bound the dates of application and of
	// approval, inclusive; a grant not approved has no approval date.
	AppliedFrom, AppliedTo   string
	ApprovedFrom, ApprovedTo string
	Offset                   int
	Limit                    int
}

// dated reports whether f filters by a date.
func (f *GrantFilter) dated() bool {
	return f.AppliedFrom != "" || f.AppliedTo != "" || f.ApprovedFrom != "" || f.ApprovedTo != ""
}

// matchDates reports whether g's dates pass f's bounds.
func (f *GrantFilter) matchDates(g *GrantView) bool {
	switch {
	case f.AppliedFrom != "" && g.AppliedOn < f.AppliedFrom,
		f.AppliedTo != "" && g.AppliedOn > f.AppliedTo,
		f.ApprovedFrom != "" && (g.ApprovedOn == "" || g.ApprovedOn < f.ApprovedFrom),
		f.ApprovedTo != "" && (g.ApprovedOn == "" || g.ApprovedOn > f.ApprovedTo):
		return false
	}
	return true
}

// Grants lists grants in the order they were applied for, and the number
// that match in all. Unless it filters by talent, it stops at the end of
// the page and takes the total from counts kept as grants change state, so
// a page costs the same however many grants there are.
func (p *Projector) Grants(f GrantFilter) ([]GrantView, int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := []GrantView{}
	n := 0
	ids := p.grantOrder
	if f.ProgramID != "" {
		ids = p.programGrants[f.ProgramID]
	}
	counted := f.TalentID == "" && !f.dated() && stateIndex(f.State) >= 0
	for _, id := range ids {
		if counted && f.Limit > 0 && len(out) >= f.Limit {
			break
		}
		g := p.grants[id]
		if (f.ProgramID != "" && g.ProgramID != f.ProgramID) || (f.State != "" && g.State != f.State) ||
			(f.TalentID != "" && g.TalentID != f.TalentID) || !f.matchDates(g) {
			continue
		}
		if n >= f.Offset && (f.Limit <= 0 || len(out) < f.Limit) {
			out = append(out, g.clone())
		}
		n++
	}
	if counted {
		c := &p.grantCounts
		if f.ProgramID != "" {
			c = p.programCounts[f.ProgramID]
		}
		n = 0
		if c != nil {
			n = c[stateIndex(f.State)]
		}
	}
	return out, n
}
