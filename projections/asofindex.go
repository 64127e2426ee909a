package projections

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections/viewstore"
)

// AsOfIndex answers the trial balance and the budgets at a point in time
// (see PointInTime) without folding the log again: it keeps what every
// event changes in each account and each budget, summed by business date
// and by recording time, so that a question about any moment reads a
// number of sums bounded by the accounts, the budgets and the calendar,
// whatever the length of the log.
//
// Each event is a point with two coordinates: its business date E (see
// EffectiveDate) and its recording time R. The books at pt are the sum of
// the points with E ≤ as_of and R ≤ recorded_as_of. The index keeps, for
// each account and budget (a counter, its figures a vector of int64 fen):
//
//   - by business date: the sums of each year, month and day of E. The
//     books as of a date are the years before its year, the months of its
//     year before its month, and the days of its month up to it;
//   - by recording time: the sums of each year, month, day and hour of R
//     (in UTC), each with the range of business dates it holds, the sums
//     of each (recording day, business day), and each event under its
//     exact recording time. The books as recorded by an instant are the
//     whole years, months, days and hours before it and the events of its
//     hour up to it. Asked both, a bucket whose
//     business dates all lie on or before the date counts whole, one whose
//     dates all lie after it not at all, and one that straddles the date
//     is read in its parts: months, days, then the (recording day,
//     business day) sums; hours by their events. Business
//     dates lie within the backdating window of their recording, so only
//     the buckets recorded in that window after the date straddle it.
//
// Recording times need not follow the log's order (two replicas' clocks,
// commands decided in one order and appended in another): the index never
// assumes they do. The position an answer reports, that of the last event
// it holds, is kept the same way, as the greatest position in each bucket.
//
// A release of a reservation takes the amount off the year's forward
// commitments only when the grant's forward commitment to the year is in
// the books too. That part of the release is kept as points of its own at
// the later of the two events' coordinates (the books hold both exactly
// when they hold that point); a grant with several forward commitments to
// one year gets the union of their quadrants, as a staircase of points.
//
// Program definitions are few: they are kept whole with their coordinates
// and filtered at each question.
//
// It is persistent (see persist_asof.go): the sums live in its views
// store, and memory holds only what was folded since the last commit, the
// names of the counters and the program definitions.
type AsOfIndex struct {
	tally
	mu sync.RWMutex
	// damaged is what a query found damaged in the stored index.
	damaged atomic.Pointer[error]
	// names is each counter's name by ID: "a" and an account, or "b" and
	// a budget's program, "\x01" and its fiscal year; ids the reverse.
	names []string
	ids   map[string]uint32
	// saved is how many names, and savedDefs how many definitions, are
	// in the store.
	saved, savedDefs int
	defs             []programDef
	// pending holds what was folded since the last Save; committing what
	// the last Save wrote, until the next batch: the store holds it once
	// its generation (key "g") reaches committingGen.
	pending, committing *overlay
	gen, committingGen  uint64
	// sortMu guards the overlays' sorting, which queries do.
	sortMu sync.Mutex
	// irregular is set once an event's business date is not YYYY-MM-DD:
	// questions by business date are then answered by a replay.
	irregular bool
	vs        *viewstore.Model
	// high is the greatest bucket stored of each class of keys (see
	// keyClass): Save reads no stored value for a key after it.
	high map[string]string
	pos  eventstore.Position
	// kb is a scratch buffer for keys.
	kb []byte
}

type programDef struct {
	Pos  eventstore.Position `json:"pos"`
	E    int64               `json:"e"`
	R    time.Time           `json:"r"`
	View *ProgramView        `json:"view"`
}

// Counter families: the first byte of a counter's name and of its keys.
// The general ledger's accounts (the control accounts among them, each
// summing its subsidiary ledger) are one family and the subsidiary
// accounts another, so that the trial balance reads the general ledger's
// sums alone, whatever the number of talents.
const (
	famAccount    = 'a'
	famBudget     = 'b'
	famSubsidiary = 's'
)

// An account's figures: debits, credits and how many postings touched it
// (it is in the trial balance when above zero).
const (
	aDebits = iota
	aCredits
	aPostings
	accountFigures
)

// NewAsOfIndex returns an empty index.
func NewAsOfIndex() *AsOfIndex {
	return &AsOfIndex{ids: map[string]uint32{}, pending: newOverlay()}
}

// Name implements Model.
func (m *AsOfIndex) Name() string { return "asof" }

// Err implements Failing.
func (m *AsOfIndex) Err() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.err
}

// item is what one event adds to one counter.
type item struct {
	cid uint32
	fam byte
	v   []int64
}

// Apply implements Model.
func (m *AsOfIndex) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// The last Save's batch is committed by now: the feed commits it
	// before it folds again.
	m.committing = nil
	for i := range b.Changes {
		m.apply(&b.Changes[i])
	}
	m.pos = b.Last
}

func (m *AsOfIndex) apply(c *Change) {
	t := &m.tally
	ev := c.Event
	eff := EffectiveDate(ev)
	e, ok := dateInt(eff)
	if !ok {
		m.irregular = true
		eff, e = "", 0
	}
	p := point{e: e, eff: eff, r: ev.Metadata.RecordedAt}
	var items []item
	for _, ps := range domain.Postings(c.Payload) {
		f := t.fen(ps.Amount)
		items = m.accountItems(items, ps.Destination, []int64{f, 0, 1})
		items = m.accountItems(items, ps.Source, []int64{0, f, 1})
	}
	var derived []struct {
		p    point
		it   item
		sign int64
	}
	budgetEffects(t, c.Payload, func(k budgetKey, d *budgetDelta) {
		it := item{m.cid(budgetName(k)), famBudget, append([]int64(nil), d.v[:]...)}
		if d.forwardGrant != "" {
			for _, fp := range m.forwardFront(forwardKey{k.program, k.fy, d.forwardGrant}, p) {
				if fp.p.e == p.e && fp.p.r.Equal(p.r) {
					it.v[bForwardCommitted] = t.add(it.v[bForwardCommitted], fp.sign*d.forwardRelease)
					continue
				}
				v := make([]int64, budgetFigures)
				v[bForwardCommitted] = d.forwardRelease
				derived = append(derived, struct {
					p    point
					it   item
					sign int64
				}{fp.p, item{it.cid, famBudget, v}, fp.sign})
			}
		}
		items = append(items, it)
	})
	switch e := c.Payload.(type) {
	case *domain.ProgramDefined:
		m.defs = append(m.defs, programDef{Pos: ev.Position, E: p.e, R: p.r, View: programView(e)})
	case *domain.ForwardCommitted:
		m.pending.merge(forwardPointKey(forwardKey{e.ProgramID, e.FiscalYear, e.GrantID}), p.encode(), t)
	}
	m.record(p, ev.Position, 0, true, items)
	for i, d := range derived {
		if d.sign < 0 {
			for j := range d.it.v {
				d.it.v[j] = t.sub(0, d.it.v[j])
			}
		}
		m.record(d.p, ev.Position, byte(i+1), false, []item{d.it})
	}
}

// accountItems adds what a posting puts in an account: a general-ledger
// account's counter, or a subsidiary account's and its control account's.
func (m *AsOfIndex) accountItems(items []item, account string, v []int64) []item {
	if cn, ok := domain.ControlAccount(account); ok {
		return append(items, item{m.counterID(famSubsidiary, account), famSubsidiary, v},
			item{m.counterID(famAccount, cn), famAccount, append([]int64(nil), v...)})
	}
	return append(items, item{m.counterID(famAccount, account), famAccount, v})
}

func budgetName(k budgetKey) string { return "b" + k.program + "\x01" + strconv.Itoa(k.fy) }

// counterID is cid for an account's counter of family fam, named in the
// scratch buffer so that a counter already known costs no allocation.
func (m *AsOfIndex) counterID(fam byte, account string) uint32 {
	m.kb = append(append(m.kb[:0], fam), account...)
	if id, ok := m.ids[string(m.kb)]; ok {
		return id
	}
	return m.cid(string(m.kb))
}

// cid returns a counter's ID, giving it one when it is new.
func (m *AsOfIndex) cid(name string) uint32 {
	id, ok := m.ids[name]
	if !ok {
		id = uint32(len(m.names))
		m.names = append(m.names, name)
		m.ids[name] = id
	}
	return id
}

// point is where an event, or a part of one, lies: its business date (as
// dateInt and as the string) and its recording time.
type point struct {
	e   int64
	eff string
	r   time.Time
}

func (p point) encode() []int64 { return []int64{p.e, p.r.Unix(), int64(p.r.Nanosecond())} }

func decodePoints(v []int64) []point {
	var out []point
	for i := 0; i+3 <= len(v); i += 3 {
		out = append(out, point{e: v[i], eff: dateString(v[i]), r: time.Unix(v[i+1], v[i+2]).UTC()})
	}
	return out
}

// dateInt turns a business date into an integer in the same order (0 for
// none); ok is false for anything but YYYY-MM-DD.
func dateInt(s string) (int64, bool) {
	if s == "" {
		return 0, true
	}
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	var n int64
	for i := range 10 {
		if i == 4 || i == 7 {
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func dateString(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", n/10000, n/100%100, n%100)
}

// signedPoint is a point of a staircase and the sign it counts with.
type signedPoint struct {
	p    point
	sign int64
}

// forwardFront returns where the part of a release at y that depends on
// the grant's forward commitments counts: the books hold a forward
// commitment x and the release exactly when they hold max(x, y), so the
// release counts over the union of those points' quadrants, which is the
// staircase of the minimal ones (each +1) less the corners between two
// neighbours (each −1). Empty when the grant has no forward commitment
// to the year.
func (m *AsOfIndex) forwardFront(k forwardKey, y point) []signedPoint {
	xs := m.forwardPoints(k)
	if len(xs) == 0 {
		return nil
	}
	ps := make([]point, len(xs))
	for i, x := range xs {
		ps[i] = y
		if x.e > y.e {
			ps[i].e, ps[i].eff = x.e, x.eff
		}
		if x.r.After(y.r) {
			ps[i].r = x.r
		}
	}
	// The minimal points: by business date, then recording time; a point
	// is minimal when it was recorded before every point kept so far.
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].e != ps[j].e {
			return ps[i].e < ps[j].e
		}
		return ps[i].r.Before(ps[j].r)
	})
	var front []point
	for _, q := range ps {
		if len(front) == 0 || q.r.Before(front[len(front)-1].r) {
			front = append(front, q)
		}
	}
	out := make([]signedPoint, 0, 2*len(front)-1)
	for i, q := range front {
		out = append(out, signedPoint{q, 1})
		if i+1 < len(front) {
			out = append(out, signedPoint{point{e: front[i+1].e, eff: front[i+1].eff, r: q.r}, -1})
		}
	}
	return out
}

// forwardPoints returns the points of a grant's forward commitments to a
// year folded so far.
func (m *AsOfIndex) forwardPoints(k forwardKey) []point {
	key := forwardPointKey(k)
	var v []int64
	if m.vs != nil {
		raw, err := m.vs.Get([]byte(key))
		if err != nil {
			m.fail("%v", err)
			return nil
		}
		if v, err = decodeInts(raw); err != nil {
			m.fail("%s: %v", m.Name(), err)
			return nil
		}
	}
	v = append(v, m.pending.vals[key]...)
	return decodePoints(v)
}

func forwardPointKey(k forwardKey) string {
	return fmt.Sprintf("w%s\x00%d\x00%s", k.program, k.fy, k.grant)
}

// record adds a point's items to every sum it belongs to; an event's own
// point (isEvent) also moves the greatest position of each.
func (m *AsOfIndex) record(p point, pos eventstore.Position, sub byte, isEvent bool, items []item) {
	t := &m.tally
	o := m.pending
	var meta []int64
	if isEvent {
		meta = []int64{int64(pos.Commit), int64(pos.Prepare), p.e, p.e}
	} else {
		meta = []int64{0, 0, p.e, p.e}
	}
	eb := [3]string{}
	if p.eff != "" {
		eb = [3]string{p.eff[:4], p.eff[:7], p.eff}
	}
	rs := p.r.UTC().Format(hourLayout)
	rb := [4]string{rs[:4], rs[:7], rs[:10], rs[:13]}
	for l, b := range eb {
		if isEvent {
			m.kb = append(append(m.kb[:0], 'f', byte('1'+l)), b...)
			o.mergeBytes(m.kb, meta, t)
		}
		for _, it := range items {
			m.kb = appendSumKey(m.kb[:0], 'e', it.fam, byte('1'+l), b, it.cid)
			o.mergeBytes(m.kb, it.v, t)
		}
	}
	for l, b := range rb {
		m.kb = append(append(m.kb[:0], 's', byte('1'+l)), b...)
		o.mergeBytes(m.kb, meta, t)
		for _, it := range items {
			m.kb = appendSumKey(m.kb[:0], 'r', it.fam, byte('1'+l), b, it.cid)
			o.mergeBytes(m.kb, it.v, t)
		}
	}
	cell := rb[2] + "\x00" + p.eff
	if isEvent {
		o.merge("y"+cell, meta, t)
	}
	row := []int64{p.e, 0}
	if isEvent {
		row[1] = 1
	}
	for _, it := range items {
		m.kb = appendSumKey(m.kb[:0], 'x', it.fam, 0, cell, it.cid)
		o.mergeBytes(m.kb, it.v, t)
		row = append(row, int64(it.fam), int64(it.cid), int64(len(it.v)))
		row = append(row, it.v...)
	}
	o.merge(eventKey(p.r, pos, sub), row, t)
}

// hourLayout is the recording time's buckets: year, month, day and hour,
// in UTC.
const hourLayout = "2006-01-02T15"

// Keys. Sums: 'e' (by business date) or 'r' (by recording time), the
// family, the level ('1' year … '4' hour by recording time, '3' day by
// business date), the bucket, 0, the counter's
// ID; 'x', the family, 0, the recording day, 0, the business day, 0, the
// ID. Metas (greatest position, least and greatest business date): 'f' or
// 's', the level, the bucket; 'y', the recording day, 0, the business
// day. Events: 'v', the recording time (rtime), the position, a part
// number (0 for the event's own point).
func appendSumKey(k []byte, typ, fam, lvl byte, bucket string, cid uint32) []byte {
	k = append(k, typ, fam)
	if lvl != 0 {
		k = append(k, lvl)
	}
	k = append(k, bucket...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, cid)
}

// rtime encodes an instant in 12 bytes in the order of time.
func rtime(t time.Time) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(k, uint32(t.Nanosecond()))
}

func eventKey(r time.Time, pos eventstore.Position, sub byte) string {
	k := append([]byte{'v'}, rtime(r)...)
	k = binary.BigEndian.AppendUint64(k, pos.Commit)
	k = binary.BigEndian.AppendUint64(k, pos.Prepare)
	return string(append(k, sub))
}

// mergeInts merges src into dst, as the key's kind wants: sums add,
// metas keep the greatest position and the range of dates, a grant's
// forward points append; an event is written once.
func mergeInts(kind byte, dst, src []int64, t *tally) []int64 {
	switch kind {
	case 'e', 'r', 'x':
		for len(dst) < len(src) {
			dst = append(dst, 0)
		}
		for i, v := range src {
			dst[i] = t.add(dst[i], v)
		}
		return dst
	case 'f', 's', 'y':
		if len(dst) < 4 {
			return append(dst[:0], src...)
		}
		if src[0] > dst[0] || src[0] == dst[0] && src[1] > dst[1] {
			dst[0], dst[1] = src[0], src[1]
		}
		dst[2], dst[3] = min(dst[2], src[2]), max(dst[3], src[3])
		return dst
	case 'w':
		return append(dst, src...)
	}
	return append(dst[:0], src...)
}

// overlay is what the index folded and the store does not hold yet, in a
// map, with its keys sorted on demand for the questions' ranges.
type overlay struct {
	vals   map[string][]int64
	hint   int
	sorted []string
	fresh  []string
}

func newOverlay() *overlay { return newOverlaySized(0) }

// newOverlaySized returns an overlay that makes room for n keys at its
// first: the overlay after a commit holds about as many keys as the one
// before, and a map grown to that size step by step costs the fold more
// than one made at once. Nothing is allocated until a key comes, so an
// index at rest keeps no room it does not use.
func newOverlaySized(n int) *overlay { return &overlay{hint: n} }

// room makes the overlay's map, when it has none yet.
func (o *overlay) room() {
	if o.vals == nil {
		o.vals = make(map[string][]int64, o.hint)
		o.fresh = make([]string, 0, o.hint)
	}
}

// mergeBytes is merge for a key in a scratch buffer: it is copied only
// when new.
func (o *overlay) mergeBytes(k []byte, v []int64, t *tally) {
	o.room()
	dst, ok := o.vals[string(k)]
	switch {
	case !ok:
		// New: the key is copied, and looked up no more.
		ks := string(k)
		o.fresh = append(o.fresh, ks)
		o.vals[ks] = mergeInts(ks[0], make([]int64, 0, len(v)), v, t)
	case len(dst) >= len(v) || k[0] == 'f' || k[0] == 's' || k[0] == 'y':
		// Summed or merged in place: the map keeps the same slice.
		mergeInts(k[0], dst, v, t)
	default:
		o.vals[string(k)] = mergeInts(k[0], dst, v, t)
	}
}

func (o *overlay) merge(k string, v []int64, t *tally) {
	o.room()
	dst, ok := o.vals[k]
	if !ok {
		o.fresh = append(o.fresh, k)
		dst = make([]int64, 0, len(v))
	}
	o.vals[k] = mergeInts(k[0], dst, v, t)
}

// sort merges the keys added since the last sort into the sorted ones.
func (o *overlay) sort() {
	if len(o.fresh) == 0 {
		return
	}
	sort.Strings(o.fresh)
	out := make([]string, 0, len(o.sorted)+len(o.fresh))
	i, j := 0, 0
	for i < len(o.sorted) && j < len(o.fresh) {
		if o.sorted[i] < o.fresh[j] {
			out = append(out, o.sorted[i])
			i++
		} else {
			out = append(out, o.fresh[j])
			j++
		}
	}
	out = append(append(out, o.sorted[i:]...), o.fresh[j:]...)
	o.sorted, o.fresh = out, nil
}

// scan calls f with the keys from lo (inclusive) to hi (exclusive). The
// keys must be sorted.
func (o *overlay) scan(lo, hi string, f func(k string, v []int64)) {
	i := sort.SearchStrings(o.sorted, lo)
	for ; i < len(o.sorted) && o.sorted[i] < hi; i++ {
		f(o.sorted[i], o.vals[o.sorted[i]])
	}
}

var _ Model = (*AsOfIndex)(nil)
