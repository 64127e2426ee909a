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

// budget is a BudgetView as the model keeps it: amounts in fen.
type budget struct {
	program                                      string
	fy                                           int
	appropriated, reserved, paid                 int64
	forwardCommitted, uncovered                  int64
	carriedOver, carriedOut, lapsed, adjustments int64
	closed                                       bool
	grants                                       int
}

// commitment is a CommitmentView as the model keeps it.
type commitment struct {
	grant, talent                        string
	amount, covered, uncovered, released int64
	installments                         []int
	approvedIn, lapsedFrom               int
	// key and n are its budget and its place in the budget's list: its
	// key in the store.
	key budgetKey
	n   int
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
	tally
	mu           sync.RWMutex
	programs     map[string]*ProgramView
	programOrder []string
	budgets      map[budgetKey]*budget
	// forward finds a grant's forward commitment to a year: the latest,
	// when a lapse committed it again.
	forward map[forwardKey]*commitment
	// commitments lists each budget's forward commitments in order.
	commitments map[budgetKey][]*commitment

	// changed is set when the programs or the budgets changed since the
	// last commit, dirty holds the commitments that did; dirty is nil
	// while the model is kept in memory only (no views store to write).
	changed bool
	dirty   map[*commitment]bool
}

// NewBudgets returns an empty budgets model.
func NewBudgets() *Budgets {
	return &Budgets{programs: map[string]*ProgramView{}, budgets: map[budgetKey]*budget{},
		forward: map[forwardKey]*commitment{}, commitments: map[budgetKey][]*commitment{}}
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
	t := &m.tally
	if e, ok := payload.(*domain.ProgramDefined); ok {
		m.programs[e.ProgramID] = programView(e)
		m.programOrder = append(m.programOrder, e.ProgramID)
		m.changed = true
		return
	}
	budgetEffects(t, payload, func(k budgetKey, d *budgetDelta) {
		m.changed = true
		b := m.budget(k.program, k.fy)
		if d.forwardGrant != "" && m.forward[forwardKey{k.program, k.fy, d.forwardGrant}] != nil {
			d.v[bForwardCommitted] = t.add(d.v[bForwardCommitted], d.forwardRelease)
		}
		b.addDelta(t, &d.v)
	})
	switch e := payload.(type) {
	case *domain.BudgetReservationReleased:
		if c := m.commitment(e.ProgramID, e.FiscalYear, e.GrantID); c != nil {
			f := t.fen(e.Amount)
			c.released = t.add(c.released, f)
			if e.Uncovered {
				c.uncovered = t.sub(c.uncovered, f)
			}
			m.mark(c)
		}
	case *domain.YearEndClosed:
		for _, it := range e.Lapsed {
			unc := t.fen(it.Uncovered)
			if c := m.commitment(e.ProgramID, e.FiscalYear, it.GrantID); c != nil && unc > 0 {
				c.uncovered = t.sub(c.uncovered, unc)
				c.released = t.add(c.released, unc)
				m.mark(c)
			}
		}
	case *domain.ForwardCommitted:
		f := t.fen(e.Amount)
		c := &commitment{grant: e.GrantID, talent: e.TalentID, amount: f, installments: e.Installments,
			approvedIn: e.ApprovedIn, lapsedFrom: e.LapsedFrom}
		if e.Covered {
			c.covered = f
		} else {
			c.uncovered = f
		}
		k := budgetKey{e.ProgramID, e.FiscalYear}
		c.key, c.n = k, len(m.commitments[k])
		m.forward[forwardKey{e.ProgramID, e.FiscalYear, e.GrantID}] = c
		m.commitments[k] = append(m.commitments[k], c)
		m.mark(c)
	case *domain.ForwardCommitmentCovered:
		if c := m.commitment(e.ProgramID, e.FiscalYear, e.GrantID); c != nil {
			f := t.fen(e.Amount)
			c.covered = t.add(c.covered, f)
			c.uncovered = t.sub(c.uncovered, f)
			m.mark(c)
		}
	}
}

// programView is the view of a program as its definition has it, without
// budgets.
func programView(e *domain.ProgramDefined) *ProgramView {
	return &ProgramView{ID: e.ProgramID, Name: e.Name, Kind: e.Kind, Caps: e.Caps,
		Schedule: e.Schedule, ServiceMonths: e.ServiceMonths, NoticeDays: e.NoticeDays,
		PermitCategories: e.PermitCategories, DeductKinds: e.DeductKinds, FundingSource: e.FundingSource}
}

// The figures of a budget, as the deltas an event makes to them: the
// places of budgetDelta.v.
const (
	bAppropriated = iota
	bReserved
	bPaid
	bForwardCommitted
	bUncovered
	bCarriedOver
	bCarriedOut
	bLapsed
	bAdjustments
	bClosed // how many closes: closed when above zero
	bGrants
	bTouched // how many events touched the budget: it exists when above zero
	budgetFigures
)

// budgetDelta is what one event changes in one budget, in fen. A release
// of a reservation also takes forwardRelease (negative) off the forward
// commitments when, and only when, the grant named forwardGrant has a
// forward commitment to the year folded before it: v leaves that part out.
type budgetDelta struct {
	v              [budgetFigures]int64
	forwardGrant   string
	forwardRelease int64
}

// budgetEffects calls f with each budget an event changes and what it
// changes in it: the one description of how events move budgets, which
// the budgets model and the as-of index both fold.
func budgetEffects(t *tally, payload domain.Event, f func(budgetKey, *budgetDelta)) {
	var d budgetDelta
	v := &d.v
	v[bTouched] = 1
	var k budgetKey
	switch e := payload.(type) {
	case *domain.BudgetAppropriated:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		v[bAppropriated] = t.fen(e.Amount)
	case *domain.BudgetReserved:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		v[bReserved] = t.fen(e.Amount)
		v[bGrants] = 1
	case *domain.BudgetReservationReleased:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		a := t.fen(e.Amount)
		if e.Uncovered {
			v[bUncovered] = -a
		} else {
			v[bReserved] = -a
		}
		d.forwardGrant, d.forwardRelease = e.GrantID, -a
	case *domain.YearEndClosed:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		v[bClosed] = 1
		for _, it := range e.Carried {
			a := t.fen(it.Amount)
			v[bReserved] = t.sub(v[bReserved], a)
			v[bCarriedOut] = t.add(v[bCarriedOut], a)
		}
		for _, it := range e.Lapsed {
			a, unc := t.fen(it.Amount), t.fen(it.Uncovered)
			v[bReserved] = t.sub(v[bReserved], a)
			v[bUncovered] = t.sub(v[bUncovered], unc)
			v[bLapsed] = t.add(v[bLapsed], a)
		}
	case *domain.BudgetAdjusted:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		if e.Kind == domain.AdjustIncrease {
			v[bAdjustments] = t.fen(e.Amount)
		} else {
			v[bAdjustments] = t.sub(0, t.fen(e.Amount))
		}
	case *domain.BudgetTransferReceived:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		v[bAdjustments] = t.fen(e.Amount)
	case *domain.BudgetCarriedOver:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		a := t.fen(e.Amount)
		v[bCarriedOver], v[bReserved] = a, a
	case *domain.ForwardCommitted:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		a := t.fen(e.Amount)
		if e.Covered {
			v[bReserved] = a
		} else {
			v[bUncovered] = a
		}
		v[bForwardCommitted] = a
		v[bGrants] = 1
	case *domain.ForwardCommitmentCovered:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		a := t.fen(e.Amount)
		v[bUncovered], v[bReserved] = -a, a
	case *domain.PaymentReleased:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		a := t.fen(e.Amount)
		v[bReserved], v[bPaid] = -a, a
	case *domain.PaymentReversed:
		k = budgetKey{e.ProgramID, e.FiscalYear}
		a := t.fen(e.Amount)
		v[bReserved], v[bPaid] = a, -a
	default:
		return
	}
	f(k, &d)
}

// addDelta adds an event's delta to the budget.
func (b *budget) addDelta(t *tally, v *[budgetFigures]int64) {
	b.appropriated = t.add(b.appropriated, v[bAppropriated])
	b.reserved = t.add(b.reserved, v[bReserved])
	b.paid = t.add(b.paid, v[bPaid])
	b.forwardCommitted = t.add(b.forwardCommitted, v[bForwardCommitted])
	b.uncovered = t.add(b.uncovered, v[bUncovered])
	b.carriedOver = t.add(b.carriedOver, v[bCarriedOver])
	b.carriedOut = t.add(b.carriedOut, v[bCarriedOut])
	b.lapsed = t.add(b.lapsed, v[bLapsed])
	b.adjustments = t.add(b.adjustments, v[bAdjustments])
	if v[bClosed] > 0 {
		b.closed = true
	}
	b.grants += int(v[bGrants])
}

func (m *Budgets) budget(program string, fy int) *budget {
	k := budgetKey{program, fy}
	b := m.budgets[k]
	if b == nil {
		b = &budget{program: program, fy: fy}
		m.budgets[k] = b
	}
	return b
}

// funds is what the year has to spend: appropriated, carried over and
// adjusted. Figures are converted to decimals before they are summed, so
// that no sum of them can overflow.
func (b *budget) funds() domain.Money {
	return money(b.appropriated).Add(money(b.carriedOver)).Add(money(b.adjustments))
}

// read returns the view to answer with, its available amount, flag and
// execution rate worked out.
func (b *budget) read() BudgetView {
	v := BudgetView{ProgramID: b.program, FiscalYear: b.fy, Appropriated: money(b.appropriated), Reserved: money(b.reserved),
		Paid: money(b.paid), ForwardCommitted: money(b.forwardCommitted), Uncovered: money(b.uncovered),
		CarriedOver: money(b.carriedOver), CarriedOut: money(b.carriedOut), Lapsed: money(b.lapsed),
		Adjustments: money(b.adjustments), Closed: b.closed, Grants: b.grants}
	funds := b.funds()
	v.Available = funds.Sub(v.Reserved).Sub(v.Paid).Sub(v.CarriedOut)
	v.Flagged = b.appropriated > 0 && b.uncovered > 0
	v.ExecutionRate = "0.00"
	if funds.Sign() > 0 {
		v.ExecutionRate = v.Paid.Decimal().Mul(hundred).Div(funds.Decimal()).StringFixed(2)
	}
	return v
}

var hundred = decimal.NewFromInt(100)

// commitment returns a grant's latest forward commitment to a year.
// mark notes that commitment c changed, for the next commit to write it.
func (m *Budgets) mark(c *commitment) {
	if m.dirty != nil {
		m.dirty[c] = true
	}
}

func (m *Budgets) commitment(program string, fy int, grant string) *commitment {
	return m.forward[forwardKey{program, fy, grant}]
}

// Commitments lists the forward commitments to a program's fiscal year,
// in the order they were made: the order they are covered in, and the
// basis of that year's budget request.
func (m *Budgets) Commitments(program string, fy int) []CommitmentView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b := m.budgets[budgetKey{program, fy}]
	funded := b != nil && b.funds().Sign() > 0
	out := []CommitmentView{}
	for _, c := range m.commitments[budgetKey{program, fy}] {
		out = append(out, CommitmentView{GrantID: c.grant, TalentID: c.talent, Amount: money(c.amount), Covered: money(c.covered),
			Uncovered: money(c.uncovered), Released: money(c.released), Installments: c.installments, ApprovedIn: c.approvedIn,
			LapsedFrom: c.lapsedFrom, Flagged: funded && c.uncovered > 0})
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
	return withBudgets(m.programs[id], m.budgets)
}

// withBudgets returns a program's view with its budgets among budgets, by
// fiscal year.
func withBudgets(p *ProgramView, budgets map[budgetKey]*budget) ProgramView {
	v := *p
	v.Budgets = []BudgetView{}
	for k, b := range budgets {
		if k.program == p.ID {
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
