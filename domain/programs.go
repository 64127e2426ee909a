package domain

import (
	"context"
	"sort"

	"github.com/shopspring/decimal"
)

// DefineProgram is the command that creates a subsidy program.
type DefineProgram struct {
	Meta             CommandMeta
	ProgramID        string
	Name             string
	Kind             string
	Caps             map[string]Money
	Schedule         Schedule
	ServiceMonths    int
	NoticeDays       int
	PermitCategories []string
	DeductKinds      []string
	// FundingSource is "treasury" (the default) or "fund:<id>".
	FundingSource string
	// Entitlement is what one talent may receive in a lifetime.
	Entitlement Entitlement
	// RetentionMonths is how long a talent's personal data is kept after
	// a grant's last movement of money; 0 for DefaultRetentionMonths.
	RetentionMonths int
}

// DefineProgram creates a program. Only an admin may.
//
// Errors: EINVALID for a bad field, ECONFLICT if the ID is taken.
func (s *Service) DefineProgram(ctx context.Context, c DefineProgram) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Result{}, err
	}
	ev, err := c.validate()
	if err != nil {
		return Result{}, err
	}
	if fund, ok := fundOfSource(ev.FundingSource); ok {
		if err := s.requireFund(ctx, fund); err != nil {
			return Result{}, err
		}
	}
	res, err := s.repo.execute(ctx, streamProgram(c.ProgramID), newProgram, m, func(e *entry) ([]Event, error) {
		if e.agg.(*program).def != nil {
			return nil, Errorf(ECONFLICT, "program %s already exists", c.ProgramID)
		}
		return []Event{ev}, nil
	})
	return result(c.ProgramID, res), err
}

func newProgram() aggregate { return &program{} }

func (c *DefineProgram) validate() (*ProgramDefined, error) {
	if !ValidSlug(c.ProgramID) {
		return nil, Errorf(EINVALID, "program id must be 1–40 lower-case letters, digits or _ starting with a letter")
	}
	if err := checkText("name", c.Name, true); err != nil {
		return nil, err
	}
	if !contains(ProgramKinds, c.Kind) {
		return nil, Errorf(EINVALID, "kind must be one of %v", ProgramKinds)
	}
	if len(c.Caps) == 0 {
		return nil, Errorf(EINVALID, "caps must name at least one tier")
	}
	for tier, cap := range c.Caps {
		if !contains(Tiers, tier) {
			return nil, Errorf(EINVALID, "cap for unknown tier %q; tiers are %v", truncate(tier, 10), Tiers)
		}
		if err := cap.CheckAmount("cap for tier " + tier); err != nil {
			return nil, err
		}
	}
	if err := c.Schedule.validate(); err != nil {
		return nil, err
	}
	if c.ServiceMonths < 0 || c.ServiceMonths > 240 {
		return nil, Errorf(EINVALID, "service_months must be between 0 and 240")
	}
	if c.NoticeDays < 0 || c.NoticeDays > 60 {
		return nil, Errorf(EINVALID, "notice_days must be between 0 and 60")
	}
	for _, p := range c.PermitCategories {
		if !contains(PermitCategories, p) {
			return nil, Errorf(EINVALID, "permit category %q unknown; categories are %v", truncate(p, 20), PermitCategories)
		}
	}
	for _, k := range c.DeductKinds {
		if !contains(ProgramKinds, k) {
			return nil, Errorf(EINVALID, "deduct kind %q unknown", truncate(k, 40))
		}
	}
	if err := c.Entitlement.validate(); err != nil {
		return nil, err
	}
	if c.RetentionMonths < 0 || c.RetentionMonths > 1200 {
		return nil, Errorf(EINVALID, "retention_months must be between 0 (the default, %d) and 1200", DefaultRetentionMonths)
	}
	if c.Entitlement.MaxMonths > 0 && c.Schedule.MonthlyAmount == nil {
		return nil, Errorf(EINVALID, "entitlement max_months needs a monthly schedule")
	}
	src := c.FundingSource
	if src == "" {
		src = "treasury"
	}
	fund, isFund := fundOfSource(src)
	switch {
	case src == "treasury" && c.Kind == KindSpecialFundGrant:
		return nil, Errorf(EINVALID, "a special_fund_grant program must name its fund as funding_source \"fund:<id>\"")
	case src == "treasury":
	case isFund && ValidSlug(fund):
	default:
		return nil, Errorf(EINVALID, "funding_source must be \"treasury\" or \"fund:<id>\"")
	}
	return &ProgramDefined{
		ProgramID: c.ProgramID, Name: c.Name, Kind: c.Kind, Caps: c.Caps, Schedule: c.Schedule,
		ServiceMonths: c.ServiceMonths, NoticeDays: c.NoticeDays, PermitCategories: c.PermitCategories,
		DeductKinds: c.DeductKinds, FundingSource: src, Entitlement: c.Entitlement, RetentionMonths: c.RetentionMonths,
	}, nil
}

func (sc *Schedule) validate() error {
	pct := len(sc.Percentages) > 0
	monthly := sc.MonthlyAmount != nil
	switch {
	case pct && monthly:
		return Errorf(EINVALID, "schedule takes percentages or monthly_amount × months, not both")
	case pct:
		if len(sc.Percentages) > 120 {
			return Errorf(EINVALID, "at most 120 installments")
		}
		sum := decimal.Zero
		for _, p := range sc.Percentages {
			if p.Sign() <= 0 || p.Exponent() < -2 {
				return Errorf(EINVALID, "each percentage must be positive with at most 2 decimals")
			}
			sum = sum.Add(p)
		}
		if !sum.Equal(decimal.NewFromInt(100)) {
			return Errorf(EINVALID, "percentages must sum to 100, not %s", sum)
		}
		if sc.IntervalMonths < 0 || sc.IntervalMonths > 60 || (len(sc.Percentages) > 1 && sc.IntervalMonths == 0) {
			return Errorf(EINVALID, "interval_months must be between 1 and 60")
		}
	case monthly:
		if err := sc.MonthlyAmount.CheckAmount("monthly_amount"); err != nil {
			return err
		}
		if sc.Months < 1 || sc.Months > 120 {
			return Errorf(EINVALID, "months must be between 1 and 120")
		}
	default:
		return Errorf(EINVALID, "schedule needs percentages or monthly_amount and months")
	}
	return nil
}

// installments splits amount by the schedule, the first due on start.
//
// A percentage schedule's last installment takes the rounding remainder,
// so they sum to amount. A monthly schedule pays exactly its monthly
// amount: amount must be a whole number of months, at most the schedule's
// (ESCHEDULE otherwise).
func (sc *Schedule) installments(amount Money, start string) ([]Installment, error) {
	var out []Installment
	if len(sc.Percentages) > 0 {
		sum := Zero
		for i, p := range sc.Percentages {
			a := amount.Percent(p)
			if i == len(sc.Percentages)-1 {
				a = amount.Sub(sum)
			}
			sum = sum.Add(a)
			out = append(out, Installment{N: i + 1, Amount: a, DueDate: AddMonths(start, i*sc.IntervalMonths)})
		}
		return out, nil
	}
	each := *sc.MonthlyAmount
	q, r := amount.Decimal().QuoRem(each.Decimal(), 0)
	months := int(q.IntPart())
	if !r.IsZero() || months < 1 || months > sc.Months {
		return nil, Errorf(ESCHEDULE, "the program pays %s a month for at most %d months; %s is not a whole number of those months", each, sc.Months, amount)
	}
	for i := range months {
		out = append(out, Installment{N: i + 1, Amount: each, DueDate: AddMonths(start, i)})
	}
	return out, nil
}

// loadProgram returns a program's definition or ENOTFOUND.
func (s *Service) loadProgram(ctx context.Context, id string) (*ProgramDefined, error) {
	if !ValidSlug(id) {
		return nil, Errorf(ENOTFOUND, "program %q not found", truncate(id, 40))
	}
	var def *ProgramDefined
	err := s.repo.view(ctx, streamProgram(id), newProgram, func(e *entry) error {
		def = e.agg.(*program).def
		return nil
	})
	if err != nil {
		return nil, err
	}
	if def == nil {
		return nil, Errorf(ENOTFOUND, "program %s not found", id)
	}
	return def, nil
}

// AppropriateBudget is the command that adds money to a program's budget for
// a fiscal year.
type AppropriateBudget struct {
	Meta       CommandMeta
	ProgramID  string
	FiscalYear int
	Amount     Money
}

// AppropriateBudget records an appropriation. Only an approver may. A
// program financed by a special fund cannot be given more than the fund's
// uncommitted cash. The appropriation covers the year's uncovered forward
// commitments in the order they were made, with the same append, up to
// the first it cannot cover: that one and those after it stay flagged.
//
// Errors: EINVALID, ENOTFOUND (program), EINSUFFICIENTFUNDS (fund short).
func (s *Service) AppropriateBudget(ctx context.Context, c AppropriateBudget) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return Result{}, err
	}
	if c.FiscalYear < 2000 || c.FiscalYear > 2100 {
		return Result{}, Errorf(EINVALID, "fiscal_year must be between 2000 and 2100")
	}
	if err := c.Amount.CheckAmount("amount"); err != nil {
		return Result{}, err
	}
	def, err := s.loadProgram(ctx, c.ProgramID)
	if err != nil {
		return Result{}, err
	}
	ev := &BudgetAppropriated{ProgramID: def.ProgramID, FiscalYear: c.FiscalYear, Amount: c.Amount, FundingSource: def.FundingSource}
	stream := streamBudget(def.ProgramID, c.FiscalYear)
	if fund, ok := fundOfSource(def.FundingSource); ok {
		// The fund pays first; the budget is credited after. A crash in
		// between leaves the fund's money earmarked and is completed by
		// Reconcile.
		return s.appropriateFromFund(ctx, m, fund, stream, ev)
	}
	res, err := s.repo.execute(ctx, stream, newBudget, m, func(e *entry) ([]Event, error) {
		return e.agg.(*budget).appropriation(ev)
	})
	return result(stream, res), err
}

func newBudget() aggregate { return &budget{} }

// BudgetState is the authoritative state of a budget, read from its stream.
type BudgetState struct {
	ProgramID    string `json:"program_id"`
	FiscalYear   int    `json:"fiscal_year"`
	Appropriated Money  `json:"appropriated"`
	Committed    Money  `json:"committed"`
	Available    Money  `json:"available"`
	// Paid is what payments charged to the year; Uncovered what forward
	// commitments promise it beyond what it covers.
	Paid      Money `json:"paid"`
	Uncovered Money `json:"uncovered"`
	// CarriedOver is what the year before carried over into this one;
	// Closed is set once the year is closed.
	CarriedOver Money `json:"carried_over"`
	// Adjusted is what approved adjustments added, less what they took.
	Adjusted Money `json:"adjusted"`
	Closed   bool  `json:"closed"`
	Grants   []string
}

// Budget reads a budget's state from its stream.
func (s *Service) Budget(ctx context.Context, programID string, fy int) (BudgetState, error) {
	var st BudgetState
	err := s.repo.view(ctx, streamBudget(programID, fy), newBudget, func(e *entry) error {
		b := e.agg.(*budget)
		if !b.exists {
			return Errorf(ENOTFOUND, "no budget for %s in %d", programID, fy)
		}
		st = BudgetState{ProgramID: programID, FiscalYear: fy, Appropriated: b.appropriated, Committed: b.committed, Available: b.available(),
			Paid: b.paid, Uncovered: b.uncovered, CarriedOver: b.carriedIn, Adjusted: b.adjusted, Closed: b.closed != nil}
		for g := range b.reservations {
			st.Grants = append(st.Grants, g)
		}
		sort.Strings(st.Grants)
		return nil
	})
	return st, err
}
