package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"talentledger/domain"
	"talentledger/projections/viewstore"
)

// The smaller models are stored whole: their state as one JSON document
// under "state", written at each commit, and read back whole at start.
// They stay small as the log grows (programs and years, funds, principals,
// flows under way). The budgets' forward commitments, one per grant and
// later year, grow with the grants: each is stored under its own key,
// written when it changed.
//
// Talents and the ledger's accounts grow with the talents: each is
// stored under its own key, written when it changed.

var stateKey = []byte("state")

func saveState(b *viewstore.Batch, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Set(stateKey, data)
	return nil
}

// loadState reads the stored state into v; ok is false when there is none.
func loadState(vs *viewstore.Model, v any) (bool, error) {
	data, err := vs.Get(stateKey)
	if err != nil || data == nil {
		return false, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("%s: stored state unreadable: %w", vs.Name(), err)
	}
	return true, nil
}

// Budgets.

// budgetsState is the programs and the budgets, stored whole under
// "state"; each forward commitment is stored under
// "f/<program>\x00<fy><n>" (fy and n 4 bytes big-endian: n its place in
// its budget's list), so that the lists read back in order.
type budgetsState struct {
	Programs     map[string]*ProgramView `json:"programs"`
	ProgramOrder []string                `json:"program_order"`
	Budgets      []budgetState           `json:"budgets"`
}

// budgetState is a budget as stored, amounts in fen.
type budgetState struct {
	Program          string `json:"p"`
	FY               int    `json:"y"`
	Appropriated     int64  `json:"appropriated"`
	Reserved         int64  `json:"reserved"`
	Paid             int64  `json:"paid"`
	ForwardCommitted int64  `json:"forward_committed"`
	Uncovered        int64  `json:"uncovered"`
	CarriedOver      int64  `json:"carried_over"`
	CarriedOut       int64  `json:"carried_out"`
	Lapsed           int64  `json:"lapsed"`
	Adjustments      int64  `json:"adjustments"`
	Closed           bool   `json:"closed"`
	Grants           int    `json:"grants"`
}

func commitmentKey(k budgetKey, n int) []byte {
	key := append(append([]byte("f/"), k.program...), 0)
	key = binary.BigEndian.AppendUint32(key, uint32(k.fy))
	return binary.BigEndian.AppendUint32(key, uint32(n))
}

// bytes is a forward commitment as stored (bincodec.go): the grant, the
// talent, the amounts in fen, the installments, the years.
func (c *commitment) bytes() []byte {
	e := enc{b: make([]byte, 0, 64+2*len(c.installments))}
	e.b = append(e.b, recordV1)
	e.str(c.grant)
	e.str(c.talent)
	for _, n := range []int64{c.amount, c.covered, c.uncovered, c.released, int64(c.approvedIn), int64(c.lapsedFrom),
		int64(len(c.installments))} {
		e.int(n)
	}
	for _, n := range c.installments {
		e.int(int64(n))
	}
	return e.b
}

func decodeCommitment(v []byte) (*commitment, error) {
	if len(v) == 0 || v[0] != recordV1 {
		return nil, errShortRecord
	}
	d := dec{b: v[1:]}
	c := &commitment{grant: d.str(), talent: d.str(), amount: d.int(), covered: d.int(), uncovered: d.int(), released: d.int(),
		approvedIn: int(d.int()), lapsedFrom: int(d.int())}
	n := d.int()
	if n < 0 || n > int64(len(d.b)) {
		return nil, errShortRecord
	}
	if n > 0 {
		c.installments = make([]int, n)
		for i := range c.installments {
			c.installments[i] = int(d.int())
		}
	}
	return c, d.done()
}

// Schema implements Persistent. Schema 1 stored the forward commitments
// in the state, all of them at every commit; 2 each as JSON.
func (m *Budgets) Schema() uint32 { return 3 }

// Open implements Persistent.
func (m *Budgets) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	m.dirty = map[*commitment]bool{}
	m.mu.Unlock()
	var st budgetsState
	ok, err := loadState(vs, &st)
	if !ok || err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.programs, m.programOrder = st.Programs, st.ProgramOrder
	if m.programs == nil {
		m.programs = map[string]*ProgramView{}
	}
	for _, b := range st.Budgets {
		m.budgets[budgetKey{b.Program, b.FY}] = &budget{program: b.Program, fy: b.FY, appropriated: b.Appropriated,
			reserved: b.Reserved, paid: b.Paid, forwardCommitted: b.ForwardCommitted, uncovered: b.Uncovered,
			carriedOver: b.CarriedOver, carriedOut: b.CarriedOut, lapsed: b.Lapsed, adjustments: b.Adjustments,
			closed: b.Closed, grants: b.Grants}
	}
	var bad error
	err = vs.Scan([]byte("f/"), func(key, v []byte) bool {
		program, rest, ok := bytes.Cut(key[2:], []byte{0})
		if !ok || len(rest) != 8 {
			bad = fmt.Errorf("budgets: forward commitment key %q unreadable", key)
			return false
		}
		k := budgetKey{string(program), int(binary.BigEndian.Uint32(rest))}
		n := int(binary.BigEndian.Uint32(rest[4:]))
		if n != len(m.commitments[k]) {
			bad = fmt.Errorf("budgets: forward commitment %d of %s %d stored after %d", n, k.program, k.fy, len(m.commitments[k]))
			return false
		}
		c, err := decodeCommitment(v)
		if err != nil {
			bad = fmt.Errorf("budgets: forward commitment %d of %s %d: %w", n, k.program, k.fy, err)
			return false
		}
		c.key, c.n = k, n
		m.commitments[k] = append(m.commitments[k], c)
		m.forward[forwardKey{k.program, k.fy, c.grant}] = c
		return true
	})
	if err == nil {
		err = bad
	}
	return err
}

// Save implements Persistent: the state when the programs or the budgets
// changed, and the forward commitments that changed.
func (m *Budgets) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.dirty {
		b.Set(commitmentKey(c.key, c.n), c.bytes())
	}
	if !m.changed {
		return nil
	}
	st := budgetsState{Programs: m.programs, ProgramOrder: m.programOrder}
	for _, b := range m.budgets {
		st.Budgets = append(st.Budgets, budgetState{Program: b.program, FY: b.fy, Appropriated: b.appropriated,
			Reserved: b.reserved, Paid: b.paid, ForwardCommitted: b.forwardCommitted, Uncovered: b.uncovered,
			CarriedOver: b.carriedOver, CarriedOut: b.carriedOut, Lapsed: b.lapsed, Adjustments: b.adjustments,
			Closed: b.closed, Grants: b.grants})
	}
	return saveState(b, st)
}

// Committed implements committer: what Save wrote is stored (see
// Talents.Committed).
func (m *Budgets) Committed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.dirty)
	m.changed = false
}

// Funds.

type fundsState struct {
	Funds        map[string]*fundState    `json:"funds"`
	FundOrder    []string                 `json:"fund_order"`
	Projects     map[string]*projectState `json:"projects"`
	ProjectOrder []string                 `json:"project_order"`
	Pending      map[string]bool          `json:"pending"`
}

type fundState struct {
	View *FundView  `json:"view"`
	Lots []lotState `json:"lots"`
	// Fen is the fund's amounts: target, committed, paid in, invested,
	// distributions, exit proceeds, written off, appropriated; LPs each
	// LP's committed and paid in.
	Fen [8]int64   `json:"fen"`
	LPs [][2]int64 `json:"lps"`
}

type lotState struct {
	Date   string `json:"date"`
	Amount int64  `json:"amount"`
}

type projectState struct {
	View         *ProjectView `json:"view"`
	ValuationSet bool         `json:"valuation_set"`
	// Fen is approved, cost, valuation, distributions, exit proceeds,
	// written off.
	Fen [6]int64 `json:"fen"`
}

// Schema implements Persistent.
func (m *Funds) Schema() uint32 { return 1 }

// Open implements Persistent.
func (m *Funds) Open(vs *viewstore.Model) error {
	var st fundsState
	ok, err := loadState(vs, &st)
	if !ok || err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, f := range st.Funds {
		v := f.View
		for _, l := range f.Lots {
			v.lots = append(v.lots, lot{date: l.Date, amount: l.Amount})
		}
		x := f.Fen
		v.fen = fundFen{target: x[0], committed: x[1], paidIn: x[2], invested: x[3], distributions: x[4], exitProceeds: x[5],
			writtenOff: x[6], appropriated: x[7]}
		for _, lp := range f.LPs {
			v.lpFen = append(v.lpFen, lpFen{committed: lp[0], paidIn: lp[1]})
		}
		m.funds[id] = v
	}
	for id, p := range st.Projects {
		v := p.View
		v.valuationIsSet = p.ValuationSet
		x := p.Fen
		v.fen = projectFen{approved: x[0], cost: x[1], valuation: x[2], distributions: x[3], exitProceeds: x[4], writtenOff: x[5]}
		m.projects[id] = v
	}
	m.fundOrder, m.projectOrder = st.FundOrder, st.ProjectOrder
	for id := range st.Pending {
		m.pendingFunds[id] = true
	}
	return nil
}

// Save implements Persistent.
func (m *Funds) Save(b *viewstore.Batch) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := fundsState{Funds: map[string]*fundState{}, FundOrder: m.fundOrder, Projects: map[string]*projectState{},
		ProjectOrder: m.projectOrder, Pending: m.pendingFunds}
	for id, f := range m.funds {
		x := f.fen
		fs := &fundState{View: f, Fen: [8]int64{x.target, x.committed, x.paidIn, x.invested, x.distributions, x.exitProceeds,
			x.writtenOff, x.appropriated}}
		for _, l := range f.lots {
			fs.Lots = append(fs.Lots, lotState{l.date, l.amount})
		}
		for _, lp := range f.lpFen {
			fs.LPs = append(fs.LPs, [2]int64{lp.committed, lp.paidIn})
		}
		st.Funds[id] = fs
	}
	for id, p := range m.projects {
		x := p.fen
		st.Projects[id] = &projectState{View: p, ValuationSet: p.valuationIsSet,
			Fen: [6]int64{x.approved, x.cost, x.valuation, x.distributions, x.exitProceeds, x.writtenOff}}
	}
	return saveState(b, st)
}

// Principals.

type principalsState struct {
	Principals []principalState     `json:"principals"`
	Pending    []*AccessRequestView `json:"pending"`
}

type principalState struct {
	View  *PrincipalView `json:"view"`
	Token string         `json:"token_sha256"`
}

// Schema implements Persistent.
func (m *Principals) Schema() uint32 { return 1 }

// Open implements Persistent.
func (m *Principals) Open(vs *viewstore.Model) error {
	var st principalsState
	ok, err := loadState(vs, &st)
	if !ok || err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range st.Principals {
		v := p.View
		v.tokenSHA256 = p.Token
		// What the domain folds the principal's later events onto: the
		// view holds all of it (a view exists once created; active is
		// not revoked).
		v.access = domain.PrincipalAccess{Created: true, Roles: v.Roles, TokenSHA256: p.Token, Revoked: !v.Active}
		m.byID[v.ID] = v
		m.order = append(m.order, v.ID)
		if v.Active && p.Token != "" {
			m.byToken[p.Token] = v
		}
	}
	m.pending = st.Pending
	return nil
}

// Save implements Persistent.
func (m *Principals) Save(b *viewstore.Batch) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := principalsState{Pending: m.pending}
	for _, id := range m.order {
		v := m.byID[id]
		st.Principals = append(st.Principals, principalState{View: v, Token: v.tokenSHA256})
	}
	return saveState(b, st)
}

// Pending.

type pendingState struct {
	Approval map[string]time.Time     `json:"approval"`
	Release  map[string]time.Time     `json:"release"`
	Approved map[string]bool          `json:"approved"`
	Charge   map[string]flowState     `json:"charge"`
	Forward  map[string]countState    `json:"forward"`
	Close    []closeState             `json:"close"`
	Transfer map[string]transferState `json:"transfer"`
}

type flowState struct {
	Grant string    `json:"grant"`
	At    time.Time `json:"at"`
}

type countState struct {
	Want int       `json:"want"`
	Seen int       `json:"seen"`
	At   time.Time `json:"at"`
}

type closeState struct {
	Program string    `json:"p"`
	FY      int       `json:"y"`
	At      time.Time `json:"at"`
}

type transferState struct {
	Key domain.TransferKey `json:"key"`
	At  time.Time          `json:"at"`
}

// Schema implements Persistent.
func (m *Pending) Schema() uint32 { return 1 }

// Open implements Persistent.
func (m *Pending) Open(vs *viewstore.Model) error {
	var st pendingState
	ok, err := loadState(vs, &st)
	if !ok || err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	copyInto(m.approval, st.Approval)
	copyInto(m.release, st.Release)
	copyInto(m.approved, st.Approved)
	for k, v := range st.Charge {
		m.charge[k] = pendingFlow{grant: v.Grant, at: v.At}
	}
	for k, v := range st.Forward {
		m.forward[k] = forwardCount{want: v.Want, seen: v.Seen, at: v.At}
	}
	for _, c := range st.Close {
		m.close[budgetKey{c.Program, c.FY}] = c.At
	}
	for k, v := range st.Transfer {
		m.transfer[k] = pendingTransfer{key: v.Key, at: v.At}
	}
	return nil
}

func copyInto[V any](dst, src map[string]V) {
	for k, v := range src {
		dst[k] = v
	}
}

// Save implements Persistent.
func (m *Pending) Save(b *viewstore.Batch) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := pendingState{Approval: m.approval, Release: m.release, Approved: m.approved, Charge: map[string]flowState{},
		Forward: map[string]countState{}, Transfer: map[string]transferState{}}
	for k, v := range m.charge {
		st.Charge[k] = flowState{v.grant, v.at}
	}
	for k, v := range m.forward {
		st.Forward[k] = countState{v.want, v.seen, v.at}
	}
	for k, v := range m.close {
		st.Close = append(st.Close, closeState{k.program, k.fy, v})
	}
	for k, v := range m.transfer {
		st.Transfer[k] = transferState{v.key, v.at}
	}
	return saveState(b, st)
}

// Talents, one key each: "t/<id>" → view; "o/<n>" → the n-th id.

// Schema implements Persistent.
func (m *Talents) Schema() uint32 { return 2 }

// Open implements Persistent.
func (m *Talents) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bad error
	if err := vs.Scan([]byte("o/"), func(_, v []byte) bool {
		m.order = append(m.order, string(v))
		return true
	}); err != nil {
		return err
	}
	if err := vs.Scan([]byte("t/"), func(_, v []byte) bool {
		var ts talentState
		if err := json.Unmarshal(v, &ts); err != nil {
			bad = fmt.Errorf("talents: stored view unreadable: %w", err)
			return false
		}
		x := ts.Fen
		m.talents[ts.View.ID] = &talent{v: ts.View, awarded: x[0], paid: x[1], clawbackDue: x[2], recovered: x[3], waived: x[4]}
		return true
	}); err != nil {
		return err
	}
	m.dirty = map[string]bool{}
	m.saved = len(m.order)
	return bad
}

// Save implements Persistent.
func (m *Talents) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.dirty {
		if t := m.talents[id]; t != nil {
			v, err := json.Marshal(talentState{View: t.v, Fen: [5]int64{t.awarded, t.paid, t.clawbackDue, t.recovered, t.waived}})
			if err != nil {
				return err
			}
			b.Set(append([]byte("t/"), id...), v)
		}
	}
	for i := m.saved; i < len(m.order); i++ {
		b.Set(orderKey("o/", i), []byte(m.order[i]))
	}
	return nil
}

// Committed implements committer: what Save wrote is stored. Until then
// the changes stay marked, so that a commit that failed is written again
// by the next one rather than lost. Nothing is folded between the two.
func (m *Talents) Committed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.dirty)
	m.saved = len(m.order)
}

// talentState is a talent as stored: the view, and its amounts in fen
// (awarded, paid, clawback due, recovered, waived).
type talentState struct {
	View TalentView `json:"view"`
	Fen  [5]int64   `json:"fen"`
}

// talentOf returns the talent an event changes on its page, if any.
func talentOf(e domain.Event) string {
	switch e := e.(type) {
	case *domain.TalentRegistered:
		return e.TalentID
	case *domain.TalentDeparted:
		return e.TalentID
	case *domain.GrantApplied:
		return e.TalentID
	case *domain.GrantApproved:
		return e.TalentID
	case *domain.PaymentReleased:
		return e.TalentID
	case *domain.PaymentReversed:
		return e.TalentID
	case *domain.ClawbackAssessed:
		return e.TalentID
	case *domain.RecoveryReceived:
		return e.TalentID
	case *domain.RecoveryWaived:
		return e.TalentID
	case *domain.TalentErasureRequested:
		return e.TalentID
	case *domain.TalentErasureApproved:
		return e.TalentID
	case *domain.TalentKeyDestroyed:
		return e.TalentID
	}
	return ""
}

func orderKey(prefix string, n int) []byte {
	return fmt.Appendf([]byte(prefix), "%016x", n)
}

// Balances: "a/<account>" → the account's debits, credits and balance in
// fen, and 1 when it may not go below zero.

// Schema implements Persistent.
func (m *Balances) Schema() uint32 { return 1 }

// Open implements Persistent.
func (m *Balances) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bad error
	if err := vs.Scan([]byte("a/"), func(k, v []byte) bool {
		var a [4]int64
		if err := json.Unmarshal(v, &a); err != nil {
			bad = fmt.Errorf("balances: stored account unreadable: %w", err)
			return false
		}
		m.ledger.load(string(k[2:]), account{debits: a[0], credits: a[1], balance: a[2], nonNegative: a[3] != 0})
		return true
	}); err != nil {
		return err
	}
	m.pos = vs.Checkpoint()
	m.dirty = map[string]bool{}
	return bad
}

// Save implements Persistent.
func (m *Balances) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.dirty {
		a := m.ledger.accounts[name]
		nn := int64(0)
		if a.nonNegative {
			nn = 1
		}
		v, err := json.Marshal([4]int64{a.debits, a.credits, a.balance, nn})
		if err != nil {
			return err
		}
		b.Set(append([]byte("a/"), name...), v)
	}
	return nil
}

// Committed implements committer: what Save wrote is stored (see
// Talents.Committed).
func (m *Balances) Committed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.dirty)
}

var (
	_ Persistent = (*Budgets)(nil)
	_ Persistent = (*Funds)(nil)
	_ Persistent = (*Principals)(nil)
	_ Persistent = (*Pending)(nil)
	_ Persistent = (*Talents)(nil)
	_ Persistent = (*Balances)(nil)
)
