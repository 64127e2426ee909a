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
	s.handle("POST", "/v1/funds", fm, "establish a fund", s.command(s.handleFundCreate))
	s.handle("GET", "/v1/funds", AnyRole, "every fund: committed, paid-in, invested, valuation, idle cash, multiples, with totals (figures and alerts ?as_of=, ?recorded_as_of=)", s.handleFundList)
	s.handle("GET", "/v1/funds/alerts", AnyRole, "idle cash, term ending and concentration alerts", s.handleFundAlerts)
	s.handle("GET", "/v1/funds/{id}", AnyRole, "one fund", s.handleFundGet)
	s.handle("GET", "/v1/funds/{id}/projects", AnyRole, "one fund's projects with totals by sector", s.handleFundProjects)
	s.handle("POST", "/v1/funds/{id}/commitments", fm, "record an LP's commitment (认缴)", s.command(s.capitalCommand(s.svc.MakeCommitment)))
	s.handle("POST", "/v1/funds/{id}/paid-in", fm, "record capital paid in (实缴)", s.command(s.capitalCommand(s.svc.PayInCapital)))
	s.handle("POST", "/v1/funds/{id}/investments", fm, "record an approved investment", s.command(s.handleInvestmentApprove))
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/tranches", fm, "fund a tranche", s.command(s.investmentCommand(s.svc.FundTranche, "amount")))
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/valuations", fm, "record a valuation", s.command(s.investmentCommand(s.svc.UpdateValuation, "valuation")))
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/distributions", fm, "record a distribution received", s.command(s.investmentCommand(s.svc.RecordDistribution, "amount")))
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/exit", fm, "record an exit and its proceeds", s.command(s.investmentCommand(s.svc.CompleteExit, "proceeds")))
	s.handle("POST", "/v1/funds/{id}/investments/{iid}/write-off", fm, "write an investment off", s.command(s.investmentCommand(s.svc.WriteOff, "")))
	s.handle("GET", "/v1/projects", AnyRole, "projects by fund, sector and status, with totals (?as_of=, ?recorded_as_of=)", s.handleProjectList)
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
	v, pt, ok := s.query(w, r)
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
	q := r.URL.Query()
	ps, totals := v.Projects(projections.ProjectFilter{FundID: id, Sector: q.Get("sector"), Status: q.Get("status")})
	writeJSON(w, http.StatusOK, stamp(map[string]any{"fund_id": id, "projects": ps, "totals": totals}, pt))
}

func (s *Server) handleProjectList(w http.ResponseWriter, r *http.Request) {
	v, pt, ok := s.query(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	ps, totals := v.Projects(projections.ProjectFilter{FundID: q.Get("fund"), Sector: q.Get("sector"), Status: q.Get("status")})
	writeJSON(w, http.StatusOK, stamp(map[string]any{"projects": ps, "totals": totals}, pt))
}

func (s *Server) handleFundAlerts(w http.ResponseWriter, r *http.Request) {
	d, v, _, ok := s.fundQuery(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"as_of": d, "alerts": v.FundAlerts(d)})
}
