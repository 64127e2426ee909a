// Package projections folds the global event log into the read models that
// queries are answered from: programs and budgets, talents, grants with
// their installments and payments, the ledger's account balances, funds
// and their projects, principals, the audit tree, and the flows that
// reconciliation completes.
//
// A Feed subscribes to the global log from the position it has reached and
// hands events, in order and in batches, to its models: each a type of its
// own (see Model) in a file of its own, with its own lock, folding only
// the events it needs. Given a views directory (OpenViews), each model
// keeps its state there with the position it reflects, and a start resumes
// from it; the log is the only state, so a model whose views are missing,
// damaged or of another schema is folded from the log again. WaitFor lets
// a client read its own writes (?min_position=).
//
// A Projector is the feed with the models this build serves; New lists
// them, in one place.
package projections

import (
	"context"
	"log/slog"
	"time"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
)

// Projector is the Feed with this build's read models, and the queries
// they answer. Queries are safe for concurrent use with Run.
type Projector struct {
	*Feed

	budgets    *Budgets
	talents    *Talents
	grants     *Grants
	balances   *Balances
	funds      *Funds
	principals *Principals
	audit      *Audit
	pending    *Pending
	work       *Work
	talentIdx  *TalentIndex
	flows      *FundFlows
	reports    *Reports
	apartments *Apartments
	asof       *AsOfIndex
}

type options struct {
	codec       domain.Codec
	commitEvery int
	// noAsOf leaves the as-of index out of the feed: a replay for one
	// point in time has no use for it.
	noAsOf bool
}

// Option configures New.
type Option func(*options)

// WithCodec sets how events are decoded; the default is this build's
// Codec. Tests use it to play a newer build.
func WithCodec(c domain.Codec) Option { return func(o *options) { o.codec = c } }

// WithCommitEvery makes the persistent models commit their views every n
// events folded (and at least once a second), instead of every 50,000: a
// smaller n costs more writes and leaves less to fold again after a crash.
func WithCommitEvery(n int) Option { return func(o *options) { o.commitEvery = n } }

// New returns a Projector over store. Call Run to feed it.
func New(store eventstore.Store, log *slog.Logger, opts ...Option) *Projector {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	p := &Projector{
		budgets:    NewBudgets(),
		talents:    NewTalents(),
		grants:     NewGrants(),
		balances:   NewBalances(),
		funds:      NewFunds(),
		principals: NewPrincipals(),
		audit:      NewAudit(),
		pending:    NewPending(),
		work:       NewWork(),
		talentIdx:  NewTalentIndex(),
		flows:      NewFundFlows(),
		reports:    NewReports(),
		apartments: NewApartments(),
		asof:       NewAsOfIndex(),
	}
	// The models of this build: every one the feed folds is here.
	models := []Model{
		p.budgets,
		p.talents,
		p.grants,
		p.balances,
		p.funds,
		p.principals,
		p.audit,
		p.pending,
		p.work,
		p.talentIdx,
		p.flows,
		p.reports,
		p.apartments,
		p.asof,
	}
	if o.noAsOf {
		models, p.asof = models[:len(models)-1], nil
	}
	p.Feed = NewFeed(store, log, o.codec, models...)
	p.Feed.commitEvery = o.commitEvery
	return p
}

// ApartmentsModel returns the talent apartments' model.
func (p *Projector) ApartmentsModel() *Apartments { return p.apartments }

// AsOf returns the index of the books by business date and recording
// time, which answers the trial balance and the budgets at a point in
// time; nil in a replay for one point in time (see Replay), which answers
// for that point itself.
func (p *Projector) AsOf() *AsOfIndex { return p.asof }

// Budgets returns the programs-and-budgets model.
func (p *Projector) Budgets() *Budgets { return p.budgets }

// Talents returns the talents model.
func (p *Projector) Talents() *Talents { return p.talents }

// GrantsModel returns the grants model, with their installments and
// payments.
func (p *Projector) GrantsModel() *Grants { return p.grants }

// Balances returns the ledger's balances model.
func (p *Projector) Balances() *Balances { return p.balances }

// FundsModel returns the funds-and-projects model.
func (p *Projector) FundsModel() *Funds { return p.funds }

// PrincipalsModel returns the principals model.
func (p *Projector) PrincipalsModel() *Principals { return p.principals }

// Audit returns the audit tree.
func (p *Projector) Audit() *Audit { return p.audit }

// Work returns the model of what waits for someone: the inbox, the
// payments register and the installments.
func (p *Projector) Work() *Work { return p.work }

// TalentIndex returns the model that finds talents.
func (p *Projector) TalentIndex() *TalentIndex { return p.talentIdx }

// Pending returns the model of unfinished flows.
func (p *Projector) Pending() *Pending { return p.pending }

// The queries below answer from one model each (the grants register's
// export reads two); they are here so that callers need not know which.

// Programs lists the programs in the order they were defined, with their
// budgets.
func (p *Projector) Programs() []ProgramView { return p.budgets.Programs() }

// Program returns one program.
func (p *Projector) Program(id string) (ProgramView, bool) { return p.budgets.Program(id) }

// Budget returns a program's budget for a fiscal year.
func (p *Projector) Budget(program string, fy int) (BudgetView, bool) {
	return p.budgets.Budget(program, fy)
}

// Commitments lists the forward commitments to a program's fiscal year,
// in the order they were made: the order they are covered in, and the
// basis of that year's budget request.
func (p *Projector) Commitments(program string, fy int) []CommitmentView {
	return p.budgets.Commitments(program, fy)
}

// Talent returns one talent.
func (p *Projector) Talent(id string) (TalentView, bool) { return p.talents.Talent(id) }

// TalentGrants lists a talent's grants; it backs the domain's no-stacking
// rule.
func (p *Projector) TalentGrants(_ context.Context, talentID string) ([]string, error) {
	return p.talents.Grants(talentID), nil
}

// Grant returns one grant.
func (p *Projector) Grant(id string) (GrantView, bool) { return p.grants.Grant(id) }

// Grants lists grants in the order they were applied for, and the number
// that match in all (see Grants.List).
func (p *Projector) Grants(f GrantFilter) ([]GrantView, int) { return p.grants.List(f) }

// TrialBalance returns the current trial balance.
func (p *Projector) TrialBalance() TrialBalance { return p.balances.TrialBalance() }

// Funds lists the funds as of a date (for alerts), with their totals and
// their measures (see FundFlows).
func (p *Projector) Funds(asOf string) ([]FundView, FundTotals) {
	fs, t := p.funds.Funds(asOf)
	for i := range fs {
		p.measure(&fs[i], asOf)
	}
	return fs, t
}

// Fund returns one fund as of a date, with its measures.
func (p *Projector) Fund(id, asOf string) (FundView, bool) {
	f, ok := p.funds.Fund(id, asOf)
	if ok {
		p.measure(&f, asOf)
	}
	return f, ok
}

// measure sets a fund's and its LPs' NAV, DPI, RVPI, TVPI and IRR from the
// fund-flows model.
func (p *Projector) measure(f *FundView, asOf string) {
	perf, lps, ok := p.flows.Current(f.ID, asOf)
	if !ok {
		return
	}
	f.NAV, f.DPI, f.RVPI, f.TVPI, f.IRR = perf.NAV, perf.DPI, perf.RVPI, perf.TVPI, perf.IRR
	for _, l := range lps {
		for i := range f.LPs {
			if v := &f.LPs[i]; v.LP == l.LP {
				v.Unfunded, v.Distributions, v.NAV = l.Unfunded, l.Distributions, l.NAV
				v.DPI, v.RVPI, v.TVPI, v.IRR = l.DPI, l.RVPI, l.TVPI, l.IRR
			}
		}
	}
}

// Projects lists the investments that match, in the order they were
// approved, with totals by sector and by fund, each with its IRR.
func (p *Projector) Projects(f ProjectFilter) ([]ProjectView, ProjectTotals) {
	ps, t := p.funds.Projects(f)
	for i := range ps {
		ps[i].IRR = p.flows.ProjectIRR(ps[i].FundID, ps[i].ID, f.AsOf, ps[i].Valuation)
	}
	return ps, t
}

// Project returns one project as of a date (the day its IRR values what is
// held), with its history; ok is false when there is none.
func (p *Projector) Project(id, asOf string) (ProjectDetail, bool) {
	v, ok := p.funds.Project(id)
	if !ok {
		return ProjectDetail{}, false
	}
	d, ok := p.flows.History(v.FundID, id)
	if !ok {
		return ProjectDetail{}, false
	}
	v.IRR = p.flows.ProjectIRR(v.FundID, id, asOf, v.Valuation)
	d.ProjectView = v
	return d, true
}

// Statement draws the capital statement of the LP with ID lpID in a fund
// for the days from..to (inclusive).
func (p *Projector) Statement(fundID, lpID, from, to string) (CapitalStatement, bool) {
	return p.flows.Statement(fundID, lpID, from, to)
}

// Clawbacks lists the clawbacks with something outstanding (or every one,
// with all), aged to asOf.
func (p *Projector) Clawbacks(asOf string, all bool) []ClawbackRow {
	return p.reports.Clawbacks(asOf, all)
}

// FundAlerts lists every fund's alerts as of a date.
func (p *Projector) FundAlerts(asOf string) []Alert { return p.funds.FundAlerts(asOf) }

// PendingFunds lists funds that appropriated to programs, for
// reconciliation to check that each budget side was written.
func (p *Projector) PendingFunds() []string { return p.funds.PendingFunds() }

// AccessRequests lists the requests for a change of access that wait for
// a second admin, oldest first.
func (p *Projector) AccessRequests() []AccessRequestView { return p.principals.AccessRequests() }

// PrincipalByToken returns the active principal whose token has the hex
// SHA-256 hash, as of the last event applied.
func (p *Projector) PrincipalByToken(hash string) (PrincipalView, bool) {
	return p.principals.PrincipalByToken(hash)
}

// Principal returns a principal by ID, active or revoked.
func (p *Projector) Principal(id string) (PrincipalView, bool) { return p.principals.Principal(id) }

// Principals lists the principals in the order they were created.
func (p *Projector) Principals() []PrincipalView { return p.principals.Principals() }

// TreeSize returns the number of events in the Merkle tree.
func (p *Projector) TreeSize() uint64 { return p.audit.TreeSize() }

// TreeRoot returns the root of the tree of the first size events, and the
// position of the last of them.
func (p *Projector) TreeRoot(size uint64) ([]byte, eventstore.Position, error) {
	return p.audit.TreeRoot(size)
}

// InclusionProof returns the leaf index of the event at position pos and
// the proof that it is in the tree of size.
func (p *Projector) InclusionProof(pos eventstore.Position, size uint64) (uint64, []auditproof.HexBytes, error) {
	return p.audit.InclusionProof(pos, size)
}

// ConsistencyProof returns the proof that the tree of size2 extends the
// tree of size1.
func (p *Projector) ConsistencyProof(size1, size2 uint64) ([]auditproof.HexBytes, error) {
	return p.audit.ConsistencyProof(size1, size2)
}

// LeafPosition returns the log position of leaf index i.
func (p *Projector) LeafPosition(i uint64) (eventstore.Position, bool) {
	return p.audit.LeafPosition(i)
}

// PendingGrants lists grants whose two-stream flows look unfinished and
// were last touched before cutoff, for reconciliation.
func (p *Projector) PendingGrants(cutoff time.Time) []string { return p.pending.Grants(cutoff) }

// PendingCloses lists closed budgets whose next year has not yet received
// their carry-overs and lapses, closed before cutoff, for reconciliation.
func (p *Projector) PendingCloses(cutoff time.Time) []domain.BudgetKey {
	return p.pending.Closes(cutoff)
}

// PendingTransfers lists approved budget transfers not yet received by
// their target, approved before cutoff, for reconciliation.
func (p *Projector) PendingTransfers(cutoff time.Time) []domain.TransferKey {
	return p.pending.Transfers(cutoff)
}
