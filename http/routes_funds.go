package http

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/projections"
)

func (s *Server) registerFundRoutes() {
	fm := []string{domain.RoleFundManager}
	s.handle("POST", "/v1/funds", fm, "establish a fund", s.command(s.handleFundCreate),
		routeDoc{Request: fundRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ECONFLICT}})
	s.handle("GET", "/v1/funds", AnyRole, "every fund: committed, paid-in, invested, valuation, idle cash, multiples, with totals (figures and alerts ?as_of=, ?recorded_as_of=)", s.handleFundList,
		routeDoc{Response: fundListAnswer{}, Query: qPointTime})
	s.handle("GET", "/v1/funds/alerts", AnyRole, "idle cash, term ending and concentration alerts", s.handleFundAlerts,
		routeDoc{Response: fundAlertsAnswer{}, Query: qPointTime})
	s.handle("GET", "/v1/funds/{id}", AnyRole, "one fund", s.handleFundGet,
		routeDoc{Response: projections.FundView{}, Query: qPointTime, Errors: []string{domain.ENOTFOUND}})
	s.handle("GET", "/v1/funds/{id}/projects", AnyRole, "one fund's projects with totals by sector", s.handleFundProjects,
		routeDoc{Response: fundProjectsAnswer{}, Query: append([]string{"sector", "status"}, qPointTime...), Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/funds/{id}/commitments", fm, "record an LP's commitment (认缴)", s.command(s.capitalCommand(s.svc.MakeCommitment)),
		routeDoc{Request: capitalRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.EEXCEEDSTARGET}})
	s.handle("POST", "/v1/funds/{id}/paid-in", fm, "record capital paid in (实缴)", s.command(s.capitalCommand(s.svc.PayInCapital)),
		routeDoc{Request: capitalRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.EEXCEEDSCOMMITMENT}})
	s.handle("POST", "/v1/funds/{id}/investments", fm, "record an approved investment", s.command(s.handleInvestmentApprove),
		routeDoc{Request: investmentRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/tranches", fm, "fund a tranche", s.command(s.investmentCommand(s.svc.FundTranche, "amount")),
		routeDoc{Request: trancheRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.EEXCEEDSAPPROVED, domain.EINSUFFICIENTFUNDS}})
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/valuations", fm, "record a valuation", s.command(s.investmentCommand(s.svc.UpdateValuation, "valuation")),
		routeDoc{Request: valuationRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/distributions", fm, "record a distribution received", s.command(s.investmentCommand(s.svc.RecordDistribution, "amount")),
		routeDoc{Request: trancheRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/exit", fm, "record an exit and its proceeds", s.command(s.investmentCommand(s.svc.CompleteExit, "proceeds")),
		routeDoc{Request: exitRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/write-off", fm, "write an investment off", s.command(s.investmentCommand(s.svc.WriteOff, "")),
		routeDoc{Request: commandFields{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("GET", "/v1/projects", AnyRole, "projects by fund, sector and status, with totals (?as_of=, ?recorded_as_of=)", s.handleProjectList,
		routeDoc{Response: projectListAnswer{}, Query: []string{"min_position", "fund", "sector", "status", "as_of", "recorded_as_of"}})
	s.handle("GET", "/v1/projects/{id}", AnyRole, "one project with its IRR, tranches, valuations, distributions and events (?as_of=, ?recorded_as_of=)", s.handleProjectGet,
		routeDoc{Response: projections.ProjectDetail{}, Query: qPointTime, Errors: []string{domain.ENOTFOUND}})
	s.handle("GET", "/v1/sectors", AnyRole, "the sectors a project may be in, with their names and how many projects each holds", s.handleSectorList,
		routeDoc{Response: sectorListAnswer{}, Query: qPointTime})
	s.handle("GET", "/v1/funds/{id}/lps/{lp}/statement", AnyRole,
		"an LP's capital-account statement for ?from= to ?to= (inclusive; by default the year to today): opening and closing balance, paid-in, distributions, gain or loss, movements, DPI/RVPI/TVPI/IRR", s.handleLPStatement,
		routeDoc{Response: projections.CapitalStatement{}, Query: []string{"min_position", "from", "to"}, Errors: []string{domain.ENOTFOUND}})
}

// projectFilter reads the project filters of a list: sector and status
// are matched without regard to case; an unknown sector is refused with
// the list of sectors.
func projectFilter(r *http.Request, fund, asOf string) (projections.ProjectFilter, error) {
	q := r.URL.Query()
	f := projections.ProjectFilter{FundID: fund, Status: q.Get("status"), AsOf: asOf}
	if sec := q.Get("sector"); sec != "" {
		canon, err := domain.ParseSector(sec)
		if err != nil {
			return f, err
		}
		f.Sector = canon
	}
	return f, nil
}

type fundRequest struct {
	commandFields
	ID                    string           `json:"id"`
	Name                  string           `json:"name"`
	FundType              string           `json:"fund_type"`
	Target                domain.Money     `json:"target"`
	TermYears             int              `json:"term_years"`
	Manager               string           `json:"manager"`
	ConcentrationLimitPct *decimal.Decimal `json:"concentration_limit_pct"`
	IdleCashPct           *int             `json:"idle_cash_pct"`
	IdleCashDays          *int             `json:"idle_cash_days"`
	TermWarningDays       *int             `json:"term_warning_days"`
}

func (s *Server) handleFundCreate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req fundRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.EstablishFund(r.Context(), domain.EstablishFund{Meta: req.meta(m), FundID: req.ID, Name: req.Name,
		FundType: req.FundType, Target: req.Target, TermYears: req.TermYears, Manager: req.Manager, ConcentrationLimitPct: req.ConcentrationLimitPct,
		IdleCashPct: req.IdleCashPct, IdleCashDays: req.IdleCashDays, TermWarningDays: req.TermWarningDays})
	return http.StatusCreated, answer(res), err
}

type capitalRequest struct {
	commandFields
	LP     string       `json:"lp"`
	Amount domain.Money `json:"amount"`
}

func (s *Server) capitalCommand(run func(ctx context.Context, c domain.CapitalCommand) (domain.Result, error)) commandFunc {
	return func(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
		var req capitalRequest
		if err := decode(body, &req); err != nil {
			return 0, nil, err
		}
		res, err := run(r.Context(), domain.CapitalCommand{Meta: req.meta(m), FundID: mux.Vars(r)["id"], LP: req.LP, Amount: req.Amount})
		return http.StatusCreated, answer(res), err
	}
}

type investmentRequest struct {
	commandFields
	CommitteeRef string          `json:"committee_ref"`
	Project      string          `json:"project"`
	Company      string          `json:"company"`
	Sector       string          `json:"sector"`
	Amount       domain.Money    `json:"amount"`
	StakePct     decimal.Decimal `json:"stake_pct"`
}

func (s *Server) handleInvestmentApprove(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req investmentRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.ApproveInvestment(r.Context(), domain.ApproveInvestment{Meta: req.meta(m), FundID: mux.Vars(r)["id"],
		CommitteeRef: req.CommitteeRef, Project: req.Project, Company: req.Company, Sector: req.Sector, Amount: req.Amount, StakePct: req.StakePct})
	return http.StatusCreated, answer(res), err
}

// investmentCommand decodes a body with one amount field named field (none
// when empty) and runs the command on the investment in the path.
func (s *Server) investmentCommand(run func(ctx context.Context, c domain.InvestmentCommand) (domain.Result, error), field string) commandFunc {
	return func(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
		var req struct {
			commandFields
			Amount    *domain.Money `json:"amount,omitempty"`
			Valuation *domain.Money `json:"valuation,omitempty"`
			Proceeds  *domain.Money `json:"proceeds,omitempty"`
		}
		if err := decode(body, &req); err != nil {
			return 0, nil, err
		}
		given := map[string]*domain.Money{"amount": req.Amount, "valuation": req.Valuation, "proceeds": req.Proceeds}
		var amount domain.Money
		for name, v := range given {
			switch {
			case name == field && v == nil:
				return 0, nil, domain.Errorf(domain.EINVALID, "%s is required", field)
			case name == field:
				amount = *v
			case v != nil:
				return 0, nil, domain.Errorf(domain.EINVALID, "unknown field %q", name)
			}
		}
		v := mux.Vars(r)
		res, err := run(r.Context(), domain.InvestmentCommand{Meta: req.meta(m), FundID: v["id"], InvestmentID: v["iid"], Amount: amount})
		return http.StatusOK, answer(res), err
	}
}

// fundQuery starts a fund view. ?as_of= is the date alerts are computed
// against and, when given, the business date the figures are as of (the
// books at the end of that day); without it alerts are computed against
// today in the city and the figures are current. ?recorded_as_of= limits
// the figures to events recorded by then. It returns the alert date and the
// read models to answer from.
func (s *Server) fundQuery(w http.ResponseWriter, r *http.Request) (string, *projections.Projector, projections.PointInTime, bool) {
	return s.datedQuery(w, r, s.fundsQuery)
}

// datedQuery is fundQuery with the read models that query returns.
func (s *Server) datedQuery(w http.ResponseWriter, r *http.Request,
	query func(http.ResponseWriter, *http.Request) (*projections.Projector, projections.PointInTime, bool)) (string, *projections.Projector, projections.PointInTime, bool) {
	v, pt, ok := query(w, r)
	if !ok {
		return "", nil, pt, false
	}
	d := pt.AsOf
	if d == "" {
		d = s.svc.Today()
	}
	return d, v, pt, true
}

func (s *Server) handleFundList(w http.ResponseWriter, r *http.Request) {
	d, v, pt, ok := s.fundQuery(w, r)
	if !ok {
		return
	}
	funds, totals := v.Funds(d)
	writeJSON(w, http.StatusOK, stamp(map[string]any{"funds": funds, "totals": totals, "as_of": d, "position": v.Position().String()}, pt))
}

func (s *Server) handleFundGet(w http.ResponseWriter, r *http.Request) {
	d, v, _, ok := s.fundQuery(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	f, found := v.Fund(id, d)
	if !found {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "fund %q not found", clip(id)))
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) handleFundProjects(w http.ResponseWriter, r *http.Request) {
	d, v, pt, ok := s.fundQuery(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	if _, found := v.Fund(id, d); !found {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "fund %q not found", clip(id)))
		return
	}
	f, err := projectFilter(r, id, d)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	ps, totals := v.Projects(f)
	writeJSON(w, http.StatusOK, stamp(map[string]any{"fund_id": id, "projects": ps, "totals": totals}, pt))
}

func (s *Server) handleProjectList(w http.ResponseWriter, r *http.Request) {
	d, v, pt, ok := s.fundQuery(w, r)
	if !ok {
		return
	}
	f, err := projectFilter(r, r.URL.Query().Get("fund"), d)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	ps, totals := v.Projects(f)
	writeJSON(w, http.StatusOK, stamp(map[string]any{"projects": ps, "totals": totals}, pt))
}

func (s *Server) handleProjectGet(w http.ResponseWriter, r *http.Request) {
	d, v, _, ok := s.fundQuery(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	p, found := v.Project(id, d)
	if !found {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "project %q not found", clip(id)))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// sectorAnswer is one sector of GET /v1/sectors.
type sectorAnswer struct {
	ID       string `json:"id"`
	NameZH   string `json:"name_zh"`
	NameEN   string `json:"name_en"`
	Projects int    `json:"projects"`
}

func (s *Server) handleSectorList(w http.ResponseWriter, r *http.Request) {
	v, _, ok := s.fundsQuery(w, r)
	if !ok {
		return
	}
	_, totals := v.Projects(projections.ProjectFilter{})
	out := make([]sectorAnswer, 0, len(domain.Sectors))
	for _, id := range domain.Sectors {
		n := 0
		if g := totals.BySector[id]; g != nil {
			n = g.Projects
		}
		names := domain.SectorNames[id]
		out = append(out, sectorAnswer{ID: id, NameZH: names[0], NameEN: names[1], Projects: n})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sectors": out})
}

func (s *Server) handleLPStatement(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	q := r.URL.Query()
	to, from := q.Get("to"), q.Get("from")
	if to == "" {
		to = s.svc.Today()
	}
	if from == "" {
		from = to[:4] + "-01-01"
	}
	for name, d := range map[string]string{"from": from, "to": to} {
		if _, err := domain.ParseDate(d); err != nil {
			s.Error(w, r, domain.Errorf(domain.EINVALID, "%s: %v", name, err))
			return
		}
	}
	if from > to {
		s.Error(w, r, domain.Errorf(domain.EINVALID, "from (%s) is after to (%s)", from, to))
		return
	}
	v := mux.Vars(r)
	st, found := s.proj.Statement(v["id"], v["lp"], from, to)
	if !found {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "no LP %q in fund %q", clip(v["lp"]), clip(v["id"])))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleFundAlerts(w http.ResponseWriter, r *http.Request) {
	d, v, _, ok := s.fundQuery(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"as_of": d, "alerts": v.FundAlerts(d)})
}
