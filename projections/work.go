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
// Kept in memory, it holds every grant; persisted (persist_work.go), it
// holds its queues, registers and grants on disk and a cache of grants in
// memory, and its queries scan the keys they need.
//
// Nothing decides on it: approving or releasing from the inbox runs the
// same commands, with the same checks on the streams, as anywhere else.
type Work struct {
	tally
	mu     sync.RWMutex
	notice map[string]int // program → notice days
	// byID holds every grant in memory, or the grants cached when the
	// model persists.
	byID map[string]*workGrant

	// Kept in memory only (disk is nil):
	//
	// grants in the order they were applied for; seq indexes it.
	grants []*workGrant
	// payments in the order they were prepared: the register's order.
	payments []*workPayment
	talents  map[string]*workTalent
	// byRef finds released payments and recoveries by bank reference.
	byRef map[string][]*bankItem
	// reconciled maps a payment's ID, or a recovery's grant and
	// reference, to the statement that matched it.
	reconciled map[string]string
	statements []*domain.BankStatementReconciled

	// disk holds the model on disk once it persists (see
	// persist_work.go); nil while it lives in memory only.
	disk *workDisk
}

// bankItem is money the bank moved for the ledger: a released payment
// (out) or a recovery (in).
type bankItem struct {
	kind      string // domain.MatchPayment or domain.MatchRecovery
	grantID   string
	paymentID string
	// paySeq is a payment's place in the register.
	paySeq int
	amount int64 // fen
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
	// pays holds each payment's place in the register, by its place in
	// view.Payments.
	pays []int
	// saved is what the store holds of the grant, when it persists, and
	// marks the rows changed since.
	saved *grantSaved
	marks rowMarks
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
	d := w.disk
	switch e := payload.(type) {
	case *domain.ProgramDefined:
		w.notice[e.ProgramID] = e.NoticeDays
		if d != nil {
			d.setNotice(e.ProgramID, e.NoticeDays)
		}
		return
	case *domain.TalentRegistered:
		t := &workTalent{name: e.Name, bankAccount: e.BankAccount, bankName: e.BankName}
		if d != nil {
			d.setTalent(e.TalentID, t)
		} else {
			w.talents[e.TalentID] = t
		}
		return
	case *domain.GrantApplied:
		g := &workGrant{appliedBy: ev.Metadata.Principal, view: *newGrantView(&w.tally, ev, e)}
		if d != nil {
			g.seq = d.count.grants
			d.count.grants++
			g.marks.all = true
			d.grantChanged(g)
		} else {
			g.seq = len(w.grants)
			w.grants = append(w.grants, g)
		}
		w.byID[e.GrantID] = g
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
	g := w.grant(gid)
	if g == nil {
		return
	}
	g.view.apply(&w.tally, ev, payload)
	if d != nil {
		g.marks.note(&g.view, payload)
		d.grantChanged(g)
	}
	switch e := payload.(type) {
	case *domain.PaymentPrepared:
		if d != nil {
			g.pays = append(g.pays, d.count.payments)
			d.count.payments++
		} else {
			g.pays = append(g.pays, len(w.payments))
			w.payments = append(w.payments, &workPayment{seq: len(w.payments), grant: g, id: e.PaymentID})
		}
	case *domain.PaymentReleased:
		seq := -1
		if k := g.paymentIndex(e.PaymentID); k >= 0 {
			seq = g.pays[k]
		}
		w.addBankItem(e.BankReference, &bankItem{kind: domain.MatchPayment, grantID: g.view.ID, paymentID: e.PaymentID, paySeq: seq,
			amount: w.fen(e.Amount), key: matchKey(domain.MatchPayment, e.PaymentID, e.GrantID, e.BankReference)})
	case *domain.RecoveryReceived:
		w.addBankItem(e.BankReference, &bankItem{kind: domain.MatchRecovery, grantID: g.view.ID, paySeq: -1,
			amount: w.fen(e.Amount), key: matchKey(domain.MatchRecovery, "", e.GrantID, e.BankReference)})
	case *domain.ObjectionResolved:
		if e.Upheld {
			g.upheld = true
		}
	}
}

// grant returns the grant id, read from disk if need be, or nil when there
// is none. w.mu is held for writing.
func (w *Work) grant(id string) *workGrant {
	if g := w.byID[id]; g != nil || w.disk == nil {
		return g
	}
	g := w.disk.loadGrant(id)
	if g != nil {
		w.byID[id] = g
	}
	return g
}

func (w *Work) addBankItem(ref string, it *bankItem) {
	if w.disk != nil {
		w.disk.addBankItem(ref, it)
		return
	}
	w.byRef[ref] = append(w.byRef[ref], it)
}

// applyStatement keeps a reconciled statement and notes what its lines
// matched. w.mu is held.
func (w *Work) applyStatement(e *domain.BankStatementReconciled) {
	if w.disk != nil {
		w.disk.addStatement(e)
		return
	}
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
	g := w.grant(grantID)
	if g == nil {
		return
	}
	if w.disk != nil {
		g.marks.all = true
		w.disk.grantChanged(g)
	}
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

func (g *workGrant) paymentIndex(id string) int {
	for i := range g.view.Payments {
		if g.view.Payments[i].ID == id {
			return i
		}
	}
	return -1
}

func (g *workGrant) payment(id string) *PaymentView {
	if i := g.paymentIndex(id); i >= 0 {
		return &g.view.Payments[i]
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

// paymentRecord is a payment as the register lists it: the payment, its
// grant's program and talent, and its installment's due date and fiscal
// year.
type paymentRecord struct {
	seq             int
	p               PaymentView
	program, talent string
	due             string
	instFY          int
}

// paymentRecord returns the k-th payment of g as the register lists it.
func (g *workGrant) paymentRecord(k int) paymentRecord {
	p := &g.view.Payments[k]
	r := paymentRecord{seq: g.pays[k], p: *p, program: g.view.ProgramID, talent: g.view.TalentID}
	if in := g.installment(p.Installment); in != nil {
		r.due, r.instFY = in.DueDate, in.FiscalYear
	}
	return r
}

// installmentRecord is an installment as the installments list shows it.
type installmentRecord struct {
	grantSeq               int
	grant, program, talent string
	in                     InstallmentView
}
