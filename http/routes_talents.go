package http

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/projections"
)

func (s *Server) registerTalentRoutes() {
	s.handle("POST", "/v1/talents", []string{domain.RoleClerk}, "register a talent", s.pathCommand(s.handleTalentCreate),
		routeDoc{Request: talentRequest{}, Response: created{}, Status: 201})
	s.handle("GET", "/v1/talents", AnyRole, "find talents by name (any part, case- and width-insensitive, Chinese names as typed), employer, permit category, tier, overseas engineers, departures", s.handleTalentList,
		routeDoc{Response: talentListAnswer{}, Query: append(slices.Clone(qPointTime), "name", "employer", "permit_category", "tier",
			"overseas_engineer", "departed", "registered_from", "registered_to", "limit", "offset")})
	s.handle("GET", "/v1/talents/{id}", AnyRole, "a talent with grants, total paid and clawback due", s.handleTalentGet,
		routeDoc{Response: projections.TalentView{}, Query: qPointTime, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/talents/{id}/departure", []string{domain.RoleClerk}, "report a departure", s.pathCommand(s.handleTalentDeparture),
		routeDoc{Request: departureRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
}

type talentRequest struct {
	commandFields
	Name             string `json:"name"`
	PermitCategory   string `json:"permit_category"`
	Tier             string `json:"tier"`
	Employer         string `json:"employer"`
	OverseasEngineer bool   `json:"overseas_engineer"`
	BankAccount      string `json:"bank_account,omitempty"`
	BankName         string `json:"bank_name,omitempty"`
}

func (s *Server) handleTalentCreate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req talentRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RegisterTalent(r.Context(), domain.RegisterTalent{Meta: req.meta(m), Name: req.Name,
		PermitCategory: req.PermitCategory, Tier: req.Tier, Employer: req.Employer, OverseasEngineer: req.OverseasEngineer,
		BankAccount: req.BankAccount, BankName: req.BankName})
	return http.StatusCreated, answer(res), err
}

// talentListAnswer is a page of talents.
type talentListAnswer struct {
	Talents  []projections.TalentView `json:"talents"`
	Total    int                      `json:"total"`
	Offset   int                      `json:"offset"`
	Limit    int                      `json:"limit"`
	Position string                   `json:"position"`
	pointInTimeStamp
}

func (s *Server) handleTalentList(w http.ResponseWriter, r *http.Request) {
	v, pt, ok := s.query(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := projections.TalentFilter{Name: q.Get("name"), Employer: q.Get("employer"), PermitCategory: q.Get("permit_category"),
		Tier: q.Get("tier"), RegisteredFrom: q.Get("registered_from"), RegisteredTo: q.Get("registered_to"), Limit: 100}
	if l := q.Get("limit"); l != "" {
		f.Limit, _ = strconv.Atoi(l)
	}
	if o := q.Get("offset"); o != "" {
		f.Offset, _ = strconv.Atoi(o)
	}
	for name, to := range map[string]**bool{"overseas_engineer": &f.Overseas, "departed": &f.Departed} {
		if b := q.Get(name); b != "" {
			yes := b == "true"
			*to = &yes
		}
	}
	ids, total := v.TalentIndex().Find(f)
	out := make([]projections.TalentView, 0, len(ids))
	for _, id := range ids {
		if t, ok := v.Talent(id); ok {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, talentListAnswer{Talents: out, Total: total, Offset: f.Offset, Limit: f.Limit, Position: v.Position().String(),
		pointInTimeStamp: pointInTimeStamp{AsOf: pt.AsOf, RecordedAsOf: pt.RecordedAsOfString()}})
}

func (s *Server) handleTalentGet(w http.ResponseWriter, r *http.Request) {
	v, _, ok := s.query(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	t, ok := v.Talent(id)
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
