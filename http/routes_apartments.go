package http

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/projections"
)

func (s *Server) registerApartmentRoutes() {
	s.handle("POST", "/v1/apartments", []string{domain.RoleReviewer}, "register a talent apartment (人才公寓): unit, building, size, market and discounted rent",
		s.command(s.handleApartmentRegister), routeDoc{Request: apartmentRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ECONFLICT}})
	s.handle("GET", "/v1/apartments", AnyRole, "the register of talent apartments on ?as_of= (today by default): rents, monthly discount, who holds each unit, vacancy, and the number waiting",
		s.handleApartmentList, routeDoc{Response: apartmentListAnswer{}, Query: qPointTime})
	s.handle("GET", "/v1/apartments/waiting-list", AnyRole, "the applications waiting for an apartment, in the order they were made", s.handleApartmentWaitingList,
		routeDoc{Response: waitingListAnswer{}, Query: qPointTime})
	s.handle("POST", "/v1/apartments/applications", []string{domain.RoleClerk}, "put a talent on the waiting list", s.command(s.handleApartmentApply),
		routeDoc{Request: apartmentApplyRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.ENOTELIGIBLE, domain.ECONFLICT}})
	s.handle("GET", "/v1/apartments/{id}", AnyRole, "one unit with its allocations", s.handleApartmentGet,
		routeDoc{Response: projections.ApartmentView{}, Query: qPointTime, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/apartments/{id}/allocations", []string{domain.RoleReviewer},
		"let the unit to the first application waiting, from start_date to end_date (at most 36 months), naming the apartment-program grant that pays the discount",
		s.command(s.handleApartmentAllocate),
		routeDoc{Request: allocationRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/apartments/allocations/{aid}/vacate", []string{domain.RoleClerk}, "end an allocation today, with a reason",
		s.command(s.handleApartmentVacate),
		routeDoc{Request: vacateRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
}

type apartmentRequest struct {
	commandFields
	Unit           string          `json:"unit"`
	Building       string          `json:"building"`
	SizeSqm        decimal.Decimal `json:"size_sqm"`
	MarketRent     domain.Money    `json:"market_rent"`
	DiscountedRent domain.Money    `json:"discounted_rent"`
}

func (s *Server) handleApartmentRegister(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req apartmentRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RegisterApartment(r.Context(), domain.RegisterApartment{Meta: req.meta(m), Unit: req.Unit, Building: req.Building,
		SizeSqm: req.SizeSqm, MarketRent: req.MarketRent, DiscountedRent: req.DiscountedRent})
	return http.StatusCreated, answer(res), err
}

type apartmentApplyRequest struct {
	commandFields
	TalentID string `json:"talent_id"`
}

func (s *Server) handleApartmentApply(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req apartmentApplyRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.ApplyApartment(r.Context(), domain.ApplyApartment{Meta: req.meta(m), TalentID: req.TalentID})
	return http.StatusCreated, answer(res), err
}

type allocationRequest struct {
	commandFields
	ApplicationID string `json:"application_id"`
	StartDate     string `json:"start_date"`
	EndDate       string `json:"end_date"`
	GrantID       string `json:"grant_id,omitempty"`
}

func (s *Server) handleApartmentAllocate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req allocationRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.AllocateApartment(r.Context(), domain.AllocateApartment{Meta: req.meta(m), Unit: mux.Vars(r)["id"],
		ApplicationID: req.ApplicationID, StartDate: req.StartDate, EndDate: req.EndDate, GrantID: req.GrantID})
	return http.StatusCreated, answer(res), err
}

type vacateRequest struct {
	commandFields
	Reason string `json:"reason"`
}

func (s *Server) handleApartmentVacate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req vacateRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.VacateApartment(r.Context(), domain.VacateApartment{Meta: req.meta(m), AllocationID: mux.Vars(r)["aid"], Reason: req.Reason})
	return http.StatusOK, answer(res), err
}

func (s *Server) handleApartmentList(w http.ResponseWriter, r *http.Request) {
	d, v, pt, ok := s.datedQuery(w, r, s.query)
	if !ok {
		return
	}
	units, totals := v.ApartmentsModel().Register(d)
	writeJSON(w, http.StatusOK, stamp(map[string]any{"as_of": d, "apartments": units, "totals": totals}, pt))
}

func (s *Server) handleApartmentGet(w http.ResponseWriter, r *http.Request) {
	d, v, _, ok := s.datedQuery(w, r, s.query)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	u, found := v.ApartmentsModel().Unit(id, d)
	if !found {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "apartment %q not found", clip(id)))
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) handleApartmentWaitingList(w http.ResponseWriter, r *http.Request) {
	v, pt, ok := s.query(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, stamp(map[string]any{"waiting": v.ApartmentsModel().WaitingList()}, pt))
}
