package projections

import (
	"sync"

	"talentledger/domain"
)

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

// talent is a TalentView as the model keeps it: totals in fen.
type talent struct {
	v                                             TalentView // its amounts unset
	awarded, paid, clawbackDue, recovered, waived int64
}

func (t *talent) read() TalentView {
	v := t.v
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
		m.apply(b.Changes[i].Payload)
	}
}

func (m *Talents) apply(payload domain.Event) {
	tl := &m.tally
	switch e := payload.(type) {
	case *domain.TalentRegistered:
		m.talents[e.TalentID] = &talent{v: TalentView{ID: e.TalentID, Name: e.Name, PermitCategory: e.PermitCategory, Tier: e.Tier,
			Employer: e.Employer, OverseasEngineer: e.OverseasEngineer, RegisteredOn: e.RegisteredOn, Grants: []string{}}}
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
