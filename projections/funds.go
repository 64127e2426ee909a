package projections

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/shopspring/decimal"

	"talentledger/domain"
)

// FundView is what a fund manager asks of a fund.
type FundView struct {
	ID                    string          `json:"id"`
	Name                  string          `json:"name"`
	FundType              string          `json:"fund_type"`
	Manager               string          `json:"manager"`
	Target                domain.Money    `json:"target"`
	TermYears             int             `json:"term_years"`
	EstablishedOn         string          `json:"established_on"`
	TermEnd               string          `json:"term_end"`
	ConcentrationLimitPct decimal.Decimal `json:"concentration_limit_pct"`
	// The alert thresholds (see domain.FundEstablished).
	IdleCashPct     int          `json:"idle_cash_pct"`
	IdleCashDays    int          `json:"idle_cash_days"`
	TermWarningDays int          `json:"term_warning_days"`
	Committed       domain.Money `json:"committed"`
	PaidIn          domain.Money `json:"paid_in"`
	// Invested is everything ever funded, at cost; HeldAtCost is the cost
	// of the investments still held.
	Invested   domain.Money `json:"invested"`
	HeldAtCost domain.Money `json:"held_at_cost"`
	// Valuation is the latest valuation of the investments still held
	// (at cost where none was recorded).
	Valuation domain.Money `json:"valuation"`
	// Distributions is cash received from investments, exit proceeds
	// included.
	Distributions domain.Money `json:"distributions"`
	ExitProceeds  domain.Money `json:"exit_proceeds"`
	WrittenOff    domain.Money `json:"written_off"`
	// AppropriatedToPrograms is cash a special fund moved to subsidy
	// program budgets.
	AppropriatedToPrograms domain.Money `json:"appropriated_to_programs"`
	// IdleCash is paid-in capital neither invested nor appropriated;
	// IdleSince is when the oldest part of it was paid in.
	IdleCash  domain.Money `json:"idle_cash"`
	IdleSince string       `json:"idle_since,omitempty"`
	// MOIC = (valuation + distributions) ÷ invested. NAV is the
	// valuation plus the idle cash; DPI = distributions ÷ paid-in,
	// RVPI = NAV ÷ paid-in, TVPI = DPI + RVPI, and IRR the XIRR of the
	// paid-in, the distributions and the NAV (see fundFlows).
	MOIC     string       `json:"moic"`
	NAV      domain.Money `json:"nav"`
	DPI      string       `json:"dpi"`
	RVPI     string       `json:"rvpi"`
	TVPI     string       `json:"tvpi"`
	IRR      string       `json:"irr"`
	Projects int          `json:"projects"`
	LPs      []LPView     `json:"lps"`
	Alerts   []Alert      `json:"alerts"`

	lots  []lot
	fen   fundFen // the amounts, shown only in the copies handed out
	lpFen []lpFen // LPs' amounts, by their index in LPs
}

// fundFen is a fund's amounts in fen.
type fundFen struct {
	target, committed, paidIn, invested                   int64
	distributions, exitProceeds, writtenOff, appropriated int64
}

// LPView is one limited partner's position: its commitment, paid-in and
// unfunded commitment, its share of the distributions and of the NAV, and
// the measures of them.
type LPView struct {
	// ID keys the LP's account (see LPID); LP is its name.
	ID            string       `json:"id"`
	LP            string       `json:"lp"`
	Committed     domain.Money `json:"committed"`
	PaidIn        domain.Money `json:"paid_in"`
	Unfunded      domain.Money `json:"unfunded"`
	Distributions domain.Money `json:"distributions"`
	NAV           domain.Money `json:"nav"`
	DPI           string       `json:"dpi"`
	RVPI          string       `json:"rvpi"`
	TVPI          string       `json:"tvpi"`
	IRR           string       `json:"irr"`
}

// lpFen is a limited partner's amounts in fen, beside its LPView.
type lpFen struct{ committed, paidIn int64 }

// lot is one paid-in amount not yet invested, oldest first.
type lot struct {
	date   string
	amount int64
}

// ProjectView is one investment.
type ProjectView struct {
	ID            string          `json:"id"`
	FundID        string          `json:"fund_id"`
	FundName      string          `json:"fund_name"`
	Project       string          `json:"project"`
	Company       string          `json:"company"`
	Sector        string          `json:"sector"`
	CommitteeRef  string          `json:"committee_ref"`
	ApprovedOn    string          `json:"approved_on"`
	Approved      domain.Money    `json:"approved"`
	StakePct      decimal.Decimal `json:"stake_pct"`
	Cost          domain.Money    `json:"cost"`
	Tranches      int             `json:"tranches"`
	Valuation     domain.Money    `json:"valuation"`
	ValuationAsOf string          `json:"valuation_as_of,omitempty"`
	Distributions domain.Money    `json:"distributions"`
	ExitProceeds  domain.Money    `json:"exit_proceeds"`
	WrittenOff    domain.Money    `json:"written_off"`
	Multiple      string          `json:"multiple"`
	// IRR is the XIRR of the tranches, the cash returned and the
	// valuation still held, dated on the day asked about.
	IRR            string `json:"irr"`
	Status         string `json:"status"`
	valuationIsSet bool
	fen            projectFen // the amounts, shown only in the copies handed out
}

// projectFen is an investment's amounts in fen.
type projectFen struct {
	approved, cost, valuation, distributions, exitProceeds, writtenOff int64
}

// Alert flags something regulators watch.
type Alert struct {
	Kind    string `json:"kind"` // idle_cash, term_ending, concentration
	FundID  string `json:"fund_id"`
	Message string `json:"message"`
	// ProjectID names the investment of a concentration alert.
	ProjectID string `json:"project_id,omitempty"`
}

// Funds is the government guidance funds and the projects they invested
// in.
type Funds struct {
	tally
	mu           sync.RWMutex
	funds        map[string]*FundView
	fundOrder    []string
	projects     map[string]*ProjectView
	projectOrder []string
	pendingFunds map[string]bool
}

// NewFunds returns an empty funds model.
func NewFunds() *Funds {
	return &Funds{funds: map[string]*FundView{}, projects: map[string]*ProjectView{}, pendingFunds: map[string]bool{}}
}

// Name implements Model.
func (m *Funds) Name() string { return "funds" }

// Apply implements Model.
func (m *Funds) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Changes {
		m.apply(b.Changes[i].Payload)
	}
}

func (fm *Funds) apply(payload domain.Event) {
	t := &fm.tally
	switch e := payload.(type) {
	case *domain.FundEstablished:
		f := &FundView{ID: e.FundID, Name: e.Name, FundType: e.FundType, Manager: e.Manager,
			TermYears: e.TermYears, EstablishedOn: e.EstablishedOn, TermEnd: e.TermEnd, ConcentrationLimitPct: e.ConcentrationLimitPct,
			fen: fundFen{target: t.fen(e.Target)}}
		f.IdleCashPct, f.IdleCashDays, f.TermWarningDays = e.FundAlertThresholds()
		fm.funds[e.FundID] = f
		fm.fundOrder = append(fm.fundOrder, e.FundID)
	case *domain.CommitmentMade:
		if f := fm.funds[e.FundID]; f != nil {
			a := t.fen(e.Amount)
			f.fen.committed = t.add(f.fen.committed, a)
			lp := f.lp(e.LP)
			lp.committed = t.add(lp.committed, a)
		}
	case *domain.CapitalPaidIn:
		if f := fm.funds[e.FundID]; f != nil {
			a := t.fen(e.Amount)
			f.fen.paidIn = t.add(f.fen.paidIn, a)
			lp := f.lp(e.LP)
			lp.paidIn = t.add(lp.paidIn, a)
			f.lots = append(f.lots, lot{e.PaidInOn, a})
		}
	case *domain.InvestmentApproved:
		f := fm.funds[e.FundID]
		if f == nil {
			return
		}
		fm.projects[e.InvestmentID] = &ProjectView{ID: e.InvestmentID, FundID: e.FundID, FundName: f.Name, Project: e.Project,
			Company: e.Company, Sector: e.Sector, CommitteeRef: e.CommitteeRef, ApprovedOn: e.ApprovedOn,
			StakePct: e.StakePct, Status: domain.InvestmentStateAfter("", e), fen: projectFen{approved: t.fen(e.Amount)}}
		fm.projectOrder = append(fm.projectOrder, e.InvestmentID)
		f.Projects++
	case *domain.InvestmentFunded:
		if f, pr := fm.funds[e.FundID], fm.projects[e.InvestmentID]; f != nil && pr != nil {
			a := t.fen(e.Amount)
			f.fen.invested = t.add(f.fen.invested, a)
			f.consume(a)
			pr.fen.cost = t.add(pr.fen.cost, a)
			pr.Tranches++
			pr.Status = domain.InvestmentStateAfter(pr.Status, e)
		}
	case *domain.ValuationUpdated:
		if pr := fm.projects[e.InvestmentID]; pr != nil {
			pr.fen.valuation, pr.ValuationAsOf, pr.valuationIsSet = t.fen(e.Valuation), e.AsOf, true
		}
	case *domain.DistributionReceived:
		if f, pr := fm.funds[e.FundID], fm.projects[e.InvestmentID]; f != nil && pr != nil {
			a := t.fen(e.Amount)
			f.fen.distributions = t.add(f.fen.distributions, a)
			pr.fen.distributions = t.add(pr.fen.distributions, a)
		}
	case *domain.ExitCompleted:
		if f, pr := fm.funds[e.FundID], fm.projects[e.InvestmentID]; f != nil && pr != nil {
			a := t.fen(e.Proceeds)
			f.fen.distributions = t.add(f.fen.distributions, a)
			f.fen.exitProceeds = t.add(f.fen.exitProceeds, a)
			pr.fen.exitProceeds = a
			pr.Status = domain.InvestmentStateAfter(pr.Status, e)
		}
	case *domain.WrittenOff:
		if f, pr := fm.funds[e.FundID], fm.projects[e.InvestmentID]; f != nil && pr != nil {
			a := t.fen(e.Amount)
			f.fen.writtenOff = t.add(f.fen.writtenOff, a)
			pr.fen.writtenOff = a
			pr.Status = domain.InvestmentStateAfter(pr.Status, e)
		}
	case *domain.FundAppropriated:
		if f := fm.funds[e.FundID]; f != nil {
			a := t.fen(e.Amount)
			f.fen.appropriated = t.add(f.fen.appropriated, a)
			f.consume(a)
		}
		// Reconciliation checks each of this fund's appropriations for
		// its budget side; funds that never appropriated need no check.
		fm.pendingFunds[e.FundID] = true
	}
}

// lp returns the amounts of a limited partner, added when new.
func (f *FundView) lp(name string) *lpFen {
	for i := range f.LPs {
		if f.LPs[i].LP == name {
			return &f.lpFen[i]
		}
	}
	f.LPs = append(f.LPs, LPView{ID: LPID(name), LP: name})
	f.lpFen = append(f.lpFen, lpFen{})
	return &f.lpFen[len(f.lpFen)-1]
}

// consume spends paid-in lots, oldest first.
func (f *FundView) consume(amount int64) {
	for amount > 0 && len(f.lots) > 0 {
		l := &f.lots[0]
		if l.amount > amount {
			l.amount -= amount
			return
		}
		amount -= l.amount
		f.lots = f.lots[1:]
	}
}

// multiple returns num ÷ den to two decimals, or "" when den is zero. The
// exact ratio is rounded once, half away from zero: rounding to four places
// first would turn 1.00495 into 1.0050 and then 1.01.
func multiple(num, den domain.Money) string {
	if den.Sign() == 0 {
		return ""
	}
	return num.Decimal().DivRound(den.Decimal(), 2).StringFixed(2)
}

// settle computes a project's derived figures.
func (pr *ProjectView) settle() ProjectView {
	v := *pr
	f := &pr.fen
	v.Approved, v.Cost, v.Valuation = money(f.approved), money(f.cost), money(f.valuation)
	v.Distributions, v.ExitProceeds, v.WrittenOff = money(f.distributions), money(f.exitProceeds), money(f.writtenOff)
	switch {
	case v.Status == domain.InvestmentExited || v.Status == domain.InvestmentWrittenOff:
		v.Valuation = domain.Zero
	case !v.valuationIsSet:
		v.Valuation = v.Cost
	}
	v.Multiple = multiple(v.Valuation.Add(v.Distributions).Add(v.ExitProceeds), v.Cost)
	return v
}

// fundLocked computes a fund's view as of a date. m.mu is held.
func (m *Funds) fundLocked(id, asOf string) FundView {
	f := *m.funds[id]
	a := &f.fen
	f.Target, f.Committed, f.PaidIn, f.Invested = money(a.target), money(a.committed), money(a.paidIn), money(a.invested)
	f.Distributions, f.ExitProceeds, f.WrittenOff = money(a.distributions), money(a.exitProceeds), money(a.writtenOff)
	f.AppropriatedToPrograms = money(a.appropriated)
	f.LPs = append([]LPView{}, f.LPs...)
	for i := range f.LPs {
		f.LPs[i].Committed, f.LPs[i].PaidIn = money(f.lpFen[i].committed), money(f.lpFen[i].paidIn)
	}
	f.HeldAtCost, f.Valuation = domain.Zero, domain.Zero
	for _, pid := range m.projectOrder {
		pr := m.projects[pid]
		if pr.FundID != id {
			continue
		}
		v := pr.settle()
		if v.Status == domain.InvestmentFundedState {
			f.HeldAtCost = f.HeldAtCost.Add(v.Cost)
			f.Valuation = f.Valuation.Add(v.Valuation)
		}
	}
	f.IdleCash = f.PaidIn.Sub(f.Invested).Sub(f.AppropriatedToPrograms)
	f.IdleSince = ""
	if len(f.lots) > 0 && f.IdleCash.Sign() > 0 {
		f.IdleSince = f.lots[0].date
	}
	f.MOIC = multiple(f.Valuation.Add(f.Distributions), f.Invested)
	f.TVPI = multiple(f.Valuation.Add(f.Distributions).Add(f.IdleCash), f.PaidIn)
	f.Alerts = m.fundAlerts(&f, f.lots, asOf)
	f.lots, f.lpFen = nil, nil
	return f
}

// fundAlerts flags, by the fund's thresholds: paid-in cash idle for more
// than IdleCashDays when it exceeds IdleCashPct of the paid-in capital (the
// lots are spent oldest first, so what is left of the oldest is what has
// been idle longest); a term ending within TermWarningDays, or ended; and
// investments above the fund's concentration limit.
func (m *Funds) fundAlerts(f *FundView, lots []lot, asOf string) []Alert {
	alerts := []Alert{}
	if asOf == "" {
		return alerts
	}
	var idleFen int64
	since := ""
	cutoff := domain.AddDays(asOf, -f.IdleCashDays)
	for _, l := range lots {
		if l.date < cutoff {
			idleFen += l.amount
			if since == "" {
				since = l.date
			}
		}
	}
	longIdle := money(idleFen)
	if longIdle.Sign() > 0 && longIdle.Cmp(f.PaidIn.Percent(decimal.NewFromInt(int64(f.IdleCashPct)))) > 0 {
		alerts = append(alerts, Alert{Kind: "idle_cash", FundID: f.ID,
			Message: fmt.Sprintf("paid-in cash of %s has been idle for more than %d days (since %s): above %d%% of the paid-in capital of %s",
				longIdle, f.IdleCashDays, since, f.IdleCashPct, f.PaidIn)})
	}
	if f.TermEnd <= domain.AddDays(asOf, f.TermWarningDays) {
		msg := "the fund's term ends on " + f.TermEnd
		if f.TermEnd <= asOf {
			msg = "the fund's term ended on " + f.TermEnd
		}
		alerts = append(alerts, Alert{Kind: "term_ending", FundID: f.ID, Message: msg})
	}
	limit := f.Target.Percent(f.ConcentrationLimitPct)
	for _, pid := range m.projectOrder {
		pr := m.projects[pid]
		if pr.FundID != f.ID || pr.Status == domain.InvestmentExited || pr.Status == domain.InvestmentWrittenOff {
			continue
		}
		if approved := money(pr.fen.approved); approved.Cmp(limit) > 0 {
			alerts = append(alerts, Alert{Kind: "concentration", FundID: f.ID, ProjectID: pr.ID,
				Message: pr.Project + " takes " + approved.String() + ", above the limit of " + f.ConcentrationLimitPct.String() + "% of the target (" + limit.String() + ")"})
		}
	}
	return alerts
}

// FundTotals sums the funds.
type FundTotals struct {
	Funds         int          `json:"funds"`
	Projects      int          `json:"projects"`
	Target        domain.Money `json:"target"`
	Committed     domain.Money `json:"committed"`
	PaidIn        domain.Money `json:"paid_in"`
	Invested      domain.Money `json:"invested"`
	Valuation     domain.Money `json:"valuation"`
	Distributions domain.Money `json:"distributions"`
	WrittenOff    domain.Money `json:"written_off"`
	IdleCash      domain.Money `json:"idle_cash"`
	MOIC          string       `json:"moic"`
	TVPI          string       `json:"tvpi"`
}

// ids returns the funds' IDs in the order established.
func (m *Funds) ids() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.fundOrder)
}

// Funds lists the funds as of a date (for alerts), with their totals.
func (m *Funds) Funds(asOf string) ([]FundView, FundTotals) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]FundView, 0, len(m.fundOrder))
	var t FundTotals
	for _, id := range m.fundOrder {
		f := m.fundLocked(id, asOf)
		out = append(out, f)
		t.Funds++
		t.Projects += f.Projects
		t.Target, t.Committed, t.PaidIn = t.Target.Add(f.Target), t.Committed.Add(f.Committed), t.PaidIn.Add(f.PaidIn)
		t.Invested, t.Valuation = t.Invested.Add(f.Invested), t.Valuation.Add(f.Valuation)
		t.Distributions, t.WrittenOff, t.IdleCash = t.Distributions.Add(f.Distributions), t.WrittenOff.Add(f.WrittenOff), t.IdleCash.Add(f.IdleCash)
	}
	t.MOIC = multiple(t.Valuation.Add(t.Distributions), t.Invested)
	t.TVPI = multiple(t.Valuation.Add(t.Distributions).Add(t.IdleCash), t.PaidIn)
	return out, t
}

// Fund returns one fund as of a date.
func (m *Funds) Fund(id, asOf string) (FundView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.funds[id] == nil {
		return FundView{}, false
	}
	return m.fundLocked(id, asOf), true
}

// ProjectFilter selects projects; empty fields match all. Sector and
// Status match without regard to case. AsOf dates the valuation of the
// projects' IRR (the latest event's date when empty or earlier).
type ProjectFilter struct {
	FundID string
	Sector string
	Status string
	AsOf   string
}

// ProjectTotals sums projects by sector and by fund.
type ProjectTotals struct {
	Projects  int                    `json:"projects"`
	Approved  domain.Money           `json:"approved"`
	Cost      domain.Money           `json:"cost"`
	Valuation domain.Money           `json:"valuation"`
	BySector  map[string]*GroupTotal `json:"by_sector"`
	ByFund    map[string]*GroupTotal `json:"by_fund"`
}

// GroupTotal sums one group of projects.
type GroupTotal struct {
	Projects      int          `json:"projects"`
	Cost          domain.Money `json:"cost"`
	Valuation     domain.Money `json:"valuation"`
	Distributions domain.Money `json:"distributions"`
}

// Projects lists the investments that match, in the order they were
// approved, with totals by sector and by fund.
func (m *Funds) Projects(f ProjectFilter) ([]ProjectView, ProjectTotals) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []ProjectView{}
	t := ProjectTotals{BySector: map[string]*GroupTotal{}, ByFund: map[string]*GroupTotal{}}
	for _, id := range m.projectOrder {
		pr := m.projects[id]
		if (f.FundID != "" && pr.FundID != f.FundID) || (f.Sector != "" && !strings.EqualFold(pr.Sector, f.Sector)) ||
			(f.Status != "" && !strings.EqualFold(pr.Status, f.Status)) {
			continue
		}
		v := pr.settle()
		out = append(out, v)
		t.Projects++
		t.Approved, t.Cost, t.Valuation = t.Approved.Add(v.Approved), t.Cost.Add(v.Cost), t.Valuation.Add(v.Valuation)
		for _, g := range []*GroupTotal{group(t.BySector, v.Sector), group(t.ByFund, v.FundID)} {
			g.Projects++
			g.Cost, g.Valuation = g.Cost.Add(v.Cost), g.Valuation.Add(v.Valuation)
			g.Distributions = g.Distributions.Add(v.Distributions).Add(v.ExitProceeds)
		}
	}
	return out, t
}

func group(m map[string]*GroupTotal, k string) *GroupTotal {
	g := m[k]
	if g == nil {
		g = &GroupTotal{}
		m[k] = g
	}
	return g
}

// FundAlerts lists every fund's alerts as of a date.
func (m *Funds) FundAlerts(asOf string) []Alert {
	funds, _ := m.Funds(asOf)
	out := []Alert{}
	for _, f := range funds {
		out = append(out, f.Alerts...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].FundID < out[j].FundID })
	return out
}

// PendingFunds lists funds that appropriated to programs, for
// reconciliation to check that each budget side was written.
func (m *Funds) PendingFunds() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var ids []string
	for id := range m.pendingFunds {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Project returns one project, its figures settled; ok is false when
// there is none.
func (m *Funds) Project(id string) (ProjectView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	pr := m.projects[id]
	if pr == nil {
		return ProjectView{}, false
	}
	return pr.settle(), true
}

var _ Model = (*Funds)(nil)
