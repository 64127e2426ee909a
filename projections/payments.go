package projections

import "talentledger/domain"

// A grant's installments and payments live in its own stream, so they are
// folded with the grant (see Grants): what is here is their part of a
// grant's page.

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

	fen int64 // Amount, as the model keeps it
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

	fen int64 // Amount, as the model keeps it
}

// applyPayment folds a payment event of the grant's stream, by the
// principal who recorded it. The grant's state follows in apply.
func (g *GrantView) applyPayment(t *tally, by string, payload domain.Event) {
	switch e := payload.(type) {
	case *domain.PaymentPrepared:
		g.Payments = append(g.Payments, PaymentView{ID: e.PaymentID, GrantID: e.GrantID, Installment: e.Installment,
			State: domain.PaymentStateAfter("", e), PreparedBy: by, fen: t.fen(e.Amount)})
		g.installment(e.Installment, InstallmentPrepared, e.PaymentID)
	case *domain.PaymentApproved:
		if pv := g.payment(e.PaymentID); pv != nil {
			pv.State, pv.ApprovedBy = domain.PaymentStateAfter(pv.State, e), by
			g.installment(pv.Installment, InstallmentApproved, pv.ID)
		}
	case *domain.PaymentReleased:
		if pv := g.payment(e.PaymentID); pv != nil {
			pv.State, pv.ReleasedBy, pv.BankReference, pv.ReleasedOn = domain.PaymentStateAfter(pv.State, e), by, e.BankReference, e.ReleasedOn
			pv.FiscalYear = e.FiscalYear
		}
		g.installment(e.Installment, InstallmentPaid, e.PaymentID)
		if n := e.Installment; n >= 1 && n <= len(g.Installments) {
			g.Installments[n-1].FiscalYear = e.FiscalYear
		}
		f := t.fen(e.Amount)
		g.fen.paid, g.fen.due = t.add(g.fen.paid, f), t.sub(g.fen.due, f)
	case *domain.PaymentFailed:
		if pv := g.payment(e.PaymentID); pv != nil {
			pv.State, pv.Reason = domain.PaymentStateAfter(pv.State, e), e.Reason
			g.installment(pv.Installment, InstallmentScheduled, "")
		}
	case *domain.PaymentReversed:
		if pv := g.payment(e.PaymentID); pv != nil {
			pv.State, pv.Reason = domain.PaymentStateAfter(pv.State, e), e.Reason
		}
		g.installment(e.Installment, InstallmentScheduled, "")
		f := t.fen(e.Amount)
		g.fen.paid, g.fen.due = t.sub(g.fen.paid, f), t.add(g.fen.due, f)
	}
}

// terminated cancels the installments a termination cancels and fails the
// payments still being prepared.
func (g *GrantView) terminated(e *domain.GrantTerminated) {
	for _, n := range e.Cancelled {
		g.installment(n, InstallmentCancelled, "")
	}
	for i := range g.Payments {
		pv := &g.Payments[i]
		if was := pv.State; was != domain.PaymentStateAfter(was, e) {
			pv.State, pv.Reason = domain.PaymentStateAfter(was, e), "grant terminated"
		}
	}
	g.fen.due = 0
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

func (g *GrantView) allPaid() bool {
	for _, in := range g.Installments {
		if in.State != InstallmentPaid {
			return false
		}
	}
	return len(g.Installments) > 0
}
