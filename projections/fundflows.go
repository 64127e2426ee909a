package projections

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"sync"

	"talentledger/domain"
	"talentledger/eventstore"
)

// FundFlows, the fund-flows model, keeps every fund's dated cash flows and each
// project's history: what the fund measures (DPI, RVPI, TVPI, IRR), the
// LPs' capital accounts and the project pages are computed from it. It has
// its own lock and applies only fund events.
//
// The measures, for a fund at a date d (docs/domain.md, "Fund measures"):
//
//	paid-in       capital paid in by the LPs up to d;
//	distributions cash the investments returned up to d, exit proceeds
//	              included;
//	NAV           the latest valuation on or before d of each investment
//	              still held (its cost when none was recorded), plus the
//	              paid-in cash neither invested nor moved to a program;
//	DPI = distributions ÷ paid-in; RVPI = NAV ÷ paid-in; TVPI = DPI + RVPI;
//	IRR           the XIRR of the paid-in (negative, on the day paid), the
//	              distributions (positive, on the day received) and the NAV
//	              (positive, on d).
//
// An LP's share of a distribution is its share of the paid-in capital on
// the day of the distribution, and its share of the NAV its share on d;
// the last LP (in the order of their first commitment) takes what rounding
// to the fen leaves, so the LPs' figures add up to the fund's.
type FundFlows struct {
	mu    sync.RWMutex
	funds map[string]*flowFund
	// disk is the model's store and what changed since the last Save,
	// once the model persists (see persist_fundflows.go); nil while it
	// lives in memory only.
	disk *flowsDisk
}

type flowFund struct {
	// lps are the LPs in the order of their first commitment.
	lps []string
	// capital holds commitments and paid-in; returns the distributions
	// and exits; outflows the tranches and appropriations, each in log
	// order.
	capital  []capitalFlow
	returns  []returnFlow
	outflows []CashFlow
	projects map[string]*projectHistory
	order    []string
	saved    flowsSaved
}

type capitalFlow struct {
	date      string
	lp        string
	committed domain.Money
	paidIn    domain.Money
}

type returnFlow struct {
	date    string
	project string
	amount  domain.Money
}

// projectHistory is one investment's dated history.
type projectHistory struct {
	tranches      []TrancheEntry
	valuations    []ValuationEntry
	distributions []DistributionEntry
	events        []ProjectEvent
	// closedOn is the day of the exit or write-off, or "".
	closedOn string
	saved    historySaved
}

// TrancheEntry is one tranche paid into a project.
type TrancheEntry struct {
	Tranche  int          `json:"tranche"`
	Amount   domain.Money `json:"amount"`
	FundedOn string       `json:"funded_on"`
}

// ValuationEntry is one valuation of a project (of the fund's stake).
type ValuationEntry struct {
	Valuation domain.Money `json:"valuation"`
	AsOf      string       `json:"as_of"`
	Position  string       `json:"position"`
}

// DistributionEntry is cash a project returned: a distribution or the
// proceeds of its exit.
type DistributionEntry struct {
	Kind       string       `json:"kind"` // distribution, exit
	Amount     domain.Money `json:"amount"`
	ReceivedOn string       `json:"received_on"`
}

// ProjectEvent is one event of a project's history.
type ProjectEvent struct {
	Type          string        `json:"type"`
	EffectiveDate string        `json:"effective_date"`
	Position      string        `json:"position"`
	Principal     string        `json:"principal"`
	Amount        *domain.Money `json:"amount,omitempty"`
}

// NewFundFlows returns an empty fund-flows model.
func NewFundFlows() *FundFlows { return &FundFlows{funds: map[string]*flowFund{}} }

// Name implements Model.
func (m *FundFlows) Name() string { return "fund_flows" }

// Apply implements Model.
func (m *FundFlows) Apply(b Batch) {
	for i := range b.Changes {
		m.apply(b.Changes[i].Event, b.Changes[i].Payload)
	}
}

var _ Model = (*FundFlows)(nil)

// apply folds one fund event.
func (m *FundFlows) apply(ev *eventstore.Event, payload domain.Event) {
	var amount *domain.Money
	project := ""
	m.mu.Lock()
	defer m.mu.Unlock()
	switch e := payload.(type) {
	case *domain.FundEstablished:
		m.disk.established(e.FundID, m.funds[e.FundID] != nil)
		m.funds[e.FundID] = &flowFund{projects: map[string]*projectHistory{}, saved: flowsSaved{head: true}}
		return
	case *domain.CommitmentMade:
		if f := m.funds[e.FundID]; f != nil {
			f.addLP(e.LP)
			f.capital = append(f.capital, capitalFlow{date: EffectiveDate(ev), lp: e.LP, committed: e.Amount, paidIn: domain.Zero})
			m.disk.touch(e.FundID)
		}
		return
	case *domain.CapitalPaidIn:
		if f := m.funds[e.FundID]; f != nil {
			f.addLP(e.LP)
			f.capital = append(f.capital, capitalFlow{date: e.PaidInOn, lp: e.LP, committed: domain.Zero, paidIn: e.Amount})
			m.disk.touch(e.FundID)
		}
		return
	case *domain.FundAppropriated:
		if f := m.funds[e.FundID]; f != nil {
			f.outflows = append(f.outflows, CashFlow{Date: EffectiveDate(ev), Amount: e.Amount})
			m.disk.touch(e.FundID)
		}
		return
	case *domain.InvestmentApproved:
		if f := m.funds[e.FundID]; f != nil {
			// Approved again (which the fund's stream refuses): a new
			// history, whose stored one is removed at the next Save.
			reset := f.projects[e.InvestmentID] != nil
			f.projects[e.InvestmentID] = &projectHistory{saved: historySaved{head: true, reset: reset}}
			f.order = append(f.order, e.InvestmentID)
			f.saved.head = true
		}
		project, amount = e.InvestmentID, &e.Amount
	case *domain.InvestmentFunded:
		if h := m.project(e.FundID, e.InvestmentID); h != nil {
			h.tranches = append(h.tranches, TrancheEntry{Tranche: e.Tranche, Amount: e.Amount, FundedOn: e.FundedOn})
			f := m.funds[e.FundID]
			f.outflows = append(f.outflows, CashFlow{Date: e.FundedOn, Amount: e.Amount})
		}
		project, amount = e.InvestmentID, &e.Amount
	case *domain.ValuationUpdated:
		if h := m.project(e.FundID, e.InvestmentID); h != nil {
			h.valuations = append(h.valuations, ValuationEntry{Valuation: e.Valuation, AsOf: e.AsOf, Position: ev.Position.String()})
		}
		project, amount = e.InvestmentID, &e.Valuation
	case *domain.DistributionReceived:
		if h := m.project(e.FundID, e.InvestmentID); h != nil {
			h.distributions = append(h.distributions, DistributionEntry{Kind: "distribution", Amount: e.Amount, ReceivedOn: e.ReceivedOn})
			f := m.funds[e.FundID]
			f.returns = append(f.returns, returnFlow{e.ReceivedOn, e.InvestmentID, e.Amount})
		}
		project, amount = e.InvestmentID, &e.Amount
	case *domain.ExitCompleted:
		if h := m.project(e.FundID, e.InvestmentID); h != nil {
			h.distributions = append(h.distributions, DistributionEntry{Kind: "exit", Amount: e.Proceeds, ReceivedOn: e.ExitedOn})
			h.closedOn = e.ExitedOn
			h.saved.head = true
			f := m.funds[e.FundID]
			f.returns = append(f.returns, returnFlow{e.ExitedOn, e.InvestmentID, e.Proceeds})
		}
		project, amount = e.InvestmentID, &e.Proceeds
	case *domain.WrittenOff:
		if h := m.project(e.FundID, e.InvestmentID); h != nil {
			h.closedOn = e.WrittenOn
			h.saved.head = true
		}
		project, amount = e.InvestmentID, &e.Amount
	default:
		return
	}
	fundID := fundOfInvestment(payload)
	if h := m.project(fundID, project); h != nil {
		m.disk.touch(fundID)
		a := *amount
		h.events = append(h.events, ProjectEvent{Type: ev.Type, EffectiveDate: EffectiveDate(ev), Position: ev.Position.String(),
			Principal: ev.Metadata.Principal, Amount: &a})
	}
}

func fundOfInvestment(payload domain.Event) string {
	switch e := payload.(type) {
	case *domain.InvestmentApproved:
		return e.FundID
	case *domain.InvestmentFunded:
		return e.FundID
	case *domain.ValuationUpdated:
		return e.FundID
	case *domain.DistributionReceived:
		return e.FundID
	case *domain.ExitCompleted:
		return e.FundID
	case *domain.WrittenOff:
		return e.FundID
	}
	return ""
}

func (m *FundFlows) project(fundID, id string) *projectHistory {
	if f := m.funds[fundID]; f != nil {
		return f.projects[id]
	}
	return nil
}

func (f *flowFund) addLP(lp string) {
	if !slices.Contains(f.lps, lp) {
		f.lps = append(f.lps, lp)
		f.saved.head = true
	}
}

// projectValueAt is a project's valuation on d: nothing once closed, the
// latest valuation dated on or before d, else its cost to d.
func (h *projectHistory) valueAt(d string) domain.Money {
	if h.closedOn != "" && h.closedOn <= d {
		return domain.Zero
	}
	v, valued, latest := domain.Zero, false, ""
	for _, e := range h.valuations {
		if e.AsOf <= d && e.AsOf >= latest {
			v, valued, latest = e.Valuation, true, e.AsOf
		}
	}
	if valued {
		return v
	}
	return h.costAt(d)
}

func (h *projectHistory) costAt(d string) domain.Money {
	c := domain.Zero
	for _, t := range h.tranches {
		if t.FundedOn <= d {
			c = c.Add(t.Amount)
		}
	}
	return c
}

// Performance is what a fund or an LP has paid in and got back, and the
// measures of it, at a date.
type Performance struct {
	AsOf          string       `json:"as_of"`
	Committed     domain.Money `json:"committed"`
	PaidIn        domain.Money `json:"paid_in"`
	Distributions domain.Money `json:"distributions"`
	NAV           domain.Money `json:"nav"`
	DPI           string       `json:"dpi"`
	RVPI          string       `json:"rvpi"`
	TVPI          string       `json:"tvpi"`
	IRR           string       `json:"irr"`
}

// LPID is the key of an LP's capital account in a fund's read models:
// derived from its exact name, so that names differing in any character
// (a colon, a space, a width) are different LPs; the name is its label.
func LPID(name string) string {
	h := sha256.Sum256([]byte(name))
	return "lp_" + hex.EncodeToString(h[:8])
}

// LPPerformance is one LP's performance in a fund.
type LPPerformance struct {
	ID string `json:"id"`
	LP string `json:"lp"`
	Performance
	// Unfunded is what the LP committed and has not paid in.
	Unfunded domain.Money `json:"unfunded"`
}

// navAt is the fund's NAV on d.
func (f *flowFund) navAt(d string) domain.Money {
	nav := domain.Zero
	for _, id := range f.order {
		nav = nav.Add(f.projects[id].valueAt(d))
	}
	cash := domain.Zero
	for _, c := range f.capital {
		if c.date <= d {
			cash = cash.Add(c.paidIn)
		}
	}
	for _, o := range f.outflows {
		if o.Date <= d {
			cash = cash.Sub(o.Amount)
		}
	}
	return nav.Add(cash)
}

// paidInAt sums each LP's paid-in up to d, and the fund's.
func (f *flowFund) paidInAt(d string) (map[string]domain.Money, domain.Money) {
	by, total := map[string]domain.Money{}, domain.Zero
	for _, c := range f.capital {
		if c.date <= d {
			by[c.lp] = by[c.lp].Add(c.paidIn)
			total = total.Add(c.paidIn)
		}
	}
	return by, total
}

// share splits amount between the LPs by their paid-in on d; the last LP
// with paid-in takes the rounding.
func (f *flowFund) share(amount domain.Money, d string) map[string]domain.Money {
	by, total := f.paidInAt(d)
	out := map[string]domain.Money{}
	if total.Sign() == 0 {
		return out
	}
	last := ""
	for _, lp := range f.lps {
		if by[lp].Sign() > 0 {
			last = lp
		}
	}
	left := amount
	for _, lp := range f.lps {
		if by[lp].Sign() == 0 {
			continue
		}
		if lp == last {
			out[lp] = left
			break
		}
		m, _ := domain.ParseMoney(amount.Decimal().Mul(by[lp].Decimal()).DivRound(total.Decimal(), 2).StringFixed(2))
		out[lp] = m
		left = left.Sub(m)
	}
	return out
}

// measures fills the ratios and the IRR from the totals and the flows.
func (p *Performance) measures(flows []CashFlow) {
	p.DPI = multiple(p.Distributions, p.PaidIn)
	p.RVPI = multiple(p.NAV, p.PaidIn)
	p.TVPI = multiple(p.Distributions.Add(p.NAV), p.PaidIn)
	if p.NAV.Sign() > 0 {
		flows = append(flows, CashFlow{Date: p.AsOf, Amount: p.NAV})
	}
	p.IRR = formatRate(XIRR(flows))
}

// lastDate is the latest date of the fund's flows and valuations.
func (f *flowFund) lastDate() string {
	last := ""
	for _, c := range f.capital {
		last = max(last, c.date)
	}
	for _, r := range f.returns {
		last = max(last, r.date)
	}
	for _, o := range f.outflows {
		last = max(last, o.Date)
	}
	for _, h := range f.projects {
		last = max(last, h.closedOn)
		for _, v := range h.valuations {
			last = max(last, v.AsOf)
		}
	}
	return last
}

// Current computes a fund's and its LPs' performance from everything
// folded, with the NAV dated on d, or on the latest flow when that is
// later (a live view asked about an earlier day); ok is false for an
// unknown fund.
func (m *FundFlows) Current(fundID, d string) (Performance, []LPPerformance, bool) {
	m.mu.RLock()
	f := m.funds[fundID]
	if f == nil {
		m.mu.RUnlock()
		return Performance{}, nil, false
	}
	d = max(d, f.lastDate())
	m.mu.RUnlock()
	return m.performance(fundID, d)
}

// performance computes a fund's and its LPs' performance on d from the
// flows dated on or before d; ok is false for an unknown fund.
func (m *FundFlows) performance(fundID, d string) (Performance, []LPPerformance, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f := m.funds[fundID]
	if f == nil {
		return Performance{}, nil, false
	}
	fund := Performance{AsOf: d, Committed: domain.Zero, PaidIn: domain.Zero, Distributions: domain.Zero, NAV: f.navAt(d)}
	lps := make([]LPPerformance, len(f.lps))
	idx := map[string]int{}
	lpFlows := make([][]CashFlow, len(f.lps))
	for i, lp := range f.lps {
		idx[lp] = i
		lps[i] = LPPerformance{ID: LPID(lp), LP: lp, Performance: Performance{AsOf: d, Committed: domain.Zero, PaidIn: domain.Zero,
			Distributions: domain.Zero, NAV: domain.Zero}}
	}
	var fundFlows []CashFlow
	for _, c := range f.capital {
		if c.date > d {
			continue
		}
		l := &lps[idx[c.lp]]
		fund.Committed, l.Committed = fund.Committed.Add(c.committed), l.Committed.Add(c.committed)
		if c.paidIn.Sign() > 0 {
			fund.PaidIn, l.PaidIn = fund.PaidIn.Add(c.paidIn), l.PaidIn.Add(c.paidIn)
			fundFlows = append(fundFlows, CashFlow{Date: c.date, Amount: c.paidIn.Neg()})
			lpFlows[idx[c.lp]] = append(lpFlows[idx[c.lp]], CashFlow{Date: c.date, Amount: c.paidIn.Neg()})
		}
	}
	for _, r := range f.returns {
		if r.date > d {
			continue
		}
		fund.Distributions = fund.Distributions.Add(r.amount)
		fundFlows = append(fundFlows, CashFlow{Date: r.date, Amount: r.amount})
		for lp, s := range f.share(r.amount, r.date) {
			i := idx[lp]
			lps[i].Distributions = lps[i].Distributions.Add(s)
			lpFlows[i] = append(lpFlows[i], CashFlow{Date: r.date, Amount: s})
		}
	}
	for lp, s := range f.share(fund.NAV, d) {
		lps[idx[lp]].NAV = s
	}
	fund.measures(fundFlows)
	for i := range lps {
		lps[i].measures(lpFlows[i])
		lps[i].Unfunded = lps[i].Committed.Sub(lps[i].PaidIn)
	}
	return fund, lps, true
}

// CapitalStatement is an LP's capital account in a fund over a period:
// the opening balance (its share of the NAV the day before the period),
// what it paid in and was distributed during the period, its share of the
// gain or loss, and the closing balance (its share of the NAV on the last
// day). Opening + paid-in − distributions + gain or loss = closing.
type CapitalStatement struct {
	FundID string `json:"fund_id"`
	LPID   string `json:"lp_id"`
	LP     string `json:"lp"`
	From   string `json:"from"`
	To     string `json:"to"`
	// Opening and Closing are the account's balance, with the
	// commitment, paid-in and distributions to date.
	Opening       StatementBalance `json:"opening"`
	PaidIn        domain.Money     `json:"paid_in"`
	Distributions domain.Money     `json:"distributions"`
	GainOrLoss    domain.Money     `json:"gain_or_loss"`
	Closing       StatementBalance `json:"closing"`
	Movements     []StatementLine  `json:"movements"`
	// Measures are the LP's DPI, RVPI, TVPI and IRR on the last day;
	// Fund the fund's.
	Measures LPPerformance `json:"measures"`
	Fund     Performance   `json:"fund"`
}

// StatementBalance is an LP's position on a day.
type StatementBalance struct {
	Date          string       `json:"date"`
	Committed     domain.Money `json:"committed"`
	PaidIn        domain.Money `json:"paid_in"`
	Unfunded      domain.Money `json:"unfunded"`
	Distributions domain.Money `json:"distributions"`
	Balance       domain.Money `json:"balance"`
}

// StatementLine is one movement of an LP's account.
type StatementLine struct {
	Date    string       `json:"date"`
	Kind    string       `json:"kind"` // commitment, paid_in, distribution
	Project string       `json:"project_id,omitempty"`
	Amount  domain.Money `json:"amount"`
}

// lpBalance is an LP's position on d.
func (m *FundFlows) lpBalance(f *flowFund, lp, d string) StatementBalance {
	b := StatementBalance{Date: d, Committed: domain.Zero, PaidIn: domain.Zero, Distributions: domain.Zero}
	for _, c := range f.capital {
		if c.lp == lp && c.date <= d {
			b.Committed, b.PaidIn = b.Committed.Add(c.committed), b.PaidIn.Add(c.paidIn)
		}
	}
	for _, r := range f.returns {
		if r.date <= d {
			b.Distributions = b.Distributions.Add(f.share(r.amount, r.date)[lp])
		}
	}
	b.Unfunded = b.Committed.Sub(b.PaidIn)
	b.Balance = f.share(f.navAt(d), d)[lp]
	if b.Balance.IsZero() {
		b.Balance = domain.Zero
	}
	return b
}

// Statement draws the capital statement of the LP with ID lpID in a fund
// for the days from..to (inclusive); ok is false when the fund or the LP
// is unknown.
func (m *FundFlows) Statement(fundID, lpID, from, to string) (CapitalStatement, bool) {
	m.mu.RLock()
	f := m.funds[fundID]
	lp := ""
	if f != nil {
		for _, l := range f.lps {
			if LPID(l) == lpID {
				lp = l
			}
		}
	}
	m.mu.RUnlock()
	if lp == "" {
		return CapitalStatement{}, false
	}
	fund, lps, _ := m.performance(fundID, to)
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := CapitalStatement{FundID: fundID, LPID: lpID, LP: lp, From: from, To: to, Movements: []StatementLine{}, Fund: fund}
	for _, l := range lps {
		if l.LP == lp {
			st.Measures = l
		}
	}
	st.Opening = m.lpBalance(f, lp, domain.AddDays(from, -1))
	st.Closing = m.lpBalance(f, lp, to)
	st.PaidIn, st.Distributions = domain.Zero, domain.Zero
	for _, c := range f.capital {
		if c.lp != lp || c.date < from || c.date > to {
			continue
		}
		if c.committed.Sign() > 0 {
			st.Movements = append(st.Movements, StatementLine{Date: c.date, Kind: "commitment", Amount: c.committed})
		}
		if c.paidIn.Sign() > 0 {
			st.Movements = append(st.Movements, StatementLine{Date: c.date, Kind: "paid_in", Amount: c.paidIn})
			st.PaidIn = st.PaidIn.Add(c.paidIn)
		}
	}
	for _, r := range f.returns {
		if r.date < from || r.date > to {
			continue
		}
		s := f.share(r.amount, r.date)[lp]
		if s.Sign() == 0 {
			continue
		}
		st.Movements = append(st.Movements, StatementLine{Date: r.date, Kind: "distribution", Project: r.project, Amount: s})
		st.Distributions = st.Distributions.Add(s)
	}
	sort.SliceStable(st.Movements, func(i, j int) bool { return st.Movements[i].Date < st.Movements[j].Date })
	st.GainOrLoss = st.Closing.Balance.Sub(st.Opening.Balance).Sub(st.PaidIn).Add(st.Distributions)
	return st, true
}

// ProjectDetail is one project with its history: tranches, valuations,
// distributions and every event, and its IRR (the XIRR of the tranches,
// the cash returned and the valuation still held).
type ProjectDetail struct {
	ProjectView
	TrancheList []TrancheEntry      `json:"tranche_list"`
	Valuations  []ValuationEntry    `json:"valuations"`
	Cashflows   []DistributionEntry `json:"distribution_list"`
	Events      []ProjectEvent      `json:"events"`
}

// ProjectIRR is a project's IRR with its valuation held on d.
func (m *FundFlows) ProjectIRR(fundID, id, d string, held domain.Money) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h := m.project(fundID, id)
	if h == nil {
		return ""
	}
	var flows []CashFlow
	last := ""
	for _, t := range h.tranches {
		flows = append(flows, CashFlow{Date: t.FundedOn, Amount: t.Amount.Neg()})
		last = max(last, t.FundedOn)
	}
	for _, r := range h.distributions {
		flows = append(flows, CashFlow{Date: r.ReceivedOn, Amount: r.Amount})
		last = max(last, r.ReceivedOn)
	}
	if held.Sign() > 0 {
		flows = append(flows, CashFlow{Date: max(d, last), Amount: held})
	}
	return formatRate(XIRR(flows))
}

// History copies a project's history.
func (m *FundFlows) History(fundID, id string) (ProjectDetail, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h := m.project(fundID, id)
	if h == nil {
		return ProjectDetail{}, false
	}
	return ProjectDetail{
		TrancheList: append([]TrancheEntry{}, h.tranches...),
		Valuations:  append([]ValuationEntry{}, h.valuations...),
		Cashflows:   append([]DistributionEntry{}, h.distributions...),
		Events:      append([]ProjectEvent{}, h.events...),
	}, true
}
