package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"talentledger/domain"
	"talentledger/projections/viewstore"
)

// The work model on disk: its queues, its registers and its grants, each
// record under a key of its own, written when its bytes change; memory
// holds the programs' notice days, counts, and a cache of grants.
//
//	c                    how many grants, payments and statements
//	n/<program>          a program's notice days
//	t/<talent>           a talent's name and bank account
//	g/<grant>            a grant's view without its installments and
//	                     payments, who entered it, whether an objection was
//	                     upheld, and its payments' places in the register
//	i/<seq>/<n>          the n-th installment of the seq-th grant applied
//	                     for, with the grant's ID, program and talent: the
//	                     installments list is a scan of i/
//	p/<seq>              the seq-th payment prepared, with its grant's
//	                     program and talent and its installment's due date
//	                     and year: the payments register is a scan of p/
//	y/<seq>/<k>          the same record, as the k-th payment of the
//	                     seq-th grant: a grant read back reads its
//	                     payments side by side, not one block each
//	q/<code>/<seq>       a grant or payment waiting in a queue (see
//	q/d/<due>/<seq>/<n>  queueEntry), installments due by due date: an
//	                     inbox queue is a scan of its code
//	r/<reference>␀<n>    the n-th payment released or recovery received,
//	                     under its bank reference
//	s/<n>                the n-th bank statement reconciled
//	x/<item>             the statement that matched a payment or recovery
//
// (seq and n as 8 and 4 bytes big-endian, so that keys sort in order).
// Records are in the binary form of bincodec.go, the grant's head and
// statements in JSON. Open reads the counts and the notice days only.
const (
	workSchema = 3
	// workCached is how many grants the model keeps in memory between
	// commits; the rest are read from disk when an event needs them.
	workCached = 20_000
)

// workDisk is the model's store and what was folded since the last Save.
// Every change is noted in pend (a nil value deletes) before queries read
// it, so that a query reads pend over the store: the state the feed has
// folded, whether committed or not.
type workDisk struct {
	vs   *viewstore.Model
	pend map[string][]byte
	// sorted lists pend's keys in order, for scans; stale once pend
	// changed, until a query sorts it again (under the write lock).
	sorted []string
	stale  bool
	dirty  map[*workGrant]bool
	count  struct{ grants, payments, statements, bankItems int }
	// savedCount is the count as last noted in pend.
	savedCount [4]int
	// err is the first record found unreadable: the store is damaged,
	// and the next Save fails with it, which stops the feed.
	err atomic.Pointer[error]

	// memo keeps what queries looked up for every row (talents, and
	// which statement matched a payment), so that lists do not read
	// them again; concurrent queries share it under memoMu. Talents are
	// never changed once registered; a statement reconciled clears what
	// matched.
	memoMu     sync.Mutex
	names      map[string]*workTalent
	reconciled map[string]string
}

// memoLimit bounds each memo: past it, a memo starts again empty.
const memoLimit = 100_000

// grantSaved is what the store holds of a grant, by hashes of its records.
type grantSaved struct {
	head       uint64
	inst, pays []uint64
	entries    map[string]uint64
}

func (d *workDisk) grantChanged(g *workGrant) {
	if d != nil {
		d.dirty[g] = true
	}
}

func (d *workDisk) fail(err error) {
	err = fmt.Errorf("projections: work: the store is damaged: %w", err)
	d.err.CompareAndSwap(nil, &err)
}

func (d *workDisk) set(k []byte, v []byte) {
	if v == nil {
		v = []byte{}
	}
	d.pend[string(k)] = v
	d.stale = true
}

func (d *workDisk) del(k string) {
	d.pend[k] = nil
	d.stale = true
}

// sortPend sorts pend's keys for scans, if they changed.
func (d *workDisk) sortPend() {
	if !d.stale {
		return
	}
	d.sorted = d.sorted[:0]
	for k := range d.pend {
		d.sorted = append(d.sorted, k)
	}
	slices.Sort(d.sorted)
	d.stale = false
}

// get returns the value of k, folded or committed, nil when none.
func (d *workDisk) get(k []byte) []byte {
	if v, ok := d.pend[string(k)]; ok {
		return v
	}
	v, err := d.vs.Get(k)
	if err != nil {
		d.fail(err)
		return nil
	}
	return v
}

// scan calls f with the keys from lo to hi (exclusive) folded or
// committed, in order, until f returns false. It reads pend's sorted keys:
// the caller holds the model through readLock.
func (d *workDisk) scan(lo, hi []byte, f func(k, v []byte) bool) {
	i0, _ := slices.BinarySearch(d.sorted, string(lo))
	i1, _ := slices.BinarySearch(d.sorted, string(hi))
	pk := d.sorted[i0:max(i0, i1)]
	i, stopped := 0, false
	emit := func(k, v []byte) bool {
		if v == nil {
			return true
		}
		if !f(k, v) {
			stopped = true
			return false
		}
		return true
	}
	err := d.vs.ScanRange(lo, hi, func(k, v []byte) bool {
		for i < len(pk) && pk[i] < string(k) {
			if !emit([]byte(pk[i]), d.pend[pk[i]]) {
				return false
			}
			i++
		}
		if i < len(pk) && pk[i] == string(k) {
			v = d.pend[pk[i]]
			i++
		}
		return emit(k, v)
	})
	if err != nil {
		d.fail(err)
		return
	}
	for ; !stopped && i < len(pk); i++ {
		emit([]byte(pk[i]), d.pend[pk[i]])
	}
}

func prefixAfter(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0xff, 0xff, 0xff, 0xff}
}

func seqKey(prefix string, seq int) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefix), uint64(seq))
}

func installmentKey(seq, n int) []byte {
	k := binary.BigEndian.AppendUint64([]byte("i/"), uint64(seq))
	k = append(k, '/')
	return binary.BigEndian.AppendUint32(k, uint32(n))
}

func queueKey(e *queueEntry) []byte {
	k := []byte{'q', '/', e.code, '/'}
	if e.code == codeDue {
		k = append(append(k, e.since...), '/')
		k = binary.BigEndian.AppendUint64(k, uint64(e.seq))
		return binary.BigEndian.AppendUint32(k, uint32(e.n))
	}
	return binary.BigEndian.AppendUint64(k, uint64(e.seq))
}

// workGrantHead is a grant's head as stored.
type workGrantHead struct {
	View      *GrantView `json:"view"`
	Fen       [10]int64  `json:"fen"`
	Seq       int        `json:"seq"`
	AppliedBy string     `json:"applied_by"`
	Upheld    bool       `json:"upheld,omitempty"`
	Pays      []int      `json:"pays"`
	// Inst is how many installments the grant has.
	Inst int `json:"installments"`
}

func (g *workGrant) head() ([]byte, error) {
	v := g.view
	v.Installments, v.Payments = nil, nil
	f := &v.fen
	return json.Marshal(workGrantHead{View: &v, Fen: [10]int64{f.requested, f.award, f.deduction, f.amount, f.paid, f.due,
		f.assessed, f.recovered, f.waived, f.released}, Seq: g.seq, AppliedBy: g.appliedBy, Upheld: g.upheld, Pays: g.pays,
		Inst: len(g.view.Installments)})
}

func (g *workGrant) installmentBytes(i int) []byte {
	e := enc{b: make([]byte, 0, 96)}
	e.b = append(e.b, recordV1)
	e.str(g.view.ID)
	e.str(g.view.ProgramID)
	e.str(g.view.TalentID)
	e.installment(&g.view.Installments[i])
	return e.b
}

func decodeInstallment(key, v []byte) (installmentRecord, error) {
	var r installmentRecord
	if len(key) != 2+8+1+4 || len(v) == 0 || v[0] != recordV1 {
		return r, errShortRecord
	}
	r.grantSeq = int(binary.BigEndian.Uint64(key[2:]))
	d := dec{b: v[1:]}
	r.grant, r.program, r.talent = d.str(), d.str(), d.str()
	d.installment(&r.in)
	return r, d.done()
}

func (g *workGrant) paymentBytes(k int) []byte {
	r := g.paymentRecord(k)
	e := enc{b: make([]byte, 0, 160)}
	e.b = append(e.b, recordV1)
	e.payment(&r.p)
	e.str(r.program)
	e.str(r.talent)
	e.str(r.due)
	e.int(int64(r.instFY))
	return e.b
}

func decodePayment(key, v []byte) (paymentRecord, error) {
	if len(key) != 2+8 {
		return paymentRecord{}, errShortRecord
	}
	r, err := decodePaymentValue(v)
	r.seq = int(binary.BigEndian.Uint64(key[2:]))
	return r, err
}

// grantPaymentKey is the key of the k-th payment of the seq-th grant.
func grantPaymentKey(seq, k int) []byte {
	key := binary.BigEndian.AppendUint64([]byte("y/"), uint64(seq))
	key = append(key, '/')
	return binary.BigEndian.AppendUint32(key, uint32(k))
}

// decodePaymentValue decodes a payment record, its place in the register
// (seq) left zero.
func decodePaymentValue(v []byte) (paymentRecord, error) {
	var r paymentRecord
	if len(v) == 0 || v[0] != recordV1 {
		return r, errShortRecord
	}
	d := dec{b: v[1:]}
	d.payment(&r.p)
	r.program, r.talent, r.due = d.str(), d.str(), d.str()
	r.instFY = int(d.int())
	return r, d.done()
}

func entryBytes(x *queueEntry) []byte {
	e := enc{b: make([]byte, 0, 128)}
	e.b = append(e.b, recordV1, x.code)
	e.int(int64(x.seq))
	e.str(x.state)
	e.str(x.grantID)
	e.str(x.paymentID)
	e.str(x.programID)
	e.str(x.talentID)
	e.int(int64(x.n))
	e.int(x.amount)
	e.str(x.since)
	e.str(x.by)
	e.str(x.reviewer)
	e.bool(x.reviewed)
	return e.b
}

func decodeEntry(v []byte) (queueEntry, error) {
	var x queueEntry
	if len(v) < 2 || v[0] != recordV1 {
		return x, errShortRecord
	}
	x.code = v[1]
	d := dec{b: v[2:]}
	x.seq = int(d.int())
	x.state, x.grantID, x.paymentID, x.programID, x.talentID = d.str(), d.str(), d.str(), d.str(), d.str()
	x.n = int(d.int())
	x.amount = d.int()
	x.since, x.by, x.reviewer = d.str(), d.str(), d.str()
	x.reviewed = d.bool()
	return x, d.done()
}

// allEntries returns a grant's entries in every queue, its payments'
// included.
func (g *workGrant) allEntries() []queueEntry {
	out := g.entries()
	for k := range g.view.Payments {
		if e, ok := g.paymentEntry(k); ok {
			out = append(out, e)
		}
	}
	return out
}

// loadGrant reads a grant from the store, nil when there is none.
func (d *workDisk) loadGrant(id string) *workGrant {
	hb := d.get([]byte("g/" + id))
	if hb == nil {
		return nil
	}
	var h workGrantHead
	if err := json.Unmarshal(hb, &h); err != nil || h.View == nil {
		d.fail(fmt.Errorf("grant %s: %v", id, err))
		return nil
	}
	g := &workGrant{seq: h.Seq, view: *h.View, appliedBy: h.AppliedBy, upheld: h.Upheld, pays: h.Pays}
	x := h.Fen
	g.view.fen = grantFen{requested: x[0], award: x[1], deduction: x[2], amount: x[3], paid: x[4], due: x[5], assessed: x[6],
		recovered: x[7], waived: x[8], released: x[9]}
	s := &grantSaved{head: recordHash(hb), entries: map[string]uint64{}}
	g.view.Installments = []InstallmentView{}
	g.view.Payments = make([]PaymentView, 0, len(g.pays))
	// The installments and the payments, in key order through one
	// iterator: their keys lie side by side (i/<seq>/…, y/<seq>/…), so
	// each seek mostly reads the block the last one read. What was
	// folded since the last commit (pend) lies over the store.
	keys := make([]string, 0, h.Inst+len(g.pays))
	for n := 1; n <= h.Inst; n++ {
		keys = append(keys, string(installmentKey(g.seq, n)))
	}
	for k := range g.pays {
		keys = append(keys, string(grantPaymentKey(g.seq, k)))
	}
	var bad error
	err := d.vs.GetSorted(keys, func(i int, v []byte) error {
		if pv, ok := d.pend[keys[i]]; ok {
			v = pv
		}
		if n := i + 1; n <= h.Inst {
			r, err := decodeInstallment([]byte(keys[i]), v)
			if err != nil || r.in.N != n {
				return fmt.Errorf("grant %s: installment %d: %v", id, n, err)
			}
			g.view.Installments = append(g.view.Installments, r.in)
			s.inst = append(s.inst, recordHash(v))
			return nil
		}
		k := i - h.Inst
		r, err := decodePaymentValue(v)
		if err != nil || r.p.ID == "" {
			return fmt.Errorf("grant %s: payment %d: %v", id, g.pays[k], err)
		}
		g.view.Payments = append(g.view.Payments, r.p)
		s.pays = append(s.pays, recordHash(v))
		return nil
	})
	if err != nil {
		bad = err
	}
	if bad != nil {
		d.fail(bad)
		return nil
	}
	for _, e := range g.allEntries() {
		s.entries[string(queueKey(&e))] = recordHash(entryBytes(&e))
	}
	g.saved = s
	return g
}

// flush notes in pend what the grants folded since the last flush changed.
func (d *workDisk) flush() {
	for g := range d.dirty {
		if err := d.flushGrant(g); err != nil {
			d.fail(err)
		}
	}
	clear(d.dirty)
	if c := [4]int{d.count.grants, d.count.payments, d.count.statements, d.count.bankItems}; c != d.savedCount {
		e := enc{}
		for _, n := range c {
			e.int(int64(n))
		}
		d.set([]byte("c"), e.b)
		d.savedCount = c
	}
}

func (d *workDisk) flushGrant(g *workGrant) error {
	s := g.saved
	if s == nil {
		s = &grantSaved{entries: map[string]uint64{}}
		g.saved = s
	}
	hb, err := g.head()
	if err != nil {
		return err
	}
	if h := recordHash(hb); h != s.head {
		d.set([]byte("g/"+g.view.ID), hb)
		s.head = h
	}
	all := g.marks.all
	g.marks.each(len(g.view.Installments), len(g.view.Payments), func(i int) {
		if v := g.installmentBytes(i); saveHash(&s.inst, i, recordHash(v)) {
			d.set(installmentKey(g.seq, i+1), v)
		}
	}, func(k int) {
		if v := g.paymentBytes(k); saveHash(&s.pays, k, recordHash(v)) {
			d.set(seqKey("p/", g.pays[k]), v)
			d.set(grantPaymentKey(g.seq, k), v)
		}
	})
	if all {
		for i := len(g.view.Installments); i < len(s.inst); i++ {
			d.del(string(installmentKey(g.seq, i+1)))
		}
		s.inst = s.inst[:min(len(s.inst), len(g.view.Installments))]
	}
	now := map[string]uint64{}
	for _, e := range g.allEntries() {
		k, v := string(queueKey(&e)), entryBytes(&e)
		h := recordHash(v)
		now[k] = h
		if s.entries[k] != h {
			d.set([]byte(k), v)
		}
	}
	for k := range s.entries {
		if _, ok := now[k]; !ok {
			d.del(k)
		}
	}
	s.entries = now
	return nil
}

func (d *workDisk) setNotice(program string, days int) {
	e := enc{}
	e.int(int64(days))
	d.set([]byte("n/"+program), e.b)
}

func (d *workDisk) setTalent(id string, t *workTalent) {
	e := enc{b: []byte{recordV1}}
	e.str(t.name)
	e.str(t.bankAccount)
	e.str(t.bankName)
	d.set([]byte("t/"+id), e.b)
	d.memoMu.Lock()
	delete(d.names, id)
	d.memoMu.Unlock()
}

func (d *workDisk) talent(id string) *workTalent {
	d.memoMu.Lock()
	t, ok := d.names[id]
	d.memoMu.Unlock()
	if ok {
		return t
	}
	t = d.readTalent(id)
	d.memoMu.Lock()
	if d.names == nil || len(d.names) >= memoLimit {
		d.names = map[string]*workTalent{}
	}
	d.names[id] = t
	d.memoMu.Unlock()
	return t
}

func (d *workDisk) readTalent(id string) *workTalent {
	v := d.get([]byte("t/" + id))
	if v == nil {
		return nil
	}
	if v[0] != recordV1 {
		d.fail(fmt.Errorf("talent %s: %w", id, errShortRecord))
		return nil
	}
	x := dec{b: v[1:]}
	t := &workTalent{name: x.str(), bankAccount: x.str(), bankName: x.str()}
	if err := x.done(); err != nil {
		d.fail(fmt.Errorf("talent %s: %w", id, err))
		return nil
	}
	return t
}

func (d *workDisk) bankItems(ref string) []*bankItem {
	prefix := []byte("r/" + ref + "\x00")
	var out []*bankItem
	d.scan(prefix, prefixAfter(prefix), func(_, v []byte) bool {
		x := dec{b: v}
		it := &bankItem{kind: x.str(), grantID: x.str(), paymentID: x.str(), paySeq: int(x.int()), amount: x.int()}
		if err := x.done(); err != nil {
			d.fail(fmt.Errorf("bank reference %s: %w", ref, err))
			out = nil
			return false
		}
		it.key = matchKey(it.kind, it.paymentID, it.grantID, ref)
		out = append(out, it)
		return true
	})
	return out
}

// addBankItem records an item under its reference, after those recorded
// before: written once, without reading the others.
func (d *workDisk) addBankItem(ref string, it *bankItem) {
	e := enc{}
	e.str(it.kind)
	e.str(it.grantID)
	e.str(it.paymentID)
	e.int(int64(it.paySeq))
	e.int(it.amount)
	d.set(seqKey("r/"+ref+"\x00", d.count.bankItems), e.b)
	d.count.bankItems++
}

func (d *workDisk) paymentState(seq int) string {
	if seq < 0 {
		return ""
	}
	k := seqKey("p/", seq)
	v := d.get(k)
	if v == nil {
		return ""
	}
	r, err := decodePayment(k, v)
	if err != nil {
		d.fail(fmt.Errorf("payment %d: %w", seq, err))
		return ""
	}
	return r.p.State
}

func (d *workDisk) reconciledIn(key string) string {
	d.memoMu.Lock()
	st, ok := d.reconciled[key]
	d.memoMu.Unlock()
	if ok {
		return st
	}
	st = string(d.get([]byte("x/" + key)))
	d.memoMu.Lock()
	if d.reconciled == nil || len(d.reconciled) >= memoLimit {
		d.reconciled = map[string]string{}
	}
	d.reconciled[key] = st
	d.memoMu.Unlock()
	return st
}

func (d *workDisk) addStatement(s *domain.BankStatementReconciled) {
	v, err := json.Marshal(s)
	if err != nil {
		d.fail(err)
		return
	}
	d.set(seqKey("s/", d.count.statements), v)
	d.count.statements++
	d.memoMu.Lock()
	d.reconciled = nil
	d.memoMu.Unlock()
	for _, l := range s.Lines {
		if l.Outcome == domain.LineMatched {
			d.set([]byte("x/"+matchKey(l.Kind, l.PaymentID, l.GrantID, l.Reference)), []byte(s.StatementID))
		}
	}
}

func (d *workDisk) eachStatement(f func(*domain.BankStatementReconciled) bool) {
	d.scan([]byte("s/"), []byte("s0"), func(k, v []byte) bool {
		s := &domain.BankStatementReconciled{}
		if err := json.Unmarshal(v, s); err != nil {
			d.fail(fmt.Errorf("statement: %w", err))
			return false
		}
		return f(s)
	})
}

func (d *workDisk) eachPayment(from, to int, f func(*paymentRecord) bool) {
	hi := []byte("p0")
	if to >= 0 {
		hi = seqKey("p/", to)
	}
	d.scan(seqKey("p/", from), hi, func(k, v []byte) bool {
		r, err := decodePayment(k, v)
		if err != nil {
			d.fail(fmt.Errorf("payment: %w", err))
			return false
		}
		return f(&r)
	})
}

func (d *workDisk) eachInstallment(f func(*installmentRecord)) {
	d.scan([]byte("i/"), []byte("i0"), func(k, v []byte) bool {
		r, err := decodeInstallment(k, v)
		if err != nil {
			d.fail(fmt.Errorf("installment: %w", err))
			return false
		}
		f(&r)
		return true
	})
}

func (d *workDisk) eachEntry(code byte, today string, f func(*queueEntry)) {
	prefix := []byte{'q', '/', code, '/'}
	d.scan(prefix, prefixAfter(prefix), func(k, v []byte) bool {
		if code == codeDue && string(k[len(prefix):min(len(k), len(prefix)+len(today))]) > today {
			return false
		}
		e, err := decodeEntry(v)
		if err != nil || e.code != code {
			d.fail(fmt.Errorf("queue entry: %v", err))
			return false
		}
		f(&e)
		return true
	})
}

// readLock holds the model for a query and returns what releases it: the
// read lock, or, when grants were folded since they were last noted in
// pend or pend changed since its keys were sorted, the write lock, to
// note and sort them first.
func (w *Work) readLock() func() {
	w.mu.RLock()
	if d := w.disk; d == nil || (len(d.dirty) == 0 && !d.stale) {
		return w.mu.RUnlock
	}
	w.mu.RUnlock()
	w.mu.Lock()
	w.disk.flush()
	w.disk.sortPend()
	return w.mu.Unlock
}

// Schema implements Persistent.
func (w *Work) Schema() uint32 { return workSchema }

// Open implements Persistent: it reads the counts and the programs'
// notice days; the rest stays on disk.
func (w *Work) Open(vs *viewstore.Model) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := &workDisk{vs: vs, pend: map[string][]byte{}, dirty: map[*workGrant]bool{}}
	c, err := vs.Get([]byte("c"))
	if err != nil {
		return err
	}
	if c != nil {
		x := dec{b: c}
		d.count.grants, d.count.payments, d.count.statements, d.count.bankItems = int(x.int()), int(x.int()), int(x.int()), int(x.int())
		if err := x.done(); err != nil {
			return fmt.Errorf("work: stored counts unreadable: %w", err)
		}
		d.savedCount = [4]int{d.count.grants, d.count.payments, d.count.statements, d.count.bankItems}
	}
	var bad error
	err = vs.Scan([]byte("n/"), func(k, v []byte) bool {
		x := dec{b: v}
		w.notice[string(k[2:])] = int(x.int())
		bad = x.done()
		return bad == nil
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return fmt.Errorf("work: stored notice days unreadable: %w", err)
	}
	w.disk = d
	return nil
}

// Save implements Persistent.
func (w *Work) Save(b *viewstore.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.disk
	d.flush()
	if err := d.err.Load(); err != nil {
		return *err
	}
	for k, v := range d.pend {
		if v == nil {
			b.Delete([]byte(k))
		} else {
			b.Set([]byte(k), v)
		}
	}
	// The changes stay readable from pend until the batch is committed
	// (Committed): the store shows them only then.
	return nil
}

// Committed implements committer: the saved changes are in the store now.
func (w *Work) Committed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.disk
	clear(d.pend)
	d.sorted, d.stale = d.sorted[:0], false
	// Every grant is saved now.
	shrinkCache(w.byID, workCached, nil)
}

// The talent index on disk: "e/<n>" (n in 16 hex digits) the n-th talent
// registered, its name and employer folded, category, tier, overseas,
// registration and departure; written when it changed, read back whole at
// start, since a search scans every talent.
const talentIndexSchema = 1

type talentEntryStored struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Employer     string `json:"employer"`
	Category     string `json:"category,omitempty"`
	Tier         string `json:"tier"`
	Overseas     bool   `json:"overseas,omitempty"`
	Departed     string `json:"departed,omitempty"`
	RegisteredOn string `json:"registered_on"`
}

// Schema implements Persistent.
func (x *TalentIndex) Schema() uint32 { return talentIndexSchema }

// Open implements Persistent: it reads the whole index.
func (x *TalentIndex) Open(vs *viewstore.Model) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	var bad error
	err := vs.Scan([]byte("e/"), func(k, v []byte) bool {
		var s talentEntryStored
		if err := json.Unmarshal(v, &s); err != nil {
			bad = fmt.Errorf("talent_index: stored talent unreadable: %w", err)
			return false
		}
		if string(k[2:]) != string(orderKey("", len(x.entries))) {
			bad = fmt.Errorf("talent_index: talent %d missing", len(x.entries))
			return false
		}
		t := &talentEntry{seq: len(x.entries), id: s.ID, name: s.Name, employer: s.Employer, category: s.Category, tier: s.Tier,
			overseas: s.Overseas, departed: s.Departed, registeredOn: s.RegisteredOn}
		x.entries = append(x.entries, t)
		x.byID[t.id] = t
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return err
	}
	x.dirty = map[*talentEntry]bool{}
	return nil
}

// Save implements Persistent.
func (x *TalentIndex) Save(b *viewstore.Batch) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for t := range x.dirty {
		v, err := json.Marshal(talentEntryStored{ID: t.id, Name: t.name, Employer: t.employer, Category: t.category, Tier: t.tier,
			Overseas: t.overseas, Departed: t.departed, RegisteredOn: t.registeredOn})
		if err != nil {
			return err
		}
		b.Set(orderKey("e/", t.seq), v)
	}
	return nil
}

// Committed implements committer: what Save wrote is stored (see
// Talents.Committed).
func (x *TalentIndex) Committed() {
	x.mu.Lock()
	defer x.mu.Unlock()
	clear(x.dirty)
}

var (
	_ Persistent = (*Work)(nil)
	_ Persistent = (*TalentIndex)(nil)
)

// Damaged implements Damaged.
func (w *Work) Damaged() error {
	w.mu.RLock()
	d := w.disk
	w.mu.RUnlock()
	if d == nil {
		return nil
	}
	if err := d.err.Load(); err != nil {
		return *err
	}
	return nil
}
