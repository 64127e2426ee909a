package projections

import (
	"sort"
	"sync"

	"github.com/shopspring/decimal"

	"talentledger/domain"
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

type budgetKey struct {
	program string
	fy      int
}

// forwardKey names one grant's forward commitment to one year.
type forwardKey struct {
	program string
	fy      int
	grant   string
}

// Budgets is the programs and their budgets by fiscal year, with the
// forward commitments made to each year.
type Budgets struct {
	mu           sync.RWMutex
	programs     map[string]*ProgramView
	programOrder []string
	budgets      map[budgetKey]*BudgetView
	// forward marks the grants' forward commitments, by year.
	forward map[forwardKey]bool
	// commitments lists each budget's forward commitments in order.
	commitments map[budgetKey][]*CommitmentView
}

// NewBudgets returns an empty budgets model.
func NewBudgets() *Budgets {
	return &Budgets{programs: map[string]*ProgramView{}, budgets: map[budgetKey]*BudgetView{},
		forward: map[forwardKey]bool{}, commitments: map[budgetKey][]*CommitmentView{}}
}

// Name implements Model.
func (m *Budgets) Name() string { return "budgets" }

// Apply implements Model.
func (m *Budgets) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Changes {
		m.apply(b.Changes[i].Payload)
	}
}

func (m *Budgets) apply(payload domain.Event) {
	switch e := payload.(type) {
	case *domain.ProgramDefined:
		m.programs[e.ProgramID] = &ProgramView{ID: e.ProgramID, Name: e.Name, Kind: e.Kind, Caps: e.Caps,
			Schedule: e.Schedule, ServiceMonths: e.ServiceMonths, NoticeDays: e.NoticeDays,
			PermitCategories: e.PermitCategories, DeductKinds: e.DeductKinds, FundingSource: e.FundingSource}
		m.programOrder = append(m.programOrder, e.ProgramID)
	case *domain.BudgetAppropriated:
		b := m.budget(e.ProgramID, e.FiscalYear)
		b.Appropriated = b.Appropriated.Add(e.Amount)
		b.settle()
	case *domain.BudgetReserved:
		b := m.budget(e.ProgramID, e.FiscalYear)
		b.Reserved = b.Reserved.Add(e.Amount)
		b.Grants++
		b.settle()
	case *domain.BudgetReservationReleased:
		b := m.budget(e.ProgramID, e.FiscalYear)
		if e.Uncovered {
			b.Uncovered = b.Uncovered.Sub(e.Amount)
		} else {
			b.Reserved = b.Reserved.Sub(e.Amount)
		}
		b.ForwardCommitted = b.ForwardCommitted.Sub(m.forwardReleased(e))
		b.settle()
		if c := m.commitment(e.ProgramID, e.FiscalYear, e.GrantID); c != nil {
			c.Released = c.Released.Add(e.Amount)
			if e.Uncovered {
				c.Uncovered = c.Uncovered.Sub(e.Amount)
			}
		}
	case *domain.YearEndClosed:
		b := m.budget(e.ProgramID, e.FiscalYear)
		b.Closed = true
		for _, it := range e.Carried {
			b.Reserved = b.Reserved.Sub(it.Amount)
			b.CarriedOut = b.CarriedOut.Add(it.Amount)
		}
		for _, it := range e.Lapsed {
			if c := m.commitment(e.ProgramID, e.FiscalYear, it.GrantID); c != nil && it.Uncovered.Sign() > 0 {
				c.Uncovered = c.Uncovered.Sub(it.Uncovered)
				c.Released = c.Released.Add(it.Uncovered)
			}
			b.Reserved = b.Reserved.Sub(it.Amount)
			b.Uncovered = b.Uncovered.Sub(it.Uncovered)
			b.Lapsed = b.Lapsed.Add(it.Amount)
		}
		b.settle()
	case *domain.BudgetAdjusted:
		b := m.budget(e.ProgramID, e.FiscalYear)
		if e.Kind == domain.AdjustIncrease {
			b.Adjustments = b.Adjustments.Add(e.Amount)
		} else {
			b.Adjustments = b.Adjustments.Sub(e.Amount)
		}
		b.settle()
	case *domain.BudgetTransferReceived:
		b := m.budget(e.ProgramID, e.FiscalYear)
		b.Adjustments = b.Adjustments.Add(e.Amount)
		b.settle()
	case *domain.BudgetCarriedOver:
		b := m.budget(e.ProgramID, e.FiscalYear)
		b.CarriedOver = b.CarriedOver.Add(e.Amount)
		b.Reserved = b.Reserved.Add(e.Amount)
		b.settle()
	case *domain.ForwardCommitted:
		b := m.budget(e.ProgramID, e.FiscalYear)
		if e.Covered {
			b.Reserved = b.Reserved.Add(e.Amount)
		} else {
			b.Uncovered = b.Uncovered.Add(e.Amount)
		}
		b.ForwardCommitted = b.ForwardCommitted.Add(e.Amount)
		b.Grants++
		b.settle()
		m.forward[forwardKey{e.ProgramID, e.FiscalYear, e.GrantID}] = true
		c := &CommitmentView{GrantID: e.GrantID, TalentID: e.TalentID, Amount: e.Amount, Installments: e.Installments,
			ApprovedIn: e.ApprovedIn, LapsedFrom: e.LapsedFrom}
		if e.Covered {
			c.Covered = e.Amount
		} else {
			c.Uncovered = e.Amount
		}
		k := budgetKey{e.ProgramID, e.FiscalYear}
		m.commitments[k] = append(m.commitments[k], c)
	case *domain.ForwardCommitmentCovered:
		if c := m.commitment(e.ProgramID, e.FiscalYear, e.GrantID); c != nil {
			c.Covered = c.Covered.Add(e.Amount)
			c.Uncovered = c.Uncovered.Sub(e.Amount)
		}
		b := m.budget(e.ProgramID, e.FiscalYear)
		b.Uncovered = b.Uncovered.Sub(e.Amount)
		b.Reserved = b.Reserved.Add(e.Amount)
		b.settle()
	case *domain.PaymentReleased:
		b := m.budget(e.ProgramID, e.FiscalYear)
		b.Reserved = b.Reserved.Sub(e.Amount)
		b.Paid = b.Paid.Add(e.Amount)
		b.settle()
	case *domain.PaymentReversed:
		b := m.budget(e.ProgramID, e.FiscalYear)
		b.Reserved = b.Reserved.Add(e.Amount)
		b.Paid = b.Paid.Sub(e.Amount)
		b.settle()
	}
}

func (m *Budgets) budget(program string, fy int) *BudgetView {
	k := budgetKey{program, fy}
	b := m.budgets[k]
	if b == nil {
		b = &BudgetView{ProgramID: program, FiscalYear: fy}
		m.budgets[k] = b
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
func (m *Budgets) commitment(program string, fy int, grant string) *CommitmentView {
	cs := m.commitments[budgetKey{program, fy}]
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i].GrantID == grant {
			return cs[i]
		}
	}
	return nil
}

// forwardReleased is what a release gives back of a forward commitment.
func (m *Budgets) forwardReleased(e *domain.BudgetReservationReleased) domain.Money {
	if m.forward[forwardKey{e.ProgramID, e.FiscalYear, e.GrantID}] {
		return e.Amount
	}
	return domain.Zero
}

// Commitments lists the forward commitments to a program's fiscal year,
// in the order they were made: the order they are covered in, and the
// basis of that year's budget request.
func (m *Budgets) Commitments(program string, fy int) []CommitmentView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b := m.budgets[budgetKey{program, fy}]
	out := []CommitmentView{}
	for _, c := range m.commitments[budgetKey{program, fy}] {
		v := *c
		v.Flagged = b != nil && b.Appropriated.Add(b.CarriedOver).Add(b.Adjustments).Sign() > 0 && v.Uncovered.Sign() > 0
		out = append(out, v)
	}
	return out
}

// Programs lists the programs in the order they were defined, with their
// budgets.
func (m *Budgets) Programs() []ProgramView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]ProgramView, 0, len(m.programOrder))
	for _, id := range m.programOrder {
		out = append(out, m.programLocked(id))
	}
	return out
}

// Program returns one program.
func (m *Budgets) Program(id string) (ProgramView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.programs[id] == nil {
		return ProgramView{}, false
	}
	return m.programLocked(id), true
}

func (m *Budgets) programLocked(id string) ProgramView {
	v := *m.programs[id]
	v.Budgets = []BudgetView{}
	for k, b := range m.budgets {
		if k.program == id {
			v.Budgets = append(v.Budgets, b.read())
		}
	}
	sort.Slice(v.Budgets, func(i, j int) bool { return v.Budgets[i].FiscalYear < v.Budgets[j].FiscalYear })
	return v
}

// Budget returns a program's budget for a fiscal year.
func (m *Budgets) Budget(program string, fy int) (BudgetView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b := m.budgets[budgetKey{program, fy}]
	if b == nil {
		return BudgetView{}, false
	}
	return b.read(), true
}

var _ Model = (*Budgets)(nil)
