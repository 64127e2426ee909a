package projections

import (
	"sync"

	"github.com/shopspring/decimal"

	"talentledger/domain"
)

// Apartments is the register of talent apartments (人才公寓): each unit
// with its rents and allocations, and the waiting list in the order of
// application. It has its own lock and applies only apartment events (and
// talents' names and departures, which it keeps itself); its rents are in
// fen.
type Apartments struct {
	tally
	mu      sync.RWMutex
	units   map[string]*apartmentUnit
	order   []string
	waiting []*WaitingEntry
	allocs  map[string]*AllocationView
	names   map[string]string
	departs map[string]string
	// dirty holds what changed since the last Save once the model
	// persists (see persist_apartments.go); nil while it lives in memory
	// only.
	dirty *apartmentsDirty
}

type apartmentUnit struct {
	building string
	size     decimal.Decimal
	// market and discounted are the monthly rents in fen.
	market, discounted int64
	allocs             []string
}

// AllocationView is one allocation of a unit.
type AllocationView struct {
	ID          string `json:"id"`
	Unit        string `json:"unit"`
	TalentID    string `json:"talent_id"`
	TalentName  string `json:"talent_name"`
	StartDate   string `json:"start_date"`
	EndDate     string `json:"end_date"`
	PlannedEnd  string `json:"planned_end"`
	Vacated     bool   `json:"vacated"`
	Reason      string `json:"reason,omitempty"`
	GrantID     string `json:"grant_id,omitempty"`
	Application string `json:"application_id"`
}

// ApartmentView is one unit as of a day: its rents, the monthly discount
// (market − discounted rent), who holds it then, and its allocations.
type ApartmentView struct {
	Unit            string           `json:"unit"`
	Building        string           `json:"building"`
	SizeSqm         decimal.Decimal  `json:"size_sqm"`
	MarketRent      domain.Money     `json:"market_rent"`
	DiscountedRent  domain.Money     `json:"discounted_rent"`
	MonthlyDiscount domain.Money     `json:"monthly_discount"`
	Vacant          bool             `json:"vacant"`
	Current         *AllocationView  `json:"current,omitempty"`
	Allocations     []AllocationView `json:"allocations"`
}

// WaitingEntry is one application on the waiting list.
type WaitingEntry struct {
	Position      int    `json:"position"`
	ApplicationID string `json:"application_id"`
	TalentID      string `json:"talent_id"`
	TalentName    string `json:"talent_name"`
	AppliedOn     string `json:"applied_on"`
	// Departed is the talent's departure date when the talent left while
	// waiting.
	Departed  string `json:"departed,omitempty"`
	allocated bool
}

// ApartmentTotals counts the register on a day.
type ApartmentTotals struct {
	Units    int `json:"units"`
	Occupied int `json:"occupied"`
	Vacant   int `json:"vacant"`
	Waiting  int `json:"waiting"`
}

// NewApartments returns an empty apartments model.
func NewApartments() *Apartments {
	return &Apartments{units: map[string]*apartmentUnit{}, allocs: map[string]*AllocationView{}, names: map[string]string{},
		departs: map[string]string{}}
}

// Name implements Model.
func (m *Apartments) Name() string { return "apartments" }

// Apply implements Model.
func (m *Apartments) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Changes {
		m.apply(b.Changes[i].Payload)
	}
}

var _ Model = (*Apartments)(nil)

func (m *Apartments) apply(payload domain.Event) {
	switch e := payload.(type) {
	case *domain.TalentRegistered:
		m.names[e.TalentID] = e.Name
		m.dirty.mark(aptName, e.TalentID)
	case *domain.TalentDeparted:
		m.departs[e.TalentID] = e.DepartureDate
		m.dirty.mark(aptDeparture, e.TalentID)
	case *domain.ApartmentRegistered:
		m.units[e.Unit] = &apartmentUnit{building: e.Building, size: e.SizeSqm, market: m.fen(e.MarketRent),
			discounted: m.fen(e.DiscountedRent)}
		m.order = append(m.order, e.Unit)
		m.dirty.mark(aptUnit, e.Unit)
	case *domain.ApartmentApplied:
		m.waiting = append(m.waiting, &WaitingEntry{ApplicationID: e.ApplicationID, TalentID: e.TalentID, AppliedOn: e.AppliedOn})
	case *domain.ApartmentAllocated:
		m.allocs[e.AllocationID] = &AllocationView{ID: e.AllocationID, Unit: e.Unit, TalentID: e.TalentID, StartDate: e.StartDate,
			EndDate: e.EndDate, PlannedEnd: e.EndDate, GrantID: e.GrantID, Application: e.ApplicationID}
		m.dirty.mark(aptAllocation, e.AllocationID)
		if u := m.units[e.Unit]; u != nil {
			u.allocs = append(u.allocs, e.AllocationID)
			m.dirty.mark(aptUnit, e.Unit)
		}
		for i, w := range m.waiting {
			if w.ApplicationID == e.ApplicationID {
				w.allocated = true
				m.dirty.waitingAt(i)
			}
		}
	case *domain.ApartmentVacated:
		if a := m.allocs[e.AllocationID]; a != nil {
			a.EndDate, a.Vacated, a.Reason = e.EndDate, true, e.Reason
			m.dirty.mark(aptAllocation, e.AllocationID)
		}
	}
}

// Register lists the units in the order registered, as of day d (who
// holds each then), with the counts and the number waiting.
func (m *Apartments) Register(d string) ([]ApartmentView, ApartmentTotals) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]ApartmentView, 0, len(m.order))
	var t ApartmentTotals
	for _, id := range m.order {
		v := m.unitLocked(id, d)
		t.Units++
		if v.Vacant {
			t.Vacant++
		} else {
			t.Occupied++
		}
		out = append(out, v)
	}
	for _, w := range m.waiting {
		if !w.allocated {
			t.Waiting++
		}
	}
	return out, t
}

// Unit returns one unit as of day d.
func (m *Apartments) Unit(id, d string) (ApartmentView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.units[id] == nil {
		return ApartmentView{}, false
	}
	return m.unitLocked(id, d), true
}

func (m *Apartments) unitLocked(id, d string) ApartmentView {
	u := m.units[id]
	v := ApartmentView{Unit: id, Building: u.building, SizeSqm: u.size, MarketRent: money(u.market),
		DiscountedRent: money(u.discounted), MonthlyDiscount: money(u.market).Sub(money(u.discounted)), Vacant: true,
		Allocations: []AllocationView{}}
	for _, aid := range u.allocs {
		a := *m.allocs[aid]
		a.TalentName = m.names[a.TalentID]
		v.Allocations = append(v.Allocations, a)
		if a.StartDate <= d && d <= a.EndDate {
			cur := a
			v.Current, v.Vacant = &cur, false
		}
	}
	return v
}

// WaitingList lists the applications still waiting, in the order they
// were made.
func (m *Apartments) WaitingList() []WaitingEntry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []WaitingEntry{}
	for _, w := range m.waiting {
		if w.allocated {
			continue
		}
		e := *w
		e.Position = len(out) + 1
		e.TalentName = m.names[w.TalentID]
		e.Departed = m.departs[w.TalentID]
		out = append(out, e)
	}
	return out
}
