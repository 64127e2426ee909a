package projections

import (
	"encoding/json"
	"fmt"

	"github.com/shopspring/decimal"

	"talentledger/projections/viewstore"
)

// The apartments model on disk, one key per thing it keeps, each written
// when it changed:
//
//	n/<talent>      the talent's name
//	d/<talent>      the talent's departure date
//	u/<unit>        the unit: building, size, rents in fen, its allocations
//	o/<n>           (16 hex digits) the n-th unit registered
//	a/<allocation>  the allocation
//	w/<n>           (16 hex digits) the n-th application to the waiting list
//
// Memory holds the whole model, as when it is folded; the store spares a
// start the folding.

// Kinds of keyed things the apartments model marks changed.
const (
	aptName = iota
	aptDeparture
	aptUnit
	aptAllocation
	aptKinds
)

var aptPrefix = [aptKinds]string{aptName: "n/", aptDeparture: "d/", aptUnit: "u/", aptAllocation: "a/"}

// apartmentsDirty is what changed since the last Save. Its methods do
// nothing on a nil receiver: a model in memory only tracks nothing.
type apartmentsDirty struct {
	keys [aptKinds]map[string]bool
	// waiting holds the entries below savedWaiting changed since; the
	// entries from savedWaiting on are new.
	waiting      map[int]bool
	savedOrder   int
	savedWaiting int
}

func (d *apartmentsDirty) mark(kind int, id string) {
	if d != nil {
		d.keys[kind][id] = true
	}
}

func (d *apartmentsDirty) waitingAt(i int) {
	if d != nil && i < d.savedWaiting {
		d.waiting[i] = true
	}
}

// unitState is a unit as stored: its register entry with the rents in fen
// (market, discounted), and its allocations in order.
type unitState struct {
	Building string          `json:"building"`
	SizeSqm  decimal.Decimal `json:"size_sqm"`
	Fen      [2]int64        `json:"fen"`
	Allocs   []string        `json:"allocations"`
}

type waitingState struct {
	Application string `json:"application_id"`
	Talent      string `json:"talent_id"`
	AppliedOn   string `json:"applied_on"`
	Allocated   bool   `json:"allocated"`
}

// Schema implements Persistent.
func (m *Apartments) Schema() uint32 { return 1 }

// Open implements Persistent.
func (m *Apartments) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bad error
	decode := func(what string, v []byte, into any) bool {
		if err := json.Unmarshal(v, into); err != nil {
			bad = fmt.Errorf("apartments: stored %s unreadable: %w", what, err)
			return false
		}
		return true
	}
	scans := []keyedScan{
		{"n/", func(id string, v []byte) bool { m.names[id] = string(v); return true }},
		{"d/", func(id string, v []byte) bool { m.departs[id] = string(v); return true }},
		{"u/", func(id string, v []byte) bool {
			var st unitState
			if !decode("unit", v, &st) {
				return false
			}
			m.units[id] = &apartmentUnit{building: st.Building, size: st.SizeSqm, market: st.Fen[0], discounted: st.Fen[1],
				allocs: st.Allocs}
			return true
		}},
		{"o/", func(_ string, v []byte) bool { m.order = append(m.order, string(v)); return true }},
		{"a/", func(id string, v []byte) bool {
			a := &AllocationView{}
			if !decode("allocation", v, a) {
				return false
			}
			m.allocs[id] = a
			return true
		}},
		{"w/", func(_ string, v []byte) bool {
			var st waitingState
			if !decode("waiting list", v, &st) {
				return false
			}
			m.waiting = append(m.waiting, &WaitingEntry{ApplicationID: st.Application, TalentID: st.Talent, AppliedOn: st.AppliedOn,
				allocated: st.Allocated})
			return true
		}},
	}
	if err := scanKeyed(vs, scans, &bad); err != nil {
		return err
	}
	// The queries follow these references: a store that breaks one is
	// damaged.
	for _, id := range m.order {
		u := m.units[id]
		if u == nil {
			return fmt.Errorf("apartments: stored register names unit %s, which is not stored", id)
		}
		for _, a := range u.allocs {
			if m.allocs[a] == nil {
				return fmt.Errorf("apartments: stored unit %s names allocation %s, which is not stored", id, a)
			}
		}
	}
	d := &apartmentsDirty{waiting: map[int]bool{}, savedOrder: len(m.order), savedWaiting: len(m.waiting)}
	for i := range d.keys {
		d.keys[i] = map[string]bool{}
	}
	m.dirty = d
	return nil
}

// Save implements Persistent.
func (m *Apartments) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.dirty
	for kind, ids := range d.keys {
		for id := range ids {
			var v []byte
			switch kind {
			case aptName:
				v = []byte(m.names[id])
			case aptDeparture:
				v = []byte(m.departs[id])
			case aptUnit:
				u := m.units[id]
				st := unitState{Building: u.building, SizeSqm: u.size, Fen: [2]int64{u.market, u.discounted}, Allocs: u.allocs}
				var err error
				if v, err = json.Marshal(st); err != nil {
					return err
				}
			case aptAllocation:
				var err error
				if v, err = json.Marshal(m.allocs[id]); err != nil {
					return err
				}
			}
			b.Set(append([]byte(aptPrefix[kind]), id...), v)
		}
	}
	for ; d.savedOrder < len(m.order); d.savedOrder++ {
		b.Set(orderKey("o/", d.savedOrder), []byte(m.order[d.savedOrder]))
	}
	for i := range d.waiting {
		if err := m.saveWaiting(b, i); err != nil {
			return err
		}
	}
	for ; d.savedWaiting < len(m.waiting); d.savedWaiting++ {
		if err := m.saveWaiting(b, d.savedWaiting); err != nil {
			return err
		}
	}
	for i := range d.keys {
		clear(d.keys[i])
	}
	clear(d.waiting)
	return nil
}

func (m *Apartments) saveWaiting(b *viewstore.Batch, i int) error {
	w := m.waiting[i]
	v, err := json.Marshal(waitingState{Application: w.ApplicationID, Talent: w.TalentID, AppliedOn: w.AppliedOn, Allocated: w.allocated})
	if err != nil {
		return err
	}
	b.Set(orderKey("w/", i), v)
	return nil
}

var _ Persistent = (*Apartments)(nil)
