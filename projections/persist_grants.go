package projections

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections/viewstore"
)

// The grants model on disk, each record under a key of its own, written
// when its bytes change:
//
//	g/<grant>         the grant's view without its installments and
//	                  payments, with its amounts in fen (JSON)
//	i/<grant>␀<n>     its n-th installment
//	y/<grant>␀<k>     its k-th payment (from 0)
//	m/<seq>           a summary of the seq-th grant applied for: program,
//	                  talent, state, dates, fiscal year, amounts in fen
//
// (n, k and seq big-endian, so that keys sort in order; installments,
// payments and summaries in the binary form of bincodec.go). A payment
// released rewrites the payment, its installment, the head and the
// summary, not the whole grant. Memory holds the summaries, which lists
// and counts need, and a cache of views; a view is read from disk when a
// query for one grant or an event needs it.
const (
	grantsSchema = 2
	// grantsCached is how many views the model keeps in memory between
	// commits; the rest are read from disk when needed.
	grantsCached = 20_000
)

type grantsDisk struct {
	vs *viewstore.Model
	// meta summarises every grant; seq is each grant's place in order.
	meta map[string]*grantMeta
	seq  map[string]int
	// saved is what the store holds of each cached view.
	saved map[string]*grantSaved
	// dirty holds the grants changed since the last Save, with the rows
	// that changed; dirty views stay cached until saved.
	dirty map[string]*rowMarks
	// err is the first view found unreadable: the store is damaged, and
	// the next Save fails with it, which stops the feed.
	err atomic.Pointer[error]
}

// grantMeta is what the model keeps in memory of every grant: what lists
// filter on and show.
type grantMeta struct {
	ID, Program, Talent, State string
	// Applied and Approved are the grant's dates, for the list's filters.
	Applied, Approved string
	FiscalYear        int
	// fen: requested, award, deduction, amount, paid, due, assessed,
	// recovered, waived.
	fen [9]int64
	pos eventstore.Position
}

func metaOf(g *GrantView) grantMeta {
	f := &g.fen
	return grantMeta{ID: g.ID, Program: g.ProgramID, Talent: g.TalentID, State: g.State, Applied: g.AppliedOn, Approved: g.ApprovedOn,
		FiscalYear: g.FiscalYear, fen: [9]int64{f.requested, f.award, f.deduction, f.amount, f.paid, f.due, f.assessed, f.recovered, f.waived},
		pos: g.Position}
}

func (gm *grantMeta) bytes() []byte {
	e := enc{b: make([]byte, 0, 128)}
	e.b = append(e.b, recordV1)
	for _, s := range []string{gm.ID, gm.Program, gm.Talent, gm.State, gm.Applied, gm.Approved} {
		e.str(s)
	}
	e.int(int64(gm.FiscalYear))
	for _, f := range gm.fen {
		e.int(f)
	}
	e.int(int64(gm.pos.Commit))
	e.int(int64(gm.pos.Prepare))
	return e.b
}

func decodeMeta(v []byte) (*grantMeta, error) {
	if len(v) == 0 || v[0] != recordV1 {
		return nil, errShortRecord
	}
	d := dec{b: v[1:]}
	gm := &grantMeta{ID: d.str(), Program: d.str(), Talent: d.str(), State: d.str(), Applied: d.str(), Approved: d.str()}
	gm.FiscalYear = int(d.int())
	for i := range gm.fen {
		gm.fen[i] = d.int()
	}
	gm.pos.Commit, gm.pos.Prepare = uint64(d.int()), uint64(d.int())
	return gm, d.done()
}

func grantKey(id string) []byte { return append([]byte("g/"), id...) }

// grantRowKey is the key of a grant's n-th installment (kind 'i') or
// payment ('y').
func grantRowKey(kind byte, id string, n int) []byte {
	k := append(append([]byte{kind, '/'}, id...), 0)
	return binary.BigEndian.AppendUint32(k, uint32(n))
}

func grantMetaKey(n int) []byte { return seqKey("m/", n) }

// Schema implements Persistent.
func (m *Grants) Schema() uint32 { return grantsSchema }

// Open implements Persistent: it reads the summaries; views are read when
// needed.
func (m *Grants) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &grantsDisk{vs: vs, meta: map[string]*grantMeta{}, seq: map[string]int{}, saved: map[string]*grantSaved{}, dirty: map[string]*rowMarks{}}
	var bad error
	err := vs.Scan([]byte("m/"), func(_, v []byte) bool {
		gm, err := decodeMeta(v)
		if err != nil {
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

// grantHead is a grant's head as stored: its view without installments
// and payments, and the amounts the model keeps in fen beside it
// (requested, award, deduction, amount, paid, due, assessed, recovered,
// waived, released).
type grantHead struct {
	View *GrantView `json:"view"`
	Fen  [10]int64  `json:"fen"`
}

func headBytes(g *GrantView) ([]byte, error) {
	v := *g
	v.Installments, v.Payments, v.counts = nil, nil, nil
	f := &g.fen
	return json.Marshal(grantHead{View: &v, Fen: [10]int64{f.requested, f.award, f.deduction, f.amount, f.paid, f.due, f.assessed,
		f.recovered, f.waived, f.released}})
}

func installmentBytes(in *InstallmentView) []byte {
	e := enc{b: make([]byte, 0, 48)}
	e.b = append(e.b, recordV1)
	e.installment(in)
	return e.b
}

func paymentBytes(p *PaymentView) []byte {
	e := enc{b: make([]byte, 0, 128)}
	e.b = append(e.b, recordV1)
	e.payment(p)
	return e.b
}

// Save implements Persistent.
func (m *Grants) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.disk
	if err := d.err.Load(); err != nil {
		return *err
	}
	for id, marks := range d.dirty {
		if err := d.save(b, m.grants[id], marks); err != nil {
			return err
		}
		b.Set(grantMetaKey(d.seq[id]), d.meta[id].bytes())
	}
	clear(d.dirty)
	// The views stay in memory until the batch is committed (Committed):
	// the store shows them only then.
	return nil
}

// Committed implements committer: the saved views are in the store now,
// and the cache may drop some.
func (m *Grants) Committed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.disk
	shrinkCache(m.grants, grantsCached, func(id string) { delete(d.saved, id) })
}

// save writes what changed of g since it was last saved or read: its
// head, and the rows marks names whose bytes changed.
func (d *grantsDisk) save(b *viewstore.Batch, g *GrantView, marks *rowMarks) error {
	s := d.saved[g.ID]
	if s == nil {
		s = &grantSaved{}
		d.saved[g.ID] = s
	}
	hb, err := headBytes(g)
	if err != nil {
		return err
	}
	if h := recordHash(hb); h != s.head {
		b.Set(grantKey(g.ID), hb)
		s.head = h
	}
	all := marks.all
	marks.each(len(g.Installments), len(g.Payments), func(i int) {
		if v := installmentBytes(&g.Installments[i]); saveHash(&s.inst, i, recordHash(v)) {
			b.Set(grantRowKey('i', g.ID, i+1), v)
		}
	}, func(k int) {
		if v := paymentBytes(&g.Payments[k]); saveHash(&s.pays, k, recordHash(v)) {
			b.Set(grantRowKey('y', g.ID, k), v)
		}
	})
	if all {
		for i := len(g.Installments); i < len(s.inst); i++ {
			b.Delete(grantRowKey('i', g.ID, i+1))
		}
		s.inst = s.inst[:min(len(s.inst), len(g.Installments))]
		for k := len(g.Payments); k < len(s.pays); k++ {
			b.Delete(grantRowKey('y', g.ID, k))
		}
		s.pays = s.pays[:min(len(s.pays), len(g.Payments))]
	}
	return nil
}

// changed notes that g changed by payload (nil for any change), and its
// summary. m.mu is held for writing.
func (m *Grants) changed(g *GrantView, payload domain.Event) {
	d := m.disk
	if d == nil {
		return
	}
	r := d.dirty[g.ID]
	if r == nil {
		r = &rowMarks{}
		d.dirty[g.ID] = r
	}
	if payload == nil {
		r.all = true
	} else {
		r.note(g, payload)
	}
	gm := d.meta[g.ID]
	if gm == nil {
		d.seq[g.ID] = len(m.order) - 1
	}
	x := metaOf(g)
	d.meta[g.ID] = &x
}

// load returns the grant id, read from disk into the cache if need be, or
// nil when there is none. m.mu is held for writing.
func (m *Grants) load(id string) *GrantView {
	if g := m.grants[id]; g != nil || m.disk == nil {
		return g
	}
	g, s := m.fromDisk(id)
	if g != nil {
		m.grants[id] = g
		m.disk.saved[id] = s
	}
	return g
}

// read is load for a query: what it reads from disk is not cached. m.mu
// is held for reading.
func (m *Grants) read(id string) *GrantView {
	if g := m.grants[id]; g != nil || m.disk == nil {
		return g
	}
	g, _ := m.fromDisk(id)
	return g
}

func (m *Grants) fromDisk(id string) (*GrantView, *grantSaved) {
	if m.disk.meta[id] == nil {
		return nil, nil
	}
	g, s, err := m.disk.readGrant(id)
	if err != nil {
		// The summary names a grant whose view cannot be read: the
		// store is damaged (the two are written in one batch).
		err = fmt.Errorf("projections: grant %s: its stored view is unreadable: %w", id, err)
		m.disk.err.CompareAndSwap(nil, &err)
		return nil, nil
	}
	g.counts = m.programCounts[g.ProgramID]
	return g, s
}

func (d *grantsDisk) readGrant(id string) (*GrantView, *grantSaved, error) {
	hb, err := d.vs.Get(grantKey(id))
	if err == nil && hb == nil {
		err = fmt.Errorf("no view")
	}
	if err != nil {
		return nil, nil, err
	}
	var h grantHead
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, nil, err
	}
	if h.View == nil {
		return nil, nil, fmt.Errorf("no view")
	}
	g := h.View
	x := h.Fen
	g.fen = grantFen{requested: x[0], award: x[1], deduction: x[2], amount: x[3], paid: x[4], due: x[5], assessed: x[6],
		recovered: x[7], waived: x[8], released: x[9]}
	s := &grantSaved{head: recordHash(hb)}
	g.Installments, g.Payments = []InstallmentView{}, []PaymentView{}
	var bad error
	row := func(kind byte, base int, f func(d *dec)) error {
		prefix := append(append([]byte{kind, '/'}, id...), 0)
		n := base
		err := d.vs.Scan(prefix, func(k, v []byte) bool {
			if len(k) != len(prefix)+4 || int(binary.BigEndian.Uint32(k[len(prefix):])) != n || len(v) == 0 || v[0] != recordV1 {
				bad = fmt.Errorf("row %c%d missing or unreadable", kind, n)
				return false
			}
			x := dec{b: v[1:]}
			f(&x)
			if bad = x.done(); bad != nil {
				return false
			}
			if kind == 'i' {
				s.inst = append(s.inst, recordHash(v))
			} else {
				s.pays = append(s.pays, recordHash(v))
			}
			n++
			return true
		})
		if err == nil {
			err = bad
		}
		return err
	}
	err = row('i', 1, func(x *dec) {
		g.Installments = append(g.Installments, InstallmentView{})
		x.installment(&g.Installments[len(g.Installments)-1])
	})
	if err == nil {
		err = row('y', 0, func(x *dec) {
			g.Payments = append(g.Payments, PaymentView{})
			x.payment(&g.Payments[len(g.Payments)-1])
		})
	}
	if err != nil {
		return nil, nil, err
	}
	return g, s, nil
}

// summary returns a grant's summary without reading its view. m.mu is
// held.
func (m *Grants) summary(id string) grantMeta {
	if m.disk != nil {
		if gm := m.disk.meta[id]; gm != nil {
			return *gm
		}
		return grantMeta{}
	}
	return metaOf(m.grants[id])
}

var _ Persistent = (*Grants)(nil)

// shrinkCache drops half of a cache of saved entries once it holds more
// than limit, whichever the map's order gives, so that it holds entries
// recently folded or read and memory stays bounded; dropped is told each
// key dropped.
func shrinkCache[V any](cache map[string]V, limit int, dropped func(string)) {
	if len(cache) <= limit {
		return
	}
	for k := range cache {
		if len(cache) <= limit/2 {
			return
		}
		delete(cache, k)
		if dropped != nil {
			dropped(k)
		}
	}
}

// Damaged implements Damaged.
func (m *Grants) Damaged() error {
	m.mu.RLock()
	d := m.disk
	m.mu.RUnlock()
	if d == nil {
		return nil
	}
	if err := d.err.Load(); err != nil {
		return *err
	}
	return nil
}
