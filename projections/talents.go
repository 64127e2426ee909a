package projections

import (
	"sync"

	"talentledger/domain"
)

// TalentView is a talent with the totals of their grants.
type TalentView struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	PermitCategory   string `json:"permit_category,omitempty"`
	Tier             string `json:"tier"`
	Employer         string `json:"employer"`
	OverseasEngineer bool   `json:"overseas_engineer"`
	RegisteredOn     string `json:"registered_on"`
	IDNumber         string `json:"id_number,omitempty"`
	DateOfBirth      string `json:"date_of_birth,omitempty"`
	Phone            string `json:"phone,omitempty"`
	Email            string `json:"email,omitempty"`
	Address          string `json:"address,omitempty"`
	BankAccount      string `json:"bank_account,omitempty"`
	BankName         string `json:"bank_name,omitempty"`
	DepartureDate    string `json:"departure_date,omitempty"`
	// Erasure is the erasure of the talent's personal data, once
	// requested.
	Erasure      *ErasureView `json:"erasure,omitempty"`
	Grants       []string     `json:"grants"`
	TotalAwarded domain.Money `json:"total_awarded"`
	TotalPaid    domain.Money `json:"total_paid"`
	ClawbackDue  domain.Money `json:"clawback_due"`
	Recovered    domain.Money `json:"recovered"`
	Waived       domain.Money `json:"waived"`
}

// Erasure states.
const (
	ErasureRequested = "requested"
	ErasureScheduled = "scheduled"
	ErasureErased    = "erased"
)

// ErasureView is where a talent's erasure stands.
type ErasureView struct {
	State       string `json:"state"`
	RequestedOn string `json:"requested_on,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	NotBefore   string `json:"not_before,omitempty"`
	ErasedOn    string `json:"erased_on,omitempty"`
}

// ErasureItem is a talent's erasure in a list.
type ErasureItem struct {
	TalentID string `json:"talent_id"`
	ErasureView
}

// talent is a TalentView as the model keeps it: totals in fen.
type talent struct {
	v                                             TalentView // its amounts unset
	awarded, paid, clawbackDue, recovered, waived int64
}

func (t *talent) read() TalentView {
	v := t.v
	if t.v.Erasure != nil {
		cp := *t.v.Erasure
		v.Erasure = &cp
	}
	v.Grants = append([]string{}, t.v.Grants...)
	v.TotalAwarded, v.TotalPaid, v.ClawbackDue = money(t.awarded), money(t.paid), money(t.clawbackDue)
	v.Recovered, v.Waived = money(t.recovered), money(t.waived)
	return v
}

// Talents is the registered talents with their grants and totals.
type Talents struct {
	tally
	mu      sync.RWMutex
	talents map[string]*talent
	order   []string
	// dirty holds the talents changed since the last Save, and saved
	// how many of order are saved, once the model persists (see
	// persist_small.go); dirty is nil while it lives in memory only.
	dirty map[string]bool
	saved int
	// keyDestroyed, when set, is told of every TalentKeyDestroyed folded.
	keyDestroyed func(talentID string)
}

// OnKeyDestroyed makes the model call f with the talent of every
// TalentKeyDestroyed it folds from now on (under its lock: f must not
// query the model): a replica forgets the keys another erased. Call it
// before the feed runs.
func (m *Talents) OnKeyDestroyed(f func(talentID string)) {
	m.mu.Lock()
	m.keyDestroyed = f
	m.mu.Unlock()
}

// NewTalents returns an empty talents model.
func NewTalents() *Talents { return &Talents{talents: map[string]*talent{}} }

// Name implements Model.
func (m *Talents) Name() string { return "talents" }

// Apply implements Model.
func (m *Talents) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Changes {
		m.applyErasure(&b.Changes[i])
		m.apply(b.Changes[i].Payload)
		if m.dirty != nil {
			if id := talentOf(b.Changes[i].Payload); id != "" {
				m.dirty[id] = true
			}
		}
	}
}

func (m *Talents) apply(payload domain.Event) {
	tl := &m.tally
	switch e := payload.(type) {
	case *domain.TalentRegistered:
		m.talents[e.TalentID] = &talent{v: TalentView{ID: e.TalentID, Name: e.Name, PermitCategory: e.PermitCategory, Tier: e.Tier,
			Employer: e.Employer, OverseasEngineer: e.OverseasEngineer, RegisteredOn: e.RegisteredOn, Grants: []string{},
			IDNumber: e.IDNumber, DateOfBirth: e.DateOfBirth, Phone: e.Phone, Email: e.Email, Address: e.Address,
			BankAccount: e.BankAccount, BankName: e.BankName}}
		m.order = append(m.order, e.TalentID)
	case *domain.TalentDeparted:
		if t := m.talents[e.TalentID]; t != nil {
			t.v.DepartureDate = e.DepartureDate
		}
	case *domain.GrantApplied:
		if t := m.talents[e.TalentID]; t != nil {
			t.v.Grants = append(t.v.Grants, e.GrantID)
		}
	case *domain.GrantApproved:
		if t := m.talents[e.TalentID]; t != nil {
			t.awarded = tl.addM(t.awarded, e.Amount)
		}
	case *domain.PaymentReleased:
		if t := m.talents[e.TalentID]; t != nil {
			t.paid = tl.addM(t.paid, e.Amount)
		}
	case *domain.PaymentReversed:
		if t := m.talents[e.TalentID]; t != nil {
			t.paid = tl.subM(t.paid, e.Amount)
		}
	case *domain.ClawbackAssessed:
		if t := m.talents[e.TalentID]; t != nil {
			t.clawbackDue = tl.addM(t.clawbackDue, e.Amount)
		}
	case *domain.RecoveryReceived:
		if t := m.talents[e.TalentID]; t != nil {
			f := tl.fen(e.Amount)
			t.clawbackDue = tl.sub(t.clawbackDue, f)
			t.recovered = tl.add(t.recovered, f)
		}
	case *domain.RecoveryWaived:
		if t := m.talents[e.TalentID]; t != nil {
			f := tl.fen(e.Amount)
			t.clawbackDue = tl.sub(t.clawbackDue, f)
			t.waived = tl.add(t.waived, f)
		}
	}
}

// applyErasure folds the erasure events, which need their metadata.
func (m *Talents) applyErasure(c *Change) {
	switch e := c.Payload.(type) {
	case *domain.TalentErasureRequested:
		if t := m.talents[e.TalentID]; t != nil {
			t.v.Erasure = &ErasureView{State: ErasureRequested, RequestedOn: e.RequestedOn, RequestedBy: c.Event.Metadata.Principal}
		}
	case *domain.TalentErasureApproved:
		if t := m.talents[e.TalentID]; t != nil && t.v.Erasure != nil {
			t.v.Erasure.State, t.v.Erasure.NotBefore = ErasureScheduled, e.NotBefore
		}
	case *domain.TalentKeyDestroyed:
		if m.keyDestroyed != nil {
			m.keyDestroyed(e.TalentID)
		}
		if t := m.talents[e.TalentID]; t != nil {
			if t.v.Erasure == nil {
				t.v.Erasure = &ErasureView{}
			}
			t.v.Erasure.State, t.v.Erasure.ErasedOn = ErasureErased, e.ErasedOn
		}
	}
}

// Erasures lists the talents' erasures in the order the talents were
// registered, those in state when it is set.
func (m *Talents) Erasures(state string) []ErasureItem {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []ErasureItem{}
	for _, id := range m.order {
		t := m.talents[id]
		if t == nil || t.v.Erasure == nil || state != "" && t.v.Erasure.State != state {
			continue
		}
		out = append(out, ErasureItem{TalentID: id, ErasureView: *t.v.Erasure})
	}
	return out
}

// Talent returns one talent.
func (m *Talents) Talent(id string) (TalentView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.talents[id]
	if t == nil {
		return TalentView{}, false
	}
	return t.read(), true
}

// Grants lists a talent's grants.
func (m *Talents) Grants(id string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.talents[id]
	if t == nil {
		return nil
	}
	return append([]string(nil), t.v.Grants...)
}

// Names returns the names of the talents with ids, "" for one unknown.
func (m *Talents) Names(ids []string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, len(ids))
	for i, id := range ids {
		if t := m.talents[id]; t != nil {
			out[i] = t.v.Name
		}
	}
	return out
}

var _ Model = (*Talents)(nil)
