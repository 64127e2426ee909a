package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections/viewstore"
)

// Serves reports whether the index answers for pt; when it does not (no
// point in time, a business date asked of a log holding an irregular one,
// or no index: a replay has none), the caller answers from the live
// models or a replay.
func (m *AsOfIndex) Serves(pt PointInTime) bool {
	if m == nil || pt.IsZero() {
		return false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return pt.AsOf == "" || !m.irregular
}

// TrialBalance returns the trial balance at pt in detail (every account),
// as BalancesAt would fold it from the log up to the index's position. It
// reads every subsidiary account's sums: its cost follows the talents.
func (m *AsOfIndex) TrialBalance(pt PointInTime) (TrialBalance, error) {
	gl, err := m.accountSums(pt, famAccount, nil)
	if err != nil {
		return TrialBalance{}, err
	}
	subs, err := m.accountSums(pt, famSubsidiary, nil)
	if err != nil {
		return TrialBalance{}, err
	}
	l := NewLedger()
	for _, a := range append(gl.lines, subs.lines...) {
		if _, ok := domain.ControlAccount(a.name); ok == (a.fam == famAccount) {
			continue // a control account's line, or a misplaced one
		}
		l.accounts[a.name] = &account{debits: a.v[aDebits], credits: a.v[aCredits], balance: l.sub(a.v[aDebits], a.v[aCredits]),
			nonNegative: domain.NonNegativeAccount(a.name)}
	}
	if err := l.Err(); err != nil {
		return TrialBalance{}, err
	}
	tb := l.TrialBalance()
	tb.AsOf, tb.RecordedAsOf, tb.Position = pt.AsOf, pt.RecordedAsOfString(), maxPos(gl.pos, subs.pos).String()
	return tb, nil
}

// ControlTrialBalance returns the trial balance at pt at control level:
// the general ledger's accounts and the control accounts' lines. It reads
// the general ledger's sums only, a number bounded by its accounts and the
// calendar, whatever the number of talents. A control line does not count
// its subsidiary accounts at a point in time, and is a violation when its
// own total is below zero (the subsidiary ledger at pt shows each account).
func (m *AsOfIndex) ControlTrialBalance(pt PointInTime) (TrialBalance, error) {
	gl, err := m.accountSums(pt, famAccount, nil)
	if err != nil {
		return TrialBalance{}, err
	}
	lines := make([]AccountBalance, 0, len(gl.lines))
	var t tally
	for _, a := range gl.lines {
		lines = append(lines, AccountBalance{Account: a.name, Debits: money(a.v[aDebits]), Credits: money(a.v[aCredits]),
			Balance: money(t.sub(a.v[aDebits], a.v[aCredits])), NonNegative: domain.NonNegativeAccount(a.name)})
	}
	if t.err != nil {
		return TrialBalance{}, t.err
	}
	tb := sumLines(lines, nil)
	tb.AsOf, tb.RecordedAsOf, tb.Position = pt.AsOf, pt.RecordedAsOfString(), gl.pos.String()
	return tb, nil
}

// Subsidiary returns a page of the subsidiary ledgers at pt. It reads
// every subsidiary account's sums at pt, then keeps the page: its cost
// follows the talents and the calendar, not the log.
func (m *AsOfIndex) Subsidiary(pt PointInTime, f SubsidiaryFilter) (SubsidiaryLedger, error) {
	want := func(name string) bool {
		cn, _ := domain.ControlAccount(name[1:])
		return f.keeps(name[1:], cn)
	}
	var names []string
	if f.Talent != "" {
		// A talent's accounts are known by name: their sums are read
		// key by key, at a cost bounded by the calendar.
		names = []string{}
		for _, cn := range domain.ControlAccounts {
			names = append(names, "s"+"talent:"+f.Talent+strings.TrimPrefix(cn, "talent:*"))
		}
	}
	subs, err := m.accountSumsOf(pt, famSubsidiary, want, names)
	if err != nil {
		return SubsidiaryLedger{}, err
	}
	sort.Slice(subs.lines, func(i, j int) bool { return subs.lines[i].name < subs.lines[j].name })
	out := SubsidiaryLedger{AsOf: pt.AsOf, RecordedAsOf: pt.RecordedAsOfString(), Position: subs.pos.String(), Accounts: []AccountBalance{}}
	var t tally
	for _, a := range subs.lines {
		if len(out.Accounts) == f.Limit {
			out.Next = out.Accounts[len(out.Accounts)-1].Account
			break
		}
		out.Accounts = append(out.Accounts, AccountBalance{Account: a.name, Debits: money(a.v[aDebits]), Credits: money(a.v[aCredits]),
			Balance: money(t.sub(a.v[aDebits], a.v[aCredits])), NonNegative: domain.NonNegativeAccount(a.name)})
	}
	return out, t.err
}

// accountLines is what a question read of one family of accounts: each
// account with postings at pt, and the greatest position.
type accountLines struct {
	lines []accountSum
	pos   eventstore.Position
}

type accountSum struct {
	name string
	fam  byte
	v    []int64
}

// accountSums reads the sums of the accounts of family fam (general
// ledger or subsidiary) that want accepts at pt.
func (m *AsOfIndex) accountSums(pt PointInTime, fam byte, want func(string) bool) (accountLines, error) {
	return m.accountSumsOf(pt, fam, want, nil)
}

// accountSumsOf is accountSums; with names not nil, of those counters
// alone (see sumsOf).
func (m *AsOfIndex) accountSumsOf(pt PointInTime, fam byte, want func(string) bool, names []string) (accountLines, error) {
	s, err := m.sumsOf(pt, fam, want, names)
	if err != nil {
		return accountLines{}, err
	}
	out := accountLines{pos: s.pos}
	for cid, v := range s.sums {
		if len(v) != accountFigures {
			return accountLines{}, fmt.Errorf("asof: account %q has %d figures: %w", s.names[cid], len(v), errIndexDamaged)
		}
		if v[aPostings] <= 0 {
			continue
		}
		out.lines = append(out.lines, accountSum{name: s.names[cid][1:], fam: fam, v: v})
	}
	return out, nil
}

func maxPos(a, b eventstore.Position) eventstore.Position {
	if a.Before(b) {
		return b
	}
	return a
}

// BudgetBooks is the programs and their budgets at a point in time, as
// the budgets model folded from the events kept would answer.
type BudgetBooks struct {
	programs map[string]*ProgramView
	order    []string
	budgets  map[budgetKey]*budget
	pos      eventstore.Position
}

// Budgets returns the programs and budgets at pt: every budget when
// program is "", else those of program (and only its year fy when fy is
// not zero).
func (m *AsOfIndex) Budgets(pt PointInTime, program string, fy int) (*BudgetBooks, error) {
	var want func(name string) bool
	switch {
	case program != "" && fy != 0:
		n := budgetName(budgetKey{program, fy})
		want = func(name string) bool { return name == n }
	case program != "":
		pre := "b" + program + "\x01"
		want = func(name string) bool { return strings.HasPrefix(name, pre) }
	}
	s, err := m.sums(pt, famBudget, want)
	if err != nil {
		return nil, err
	}
	bb := &BudgetBooks{programs: map[string]*ProgramView{}, budgets: map[budgetKey]*budget{}, pos: s.pos}
	for _, d := range s.defs {
		if pt.keeps(d.E, d.R) {
			bb.programs[d.View.ID] = d.View
			bb.order = append(bb.order, d.View.ID)
		}
	}
	for cid, v := range s.sums {
		if len(v) != budgetFigures {
			return nil, fmt.Errorf("asof: budget %q has %d figures: %w", s.names[cid], len(v), errIndexDamaged)
		}
		if v[bTouched] <= 0 {
			continue
		}
		prog, year, _ := strings.Cut(s.names[cid][1:], "\x01")
		y, err := strconv.Atoi(year)
		if err != nil {
			return nil, fmt.Errorf("asof: budget %q: %w", s.names[cid], err)
		}
		bb.budgets[budgetKey{prog, y}] = &budget{program: prog, fy: y, appropriated: v[bAppropriated], reserved: v[bReserved],
			paid: v[bPaid], forwardCommitted: v[bForwardCommitted], uncovered: v[bUncovered], carriedOver: v[bCarriedOver],
			carriedOut: v[bCarriedOut], lapsed: v[bLapsed], adjustments: v[bAdjustments], closed: v[bClosed] > 0,
			grants: int(v[bGrants])}
	}
	return bb, nil
}

// Position is the position of the last event the books hold.
func (bb *BudgetBooks) Position() eventstore.Position { return bb.pos }

// Programs lists the programs in the order they were defined, with their
// budgets.
func (bb *BudgetBooks) Programs() []ProgramView {
	out := make([]ProgramView, 0, len(bb.order))
	for _, id := range bb.order {
		out = append(out, bb.program(id))
	}
	return out
}

// Program returns one program.
func (bb *BudgetBooks) Program(id string) (ProgramView, bool) {
	if bb.programs[id] == nil {
		return ProgramView{}, false
	}
	return bb.program(id), true
}

func (bb *BudgetBooks) program(id string) ProgramView {
	return withBudgets(bb.programs[id], bb.budgets)
}

// Budget returns a program's budget for a fiscal year.
func (bb *BudgetBooks) Budget(program string, fy int) (BudgetView, bool) {
	b := bb.budgets[budgetKey{program, fy}]
	if b == nil {
		return BudgetView{}, false
	}
	return b.read(), true
}

// keeps is PointInTime.Keep for a point of the index.
func (pt PointInTime) keeps(e int64, r time.Time) bool {
	if pt.AsOf != "" {
		d, _ := dateInt(pt.AsOf)
		if e > d {
			return false
		}
	}
	return pt.RecordedAsOf.IsZero() || !r.After(pt.RecordedAsOf)
}

// asofSums is what a question read: each counter's figures, the greatest
// position, and the names and definitions as they stood.
type asofSums struct {
	tally
	fam  byte
	want func(name string) bool
	// cids, when not nil, are the only counters asked about: their sums
	// are read key by key, in the buckets the metas list, rather than by
	// ranges holding every counter's.
	cids  []uint32
	names []string
	defs  []programDef
	sums  map[uint32][]int64
	pos   eventstore.Position
	snap  *viewstore.Snapshot
	ovs   []*overlay
	err   error
}

// errNotServed is returned for a point in time the index does not answer.
var errNotServed = errors.New("projections: the as-of index does not answer for this point in time")

// sums reads the figures of the counters of family fam that want accepts
// (every one when nil) at pt.
func (m *AsOfIndex) sums(pt PointInTime, fam byte, want func(string) bool) (*asofSums, error) {
	return m.sumsOf(pt, fam, want, nil)
}

// sumsOf is sums; with names not nil, of those counters alone (read key
// by key: see asofSums.cids).
func (m *AsOfIndex) sumsOf(pt PointInTime, fam byte, want func(string) bool, names []string) (*asofSums, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if pt.IsZero() || pt.AsOf != "" && m.irregular {
		return nil, errNotServed
	}
	s := &asofSums{fam: fam, want: want, names: m.names, defs: m.defs, sums: map[uint32][]int64{}}
	if names != nil {
		s.cids = []uint32{}
		for _, n := range names {
			if id, ok := m.ids[n]; ok {
				s.cids = append(s.cids, id)
			}
		}
	}
	s.ovs = []*overlay{m.pending}
	if m.vs != nil {
		snap, err := m.vs.NewSnapshot()
		if err != nil {
			return nil, err
		}
		defer snap.Close()
		s.snap = snap
		g, err := snap.Get([]byte("g"))
		if err != nil {
			return nil, err
		}
		var gen uint64
		if len(g) == 8 {
			gen = binary.BigEndian.Uint64(g)
		}
		if m.committing != nil && gen < m.committingGen {
			s.ovs = append(s.ovs, m.committing)
		}
	}
	m.sortMu.Lock()
	for _, o := range s.ovs {
		o.sort()
	}
	m.sortMu.Unlock()
	if pt.RecordedAsOf.IsZero() {
		s.byDate(pt.AsOf)
	} else {
		s.byRecording(pt)
	}
	if errors.Is(s.err, errIndexDamaged) {
		m.damaged.CompareAndSwap(nil, &s.err)
	}
	if s.err == nil {
		s.err = s.tally.err
	}
	return s, s.err
}

// errIndexDamaged marks what a query found damaged in the stored index.
var errIndexDamaged = errors.New("the index is damaged")

// Damaged implements Damaged: what a query found damaged in the store.
func (m *AsOfIndex) Damaged() error {
	if err := m.damaged.Load(); err != nil {
		return *err
	}
	return nil
}

// scan calls f with each key from lo to hi and its value, in the store
// and in the overlays (a key may come more than once: the values merge).
func (s *asofSums) scan(lo, hi string, f func(k string, v []int64)) {
	if s.err != nil {
		return
	}
	if s.snap != nil {
		err := s.snap.ScanRange([]byte(lo), []byte(hi), func(k, raw []byte) bool {
			v, err := decodeInts(raw)
			if err == nil {
				err = checkStoredLen(k, v)
			}
			if err != nil {
				s.err = fmt.Errorf("asof: %q: %w: %w", k, errIndexDamaged, err)
				return false
			}
			f(string(k), v)
			return true
		})
		if err != nil && s.err == nil {
			s.err = err
		}
	}
	for _, o := range s.ovs {
		o.scan(lo, hi, f)
	}
}

// checkStoredLen refuses a stored value whose number of figures is not
// its key's: a sum has its family's figures, a meta four. Damage found
// here is reported, never read past nor left out of an answer.
func checkStoredLen(k []byte, v []int64) error {
	want := -1
	switch {
	case len(k) < 2:
	case k[0] == 'f' || k[0] == 's' || k[0] == 'y':
		want = 4
	case k[0] == 'e' || k[0] == 'r' || k[0] == 'x':
		want = familyFigures(k[1])
	}
	if want >= 0 && len(v) != want {
		return fmt.Errorf("%d figures stored, want %d", len(v), want)
	}
	return nil
}

// familyFigures is how many figures a counter of the family has.
func familyFigures(fam byte) int {
	switch fam {
	case famAccount, famSubsidiary:
		return accountFigures
	case famBudget:
		return budgetFigures
	}
	return -1
}

// add adds a counter's figures.
func (s *asofSums) add(cid uint32, v []int64) {
	if int(cid) >= len(s.names) {
		s.err = fmt.Errorf("asof: counter %d has no name", cid)
		return
	}
	if len(v) != familyFigures(s.fam) {
		s.err = fmt.Errorf("asof: counter %d has %d figures: %w", cid, len(v), errIndexDamaged)
		return
	}
	if s.want != nil && !s.want(s.names[cid]) {
		return
	}
	dst := s.sums[cid]
	for len(dst) < len(v) {
		dst = append(dst, 0)
	}
	for i, x := range v {
		dst[i] = s.tally.add(dst[i], x)
	}
	s.sums[cid] = dst
}

// sumRange adds the sums of keys prefix+lo to prefix+hi.
func (s *asofSums) sumRange(prefix, lo, hi string) {
	if s.cids != nil {
		// The buckets are those the metas list: an event's point has a
		// meta in each bucket it lies in, and only events' points touch
		// accounts.
		mp := metaPrefix(prefix)
		seen := map[string]bool{}
		var buckets []string
		s.scan(mp+lo, mp+hi, func(k string, _ []int64) {
			if b := k[len(mp):]; !seen[b] {
				seen[b] = true
				buckets = append(buckets, b)
			}
		})
		for _, b := range buckets {
			s.sumBucket(prefix, b)
		}
		return
	}
	s.scan(prefix+lo, prefix+hi, func(k string, v []int64) {
		s.add(binary.BigEndian.Uint32([]byte(k[len(k)-4:])), v)
	})
}

// metaPrefix is the prefix of the metas of the buckets of a sums' prefix:
// 'e' (by business date) has 'f', 'r' (by recording time) 's', 'x' (by
// recording and business day) 'y', without the family.
func metaPrefix(prefix string) string {
	m := map[byte]byte{'e': 'f', 'r': 's', 'x': 'y'}[prefix[0]]
	return string(m) + prefix[2:]
}

// sumBucket adds the sums of the counters s.cids in one bucket, read key
// by key from the store and the overlays.
func (s *asofSums) sumBucket(prefix, bucket string) {
	for _, cid := range s.cids {
		k := binary.BigEndian.AppendUint32([]byte(prefix+bucket+"\x00"), cid)
		if s.err != nil {
			return
		}
		if s.snap != nil {
			raw, err := s.snap.Get(k)
			if err != nil {
				s.err = err
				return
			}
			if raw != nil {
				v, err := decodeInts(raw)
				if err == nil {
					err = checkStoredLen(k, v)
				}
				if err != nil {
					s.err = fmt.Errorf("asof: %q: %w: %w", k, errIndexDamaged, err)
					return
				}
				s.add(cid, v)
			}
		}
		for _, o := range s.ovs {
			if v, ok := o.vals[string(k)]; ok {
				s.add(cid, v)
			}
		}
	}
}

func (s *asofSums) atLeast(p eventstore.Position) {
	if s.pos.Before(p) {
		s.pos = p
	}
}

func metaPos(v []int64) eventstore.Position {
	return eventstore.Position{Commit: uint64(v[0]), Prepare: uint64(v[1])}
}

// posRange moves the position to the greatest of the metas from
// prefix+lo to prefix+hi.
func (s *asofSums) posRange(prefix, lo, hi string) {
	s.scan(prefix+lo, prefix+hi, func(_ string, v []int64) { s.atLeast(metaPos(v)) })
}

// byDate reads the books as of the end of a business date: the years
// before its year, the months of its year before its month, the days of
// its month up to it.
func (s *asofSums) byDate(d string) {
	y, mo, end := d[:4], d[:7], d+"\x01"
	for _, r := range [][3]string{{"1", "", y}, {"2", y, mo}, {"3", mo, end}} {
		s.sumRange(string([]byte{'e', s.fam})+r[0], r[1], r[2])
		s.posRange("f"+r[0], r[1], r[2])
	}
}

// byRecording reads the books as recorded by an instant, and as of a
// business date when one is given too.
func (s *asofSums) byRecording(pt PointInTime) {
	d := int64(-1) // no business date: every bucket counts whole
	if pt.AsOf != "" {
		d, _ = dateInt(pt.AsOf)
	}
	t := pt.RecordedAsOf.UTC()
	ts := t.Format(hourLayout)
	bounds := []string{"", ts[:4], ts[:7], ts[:10], ts[:13]}
	for l := 1; l <= 4; l++ {
		s.buckets(byte('0'+l), bounds[l-1], bounds[l], d)
	}
	s.events(t.Truncate(time.Hour), t.Add(time.Nanosecond), d)
}

// buckets reads the recording buckets of level lvl from lo to hi (not
// included) that hold events on or before business date d (any date when
// d is negative).
func (s *asofSums) buckets(lvl byte, lo, hi string, d int64) {
	if d < 0 {
		// Every bucket counts whole: one read of the range.
		s.sumRange(string([]byte{'r', s.fam, lvl}), lo, hi)
		s.posRange(string([]byte{'s', lvl}), lo, hi)
		return
	}
	metas := map[string][]int64{}
	var order []string
	s.scan(string([]byte{'s', lvl})+lo, string([]byte{'s', lvl})+hi, func(k string, v []int64) {
		b := k[2:]
		m, ok := metas[b]
		if !ok {
			order = append(order, b)
			m = make([]int64, 0, 4)
		}
		metas[b] = mergeInts('s', m, v, &s.tally)
	})
	for _, b := range order {
		m := metas[b]
		switch {
		case m[3] <= d:
			if s.cids != nil {
				s.sumBucket(string([]byte{'r', s.fam, lvl}), b)
			} else {
				s.sumRange(string([]byte{'r', s.fam, lvl}), b+"\x00", b+"\x01")
			}
			s.atLeast(metaPos(m))
		case m[2] > d:
		case lvl < '3':
			// Read its parts: the months of a year, the days of a month.
			s.buckets(lvl+1, b, b+"\xff", d)
		case lvl == '3':
			// A day: its sums by business day, up to d.
			end := dateString(d) + "\x01"
			s.sumRange(string([]byte{'x', s.fam})+b+"\x00", "", end)
			s.posRange("y"+b+"\x00", "", end)
		default:
			// An hour: its events.
			start, err := time.ParseInLocation(hourLayout, b, time.UTC)
			if err != nil {
				s.err = fmt.Errorf("asof: bucket %q: %w", b, err)
				return
			}
			s.events(start, start.Add(time.Hour), d)
		}
	}
}

// events reads the events recorded from (inclusive) to before, on or
// before business date d (any when negative).
func (s *asofSums) events(from, before time.Time, d int64) {
	s.scan("v"+string(rtime(from)), "v"+string(rtime(before)), func(k string, v []int64) {
		if len(v) < 2 || len(k) != 30 {
			s.err = fmt.Errorf("asof: event row %x unreadable", k)
			return
		}
		if d >= 0 && v[0] > d {
			return
		}
		if v[1] == 1 {
			s.atLeast(eventstore.Position{Commit: binary.BigEndian.Uint64([]byte(k[13:21])),
				Prepare: binary.BigEndian.Uint64([]byte(k[21:29]))})
		}
		for i := 2; i+3 <= len(v); {
			fam, cid, n := byte(v[i]), uint32(v[i+1]), int(v[i+2])
			i += 3
			if n < 0 || i+n > len(v) {
				s.err = fmt.Errorf("asof: event row %x unreadable", k)
				return
			}
			if fam == s.fam {
				s.add(cid, v[i:i+n])
			}
			i += n
		}
	})
}
