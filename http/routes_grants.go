package http

import (
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/projections"
)

func (s *Server) registerGrantRoutes() {
	clerk := []string{domain.RoleClerk}
	reviewer := []string{domain.RoleReviewer}
	approver := []string{domain.RoleApprover}
	s.handle("POST", "/v1/grants", clerk, "apply for a grant", s.pathCommand(s.handleGrantApply),
		routeDoc{Request: applyRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.ENOTELIGIBLE}})
	s.handle("GET", "/v1/grants", AnyRole, "list grants by program, state, talent and dates of application and approval", s.handleGrantList,
		routeDoc{Response: grantListAnswer{}, Query: append(slices.Clone(qPointTime), "program", "state", "talent",
			"applied_from", "applied_to", "approved_from", "approved_to", "limit", "offset")})
	s.handle("GET", "/v1/grants/{id}", AnyRole, "a grant's state, installments, payments and clawback", s.handleGrantGet,
		routeDoc{Response: projections.GrantView{}, Query: qPointTime, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/grants/{id}/review", reviewer, "the talent office's review", s.pathCommand(s.handleGrantReview),
		routeDoc{Request: reviewRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION}})
	s.handle("POST", "/v1/grants/{id}/notice", reviewer, "open the public notice", s.pathCommand(s.handleGrantNoticeOpen),
		routeDoc{Request: commandFields{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/grants/{id}/notice/objections", []string{domain.RoleReviewer, domain.RoleClerk}, "record an objection to the notice", s.pathCommand(s.handleGrantObjection),
		routeDoc{Request: objectionRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/grants/{id}/notice/objections/{oid}/resolve", reviewer, "resolve an objection", s.pathCommand(s.handleGrantObjectionResolve),
		routeDoc{Request: resolveRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/grants/{id}/notice/close", reviewer, "close the public notice", s.pathCommand(s.handleGrantNoticeClose),
		routeDoc{Request: commandFields{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ENOTICEPENDING}})
	s.handle("POST", "/v1/grants/{id}/approve", approver, "approve and reserve the award", s.pathCommand(s.handleGrantApprove),
		routeDoc{Request: approveRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION, domain.ENOTICEPENDING, domain.ECAPEXCEEDED, domain.EINSUFFICIENTFUNDS, domain.ENOTELIGIBLE}})
	s.handle("POST", "/v1/grants/{id}/reject", approver, "reject", s.pathCommand(s.handleGrantReject),
		routeDoc{Request: reasonRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/grants/{id}/terminate", approver, "terminate after departure and assess the clawback", s.pathCommand(s.handleGrantTerminate),
		routeDoc{Request: reasonRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/grants/{id}/installments/{n}/payments", clerk, "prepare an installment's payment", s.pathCommand(s.handlePaymentPrepare),
		routeDoc{Request: commandFields{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ENOTELIGIBLE}})
	s.handle("POST", "/v1/grants/{id}/recoveries", []string{domain.RoleTreasurer}, "record money recovered", s.pathCommand(s.handleGrantRecovery),
		routeDoc{Request: recoveryRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/grants/{id}/waive", approver, "waive (part of) a clawback", s.pathCommand(s.handleGrantWaive),
		routeDoc{Request: waiveRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
}

type applyRequest struct {
	commandFields
	TalentID        string       `json:"talent_id"`
	ProgramID       string       `json:"program_id"`
	AmountRequested domain.Money `json:"amount_requested"`
}

func (s *Server) handleGrantApply(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req applyRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.ApplyGrant(r.Context(), domain.ApplyGrant{Meta: req.meta(m), TalentID: req.TalentID,
		ProgramID: req.ProgramID, AmountRequested: req.AmountRequested})
	return http.StatusCreated, answer(res), err
}

func (s *Server) handleGrantList(w http.ResponseWriter, r *http.Request) {
	// Every parameter is checked before the read models are: a bad page
	// costs no point-in-time replay.
	q := r.URL.Query()
	limit, err := queryInt(r, "limit", 100, 1000)
	if err == nil && limit == 0 {
		// The projections read a zero limit as "all": never let a client
		// lift the bound on the page size.
		err = domain.Errorf(domain.EINVALID, "limit must be a whole number from 1 to 1000")
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	offset, err := queryInt(r, "offset", 0, 1<<30)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	for _, pair := range [][2]string{{"applied_from", "applied_to"}, {"approved_from", "approved_to"}} {
		if a, b := q.Get(pair[0]), q.Get(pair[1]); a != "" && b != "" && a > b {
			s.Error(w, r, paramErrorf(EBADPARAM, pair[0], nil, "%s (%s) is after %s (%s)", pair[0], a, pair[1], b))
			return
		}
	}
	v, pt, ok := s.query(w, r)
	if !ok {
		return
	}
	// state's values were checked, and made canonical, by strictQuery.
	gs, total := v.GrantSummaries(projections.GrantFilter{ProgramID: q.Get("program"), State: q.Get("state"),
		TalentID: q.Get("talent"), AppliedFrom: q.Get("applied_from"), AppliedTo: q.Get("applied_to"),
		ApprovedFrom: q.Get("approved_from"), ApprovedTo: q.Get("approved_to"), Offset: offset, Limit: limit})
	writeJSON(w, http.StatusOK, stamp(map[string]any{"grants": gs, "total": total, "offset": offset, "limit": limit,
		"position": v.Position().String()}, pt))
}

func (s *Server) handleGrantGet(w http.ResponseWriter, r *http.Request) {
	v, _, ok := s.query(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	g, ok := v.Grant(id)
	if !ok {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "grant %q not found", clip(id)))
		return
	}
	writeJSON(w, http.StatusOK, g)
}

type reviewRequest struct {
	commandFields
	Decision string `json:"decision"`
	Note     string `json:"note"`
}

func (s *Server) handleGrantReview(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req reviewRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.ReviewGrant(r.Context(), domain.ReviewGrant{Meta: req.meta(m), GrantID: mux.Vars(r)["id"], Decision: req.Decision, Note: req.Note})
	return http.StatusOK, answer(res), err
}

func (s *Server) handleGrantNoticeOpen(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.OpenNotice(r.Context(), domain.NoticeCommand{Meta: req.meta(m), GrantID: mux.Vars(r)["id"]})
	return http.StatusOK, answer(res), err
}

func (s *Server) handleGrantNoticeClose(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.CloseNotice(r.Context(), domain.NoticeCommand{Meta: req.meta(m), GrantID: mux.Vars(r)["id"]})
	return http.StatusOK, answer(res), err
}

type objectionRequest struct {
	commandFields
	Summary string `json:"summary"`
}

func (s *Server) handleGrantObjection(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req objectionRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RaiseObjection(r.Context(), domain.RaiseObjection{Meta: req.meta(m), GrantID: mux.Vars(r)["id"], Summary: req.Summary})
	return http.StatusCreated, answer(res), err
}

type resolveRequest struct {
	commandFields
	Upheld     bool   `json:"upheld"`
	Resolution string `json:"resolution"`
}

func (s *Server) handleGrantObjectionResolve(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req resolveRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	v := mux.Vars(r)
	res, err := s.svc.ResolveObjection(r.Context(), domain.ResolveObjection{Meta: req.meta(m), GrantID: v["id"],
		ObjectionID: v["oid"], Upheld: req.Upheld, Resolution: req.Resolution})
	return http.StatusOK, answer(res), err
}

type approveRequest struct {
	commandFields
	Award *domain.Money `json:"award"`
}

func (s *Server) handleGrantApprove(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req approveRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.ApproveGrant(r.Context(), domain.ApproveGrant{Meta: req.meta(m), GrantID: mux.Vars(r)["id"], Award: req.Award})
	return http.StatusOK, answer(res), err
}

type reasonRequest struct {
	commandFields
}

func (s *Server) handleGrantReject(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req reasonRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RejectGrant(r.Context(), domain.RejectGrant{Meta: req.meta(m), GrantID: mux.Vars(r)["id"], Reason: req.Reason})
	return http.StatusOK, answer(res), err
}

func (s *Server) handleGrantTerminate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req reasonRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.TerminateGrant(r.Context(), domain.TerminateGrant{Meta: req.meta(m), GrantID: mux.Vars(r)["id"]})
	return http.StatusOK, answer(res), err
}

func (s *Server) handlePaymentPrepare(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	v := mux.Vars(r)
	n, err := pathInt(v["n"], "installment")
	if err != nil {
		return 0, nil, err
	}
	res, err := s.svc.PreparePayment(r.Context(), domain.PreparePayment{Meta: req.meta(m), GrantID: v["id"], Installment: n})
	return http.StatusCreated, answer(res), err
}

type recoveryRequest struct {
	commandFields
	Amount        domain.Money `json:"amount"`
	BankReference string       `json:"bank_reference"`
}

func (s *Server) handleGrantRecovery(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req recoveryRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RecordRecovery(r.Context(), domain.RecoveryCommand{Meta: req.meta(m), GrantID: mux.Vars(r)["id"],
		Amount: req.Amount, BankReference: req.BankReference})
	return http.StatusCreated, answer(res), err
}

type waiveRequest struct {
	commandFields
	Amount domain.Money `json:"amount"`
}

func (s *Server) handleGrantWaive(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req waiveRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.WaiveRecovery(r.Context(), domain.RecoveryCommand{Meta: req.meta(m), GrantID: mux.Vars(r)["id"], Amount: req.Amount})
	return http.StatusOK, answer(res), err
}
