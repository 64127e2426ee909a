package projections

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"talentledger/domain"
	"talentledger/projections/viewstore"
)

// The fund-flows model on disk. A fund's flows and a project's history
// only ever grow, each in log order, so every entry is stored once under
// its own key, numbered in its list, and a Save writes the entries added
// since the last; the heads are rewritten when they change:
//
//	f<fund>              the fund's head: its LPs in order, its projects in order
//	c<fund><n>           the n-th commitment or paid-in capital
//	r<fund><n>           the n-th distribution or exit proceeds
//	o<fund><n>           the n-th tranche or appropriation paid out
//	p<fund><project>     the project's head: the day it closed
//	t<fund><project><n>  the n-th tranche
//	v<fund><project><n>  the n-th valuation
//	d<fund><project><n>  the n-th distribution or exit
//	e<fund><project><n>  the n-th event of its history
//
// An ID is written as its length (4 bytes, big-endian) and its bytes, n as
// 8 bytes big-endian, so that a scan reads each list in order. Amounts are
// in fen; an LP is its place in the fund's LPs. Memory holds every flow,
// which the measures are computed from; the store spares a start the
// folding.

const flowsSchema = 1

// flowsSaved is what of a fund is stored: whether its head changed since,
// and how many of each list.
type flowsSaved struct {
	head                   bool
	capital, returns, outs int
}

// historySaved is what of a project's history is stored.
type historySaved struct {
	head bool
	// reset is set for a history that replaced another: the stored one
	// is removed first.
	reset                             bool
	tranches, valuations, dists, evts int
}

// flowsDisk is the model's store and the funds changed since the last
// Save. Its methods do nothing on a nil receiver.
type flowsDisk struct {
	vs    *viewstore.Model
	dirty map[string]bool
	// reset holds the funds established again since the last Save (which
	// a fund's stream refuses): their stored keys are removed first.
	reset map[string]bool
}

func (d *flowsDisk) touch(fund string) {
	if d != nil {
		d.dirty[fund] = true
	}
}

func (d *flowsDisk) established(fund string, again bool) {
	if d != nil {
		d.dirty[fund] = true
		if again {
			d.reset[fund] = true
		}
	}
}

func appendFlowID(k []byte, id string) []byte {
	k = binary.BigEndian.AppendUint32(k, uint32(len(id)))
	return append(k, id...)
}

// fundKey is the key of kind for a fund: its head, or the prefix of its
// entries or its projects' keys.
func fundKey(kind byte, fund string) []byte { return appendFlowID([]byte{kind}, fund) }

// projectKey is the key of kind for a project of a fund: its head, or the
// prefix of its entries.
func projectKey(kind byte, fund, project string) []byte {
	return appendFlowID(fundKey(kind, fund), project)
}

// entryKey is the key of the n-th entry of a list under prefix.
func entryKey(prefix []byte, n int) []byte { return binary.BigEndian.AppendUint64(prefix, uint64(n)) }

// parseFlowKey reads a key of fundKey, projectKey or entryKey: the fund, the project when
// project is set, the entry's number when entry is set.
func parseFlowKey(k []byte, project, entry bool) (fund, proj string, n int, ok bool) {
	k = k[1:]
	id := func() (string, bool) {
		if len(k) < 4 {
			return "", false
		}
		l := binary.BigEndian.Uint32(k)
		if uint64(len(k)-4) < uint64(l) {
			return "", false
		}
		s := string(k[4 : 4+l])
		k = k[4+l:]
		return s, true
	}
	if fund, ok = id(); !ok {
		return
	}
	if project {
		if proj, ok = id(); !ok {
			return
		}
	}
	if entry {
		if len(k) != 8 {
			return "", "", 0, false
		}
		n, k = int(binary.BigEndian.Uint64(k)), nil
	}
	return fund, proj, n, len(k) == 0
}

// Stored forms.
type (
	flowHeadState struct {
		LPs   []string `json:"lps"`
		Order []string `json:"projects"`
	}
	capitalState struct {
		Date      string `json:"d"`
		LP        int    `json:"lp"`
		Committed int64  `json:"c"`
		PaidIn    int64  `json:"p"`
	}
	returnState struct {
		Date    string `json:"d"`
		Project string `json:"p"`
		Amount  int64  `json:"a"`
	}
	outflowState struct {
		Date   string `json:"d"`
		Amount int64  `json:"a"`
	}
	historyHeadState struct {
		ClosedOn string `json:"closed_on"`
	}
	trancheState struct {
		Tranche int    `json:"n"`
		Amount  int64  `json:"a"`
		Date    string `json:"d"`
	}
	valuationState struct {
		Valuation int64  `json:"a"`
		AsOf      string `json:"d"`
		Position  string `json:"pos"`
	}
	distributionState struct {
		Kind   string `json:"k"`
		Amount int64  `json:"a"`
		Date   string `json:"d"`
	}
	projectEventState struct {
		Type      string `json:"t"`
		Date      string `json:"d"`
		Position  string `json:"pos"`
		Principal string `json:"by"`
		Amount    int64  `json:"a"`
	}
)

// Schema implements Persistent.
func (m *FundFlows) Schema() uint32 { return flowsSchema }

// Open implements Persistent.
func (m *FundFlows) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bad error
	damaged := func(format string, args ...any) bool {
		bad = fmt.Errorf("fund_flows: stored "+format, args...)
		return false
	}
	// entry decodes the n-th entry of a list of len have into v.
	entry := func(what string, k, v []byte, project bool, have func(f *flowFund, h *projectHistory) int,
		into any) (*flowFund, *projectHistory, bool) {
		fund, proj, n, ok := parseFlowKey(k, project, true)
		if !ok {
			return nil, nil, damaged("%s: a key is unreadable", what)
		}
		f := m.funds[fund]
		var h *projectHistory
		if f != nil && project {
			h = f.projects[proj]
		}
		if f == nil || (project && h == nil) {
			return nil, nil, damaged("%s of fund %s %s: no head", what, fund, proj)
		}
		if n != have(f, h) {
			return nil, nil, damaged("%s of fund %s %s: entry %d out of order", what, fund, proj, n)
		}
		if err := json.Unmarshal(v, into); err != nil {
			return nil, nil, damaged("%s of fund %s %s: %v", what, fund, proj, err)
		}
		return f, h, true
	}
	scans := []struct {
		prefix byte
		f      func(k, v []byte) bool
	}{
		{'f', func(k, v []byte) bool {
			fund, _, _, ok := parseFlowKey(k, false, false)
			var st flowHeadState
			if !ok || json.Unmarshal(v, &st) != nil {
				return damaged("fund head unreadable")
			}
			m.funds[fund] = &flowFund{lps: st.LPs, order: st.Order, projects: map[string]*projectHistory{}}
			return true
		}},
		{'p', func(k, v []byte) bool {
			fund, proj, _, ok := parseFlowKey(k, true, false)
			var st historyHeadState
			if !ok || json.Unmarshal(v, &st) != nil {
				return damaged("project head unreadable")
			}
			f := m.funds[fund]
			if f == nil {
				return damaged("project %s of fund %s: no fund head", proj, fund)
			}
			f.projects[proj] = &projectHistory{closedOn: st.ClosedOn}
			return true
		}},
		{'c', func(k, v []byte) bool {
			var st capitalState
			f, _, ok := entry("capital", k, v, false, func(f *flowFund, _ *projectHistory) int { return len(f.capital) }, &st)
			if ok && (st.LP < 0 || st.LP >= len(f.lps)) {
				return damaged("capital: LP %d of %d", st.LP, len(f.lps))
			}
			if ok {
				f.capital = append(f.capital, capitalFlow{date: st.Date, lp: f.lps[st.LP], committed: money(st.Committed),
					paidIn: money(st.PaidIn)})
			}
			return ok
		}},
		{'r', func(k, v []byte) bool {
			var st returnState
			f, _, ok := entry("return", k, v, false, func(f *flowFund, _ *projectHistory) int { return len(f.returns) }, &st)
			if ok {
				f.returns = append(f.returns, returnFlow{date: st.Date, project: st.Project, amount: money(st.Amount)})
			}
			return ok
		}},
		{'o', func(k, v []byte) bool {
			var st outflowState
			f, _, ok := entry("outflow", k, v, false, func(f *flowFund, _ *projectHistory) int { return len(f.outflows) }, &st)
			if ok {
				f.outflows = append(f.outflows, CashFlow{Date: st.Date, Amount: money(st.Amount)})
			}
			return ok
		}},
		{'t', func(k, v []byte) bool {
			var st trancheState
			_, h, ok := entry("tranche", k, v, true, func(_ *flowFund, h *projectHistory) int { return len(h.tranches) }, &st)
			if ok {
				h.tranches = append(h.tranches, TrancheEntry{Tranche: st.Tranche, Amount: money(st.Amount), FundedOn: st.Date})
			}
			return ok
		}},
		{'v', func(k, v []byte) bool {
			var st valuationState
			_, h, ok := entry("valuation", k, v, true, func(_ *flowFund, h *projectHistory) int { return len(h.valuations) }, &st)
			if ok {
				h.valuations = append(h.valuations, ValuationEntry{Valuation: money(st.Valuation), AsOf: st.AsOf, Position: st.Position})
			}
			return ok
		}},
		{'d', func(k, v []byte) bool {
			var st distributionState
			_, h, ok := entry("distribution", k, v, true, func(_ *flowFund, h *projectHistory) int { return len(h.distributions) }, &st)
			if ok {
				h.distributions = append(h.distributions, DistributionEntry{Kind: st.Kind, Amount: money(st.Amount), ReceivedOn: st.Date})
			}
			return ok
		}},
		{'e', func(k, v []byte) bool {
			var st projectEventState
			_, h, ok := entry("project event", k, v, true, func(_ *flowFund, h *projectHistory) int { return len(h.events) }, &st)
			if ok {
				a := money(st.Amount)
				h.events = append(h.events, ProjectEvent{Type: st.Type, EffectiveDate: st.Date, Position: st.Position,
					Principal: st.Principal, Amount: &a})
			}
			return ok
		}},
	}
	for _, s := range scans {
		if err := vs.Scan([]byte{s.prefix}, s.f); err != nil {
			return err
		}
		if bad != nil {
			return bad
		}
	}
	for id, f := range m.funds {
		for _, p := range f.order {
			if f.projects[p] == nil {
				return fmt.Errorf("fund_flows: stored fund %s names project %s, which is not stored", id, p)
			}
		}
		f.saved = flowsSaved{capital: len(f.capital), returns: len(f.returns), outs: len(f.outflows)}
		for _, h := range f.projects {
			h.saved = historySaved{tranches: len(h.tranches), valuations: len(h.valuations), dists: len(h.distributions),
				evts: len(h.events)}
		}
	}
	m.disk = &flowsDisk{vs: vs, dirty: map[string]bool{}, reset: map[string]bool{}}
	return nil
}

// Save implements Persistent.
func (m *FundFlows) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.disk
	for id := range d.reset {
		if err := m.removeStored(b, id, ""); err != nil {
			return err
		}
	}
	for id := range d.dirty {
		if err := m.saveFund(b, id, m.funds[id]); err != nil {
			return err
		}
	}
	clear(d.reset)
	clear(d.dirty)
	return nil
}

// removeStored deletes the stored keys of a fund, or of one project of it.
func (m *FundFlows) removeStored(b *viewstore.Batch, fund, project string) error {
	kinds, prefix := []byte("fcrotpvde"), func(kind byte) []byte { return fundKey(kind, fund) }
	if project != "" {
		kinds, prefix = []byte("ptvde"), func(kind byte) []byte { return projectKey(kind, fund, project) }
	}
	for _, kind := range kinds {
		err := m.disk.vs.Scan(prefix(kind), func(k, _ []byte) bool {
			b.Delete(k)
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *FundFlows) saveFund(b *viewstore.Batch, id string, f *flowFund) error {
	var bad error
	fen := func(a domain.Money) int64 {
		v, ok := a.Fen()
		if !ok && bad == nil {
			bad = fmt.Errorf("%w: fund %s: %s", ErrOverflow, id, a)
		}
		return v
	}
	set := func(k []byte, v any) {
		data, err := json.Marshal(v)
		if err != nil && bad == nil {
			bad = err
		}
		b.Set(k, data)
	}
	if f.saved.head {
		set(fundKey('f', id), flowHeadState{LPs: f.lps, Order: f.order})
	}
	lp := map[string]int{}
	for i, l := range f.lps {
		lp[l] = i
	}
	for n := f.saved.capital; n < len(f.capital); n++ {
		c := f.capital[n]
		set(entryKey(fundKey('c', id), n), capitalState{Date: c.date, LP: lp[c.lp], Committed: fen(c.committed), PaidIn: fen(c.paidIn)})
	}
	for n := f.saved.returns; n < len(f.returns); n++ {
		r := f.returns[n]
		set(entryKey(fundKey('r', id), n), returnState{Date: r.date, Project: r.project, Amount: fen(r.amount)})
	}
	for n := f.saved.outs; n < len(f.outflows); n++ {
		o := f.outflows[n]
		set(entryKey(fundKey('o', id), n), outflowState{Date: o.Date, Amount: fen(o.Amount)})
	}
	for pid, h := range f.projects {
		if h.saved.reset {
			if err := m.removeStored(b, id, pid); err != nil {
				return err
			}
		}
		if h.saved.head {
			set(projectKey('p', id, pid), historyHeadState{ClosedOn: h.closedOn})
		}
		for n := h.saved.tranches; n < len(h.tranches); n++ {
			t := h.tranches[n]
			set(entryKey(projectKey('t', id, pid), n), trancheState{Tranche: t.Tranche, Amount: fen(t.Amount), Date: t.FundedOn})
		}
		for n := h.saved.valuations; n < len(h.valuations); n++ {
			v := h.valuations[n]
			set(entryKey(projectKey('v', id, pid), n), valuationState{Valuation: fen(v.Valuation), AsOf: v.AsOf, Position: v.Position})
		}
		for n := h.saved.dists; n < len(h.distributions); n++ {
			x := h.distributions[n]
			set(entryKey(projectKey('d', id, pid), n), distributionState{Kind: x.Kind, Amount: fen(x.Amount), Date: x.ReceivedOn})
		}
		for n := h.saved.evts; n < len(h.events); n++ {
			e := h.events[n]
			a := domain.Zero
			if e.Amount != nil {
				a = *e.Amount
			}
			set(entryKey(projectKey('e', id, pid), n), projectEventState{Type: e.Type, Date: e.EffectiveDate, Position: e.Position,
				Principal: e.Principal, Amount: fen(a)})
		}
		if bad != nil {
			return bad
		}
		h.saved = historySaved{tranches: len(h.tranches), valuations: len(h.valuations), dists: len(h.distributions),
			evts: len(h.events)}
	}
	if bad != nil {
		return bad
	}
	f.saved = flowsSaved{capital: len(f.capital), returns: len(f.returns), outs: len(f.outflows)}
	return nil
}

var _ Persistent = (*FundFlows)(nil)
