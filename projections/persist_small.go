package projections

import (
	"encoding/json"
	"fmt"
	"time"

	"talentledger/domain"
	"talentledger/projections/viewstore"
)

// The smaller models are stored whole: their state as one JSON document
// under "state", written at each commit, and read back whole at start.
// They stay small as the log grows (programs and years, funds, principals,
// flows under way), except the budgets' forward commitments, one per
// grant and later year.
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

type budgetsState struct {
	Programs     map[string]*ProgramView `json:"programs"`
	ProgramOrder []string                `json:"program_order"`
	Budgets      []*BudgetView           `json:"budgets"`
	Forward      []forwardState          `json:"forward"`
	Commitments  []commitmentsState      `json:"commitments"`
}

type forwardState struct {
	Program string `json:"p"`
	FY      int    `json:"y"`
	Grant   string `json:"g"`
}

type commitmentsState struct {
	Program string            `json:"p"`
	FY      int               `json:"y"`
	List    []*CommitmentView `json:"l"`
}

// Schema implements Persistent.
func (m *Budgets) Schema() uint32 { return 1 }

// Open implements Persistent.
func (m *Budgets) Open(vs *viewstore.Model) error {
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
		m.budgets[budgetKey{b.ProgramID, b.FiscalYear}] = b
	}
	for _, f := range st.Forward {
		m.forward[forwardKey{f.Program, f.FY, f.Grant}] = true
	}
	for _, c := range st.Commitments {
		m.commitments[budgetKey{c.Program, c.FY}] = c.List
	}
	return nil
}

// Save implements Persistent.
func (m *Budgets) Save(b *viewstore.Batch) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := budgetsState{Programs: m.programs, ProgramOrder: m.programOrder}
	for _, v := range m.budgets {
		st.Budgets = append(st.Budgets, v)
	}
	for k := range m.forward {
		st.Forward = append(st.Forward, forwardState{k.program, k.fy, k.grant})
	}
	for k, l := range m.commitments {
		st.Commitments = append(st.Commitments, commitmentsState{k.program, k.fy, l})
	}
	return saveState(b, st)
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
}

type lotState struct {
	Date   string       `json:"date"`
	Amount domain.Money `json:"amount"`
}

type projectState struct {
	View         *ProjectView `json:"view"`
	ValuationSet bool         `json:"valuation_set"`
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
		for _, l := range f.Lots {
			f.View.lots = append(f.View.lots, lot{date: l.Date, amount: l.Amount})
		}
		m.funds[id] = f.View
	}
	for id, p := range st.Projects {
		p.View.valuationIsSet = p.ValuationSet
		m.projects[id] = p.View
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
		fs := &fundState{View: f}
		for _, l := range f.lots {
			fs.Lots = append(fs.Lots, lotState{l.date, l.amount})
		}
		st.Funds[id] = fs
	}
	for id, p := range m.projects {
		st.Projects[id] = &projectState{View: p, ValuationSet: p.valuationIsSet}
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
func (m *Talents) Schema() uint32 { return 1 }

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
		t := &TalentView{}
		if err := json.Unmarshal(v, t); err != nil {
			bad = fmt.Errorf("talents: stored view unreadable: %w", err)
			return false
		}
		m.talents[t.ID] = t
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
			v, err := json.Marshal(t)
			if err != nil {
				return err
			}
			b.Set(append([]byte("t/"), id...), v)
		}
	}
	clear(m.dirty)
	for ; m.saved < len(m.order); m.saved++ {
		b.Set(orderKey("o/", m.saved), []byte(m.order[m.saved]))
	}
	return nil
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
	}
	return ""
}

func orderKey(prefix string, n int) []byte {
	return fmt.Appendf([]byte(prefix), "%016x", n)
}

// Balances: "a/<account>" → the account's totals; "pos" → the position.

// Schema implements Persistent.
func (m *Balances) Schema() uint32 { return 1 }

// Open implements Persistent.
func (m *Balances) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bad error
	if err := vs.Scan([]byte("a/"), func(_, v []byte) bool {
		a := &AccountBalance{}
		if err := json.Unmarshal(v, a); err != nil {
			bad = fmt.Errorf("balances: stored account unreadable: %w", err)
			return false
		}
		m.ledger.accounts[a.Account] = a
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
		v, err := json.Marshal(m.ledger.accounts[name])
		if err != nil {
			return err
		}
		b.Set(append([]byte("a/"), name...), v)
	}
	clear(m.dirty)
	return nil
}

var (
	_ Persistent = (*Budgets)(nil)
	_ Persistent = (*Funds)(nil)
	_ Persistent = (*Principals)(nil)
	_ Persistent = (*Pending)(nil)
	_ Persistent = (*Talents)(nil)
	_ Persistent = (*Balances)(nil)
)
