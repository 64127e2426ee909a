package projections

import (
	"slices"
	"sync"

	"talentledger/domain"
	"talentledger/eventstore"
)

// GrantView is a grant's state with its installments and payments.
type GrantView struct {
	ID              string       `json:"id"`
	TalentID        string       `json:"talent_id"`
	ProgramID       string       `json:"program_id"`
	State           string       `json:"state"`
	AmountRequested domain.Money `json:"amount_requested"`
	AppliedOn       string       `json:"applied_on"`
	// DocumentRef is the application's document, ApprovalDocumentRef the
	// approval's (the documents the commands named).
	DocumentRef         string            `json:"document_ref,omitempty"`
	ApprovalDocumentRef string            `json:"approval_document_ref,omitempty"`
	Review              *ReviewView       `json:"review,omitempty"`
	Notice              *NoticeView       `json:"notice,omitempty"`
	Award               domain.Money      `json:"award"`
	Deduction           domain.Money      `json:"deduction"`
	Amount              domain.Money      `json:"amount"`
	FiscalYear          int               `json:"fiscal_year,omitempty"`
	ApprovedOn          string            `json:"approved_on,omitempty"`
	ServiceStart        string            `json:"service_start,omitempty"`
	ServiceMonths       int               `json:"service_months"`
	Installments        []InstallmentView `json:"installments"`
	Payments            []PaymentView     `json:"payments"`
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
	// fen holds the amounts, which the exported fields show only in the
	// copies handed out (see clone).
	fen grantFen
}

// grantFen is a grant's amounts in fen.
type grantFen struct {
	requested, award, deduction, amount int64
	paid, due                           int64
	assessed, recovered, waived         int64
	released                            int64 // at termination
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

// TerminationView is how a grant ended early.
type TerminationView struct {
	DepartureDate  string       `json:"departure_date"`
	MonthsServed   int          `json:"months_served"`
	MonthsRequired int          `json:"months_required"`
	Cancelled      []int        `json:"cancelled_installments"`
	Released       domain.Money `json:"released"`
}

// ClawbackView is what a talent owes back on a grant, and how it was
// worked out.
type ClawbackView struct {
	ClawbackTotals
	Formula string `json:"formula,omitempty"`
}

// Grants is the grants with their installments and payments, in the order
// applied for, and counts of them by state.
type Grants struct {
	tally
	mu     sync.RWMutex
	grants map[string]*GrantView
	order  []string
	// byProgram lists each program's grants in order's order, so that a
	// program's list is not found by scanning every grant.
	byProgram map[string][]string
	// counts counts grants by state, in all programs and in each, so
	// that a list's total is known without scanning it.
	counts        stateCounts
	programCounts map[string]*stateCounts

	// disk holds the grants on disk once the model persists (see
	// persist_grants.go); nil while it lives in memory only, when grants
	// holds every grant.
	disk *grantsDisk
}

// NewGrants returns an empty grants model.
func NewGrants() *Grants {
	return &Grants{grants: map[string]*GrantView{}, byProgram: map[string][]string{}, programCounts: map[string]*stateCounts{}}
}

// Name implements Model.
func (m *Grants) Name() string { return "grants" }

// Apply implements Model.
func (m *Grants) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Changes {
		m.apply(&b.Changes[i])
	}
}

func (m *Grants) apply(c *Change) {
	switch e := c.Payload.(type) {
	case *domain.GrantApplied:
		pc := m.programCounts[e.ProgramID]
		if pc == nil {
			pc = &stateCounts{}
			m.programCounts[e.ProgramID] = pc
		}
		g := newGrantView(&m.tally, c.Event, e)
		g.counts = pc
		m.grants[e.GrantID] = g
		m.order = append(m.order, e.GrantID)
		m.changed(g, nil)
		m.byProgram[e.ProgramID] = append(m.byProgram[e.ProgramID], e.GrantID)
		m.count(pc, m.grants[e.GrantID].State, 1)
		return
	case *domain.BudgetCarriedOver:
		m.movedTo(e.GrantID, e.FiscalYear, e.Installments)
		return
	case *domain.ForwardCommitted:
		if e.LapsedFrom != 0 {
			m.movedTo(e.GrantID, e.FiscalYear, e.Installments)
		}
		return
	}
	if gid := grantOf(c.Payload); gid != "" {
		if g := m.load(gid); g != nil {
			was := g.State
			g.apply(&m.tally, c.Event, c.Payload)
			if g.State != was {
				m.count(g.counts, was, -1)
				m.count(g.counts, g.State, 1)
			}
			m.changed(g, c.Payload)
		}
	}
}

// movedTo records on a grant's page that its unpaid installments are now
// charged to fy, carried over or lapsed there at a year-end close.
func (m *Grants) movedTo(grantID string, fy int, installments []int) {
	g := m.load(grantID)
	if g == nil {
		return
	}
	m.changed(g, nil)
	for _, n := range installments {
		if n >= 1 && n <= len(g.Installments) && g.Installments[n-1].State != InstallmentPaid {
			g.Installments[n-1].FiscalYear = fy
		}
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

// count adds n to the counts a grant in state is part of: its program's,
// c, and every grant's.
func (m *Grants) count(c *stateCounts, state string, n int) {
	if i := stateIndex(state); i >= 0 && i != anyState {
		c[i] += n
		m.counts[i] += n
	}
	c[anyState] += n
	m.counts[anyState] += n
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
func (g *GrantView) apply(t *tally, ev *eventstore.Event, payload domain.Event) {
	g.Position = ev.Position
	by := ev.Metadata.Principal
	switch e := payload.(type) {
	case *domain.GrantReviewed:
		g.Review = &ReviewView{Decision: e.Decision, Note: e.Note, ReviewedBy: by}
	case *domain.PublicNoticeOpened:
		g.Notice = &NoticeView{OpenedOn: e.OpenedOn, Objections: []ObjectionView{}}
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
	case *domain.GrantApproved:
		g.ApprovalDocumentRef = ev.Metadata.DocumentRef
		g.fen.award, g.fen.deduction, g.fen.amount = t.fen(e.Award), t.fen(e.Deduction), t.fen(e.Amount)
		g.FiscalYear, g.ApprovedOn, g.ServiceStart, g.ServiceMonths = e.FiscalYear, e.ApprovedOn, e.ServiceStart, e.ServiceMonths
		g.Installments = make([]InstallmentView, len(e.Installments))
		for i, in := range e.Installments {
			g.Installments[i] = InstallmentView{N: in.N, DueDate: in.DueDate, State: InstallmentScheduled,
				FiscalYear: e.YearOfInstallment(in.N), fen: t.fen(in.Amount)}
		}
		g.fen.due = g.fen.amount
	case *domain.GrantRejected:
		g.Rejection = e.Reason
	case *domain.GrantTerminated:
		g.Termination = &TerminationView{DepartureDate: e.DepartureDate, MonthsServed: e.MonthsServed,
			MonthsRequired: e.MonthsRequired, Cancelled: e.Cancelled}
		g.fen.released = t.fen(e.Released)
		g.terminated(e)
	case *domain.ClawbackAssessed:
		g.fen.assessed = t.addM(g.fen.assessed, e.Amount)
		g.Clawback.Formula = e.Formula
	case *domain.RecoveryReceived:
		g.fen.recovered = t.addM(g.fen.recovered, e.Amount)
	case *domain.RecoveryWaived:
		g.fen.waived = t.addM(g.fen.waived, e.Amount)
	default:
		g.applyPayment(t, by, payload)
	}
	g.State = domain.GrantStateAfter(g.State, payload, g.allPaid())
}

// newGrantView starts a grant's page from its application.
func newGrantView(t *tally, ev *eventstore.Event, e *domain.GrantApplied) *GrantView {
	return &GrantView{ID: e.GrantID, TalentID: e.TalentID, ProgramID: e.ProgramID,
		State: domain.GrantStateAfter("", e, false), AppliedOn: e.AppliedOn, DocumentRef: ev.Metadata.DocumentRef,
		Installments: []InstallmentView{}, Payments: []PaymentView{}, Position: ev.Position,
		fen: grantFen{requested: t.fen(e.AmountRequested)}}
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

// Grant returns one grant.
func (m *Grants) Grant(id string) (GrantView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.read(id)
	if g == nil {
		return GrantView{}, false
	}
	return g.clone(), true
}

// clone returns a copy to hand out, with its amounts.
func (g *GrantView) clone() GrantView {
	v := *g
	v.setAmounts()
	v.Installments = append([]InstallmentView{}, g.Installments...)
	for i := range v.Installments {
		v.Installments[i].Amount = money(v.Installments[i].fen)
	}
	v.Payments = append([]PaymentView{}, g.Payments...)
	for i := range v.Payments {
		v.Payments[i].Amount = money(v.Payments[i].fen)
	}
	if g.Notice != nil {
		n := *g.Notice
		n.Objections = append([]ObjectionView{}, g.Notice.Objections...)
		v.Notice = &n
	}
	if g.Termination != nil {
		t := *g.Termination
		t.Released = money(g.fen.released)
		v.Termination = &t
	}
	if g.Review != nil {
		r := *g.Review
		v.Review = &r
	}
	return v
}

// setAmounts sets the grant's own amounts from fen. What is still owed
// is worked out in decimals, so that it cannot overflow.
func (g *GrantView) setAmounts() {
	f := &g.fen
	g.AmountRequested, g.Award, g.Deduction, g.Amount = money(f.requested), money(f.award), money(f.deduction), money(f.amount)
	g.Paid, g.Due = money(f.paid), money(f.due)
	c := &g.Clawback
	c.Assessed, c.Recovered, c.Waived = money(f.assessed), money(f.recovered), money(f.waived)
	c.Outstanding = c.Assessed.Sub(c.Recovered).Sub(c.Waived)
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

// matchDates reports whether a grant applied and approved on these dates
// passes f's bounds.
func (f *GrantFilter) matchDates(applied, approved string) bool {
	switch {
	case f.AppliedFrom != "" && applied < f.AppliedFrom,
		f.AppliedTo != "" && applied > f.AppliedTo,
		f.ApprovedFrom != "" && (approved == "" || approved < f.ApprovedFrom),
		f.ApprovedTo != "" && (approved == "" || approved > f.ApprovedTo):
		return false
	}
	return true
}

// List lists grants, whole, in the order they were applied for, and the
// number that match in all. Unless it filters by talent, it stops at the
// end of the page and takes the total from counts kept as grants change
// state, so a page costs the same however many grants there are.
func (m *Grants) List(f GrantFilter) ([]GrantView, int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []GrantView{}
	n := m.list(f, func(id string, _ *grantMeta) {
		if g := m.read(id); g != nil {
			out = append(out, g.clone())
		}
	})
	return out, n
}

// GrantSummary is a grant as lists show it: its state, dates and amounts,
// without its review, notice, installments and payments, which the
// grant's own page has.
type GrantSummary struct {
	ID              string       `json:"id"`
	TalentID        string       `json:"talent_id"`
	ProgramID       string       `json:"program_id"`
	State           string       `json:"state"`
	AmountRequested domain.Money `json:"amount_requested"`
	AppliedOn       string       `json:"applied_on"`
	Award           domain.Money `json:"award"`
	Deduction       domain.Money `json:"deduction"`
	Amount          domain.Money `json:"amount"`
	FiscalYear      int          `json:"fiscal_year,omitempty"`
	ApprovedOn      string       `json:"approved_on,omitempty"`
	// Paid is what has been released, net of reversals; Due is what is
	// still scheduled to be paid.
	Paid     domain.Money        `json:"paid"`
	Due      domain.Money        `json:"due"`
	Clawback ClawbackTotals      `json:"clawback"`
	Position eventstore.Position `json:"position"`
}

// ClawbackTotals is what a talent owes back on a grant: all lists show of
// it.
type ClawbackTotals struct {
	Assessed    domain.Money `json:"assessed"`
	Recovered   domain.Money `json:"recovered"`
	Waived      domain.Money `json:"waived"`
	Outstanding domain.Money `json:"outstanding"`
}

func (gm *grantMeta) summary() GrantSummary {
	f := &gm.fen
	s := GrantSummary{ID: gm.ID, TalentID: gm.Talent, ProgramID: gm.Program, State: gm.State, AmountRequested: money(f[0]),
		AppliedOn: gm.Applied, Award: money(f[1]), Deduction: money(f[2]), Amount: money(f[3]), FiscalYear: gm.FiscalYear,
		ApprovedOn: gm.Approved, Paid: money(f[4]), Due: money(f[5]), Position: gm.pos,
		Clawback: ClawbackTotals{Assessed: money(f[6]), Recovered: money(f[7]), Waived: money(f[8])}}
	c := &s.Clawback
	c.Outstanding = c.Assessed.Sub(c.Recovered).Sub(c.Waived)
	return s
}

// Summaries is List answered with summaries: from memory, without reading
// any grant's view.
func (m *Grants) Summaries(f GrantFilter) ([]GrantSummary, int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []GrantSummary{}
	n := m.list(f, func(_ string, gm *grantMeta) { out = append(out, gm.summary()) })
	return out, n
}

// list calls take with the grants of f's page, in the order applied for,
// and returns the number that match in all. m.mu is held.
func (m *Grants) list(f GrantFilter, take func(id string, gm *grantMeta)) int {
	taken, n := 0, 0
	ids := m.order
	if f.ProgramID != "" {
		ids = m.byProgram[f.ProgramID]
	}
	counted := f.TalentID == "" && !f.dated() && stateIndex(f.State) >= 0
	for _, id := range ids {
		if counted && f.Limit > 0 && taken >= f.Limit {
			break
		}
		g := m.summary(id)
		if (f.ProgramID != "" && g.Program != f.ProgramID) || (f.State != "" && g.State != f.State) ||
			(f.TalentID != "" && g.Talent != f.TalentID) || !f.matchDates(g.Applied, g.Approved) {
			continue
		}
		if n >= f.Offset && (f.Limit <= 0 || taken < f.Limit) {
			take(id, &g)
			taken++
		}
		n++
	}
	if counted {
		c := &m.counts
		if f.ProgramID != "" {
			c = m.programCounts[f.ProgramID]
		}
		n = 0
		if c != nil {
			n = c[stateIndex(f.State)]
		}
	}
	return n
}

// page calls fn with up to n grants from index i of the application
// order, under the read lock, and returns the index to continue from. The
// grants have their own amounts but not their installments' and payments'.
func (m *Grants) page(i, n int, fn func(g *GrantView)) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for end := min(len(m.order), i+n); i < end; i++ {
		if v := m.read(m.order[i]); v != nil {
			g := *v
			g.setAmounts()
			fn(&g)
		}
	}
	return i
}

var _ Model = (*Grants)(nil)
