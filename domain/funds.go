package domain

import (
	"context"
	"strings"

	"github.com/shopspring/decimal"
)

// Fund event types.
const (
	TypeFundEstablished      = "FundEstablished"
	TypeCommitmentMade       = "CommitmentMade"
	TypeCapitalPaidIn        = "CapitalPaidIn"
	TypeInvestmentApproved   = "InvestmentApproved"
	TypeInvestmentFunded     = "InvestmentFunded"
	TypeValuationUpdated     = "ValuationUpdated"
	TypeDistributionReceived = "DistributionReceived"
	TypeExitCompleted        = "ExitCompleted"
	TypeWrittenOff           = "WrittenOff"
	TypeFundAppropriated     = "FundAppropriated"
)

// Fund types.
const (
	FundSpecial          = "special"
	FundDirectInvestment = "direct_investment"
)

// Sectors an investment may be in.
var Sectors = []string{"semiconductors", "high_end_equipment", "new_materials", "biomedicine",
	"new_energy", "digital_economy", "other"}

// SectorNames are the sectors' names in Chinese and English.
var SectorNames = map[string][2]string{
	"semiconductors":     {"半导体", "Semiconductors"},
	"high_end_equipment": {"高端装备", "High-end equipment"},
	"new_materials":      {"新材料", "New materials"},
	"biomedicine":        {"生物医药", "Biomedicine"},
	"new_energy":         {"新能源", "New energy"},
	"digital_economy":    {"数字经济", "Digital economy"},
	"other":              {"其他", "Other"},
}

// ParseSector returns the sector named s, matched without regard to case
// or surrounding spaces. Errors are EINVALID, listing the sectors.
func ParseSector(s string) (string, error) {
	for _, x := range Sectors {
		if strings.EqualFold(strings.TrimSpace(s), x) {
			return x, nil
		}
	}
	return "", Errorf(EINVALID, "sector %q is not one of %s", truncate(s, 40), strings.Join(Sectors, ", "))
}

// Investment states.
const (
	InvestmentApprovedState = "approved"
	InvestmentFundedState   = "funded"
	InvestmentExited        = "exited"
	InvestmentWrittenOff    = "written_off"
)

// FundEstablished creates a fund.
type FundEstablished struct {
	FundID        string `json:"fund_id"`
	Name          string `json:"name"`
	FundType      string `json:"fund_type"`
	Target        Money  `json:"target"`
	TermYears     int    `json:"term_years"`
	EstablishedOn string `json:"established_on"`
	TermEnd       string `json:"term_end"`
	Manager       string `json:"manager"`
	// ConcentrationLimitPct is the largest share of the target one
	// investment may take before it is flagged.
	ConcentrationLimitPct decimal.Decimal `json:"concentration_limit_pct"`
	// The alert thresholds: paid-in cash idle for more than IdleCashDays
	// is flagged once it exceeds IdleCashPct of the paid-in capital, and
	// the term's end once it is TermWarningDays away or nearer. Absent
	// (zero) means the defaults, see FundAlertThresholds.
	IdleCashPct     int `json:"idle_cash_pct,omitempty"`
	IdleCashDays    int `json:"idle_cash_days,omitempty"`
	TermWarningDays int `json:"term_warning_days,omitempty"`
}

// Default alert thresholds of a fund.
const (
	DefaultIdleCashPct     = 20
	DefaultIdleCashDays    = 365
	DefaultTermWarningDays = 180
)

// FundAlertThresholds returns a fund's alert thresholds, defaults filled
// in.
func (e *FundEstablished) FundAlertThresholds() (idlePct, idleDays, termDays int) {
	idlePct, idleDays, termDays = e.IdleCashPct, e.IdleCashDays, e.TermWarningDays
	if idlePct == 0 {
		idlePct = DefaultIdleCashPct
	}
	if idleDays == 0 {
		idleDays = DefaultIdleCashDays
	}
	if termDays == 0 {
		termDays = DefaultTermWarningDays
	}
	return idlePct, idleDays, termDays
}

// CommitmentMade records a limited partner's commitment (认缴).
type CommitmentMade struct {
	FundID string `json:"fund_id"`
	LP     string `json:"lp"`
	Amount Money  `json:"amount"`
}

// CapitalPaidIn records capital paid in by a limited partner (实缴).
type CapitalPaidIn struct {
	FundID   string `json:"fund_id"`
	LP       string `json:"lp"`
	Amount   Money  `json:"amount"`
	PaidInOn string `json:"paid_in_on"`
}

// InvestmentApproved records the investment committee's decision.
type InvestmentApproved struct {
	FundID       string          `json:"fund_id"`
	InvestmentID string          `json:"investment_id"`
	CommitteeRef string          `json:"committee_ref"`
	Project      string          `json:"project"`
	Company      string          `json:"company"`
	Sector       string          `json:"sector"`
	Amount       Money           `json:"amount"`
	StakePct     decimal.Decimal `json:"stake_pct"`
	ApprovedOn   string          `json:"approved_on"`
}

// InvestmentFunded records one tranche paid into an investment.
type InvestmentFunded struct {
	FundID       string `json:"fund_id"`
	InvestmentID string `json:"investment_id"`
	Tranche      int    `json:"tranche"`
	Amount       Money  `json:"amount"`
	FundedOn     string `json:"funded_on"`
}

// ValuationUpdated records an investment's latest valuation (of the fund's
// stake).
type ValuationUpdated struct {
	FundID       string `json:"fund_id"`
	InvestmentID string `json:"investment_id"`
	Valuation    Money  `json:"valuation"`
	AsOf         string `json:"as_of"`
}

// DistributionReceived records cash an investment paid to the fund.
type DistributionReceived struct {
	FundID       string `json:"fund_id"`
	InvestmentID string `json:"investment_id"`
	Amount       Money  `json:"amount"`
	ReceivedOn   string `json:"received_on"`
}

// ExitCompleted records the sale of an investment. Cost is what was
// funded; proceeds above it are a gain, below it a loss.
type ExitCompleted struct {
	FundID       string `json:"fund_id"`
	InvestmentID string `json:"investment_id"`
	Cost         Money  `json:"cost"`
	Proceeds     Money  `json:"proceeds"`
	ExitedOn     string `json:"exited_on"`
}

// WrittenOff records an investment written off at its whole cost.
type WrittenOff struct {
	FundID       string `json:"fund_id"`
	InvestmentID string `json:"investment_id"`
	Amount       Money  `json:"amount"`
	WrittenOn    string `json:"written_off_on"`
}

// FundAppropriated moves a special fund's cash towards a subsidy program's
// budget. The budget's BudgetAppropriated follows on the budget stream; the
// event carries everything needed to append it if a crash came between.
type FundAppropriated struct {
	FundID     string `json:"fund_id"`
	ProgramID  string `json:"program_id"`
	FiscalYear int    `json:"fiscal_year"`
	Amount     Money  `json:"amount"`
	CommandID  string `json:"command_id"`
}

func (FundEstablished) EventType() string      { return TypeFundEstablished }
func (CommitmentMade) EventType() string       { return TypeCommitmentMade }
func (CapitalPaidIn) EventType() string        { return TypeCapitalPaidIn }
func (InvestmentApproved) EventType() string   { return TypeInvestmentApproved }
func (InvestmentFunded) EventType() string     { return TypeInvestmentFunded }
func (ValuationUpdated) EventType() string     { return TypeValuationUpdated }
func (DistributionReceived) EventType() string { return TypeDistributionReceived }
func (ExitCompleted) EventType() string        { return TypeExitCompleted }
func (WrittenOff) EventType() string           { return TypeWrittenOff }
func (FundAppropriated) EventType() string     { return TypeFundAppropriated }

// Fund accounts. Cash is uninvested paid-in capital; what investments return
// goes to distributable, so cash is exactly what may still be invested.
func accountFundCash(f string) string        { return "fund:" + f + ":cash" }
func accountFundCapital(f, lp string) string { return "fund:" + f + ":capital:" + slugLP(lp) }
func accountFundInvestment(f, i string) string {
	return "fund:" + f + ":investments:" + i
}
func accountFundDistributable(f string) string { return "fund:" + f + ":distributable" }
func accountFundIncome(f, i string) string     { return "fund:" + f + ":income:" + i }
func accountFundGains(f string) string         { return "fund:" + f + ":gains" }
func accountFundLosses(f string) string        { return "fund:" + f + ":losses" }
func accountFundInTransit(f string) string     { return "fund:" + f + ":in_transit" }

// slugLP makes an LP's name usable inside an account name.
func slugLP(lp string) string {
	return strings.Map(func(r rune) rune {
		if r == ':' || r == ' ' {
			return '_'
		}
		return r
	}, lp)
}

// Postings of fund events.
func (e *CapitalPaidIn) Postings() []Posting {
	return []Posting{{accountFundCapital(e.FundID, e.LP), accountFundCash(e.FundID), e.Amount}}
}

func (e *InvestmentFunded) Postings() []Posting {
	return []Posting{{accountFundCash(e.FundID), accountFundInvestment(e.FundID, e.InvestmentID), e.Amount}}
}

func (e *DistributionReceived) Postings() []Posting {
	return []Posting{{accountFundIncome(e.FundID, e.InvestmentID), accountFundDistributable(e.FundID), e.Amount}}
}

func (e *ExitCompleted) Postings() []Posting {
	inv, dist := accountFundInvestment(e.FundID, e.InvestmentID), accountFundDistributable(e.FundID)
	var ps []Posting
	if back := e.Proceeds.Min(e.Cost); back.Sign() > 0 {
		ps = append(ps, Posting{inv, dist, back})
	}
	switch d := e.Proceeds.Sub(e.Cost); d.Sign() {
	case 1:
		ps = append(ps, Posting{accountFundGains(e.FundID), dist, d})
	case -1:
		ps = append(ps, Posting{inv, accountFundLosses(e.FundID), d.Neg()})
	}
	return ps
}

func (e *WrittenOff) Postings() []Posting {
	return []Posting{{accountFundInvestment(e.FundID, e.InvestmentID), accountFundLosses(e.FundID), e.Amount}}
}

func (e *FundAppropriated) Postings() []Posting {
	return []Posting{{accountFundCash(e.FundID), accountFundInTransit(e.FundID), e.Amount}}
}

// fund is the state of a fund stream, investments included: keeping them in
// one stream is what lets one optimistic check stop concurrent tranches
// from spending the same cash.
type fund struct {
	est         *FundEstablished
	committed   map[string]Money
	paidIn      map[string]Money
	totalCommit Money
	totalPaidIn Money
	// cash is paid-in capital not yet invested or appropriated.
	cash           Money
	investments    map[string]*investment
	appropriations map[string]*FundAppropriated // by command ID
}

type investment struct {
	approved *InvestmentApproved
	funded   Money
	tranches int
	state    string
}

func newFund() aggregate { return &fund{} }

func (f *fund) apply(e Event) {
	switch e := e.(type) {
	case *FundEstablished:
		f.est = e
		f.committed, f.paidIn = map[string]Money{}, map[string]Money{}
		f.investments, f.appropriations = map[string]*investment{}, map[string]*FundAppropriated{}
	case *CommitmentMade:
		f.committed[e.LP] = f.committed[e.LP].Add(e.Amount)
		f.totalCommit = f.totalCommit.Add(e.Amount)
	case *CapitalPaidIn:
		f.paidIn[e.LP] = f.paidIn[e.LP].Add(e.Amount)
		f.totalPaidIn = f.totalPaidIn.Add(e.Amount)
		f.cash = f.cash.Add(e.Amount)
	case *InvestmentApproved:
		f.investments[e.InvestmentID] = &investment{approved: e, state: InvestmentStateAfter("", e)}
	case *InvestmentFunded:
		inv := f.investments[e.InvestmentID]
		inv.funded = inv.funded.Add(e.Amount)
		inv.tranches++
		inv.state = InvestmentStateAfter(inv.state, e)
		f.cash = f.cash.Sub(e.Amount)
	case *ExitCompleted:
		inv := f.investments[e.InvestmentID]
		inv.state = InvestmentStateAfter(inv.state, e)
	case *WrittenOff:
		inv := f.investments[e.InvestmentID]
		inv.state = InvestmentStateAfter(inv.state, e)
	case *FundAppropriated:
		f.cash = f.cash.Sub(e.Amount)
		f.appropriations[e.CommandID] = e
	}
}

func streamFund(id string) string { return "fund-" + id }

// FundStream names a fund's stream, which holds every event of the fund
// and its investments.
func FundStream(id string) string { return streamFund(id) }

const prefixInvestment = "i"

// EstablishFund is the command that creates a fund.
type EstablishFund struct {
	Meta                  CommandMeta
	FundID                string
	Name                  string
	FundType              string
	Target                Money
	TermYears             int
	Manager               string
	ConcentrationLimitPct *decimal.Decimal
	// Alert thresholds; nil means the default (DefaultIdleCashPct, …).
	IdleCashPct     *int
	IdleCashDays    *int
	TermWarningDays *int
}

// EstablishFund creates a fund; its establishment date is the command's
// business date. Only a fund manager may.
//
// Errors: EINVALID, ECONFLICT (ID taken).
func (s *Service) EstablishFund(ctx context.Context, c EstablishFund) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleFundManager)
	if err != nil {
		return Result{}, err
	}
	if !ValidSlug(c.FundID) {
		return Result{}, Errorf(EINVALID, "fund id must be 1–40 lower-case letters, digits or _ starting with a letter")
	}
	if err := checkText("name", c.Name, true); err != nil {
		return Result{}, err
	}
	if err := checkText("manager", c.Manager, true); err != nil {
		return Result{}, err
	}
	if c.FundType != FundSpecial && c.FundType != FundDirectInvestment {
		return Result{}, Errorf(EINVALID, "fund_type must be %q or %q", FundSpecial, FundDirectInvestment)
	}
	if err := c.Target.CheckAmount("target"); err != nil {
		return Result{}, err
	}
	if c.TermYears < 1 || c.TermYears > 30 {
		return Result{}, Errorf(EINVALID, "term_years must be between 1 and 30")
	}
	limit := decimal.NewFromInt(20)
	if c.ConcentrationLimitPct != nil {
		limit = *c.ConcentrationLimitPct
		if err := checkPct("concentration_limit_pct", limit); err != nil {
			return Result{}, err
		}
	}
	thresholds := [3]int{DefaultIdleCashPct, DefaultIdleCashDays, DefaultTermWarningDays}
	for i, t := range []struct {
		name     string
		v        *int
		min, max int
	}{{"idle_cash_pct", c.IdleCashPct, 1, 100}, {"idle_cash_days", c.IdleCashDays, 1, 3650}, {"term_warning_days", c.TermWarningDays, 1, 3650}} {
		if t.v == nil {
			continue
		}
		if *t.v < t.min || *t.v > t.max {
			return Result{}, Errorf(EINVALID, "%s must be between %d and %d", t.name, t.min, t.max)
		}
		thresholds[i] = *t.v
	}
	ev := &FundEstablished{FundID: c.FundID, Name: c.Name, FundType: c.FundType, Target: c.Target, TermYears: c.TermYears,
		EstablishedOn: m.date, TermEnd: AddMonths(m.date, 12*c.TermYears), Manager: c.Manager, ConcentrationLimitPct: limit,
		IdleCashPct: thresholds[0], IdleCashDays: thresholds[1], TermWarningDays: thresholds[2]}
	res, err := s.repo.execute(ctx, streamFund(c.FundID), newFund, m, func(e *entry) ([]Event, error) {
		if e.agg.(*fund).est != nil {
			return nil, Errorf(ECONFLICT, "fund %s already exists", c.FundID)
		}
		return []Event{ev}, nil
	})
	return result(c.FundID, res), err
}

// checkPct accepts 0 < p ≤ 100 with at most two decimals.
func checkPct(field string, p decimal.Decimal) error {
	if p.Sign() <= 0 || p.GreaterThan(decimal.NewFromInt(100)) || p.Exponent() < -2 && !p.Equal(p.Round(2)) {
		return Errorf(EINVALID, "%s must be greater than 0 and at most 100, with at most 2 decimals", field)
	}
	return nil
}

// fundCommand runs decide on an existing fund's stream.
func (s *Service) fundCommand(ctx context.Context, m *meta, fundID string, decide func(f *fund) ([]Event, error)) (Result, error) {
	if !ValidSlug(fundID) {
		return Result{}, Errorf(ENOTFOUND, "fund %q not found", truncate(fundID, 40))
	}
	res, err := s.repo.execute(ctx, streamFund(fundID), newFund, m, func(e *entry) ([]Event, error) {
		f := e.agg.(*fund)
		if f.est == nil {
			return nil, Errorf(ENOTFOUND, "fund %s not found", fundID)
		}
		return decide(f)
	})
	return result(fundID, res), err
}

// CapitalCommand records an LP's commitment or paid-in capital.
type CapitalCommand struct {
	Meta   CommandMeta
	FundID string
	LP     string
	Amount Money
}

// MakeCommitment records an LP's commitment. Only a fund manager may.
// Commitments may not exceed the fund's target.
//
// Errors: EINVALID, ENOTFOUND, EEXCEEDSTARGET.
func (s *Service) MakeCommitment(ctx context.Context, c CapitalCommand) (Result, error) {
	m, err := s.capitalMeta(c)
	if err != nil {
		return Result{}, err
	}
	return s.fundCommand(ctx, m, c.FundID, func(f *fund) ([]Event, error) {
		if total := f.totalCommit.Add(c.Amount); total.Cmp(f.est.Target) > 0 {
			return nil, Errorf(EEXCEEDSTARGET, "commitments would be %s, above the target of %s", total, f.est.Target)
		}
		return []Event{&CommitmentMade{FundID: c.FundID, LP: c.LP, Amount: c.Amount}}, nil
	})
}

// PayInCapital records capital paid in. Only a fund manager may. Paid-in
// may not exceed the LP's commitment (and so not the fund's).
//
// Errors: EINVALID, ENOTFOUND, EEXCEEDSCOMMITMENT.
func (s *Service) PayInCapital(ctx context.Context, c CapitalCommand) (Result, error) {
	m, err := s.capitalMeta(c)
	if err != nil {
		return Result{}, err
	}
	return s.fundCommand(ctx, m, c.FundID, func(f *fund) ([]Event, error) {
		if paid := f.paidIn[c.LP].Add(c.Amount); paid.Cmp(f.committed[c.LP]) > 0 {
			return nil, Errorf(EEXCEEDSCOMMITMENT, "%s would have paid in %s of a commitment of %s", c.LP, paid, f.committed[c.LP])
		}
		return []Event{&CapitalPaidIn{FundID: c.FundID, LP: c.LP, Amount: c.Amount, PaidInOn: m.date}}, nil
	})
}

func (s *Service) capitalMeta(c CapitalCommand) (*meta, error) {
	m, err := s.newMeta(c.Meta, RoleFundManager)
	if err != nil {
		return nil, err
	}
	if err := checkText("lp", c.LP, true); err != nil {
		return nil, err
	}
	if err := c.Amount.CheckAmount("amount"); err != nil {
		return nil, err
	}
	return m, nil
}

// ApproveInvestment records an investment committee's approval.
type ApproveInvestment struct {
	Meta         CommandMeta
	FundID       string
	CommitteeRef string
	Project      string
	Company      string
	Sector       string
	Amount       Money
	StakePct     decimal.Decimal
}

// ApproveInvestment records an approved investment and returns its ID. Only
// a fund manager may.
//
// A project's name is unique within its fund, compared without regard to
// case, width or surrounding and repeated spaces: two investments of one
// fund under one name would make every report about it ambiguous.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (a project of that name exists).
func (s *Service) ApproveInvestment(ctx context.Context, c ApproveInvestment) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleFundManager)
	if err != nil {
		return Result{}, err
	}
	for _, f := range []struct{ name, v string }{{"committee_ref", c.CommitteeRef}, {"project", c.Project}, {"company", c.Company}} {
		if err := checkText(f.name, f.v, true); err != nil {
			return Result{}, err
		}
	}
	if !contains(Sectors, c.Sector) {
		return Result{}, Errorf(EINVALID, "sector must be one of %v", Sectors)
	}
	if err := c.Amount.CheckAmount("amount"); err != nil {
		return Result{}, err
	}
	if err := checkPct("stake_pct", c.StakePct); err != nil {
		return Result{}, err
	}
	id := newID(prefixInvestment, m.CommandID, "investment")
	res, err := s.fundCommand(ctx, m, c.FundID, func(f *fund) ([]Event, error) {
		key := ProjectNameKey(c.Project)
		for _, inv := range f.investments {
			if ProjectNameKey(inv.approved.Project) == key {
				return nil, Errorf(ECONFLICT, "fund %s already has a project named %q (%s)", c.FundID, inv.approved.Project, inv.approved.InvestmentID)
			}
		}
		return []Event{&InvestmentApproved{FundID: c.FundID, InvestmentID: id, CommitteeRef: c.CommitteeRef, Project: c.Project,
			Company: c.Company, Sector: c.Sector, Amount: c.Amount, StakePct: c.StakePct, ApprovedOn: m.date}}, nil
	})
	res.ID = id
	return res, err
}

// ProjectNameKey is the form in which project names are compared: see
// FoldName.
func ProjectNameKey(name string) string { return FoldName(name) }

// FoldName folds a name for comparison and search: full-width ASCII forms
// (ＡＢＣ１２３, the ideographic space) become their narrow forms, letters
// lower case, surrounding spaces go and runs of spaces become one. Chinese
// characters are left as they are.
func FoldName(name string) string {
	folded := strings.Map(func(r rune) rune {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			return r - 0xFEE0
		case r == 0x3000:
			return ' '
		}
		return r
	}, name)
	return strings.Join(strings.Fields(strings.ToLower(folded)), " ")
}

// InvestmentCommand acts on one investment of a fund.
type InvestmentCommand struct {
	Meta         CommandMeta
	FundID       string
	InvestmentID string
	// Amount is the tranche, the valuation, the distribution or the
	// proceeds, as the command needs.
	Amount Money
}

// investmentCommand runs decide on an investment that exists and is still
// held (not exited nor written off).
// validate, when set, checks the command's input after its role.
func (s *Service) investmentCommand(ctx context.Context, c InvestmentCommand, needFunded bool, validate func() error, decide func(f *fund, inv *investment, m *meta) ([]Event, error)) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleFundManager)
	if err != nil {
		return Result{}, err
	}
	if validate != nil {
		if err := validate(); err != nil {
			return Result{}, err
		}
	}
	res, err := s.fundCommand(ctx, m, c.FundID, func(f *fund) ([]Event, error) {
		inv := f.investments[c.InvestmentID]
		switch {
		case inv == nil:
			return nil, Errorf(ENOTFOUND, "fund %s has no investment %q", c.FundID, truncate(c.InvestmentID, 40))
		case inv.state == InvestmentExited || inv.state == InvestmentWrittenOff:
			return nil, Errorf(ECONFLICT, "investment %s is %s; nothing more can be recorded", c.InvestmentID, inv.state)
		case needFunded && inv.funded.Sign() == 0:
			return nil, Errorf(ECONFLICT, "investment %s was never funded", c.InvestmentID)
		}
		return decide(f, inv, m)
	})
	res.ID = c.InvestmentID
	return res, err
}

// FundTranche pays a tranche into an investment. Only a fund manager may.
// The tranches may not exceed the approved amount, and a tranche may not
// exceed the fund's uninvested paid-in cash; concurrent tranches contend on
// the fund's stream, so they can never spend the same cash twice.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT, EEXCEEDSAPPROVED,
// EINSUFFICIENTFUNDS.
func (s *Service) FundTranche(ctx context.Context, c InvestmentCommand) (Result, error) {
	return s.investmentCommand(ctx, c, false, func() error { return c.Amount.CheckAmount("amount") }, func(f *fund, inv *investment, m *meta) ([]Event, error) {
		if total := inv.funded.Add(c.Amount); total.Cmp(inv.approved.Amount) > 0 {
			return nil, Errorf(EEXCEEDSAPPROVED, "tranches would total %s of the %s approved", total, inv.approved.Amount)
		}
		if f.cash.Cmp(c.Amount) < 0 {
			return nil, Errorf(EINSUFFICIENTFUNDS, "fund %s has %s of uninvested paid-in cash, %s needed", c.FundID, f.cash, c.Amount)
		}
		return []Event{&InvestmentFunded{FundID: c.FundID, InvestmentID: c.InvestmentID, Tranche: inv.tranches + 1,
			Amount: c.Amount, FundedOn: m.date}}, nil
	})
}

// UpdateValuation records an investment's valuation. Only a fund manager
// may; the amount may be zero.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) UpdateValuation(ctx context.Context, c InvestmentCommand) (Result, error) {
	validate := func() error {
		if c.Amount.Sign() < 0 || c.Amount.Cmp(MaxAmount) > 0 {
			return Errorf(EINVALID, "valuation must be between 0 and %s", MaxAmount)
		}
		return nil
	}
	return s.investmentCommand(ctx, c, true, validate, func(f *fund, inv *investment, m *meta) ([]Event, error) {
		return []Event{&ValuationUpdated{FundID: c.FundID, InvestmentID: c.InvestmentID, Valuation: c.Amount, AsOf: m.date}}, nil
	})
}

// RecordDistribution records cash received from an investment. Only a fund
// manager may.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) RecordDistribution(ctx context.Context, c InvestmentCommand) (Result, error) {
	return s.investmentCommand(ctx, c, true, func() error { return c.Amount.CheckAmount("amount") }, func(f *fund, inv *investment, m *meta) ([]Event, error) {
		return []Event{&DistributionReceived{FundID: c.FundID, InvestmentID: c.InvestmentID, Amount: c.Amount, ReceivedOn: m.date}}, nil
	})
}

// CompleteExit records the sale of a funded investment for its proceeds
// (which may be zero). Only a fund manager may.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) CompleteExit(ctx context.Context, c InvestmentCommand) (Result, error) {
	validate := func() error {
		if c.Amount.Sign() < 0 || c.Amount.Cmp(MaxAmount) > 0 {
			return Errorf(EINVALID, "proceeds must be between 0 and %s", MaxAmount)
		}
		return nil
	}
	return s.investmentCommand(ctx, c, true, validate, func(f *fund, inv *investment, m *meta) ([]Event, error) {
		return []Event{&ExitCompleted{FundID: c.FundID, InvestmentID: c.InvestmentID, Cost: inv.funded, Proceeds: c.Amount, ExitedOn: m.date}}, nil
	})
}

// WriteOff writes a funded investment off at its whole cost. Only a fund
// manager may.
//
// Errors: ENOTFOUND, ECONFLICT.
func (s *Service) WriteOff(ctx context.Context, c InvestmentCommand) (Result, error) {
	return s.investmentCommand(ctx, c, true, nil, func(f *fund, inv *investment, m *meta) ([]Event, error) {
		return []Event{&WrittenOff{FundID: c.FundID, InvestmentID: c.InvestmentID, Amount: inv.funded, WrittenOn: m.date}}, nil
	})
}

// requireFund checks that a special fund exists, for a program it is to
// finance.
func (s *Service) requireFund(ctx context.Context, fundID string) error {
	var est *FundEstablished
	err := s.repo.view(ctx, streamFund(fundID), newFund, func(e *entry) error {
		est = e.agg.(*fund).est
		return nil
	})
	switch {
	case err != nil:
		return err
	case est == nil:
		return Errorf(ENOTFOUND, "fund %s not found", fundID)
	case est.FundType != FundSpecial:
		return Errorf(EINVALID, "fund %s is a %s fund; only special funds finance programs", fundID, est.FundType)
	}
	return nil
}

// appropriateFromFund appropriates a budget from a special fund's cash:
// FundAppropriated on the fund's stream (refused when the cash is short),
// then BudgetAppropriated on the budget's stream. Both derive their event
// IDs from the command, and ReconcileFunds appends a missing second step.
func (s *Service) appropriateFromFund(ctx context.Context, m *meta, fundID, stream string, ev *BudgetAppropriated) (Result, error) {
	_, err := s.fundCommand(ctx, m, fundID, func(f *fund) ([]Event, error) {
		if f.est.FundType != FundSpecial {
			return nil, Errorf(EINVALID, "fund %s is not a special fund", fundID)
		}
		if f.cash.Cmp(ev.Amount) < 0 {
			return nil, Errorf(EINSUFFICIENTFUNDS, "fund %s has %s of uninvested cash, %s needed", fundID, f.cash, ev.Amount)
		}
		return []Event{&FundAppropriated{FundID: fundID, ProgramID: ev.ProgramID, FiscalYear: ev.FiscalYear, Amount: ev.Amount, CommandID: m.CommandID}}, nil
	})
	if err != nil {
		return Result{}, err
	}
	res, err := s.repo.execute(ctx, stream, newBudget, m.secondary(), func(e *entry) ([]Event, error) {
		return e.agg.(*budget).appropriation(ev)
	})
	return result(stream, res), err
}

// ReconcileFunds appends the budget side of fund appropriations that a
// crash interrupted. It returns how many it appended.
func (s *Service) ReconcileFunds(ctx context.Context, fundIDs []string) (int, error) {
	n := 0
	for _, id := range fundIDs {
		var pending []*FundAppropriated
		if err := s.repo.view(ctx, streamFund(id), newFund, func(e *entry) error {
			for _, a := range e.agg.(*fund).appropriations {
				pending = append(pending, a)
			}
			return nil
		}); err != nil {
			return n, err
		}
		for _, a := range pending {
			stream := streamBudget(a.ProgramID, a.FiscalYear)
			done := false
			if err := s.repo.view(ctx, stream, newBudget, func(e *entry) error {
				_, done = e.ids[eventID(a.CommandID, stream, 0)]
				return nil
			}); err != nil {
				return n, err
			}
			if done {
				continue
			}
			m := s.systemMeta(a.CommandID, "completing an appropriation from fund "+id)
			m.completedBy = CompletedByReconcile
			ev := &BudgetAppropriated{ProgramID: a.ProgramID, FiscalYear: a.FiscalYear, Amount: a.Amount, FundingSource: "fund:" + id}
			if _, err := s.repo.execute(ctx, stream, newBudget, m, func(e *entry) ([]Event, error) { return e.agg.(*budget).appropriation(ev) }); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
