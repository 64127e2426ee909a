package projections

import (
	"fmt"
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

	lots []lot
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

// lot is one paid-in amount not yet invested, oldest first.
type lot struct {
	date   string
	amount domain.Money
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
	switch e := payload.(type) {
	case *domain.FundEstablished:
		f := &FundView{ID: e.FundID, Name: e.Name, FundType: e.FundType, Manager: e.Manager, Target: e.Target,
			TermYears: e.TermYears, EstablishedOn: e.EstablishedOn, TermEnd: e.TermEnd, ConcentrationLimitPct: e.ConcentrationLimitPct}
		f.IdleCashPct, f.IdleCashDays, f.TermWarningDays = e.FundAlertThresholds()
		fm.funds[e.FundID] = f
		fm.fundOrder = append(fm.fundOrder, e.FundID)
	case *domain.CommitmentMade:
		if f := fm.funds[e.FundID]; f != nil {
			f.Committed = f.Committed.Add(e.Amount)
			f.lp(e.LP).Committed = f.lp(e.LP).Committed.Add(e.Amount)
		}
	case *domain.CapitalPaidIn:
		if f := fm.funds[e.FundID]; f != nil {
			f.PaidIn = f.PaidIn.Add(e.Amount)
			f.lp(e.LP).PaidIn = f.lp(e.LP).PaidIn.Add(e.Amount)
			f.lots = append(f.lots, lot{e.PaidInOn, e.Amount})
		}
	case *domain.InvestmentApproved:
		f := fm.funds[e.FundID]
		if f == nil {
			return
		}
		fm.projects[e.InvestmentID] = &ProjectView{ID: e.InvestmentID, FundID: e.FundID, FundName: f.Name, Project: e.Project,
			Company: e.Company, Sector: e.Sector, CommitteeRef: e.CommitteeRef, ApprovedOn: e.ApprovedOn, Approved: e.Amount,
			StakePct: e.StakePct, Status: domain.InvestmentApprovedState}
		fm.projectOrder = append(fm.projectOrder, e.InvestmentID)
		f.Projects++
	case *domain.InvestmentFunded:
		if f, pr := fm.funds[e.FundID], fm.projects[e.InvestmentID]; f != nil && pr != nil {
			f.Invested = f.Invested.Add(e.Amount)
			f.consume(e.Amount)
			pr.Cost = pr.Cost.Add(e.Amount)
			pr.Tranches++
			pr.Status = domain.InvestmentFundedState
		}
	case *domain.ValuationUpdated:
		if pr := fm.projects[e.InvestmentID]; pr != nil {
			pr.Valuation, pr.ValuationAsOf, pr.valuationIsSet = e.Valuation, e.AsOf, true
		}
	case *domain.DistributionReceived:
		if f, pr := fm.funds[e.FundID], fm.projects[e.InvestmentID]; f != nil && pr != nil {
			f.Distributions = f.Distributions.Add(e.Amount)
			pr.Distributions = pr.Distributions.Add(e.Amount)
		}
	case *domain.ExitCompleted:
		if f, pr := fm.funds[e.FundID], fm.projects[e.InvestmentID]; f != nil && pr != nil {
			f.Distributions = f.Distributions.Add(e.Proceeds)
			f.ExitProceeds = f.ExitProceeds.Add(e.Proceeds)
			pr.ExitProceeds = e.Proceeds
			pr.Status = domain.InvestmentExited
		}
	case *domain.WrittenOff:
		if f, pr := fm.funds[e.FundID], fm.projects[e.InvestmentID]; f != nil && pr != nil {
			f.WrittenOff = f.WrittenOff.Add(e.Amount)
			pr.WrittenOff = e.Amount
			pr.Status = domain.InvestmentWrittenOff
		}
	case *domain.FundAppropriated:
		if f := fm.funds[e.FundID]; f != nil {
			f.AppropriatedToPrograms = f.AppropriatedToPrograms.Add(e.Amount)
			f.consume(e.Amount)
		}
		// Reconciliation checks each of this fund's appropriations for
		// its budget side; funds that never appropriated need no check.
		fm.pendingFunds[e.FundID] = true
	}
}

func (f *FundView) lp(name string) *LPView {
	for i := range f.LPs {
		if f.LPs[i].LP == name {
			return &f.LPs[i]
		}
	}
	f.LPs = append(f.LPs, LPView{ID: LPID(name), LP: name})
	return &f.LPs[len(f.LPs)-1]
}

// consume spends paid-in lots, oldest first.
func (f *FundView) consume(amount domain.Money) {
	for amount.Sign() > 0 && len(f.lots) > 0 {
		l := &f.lots[0]
		if l.amount.Cmp(amount) > 0 {
			l.amount = l.amount.Sub(amount)
			return
		}
		amount = amount.Sub(l.amount)
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
	f.LPs = append([]LPView{}, f.LPs...)
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
	f.lots = nil
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
	longIdle, since := domain.Zero, ""
	cutoff := domain.AddDays(asOf, -f.IdleCashDays)
	for _, l := range lots {
		if l.date < cutoff {
			longIdle = longIdle.Add(l.amount)
			if since == "" {
				since = l.date
			}
		}
	}
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
		if pr.Approved.Cmp(limit) > 0 {
			alerts = append(alerts, Alert{Kind: "concentration", FundID: f.ID, ProjectID: pr.ID,
				Message: pr.Project + " takes " + pr.Approved.String() + ", above the limit of " + f.ConcentrationLimitPct.String() + "% of the target (" + limit.String() + ")"})
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
