package projections

import (
	"encoding/json"
	"fmt"
	"strconv"

	"talentledger/projections/viewstore"
)

// The report model on disk, one key per thing it keeps, each written when
// it changed:
//
//	t/<talent>           the talent's name
//	g/<grant>            the grant's program
//	b/<program>\x00<fy>  the budget's reservations released and clawbacks
//	                     recovered, in fen
//	c/<grant>            the grant's clawback, amounts in fen
//	o/<n>                (16 hex digits) the n-th clawback's grant
//
// Memory holds the whole model, as when it is folded; the store spares a
// start the folding.

// reportsDirty is what changed since the last Save. Its methods do nothing
// on a nil receiver: a model in memory only tracks nothing.
type reportsDirty struct {
	talents   map[string]bool
	grants    map[string]bool
	budgets   map[budgetKey]bool
	clawbacks map[string]bool
	// saved is how many of the clawbacks' order are stored.
	saved int
}

func (d *reportsDirty) talent(id string) {
	if d != nil {
		d.talents[id] = true
	}
}

func (d *reportsDirty) grant(id string) {
	if d != nil {
		d.grants[id] = true
	}
}

func (d *reportsDirty) budget(k budgetKey) {
	if d != nil {
		d.budgets[k] = true
	}
}

func (d *reportsDirty) clawback(id string) {
	if d != nil {
		d.clawbacks[id] = true
	}
}

// reportBudgetState is a budget's figures as stored: released and
// recovered, in fen.
type reportBudgetState struct {
	Program string   `json:"p"`
	FY      int      `json:"y"`
	Fen     [2]int64 `json:"fen"`
}

// clawbackState is a clawback as stored: assessed, recovered and waived in
// fen.
type clawbackState struct {
	Talent     string   `json:"talent"`
	Program    string   `json:"program"`
	AssessedOn string   `json:"assessed_on"`
	Fen        [3]int64 `json:"fen"`
}

func reportBudgetKey(k budgetKey) []byte {
	return strconv.AppendInt(append(append([]byte("b/"), k.program...), 0), int64(k.fy), 10)
}

// Schema implements Persistent.
func (m *Reports) Schema() uint32 { return 1 }

// Open implements Persistent.
func (m *Reports) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bad error
	fail := func(what string, err error) bool {
		bad = fmt.Errorf("reports: stored %s unreadable: %w", what, err)
		return false
	}
	scans := []keyedScan{
		{"t/", func(id string, v []byte) bool { m.talentName[id] = string(v); return true }},
		{"g/", func(id string, v []byte) bool { m.grantProgram[id] = string(v); return true }},
		{"b/", func(_ string, v []byte) bool {
			var st reportBudgetState
			if err := json.Unmarshal(v, &st); err != nil {
				return fail("budget", err)
			}
			k := budgetKey{st.Program, st.FY}
			m.released[k], m.recovered[k] = st.Fen[0], st.Fen[1]
			return true
		}},
		{"c/", func(id string, v []byte) bool {
			var st clawbackState
			if err := json.Unmarshal(v, &st); err != nil {
				return fail("clawback", err)
			}
			m.clawbacks[id] = &clawback{talent: st.Talent, program: st.Program, assessedOn: st.AssessedOn, assessed: st.Fen[0],
				recovered: st.Fen[1], waived: st.Fen[2]}
			return true
		}},
		{"o/", func(_ string, v []byte) bool { m.clawOrder = append(m.clawOrder, string(v)); return true }},
	}
	if err := scanKeyed(vs, scans, &bad); err != nil {
		return err
	}
	for _, id := range m.clawOrder {
		if m.clawbacks[id] == nil {
			return fmt.Errorf("reports: stored order names clawback %s, which is not stored", id)
		}
	}
	m.dirty = &reportsDirty{talents: map[string]bool{}, grants: map[string]bool{}, budgets: map[budgetKey]bool{},
		clawbacks: map[string]bool{}, saved: len(m.clawOrder)}
	return nil
}

// Save implements Persistent.
func (m *Reports) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.dirty
	for id := range d.talents {
		b.Set(append([]byte("t/"), id...), []byte(m.talentName[id]))
	}
	for id := range d.grants {
		b.Set(append([]byte("g/"), id...), []byte(m.grantProgram[id]))
	}
	for k := range d.budgets {
		st := reportBudgetState{Program: k.program, FY: k.fy, Fen: [2]int64{m.released[k], m.recovered[k]}}
		v, err := json.Marshal(st)
		if err != nil {
			return err
		}
		b.Set(reportBudgetKey(k), v)
	}
	for id := range d.clawbacks {
		c := m.clawbacks[id]
		st := clawbackState{Talent: c.talent, Program: c.program, AssessedOn: c.assessedOn,
			Fen: [3]int64{c.assessed, c.recovered, c.waived}}
		v, err := json.Marshal(st)
		if err != nil {
			return err
		}
		b.Set(append([]byte("c/"), id...), v)
	}
	for ; d.saved < len(m.clawOrder); d.saved++ {
		b.Set(orderKey("o/", d.saved), []byte(m.clawOrder[d.saved]))
	}
	clear(d.talents)
	clear(d.grants)
	clear(d.budgets)
	clear(d.clawbacks)
	return nil
}

// keyedScan reads the keys under a prefix: f is given each key's rest
// (the ID) and its value, and returns false to stop.
type keyedScan struct {
	prefix string
	f      func(id string, v []byte) bool
}

// scanKeyed runs the scans in order; it stops at the first error of the
// store, or at the first scan after which *bad is set (a stored value f
// found unreadable).
func scanKeyed(vs *viewstore.Model, scans []keyedScan, bad *error) error {
	for _, s := range scans {
		if err := vs.Scan([]byte(s.prefix), func(k, v []byte) bool { return s.f(string(k[len(s.prefix):]), v) }); err != nil {
			return err
		}
		if *bad != nil {
			return *bad
		}
	}
	return nil
}

var _ Persistent = (*Reports)(nil)
