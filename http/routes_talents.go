package http

import (
	"net/http"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/projections"
)

func (s *Server) registerTalentRoutes() {
	s.handle("POST", "/v1/talents", []string{domain.RoleClerk}, "register a talent", s.command(s.handleTalentCreate),
		routeDoc{Request: talentRequest{}, Response: created{}, Status: 201})
	s.handle("GET", "/v1/talents/{id}", AnyRole, "a talent with grants, total paid and clawback due", s.handleTalentGet,
		routeDoc{Response: projections.TalentView{}, Query: qMin, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/talents/{id}/departure", []string{domain.RoleClerk}, "report a departure", s.command(s.handleTalentDeparture),
		routeDoc{Request: departureRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
}

type talentRequest struct {
	commandFields
	Name             string `json:"name"`
	PermitCategory   string `json:"permit_category"`
	Tier             string `json:"tier"`
	Employer         string `json:"employer"`
	OverseasEngineer bool   `json:"overseas_engineer"`
}

func (s *Server) handleTalentCreate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req talentRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RegisterTalent(r.Context(), domain.RegisterTalent{Meta: req.meta(m), Name: req.Name,
		PermitCategory: req.PermitCategory, Tier: req.Tier, Employer: req.Employer, OverseasEngineer: req.OverseasEngineer})
	return http.StatusCreated, answer(res), err
}

func (s *Server) handleTalentGet(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	id := mux.Vars(r)["id"]
	t, ok := s.proj.Talent(id)
	if !ok {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "talent %q not found", clip(id)))
		return
	}
	writeJSON(w, http.StatusOK, t)
}

type departureRequest struct {
	commandFields
	DepartureDate string `json:"departure_date"`
}

func (s *Server) handleTalentDeparture(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req departureRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.ReportDeparture(r.Context(), domain.ReportDeparture{Meta: req.meta(m), TalentID: mux.Vars(r)["id"], DepartureDate: req.DepartureDate})
	return http.StatusOK, answer(res), err
}
