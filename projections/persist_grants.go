package projections

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"talentledger/projections/viewstore"
)

// The grants model on disk: each grant's view under "g/<id>", and a
// summary of each (program, talent, state) under "m/<n>", n being its
// place in the order applied for. Memory holds the summaries, which lists
// and counts need, and a cache of views; a view is read from disk when a
// query or an event needs it.
const (
	grantsSchema = 1
	// grantsCached is how many views the model keeps in memory between
	// commits; the rest are read from disk when needed.
	grantsCached = 20_000
)

type grantsDisk struct {
	vs *viewstore.Model
	// meta summarises every grant; seq is each grant's place in order.
	meta map[string]*grantMeta
	seq  map[string]int
	// dirty holds the grants changed since the last Save, metaDirty those
	// whose summary changed; dirty views stay cached until saved.
	dirty     map[string]bool
	metaDirty map[string]bool
	// err is the first view found unreadable: the store is damaged, and
	// the next Save fails with it, which stops the feed.
	err atomic.Pointer[error]
}

type grantMeta struct {
	ID      string `json:"id"`
	Program string `json:"program"`
	Talent  string `json:"talent"`
	State   string `json:"state"`
	// Applied and Approved are the grant's dates, for the list's filters.
	Applied  string `json:"applied,omitempty"`
	Approved string `json:"approved,omitempty"`
}

func grantKey(id string) []byte { return append([]byte("g/"), id...) }

func grantMetaKey(n int) []byte {
	k := make([]byte, 10)
	copy(k, "m/")
	binary.BigEndian.PutUint64(k[2:], uint64(n))
	return k
}

// Schema implements Persistent.
func (m *Grants) Schema() uint32 { return grantsSchema }

// Open implements Persistent: it reads the summaries; views are read when
// needed.
func (m *Grants) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &grantsDisk{vs: vs, meta: map[string]*grantMeta{}, seq: map[string]int{}, dirty: map[string]bool{}, metaDirty: map[string]bool{}}
	var bad error
	err := vs.Scan([]byte("m/"), func(_, v []byte) bool {
		gm := &grantMeta{}
		if err := json.Unmarshal(v, gm); err != nil {
			bad = fmt.Errorf("grant summary: %w", err)
			return false
		}
		pc := m.programCounts[gm.Program]
		if pc == nil {
			pc = &stateCounts{}
			m.programCounts[gm.Program] = pc
		}
		d.seq[gm.ID] = len(m.order)
		d.meta[gm.ID] = gm
		m.order = append(m.order, gm.ID)
		m.byProgram[gm.Program] = append(m.byProgram[gm.Program], gm.ID)
		m.count(pc, gm.State, 1)
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return err
	}
	m.disk = d
	return nil
}

// Save implements Persistent.
func (m *Grants) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.disk
	if err := d.err.Load(); err != nil {
		return *err
	}
	for id := range d.dirty {
		g := m.grants[id]
		v, err := json.Marshal(storedGrant(g))
		if err != nil {
			return err
		}
		b.Set(grantKey(id), v)
	}
	for id := range d.metaDirty {
		v, err := json.Marshal(d.meta[id])
		if err != nil {
			return err
		}
		b.Set(grantMetaKey(d.seq[id]), v)
	}
	clear(d.dirty)
	clear(d.metaDirty)
	if len(m.grants) > grantsCached {
		// Every view is saved now: drop half, whichever the map's
		// order gives, so that the cache holds grants recently
		// folded or read, and memory stays bounded.
		for id := range m.grants {
			if len(m.grants) <= grantsCached/2 {
				break
			}
			delete(m.grants, id)
		}
	}
	return nil
}

// changed notes that g changed, and its summary when meta is set.
// m.mu is held for writing.
func (m *Grants) changed(g *GrantView, meta bool) {
	d := m.disk
	if d == nil {
		return
	}
	d.dirty[g.ID] = true
	gm := d.meta[g.ID]
	if gm == nil {
		gm = &grantMeta{ID: g.ID}
		d.meta[g.ID] = gm
		d.seq[g.ID] = len(m.order) - 1
		meta = true
	}
	if meta {
		gm.Program, gm.Talent, gm.State = g.ProgramID, g.TalentID, g.State
		gm.Applied, gm.Approved = g.AppliedOn, g.ApprovedOn
		d.metaDirty[g.ID] = true
	}
}

// load returns the grant id, read from disk into the cache if need be, or
// nil when there is none. m.mu is held for writing.
func (m *Grants) load(id string) *GrantView {
	if g := m.grants[id]; g != nil || m.disk == nil {
		return g
	}
	g := m.fromDisk(id)
	if g != nil {
		m.grants[id] = g
	}
	return g
}

// read is load for a query: what it reads from disk is not cached. m.mu
// is held for reading.
func (m *Grants) read(id string) *GrantView {
	if g := m.grants[id]; g != nil || m.disk == nil {
		return g
	}
	return m.fromDisk(id)
}

func (m *Grants) fromDisk(id string) *GrantView {
	if m.disk.meta[id] == nil {
		return nil
	}
	v, err := m.disk.vs.Get(grantKey(id))
	var sg grantStored
	if err == nil && v == nil {
		err = fmt.Errorf("no view")
	}
	if err == nil {
		err = json.Unmarshal(v, &sg)
	}
	var g *GrantView
	if err == nil {
		g, err = sg.restore()
	}
	if err != nil {
		// The summary names a grant whose view cannot be read: the
		// store is damaged (the two are written in one batch).
		err = fmt.Errorf("projections: grant %s: its stored view is unreadable: %w", id, err)
		m.disk.err.CompareAndSwap(nil, &err)
		return nil
	}
	g.counts = m.programCounts[g.ProgramID]
	return g
}

// restore returns the stored grant's view with its amounts in fen.
func (sg *grantStored) restore() (*GrantView, error) {
	if sg.View == nil || len(sg.Inst) != len(sg.View.Installments) || len(sg.Pay) != len(sg.View.Payments) {
		return nil, fmt.Errorf("its amounts do not match its installments and payments")
	}
	g := sg.View
	x := sg.Fen
	g.fen = grantFen{requested: x[0], award: x[1], deduction: x[2], amount: x[3], paid: x[4], due: x[5], assessed: x[6],
		recovered: x[7], waived: x[8], released: x[9]}
	for i := range g.Installments {
		g.Installments[i].fen = sg.Inst[i]
	}
	for i := range g.Payments {
		g.Payments[i].fen = sg.Pay[i]
	}
	return g, nil
}

// grantStored is a grant as stored: its view, and the amounts the model
// keeps in fen beside it (requested, award, deduction, amount, paid, due,
// assessed, recovered, waived, released), each installment's and each
// payment's.
type grantStored struct {
	View *GrantView `json:"view"`
	Fen  [10]int64  `json:"fen"`
	Inst []int64    `json:"installments"`
	Pay  []int64    `json:"payments"`
}

func storedGrant(g *GrantView) grantStored {
	f := &g.fen
	sg := grantStored{View: g, Fen: [10]int64{f.requested, f.award, f.deduction, f.amount, f.paid, f.due, f.assessed, f.recovered,
		f.waived, f.released}, Inst: make([]int64, len(g.Installments)), Pay: make([]int64, len(g.Payments))}
	for i := range g.Installments {
		sg.Inst[i] = g.Installments[i].fen
	}
	for i := range g.Payments {
		sg.Pay[i] = g.Payments[i].fen
	}
	return sg
}

// summary returns a grant's program, state and talent without reading
// its view. m.mu is held.
func (m *Grants) summary(id string) grantMeta {
	if m.disk != nil {
		if gm := m.disk.meta[id]; gm != nil {
			return *gm
		}
		return grantMeta{}
	}
	g := m.grants[id]
	return grantMeta{ID: id, Program: g.ProgramID, Talent: g.TalentID, State: g.State, Applied: g.AppliedOn, Approved: g.ApprovedOn}
}

var _ Persistent = (*Grants)(nil)
