package projections

import (
	"sync"

	"talentledger/domain"
	"talentledger/eventstore"
)

// Work is the read model of what waits for someone: every grant with its
// installments and payments (folded by the same transitions as the grants
// view, GrantView.apply), who entered it, its talent's name and its
// program's notice. The payments register, the installments list and the
// inbox are answered from it. It has its own lock and folds only the
// events it needs, so its queries never wait for the other models.
//
// Nothing decides on it: approving or releasing from the inbox runs the
// same commands, with the same checks on the streams, as anywhere else.
type Work struct {
	tally
	mu sync.RWMutex
	// grants in the order they were applied for; seq indexes it.
	grants []*workGrant
	byID   map[string]*workGrant
	// payments in the order they were prepared: the register's order.
	payments []*workPayment
	talents  map[string]*workTalent
	notice   map[string]int // program → notice days
	// byRef finds released payments and recoveries by bank reference.
	byRef map[string][]*bankItem
	// reconciled maps a payment's ID, or a recovery's grant and
	// reference, to the statement that matched it.
	reconciled map[string]string
	statements []*domain.BankStatementReconciled

	// disk notes what changed since the last Save once the model
	// persists (see persist_work.go); nil while it lives in memory only.
	disk *workDisk
}

// bankItem is money the bank moved for the ledger: a released payment
// (out) or a recovery (in).
type bankItem struct {
	kind      string // domain.MatchPayment or domain.MatchRecovery
	grant     *workGrant
	paymentID string
	amount    int64 // fen
	// key identifies the item in reconciled.
	key string
}

type workGrant struct {
	seq       int
	view      GrantView
	appliedBy string
	// upheld is set once an objection to the notice was upheld: the grant
	// can no longer be approved.
	upheld bool
}

type workPayment struct {
	seq   int
	grant *workGrant
	id    string
}

type workTalent struct {
	name                  string
	bankAccount, bankName string
}

// NewWork returns an empty work model.
func NewWork() *Work {
	return &Work{byID: map[string]*workGrant{}, talents: map[string]*workTalent{}, notice: map[string]int{},
		byRef: map[string][]*bankItem{}, reconciled: map[string]string{}}
}

// Name implements Model.
func (w *Work) Name() string { return "work" }

// Apply implements Model.
func (w *Work) Apply(b Batch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range b.Changes {
		w.apply(b.Changes[i].Event, b.Changes[i].Payload)
	}
}

// apply folds one event. w.mu is held.
func (w *Work) apply(ev *eventstore.Event, payload domain.Event) {
	switch e := payload.(type) {
	case *domain.ProgramDefined:
		w.notice[e.ProgramID] = e.NoticeDays
		w.disk.programChanged(e.ProgramID)
		return
	case *domain.TalentRegistered:
		w.talents[e.TalentID] = &workTalent{name: e.Name, bankAccount: e.BankAccount, bankName: e.BankName}
		w.disk.talentChanged(e.TalentID)
		return
	case *domain.GrantApplied:
		g := &workGrant{seq: len(w.grants), appliedBy: ev.Metadata.Principal, view: *newGrantView(&w.tally, ev, e)}
		w.grants = append(w.grants, g)
		w.byID[e.GrantID] = g
		w.disk.grantChanged(g)
		return
	case *domain.BudgetCarriedOver:
		w.movedTo(e.GrantID, e.FiscalYear, e.Installments)
		return
	case *domain.ForwardCommitted:
		if e.LapsedFrom != 0 {
			w.movedTo(e.GrantID, e.FiscalYear, e.Installments)
		}
		return
	case *domain.BankStatementReconciled:
		w.applyStatement(e)
		return
	}
	gid := grantOf(payload)
	if gid == "" {
		return
	}
	g := w.byID[gid]
	if g == nil {
		return
	}
	g.view.apply(&w.tally, ev, payload)
	w.disk.grantChanged(g)
	switch e := payload.(type) {
	case *domain.PaymentPrepared:
		w.payments = append(w.payments, &workPayment{seq: len(w.payments), grant: g, id: e.PaymentID})
	case *domain.PaymentReleased:
		w.byRef[e.BankReference] = append(w.byRef[e.BankReference], &bankItem{kind: domain.MatchPayment, grant: g,
			paymentID: e.PaymentID, amount: w.fen(e.Amount), key: matchKey(domain.MatchPayment, e.PaymentID, e.GrantID, e.BankReference)})
		w.disk.refChanged(e.BankReference)
	case *domain.RecoveryReceived:
		w.byRef[e.BankReference] = append(w.byRef[e.BankReference], &bankItem{kind: domain.MatchRecovery, grant: g,
			amount: w.fen(e.Amount), key: matchKey(domain.MatchRecovery, "", e.GrantID, e.BankReference)})
		w.disk.refChanged(e.BankReference)
	case *domain.ObjectionResolved:
		if e.Upheld {
			g.upheld = true
		}
	}
}

// applyStatement keeps a reconciled statement and notes what its lines
// matched. w.mu is held.
func (w *Work) applyStatement(e *domain.BankStatementReconciled) {
	w.statements = append(w.statements, e)
	for _, l := range e.Lines {
		if l.Outcome == domain.LineMatched {
			w.reconciled[matchKey(l.Kind, l.PaymentID, l.GrantID, l.Reference)] = e.StatementID
		}
	}
}

// matchKey identifies a payment, or a grant's recovery with a reference,
// among what statements matched.
func matchKey(kind, paymentID, grantID, ref string) string {
	if kind == domain.MatchPayment {
		return "p\x00" + paymentID
	}
	return "r\x00" + grantID + "\x00" + ref
}

// movedTo charges a grant's unpaid installments to fy, as the grants
// model does at a year-end close.
func (w *Work) movedTo(grantID string, fy int, installments []int) {
	g := w.byID[grantID]
	if g == nil {
		return
	}
	w.disk.grantChanged(g)
	for _, n := range installments {
		if in := g.installment(n); in != nil && in.State != InstallmentPaid {
			in.FiscalYear = fy
		}
	}
}

// openObjections counts a grant's unresolved objections.
func (g *workGrant) openObjections() int {
	n := 0
	if g.view.Notice != nil {
		for _, o := range g.view.Notice.Objections {
			if !o.Resolved {
				n++
			}
		}
	}
	return n
}

func (g *workGrant) payment(id string) *PaymentView {
	for i := range g.view.Payments {
		if g.view.Payments[i].ID == id {
			return &g.view.Payments[i]
		}
	}
	return nil
}

func (g *workGrant) installment(n int) *InstallmentView {
	if n >= 1 && n <= len(g.view.Installments) {
		return &g.view.Installments[n-1]
	}
	return nil
}

// outstanding is what the grant's clawback still asks, in fen.
func (g *workGrant) outstanding() int64 {
	f := &g.view.fen
	return f.assessed - f.recovered - f.waived
}
