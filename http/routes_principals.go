package http

import (
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/projections"
)

// Principals are managed through the API by admins and read by admins and
// auditors. Each change is an event in the principal's stream, audited
// like money. A change that gives access (create, grant a role, rotate,
// restore) is a request another admin approves; taking access away is at
// once. A token comes only from redeeming an enrollment code at
// POST /v1/enroll, whose two halves the two admins hand to the person. A
// command answers only once the read models hold the change, so that a
// revoked token or role is refused from the very next request to this
// server. Principals of the principals file are changed in the file,
// never here.
func (s *Server) registerPrincipalRoutes() {
	admin := []string{domain.RoleAdmin}
	readers := []string{domain.RoleAdmin, domain.RoleAuditor}
	s.handle("POST", "/v1/principals", admin, "request a principal, which exists once another admin approves; the requester's half of the enrollment code is in this answer only", s.command(s.handlePrincipalCreate),
		routeDoc{Request: principalRequest{}, Response: requestedAnswer{}, Status: 202, Errors: []string{domain.ECONFLICT, domain.ESEGREGATION, ETIMEOUT}})
	s.handle("GET", "/v1/principals", readers, "every principal, from the log and from the principals file (never a token or its hash), and how many admins can approve", s.handlePrincipalList,
		routeDoc{Response: principalList{}, Query: qMin})
	s.handle("GET", "/v1/principals/{id}", readers, "one principal", s.handlePrincipalGet,
		routeDoc{Response: principalAnswer{}, Query: qMin, Errors: []string{domain.ENOTFOUND}})
	s.handle("GET", "/v1/principals/{id}/trail", readers, "every change of a principal's access: who, when, why, hash, and inclusion proofs", s.handlePrincipalTrail,
		routeDoc{Response: principalTrail{}, Query: qMin, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/principals/{id}/roles", admin, "request a role, in force once another admin approves", s.command(s.handlePrincipalGrant),
		routeDoc{Request: roleRequest{}, Response: requestedAnswer{}, Status: 202, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION, ETIMEOUT}})
	s.handle("POST", "/v1/principals/{id}/roles/{role}/revoke", admin, "revoke a role, at once", s.command(s.handlePrincipalRevokeRole),
		routeDoc{Request: commandFields{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, ETIMEOUT}})
	s.handle("POST", "/v1/principals/{id}/rotate", admin, "request a new token; the old one works until the new one is redeemed, or stops at once with revoke_now; the requester's half of the enrollment code is in this answer only", s.command(s.handlePrincipalRotate),
		routeDoc{Request: rotateRequest{}, Response: requestedAnswer{}, Status: 202, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, ETIMEOUT}})
	s.handle("POST", "/v1/principals/{id}/revoke", admin, "revoke a principal, at once", s.command(s.handlePrincipalRevoke),
		routeDoc{Request: commandFields{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, ETIMEOUT}})
	s.handle("POST", "/v1/principals/{id}/restore", admin, "request that a revoked principal get its access back; the requester's half of the enrollment code is in this answer only", s.command(s.handlePrincipalRestore),
		routeDoc{Request: commandFields{}, Response: requestedAnswer{}, Status: 202, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, ETIMEOUT}})
	s.handle("GET", "/v1/access-requests", readers, "the requests for a change of access that wait for a second admin", s.handleAccessRequests,
		routeDoc{Response: accessRequestList{}, Query: qMin})
	s.handle("POST", "/v1/principals/{id}/requests/{rid}/approve", admin, "approve another admin's request, which takes effect at once; the approver's half of the enrollment code is in this answer only", s.command(s.handleAccessApprove),
		routeDoc{Request: commandFields{}, Response: approvedAnswer{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION, ETIMEOUT}})
	s.handle("POST", "/v1/principals/{id}/requests/{rid}/reject", admin, "withdraw or reject a pending request", s.command(s.handleAccessReject),
		routeDoc{Request: commandFields{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, ETIMEOUT}})
	s.handle("POST", "/v1/enroll", nil, "redeem an enrollment code (both halves) for the principal's token, shown in this answer only; no bearer token", s.handleEnroll,
		routeDoc{Request: enrollRequest{}, Response: issuedAnswer{}, Status: 201, Errors: []string{domain.EUNAUTHENTICATED, domain.ECONFLICT}})
}

type principalRequest struct {
	commandFields
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
}

type roleRequest struct {
	commandFields
	Role string `json:"role"`
}

type rotateRequest struct {
	commandFields
	// RevokeNow ends the current token at once, instead of when the new
	// one is redeemed.
	RevokeNow bool `json:"revoke_now,omitempty"`
}

// enrollRequest is the body of POST /v1/enroll.
type enrollRequest struct {
	ID string `json:"id"`
	// Code is the two halves of the enrollment code, 32 hex digits each,
	// one after the other in either order.
	Code string `json:"code"`
}

// requestedAnswer answers a request for a change of access (202: it waits
// for a second admin).
type requestedAnswer struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
	Change    string `json:"change"`
	Status    string `json:"status"`
	Position  string `json:"position"`
	// CodeHalf is the requester's half of the enrollment code, for a
	// change that issues a token, shown this once: a retry with the same
	// Idempotency-Key answers without it.
	CodeHalf string `json:"code_half,omitempty"`
}

func (a requestedAnswer) redacted() any { a.CodeHalf = ""; return a }

// approvedAnswer answers an approval.
type approvedAnswer struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
	Change    string `json:"change,omitempty"`
	Status    string `json:"status"`
	Position  string `json:"position"`
	// CodeHalf is the approver's half of the enrollment code, for a change
	// that issues a token, shown this once; the code works until
	// ExpiresAt.
	CodeHalf  string     `json:"code_half,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (a approvedAnswer) redacted() any { a.CodeHalf = ""; return a }

// issuedAnswer answers a redeemed enrollment with the token, shown this
// once.
type issuedAnswer struct {
	ID       string `json:"id"`
	Position string `json:"position"`
	Token    string `json:"token"`
}

// accessRequestList answers GET /v1/access-requests.
type accessRequestList struct {
	Requests []projections.AccessRequestView `json:"requests"`
	Position string                          `json:"position"`
}

// redactor is an answer that holds a secret, with the form of it that may
// be kept in the log.
type redactor interface{ redacted() any }

// notInFile refuses a change to a principal of the principals file.
func (s *Server) notInFile(id string) error {
	if s.auth.has(id) {
		return domain.Errorf(domain.ECONFLICT, "principal %s is defined in the principals file; change it there", clip(id))
	}
	return nil
}

// applied waits until the read models hold what a command wrote, so the
// change is in force for the next request.
func (s *Server) applied(r *http.Request, res domain.Result) error {
	if err := s.proj.WaitFor(r.Context(), res.Position, s.wait); err != nil {
		if err == projections.ErrNotReached {
			return &domain.Error{Code: ETIMEOUT, Message: "the change is recorded at position " + res.Position.String() +
				" but not yet in force; retry with the same Idempotency-Key", Err: err}
		}
		return err
	}
	return nil
}

// requested answers a request for a change of access.
func (s *Server) requested(r *http.Request, req domain.Requested, err error) (int, any, error) {
	if err == nil {
		err = s.applied(r, req.Result)
	}
	return http.StatusAccepted, requestedAnswer{ID: req.ID, RequestID: req.RequestID, Change: req.Change, Status: "pending",
		Position: req.Position.String(), CodeHalf: req.CodeHalf}, err
}

func (s *Server) handlePrincipalCreate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req principalRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	if err := s.notInFile(req.ID); err != nil {
		return 0, nil, err
	}
	out, err := s.svc.CreatePrincipal(r.Context(), domain.CreatePrincipal{Meta: req.meta(m), PrincipalID: req.ID, Roles: req.Roles})
	return s.requested(r, out, err)
}

func (s *Server) handlePrincipalGrant(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req roleRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	id := mux.Vars(r)["id"]
	if err := s.notInFile(id); err != nil {
		return 0, nil, err
	}
	out, err := s.svc.GrantRole(r.Context(), domain.PrincipalRole{Meta: req.meta(m), PrincipalID: id, Role: req.Role})
	return s.requested(r, out, err)
}

func (s *Server) handlePrincipalRevokeRole(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	v := mux.Vars(r)
	if err := s.notInFile(v["id"]); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RevokeRole(r.Context(), domain.PrincipalRole{Meta: req.meta(m), PrincipalID: v["id"], Role: v["role"]})
	if err == nil {
		err = s.applied(r, res)
	}
	return http.StatusOK, answer(res), err
}

func (s *Server) handlePrincipalRotate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req rotateRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	id := mux.Vars(r)["id"]
	if err := s.notInFile(id); err != nil {
		return 0, nil, err
	}
	out, err := s.svc.RotateToken(r.Context(), domain.RotateToken{Meta: req.meta(m), PrincipalID: id, RevokeNow: req.RevokeNow})
	return s.requested(r, out, err)
}

func (s *Server) handlePrincipalRestore(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	id := mux.Vars(r)["id"]
	if err := s.notInFile(id); err != nil {
		return 0, nil, err
	}
	out, err := s.svc.RestorePrincipal(r.Context(), domain.PrincipalCommand{Meta: req.meta(m), PrincipalID: id})
	return s.requested(r, out, err)
}

func (s *Server) handlePrincipalRevoke(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	id := mux.Vars(r)["id"]
	if err := s.notInFile(id); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RevokePrincipal(r.Context(), domain.PrincipalCommand{Meta: req.meta(m), PrincipalID: id})
	if err == nil {
		err = s.applied(r, res)
	}
	return http.StatusOK, answer(res), err
}

func (s *Server) handleAccessApprove(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	v := mux.Vars(r)
	out, err := s.svc.ApproveAccess(r.Context(), domain.AccessDecision{Meta: req.meta(m), PrincipalID: v["id"], RequestID: v["rid"],
		ActorInFile: s.auth.has(m.Actor.Principal)})
	if err == nil {
		err = s.applied(r, out.Result)
	}
	return http.StatusOK, approvedAnswer{ID: out.ID, RequestID: out.RequestID, Change: out.Change, Status: "approved",
		Position: out.Position.String(), CodeHalf: out.CodeHalf, ExpiresAt: out.ExpiresAt}, err
}

func (s *Server) handleAccessReject(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	v := mux.Vars(r)
	res, err := s.svc.RejectAccess(r.Context(), domain.AccessDecision{Meta: req.meta(m), PrincipalID: v["id"], RequestID: v["rid"]})
	if err == nil {
		err = s.applied(r, res)
	}
	return http.StatusOK, answer(res), err
}

// handleEnroll redeems an enrollment code. It needs no bearer token (the
// code is the credential) and honours no Idempotency-Key: a code works
// once, so a retry is refused and never shows the token again.
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var req enrollRequest
	if err := decode(body, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if s.auth.has(req.ID) {
		// The file's principals have no enrollment: the same answer as
		// for any code that matches nothing.
		s.Error(w, r, domain.Errorf(domain.EUNAUTHENTICATED, "the enrollment code is not valid for this principal"))
		return
	}
	is, err := s.svc.Enroll(r.Context(), domain.Enroll{PrincipalID: req.ID, Code: req.Code, CorrelationID: requestID(r.Context())})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// The code is spent: the token is answered even if the read models
	// are slow to hold it (it then works once they do), never lost.
	_ = s.applied(r, is.Result)
	if info, _ := r.Context().Value(keyInfo).(*reqInfo); info != nil {
		info.principal = is.ID
	}
	writeJSON(w, http.StatusCreated, issuedAnswer{ID: is.ID, Position: is.Position.String(), Token: is.Token})
}

func (s *Server) handleAccessRequests(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, accessRequestList{Requests: s.proj.AccessRequests(), Position: s.proj.Position().String()})
}

// admins counts the admins who can approve a request: those of the
// principals file and the active ones of the log holding a token.
func (s *Server) admins() int {
	n := 0
	for _, p := range s.auth.list() {
		if p.has(domain.RoleAdmin) {
			n++
		}
	}
	if s.proj == nil {
		return n
	}
	for _, v := range s.proj.Principals() {
		if v.Active && v.TokenIssuedAt != nil && slices.Contains(v.Roles, domain.RoleAdmin) && !s.auth.has(v.ID) {
			n++
		}
	}
	return n
}

// fourEyesNotice says, when fewer than two admins can approve, that every
// change giving access waits for a second one.
func fourEyesNotice(admins int) string {
	if admins >= 2 {
		return ""
	}
	return "only one admin can approve changes of access: every principal, role, rotation and restoration requested " +
		"waits for a second admin, who can be added only in the principals file"
}

// LogAccessState logs, once the read models are ready, a warning when
// fewer than two admins can approve changes of access.
func (s *Server) LogAccessState() {
	n := s.admins()
	if msg := fourEyesNotice(n); msg != "" {
		s.log.Warn(msg, "admins", n)
	}
}

// principalAnswer is a principal as the API shows it: from the log, or
// from the principals file (then only its ID and roles).
type principalAnswer struct {
	projections.PrincipalView
	// Source is "log" for a principal managed through the API, "file" for
	// one of the principals file.
	Source string `json:"source"`
}

func filePrincipal(p Principal) principalAnswer {
	return principalAnswer{PrincipalView: projections.PrincipalView{ID: p.ID, Roles: p.Roles, Active: true}, Source: "file"}
}

func (s *Server) handlePrincipalList(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	var out []principalAnswer
	for _, p := range s.auth.list() {
		out = append(out, filePrincipal(p))
	}
	for _, v := range s.proj.Principals() {
		out = append(out, principalAnswer{PrincipalView: v, Source: "log"})
	}
	if out == nil {
		out = []principalAnswer{}
	}
	n := s.admins()
	writeJSON(w, http.StatusOK, principalList{Principals: out, Admins: n, FourEyes: fourEyesNotice(n), Position: s.proj.Position().String()})
}

// principalList answers GET /v1/principals.
type principalList struct {
	Principals []principalAnswer `json:"principals"`
	// Admins counts the admins who can approve changes of access;
	// FourEyes says so when there are fewer than two.
	Admins   int    `json:"admins"`
	FourEyes string `json:"four_eyes,omitempty"`
	Position string `json:"position"`
}

func (s *Server) handlePrincipalGet(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	id := mux.Vars(r)["id"]
	if p, ok := s.auth.get(id); ok {
		writeJSON(w, http.StatusOK, filePrincipal(p))
		return
	}
	v, ok := s.proj.Principal(id)
	if !ok {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "principal %q not found", clip(id)))
		return
	}
	writeJSON(w, http.StatusOK, principalAnswer{PrincipalView: v, Source: "log"})
}

// principalTrail answers GET /v1/principals/{id}/trail.
type principalTrail struct {
	PrincipalID string       `json:"principal_id"`
	Events      []TrailEntry `json:"events"`
	// TreeHead is the signed head the events' proofs are against, when
	// the server has an audit key.
	TreeHead *auditproof.TreeHead `json:"tree_head,omitempty"`
}

// handlePrincipalTrail lists the events of a principal's stream, each with
// its hash checked against its predecessor and, with an audit key, its
// proof of inclusion in one signed tree head.
func (s *Server) handlePrincipalTrail(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	id := mux.Vars(r)["id"]
	notFound := domain.Errorf(domain.ENOTFOUND, "principal %q has no changes in the log", clip(id))
	if !domain.ValidPrincipalID(id) {
		s.Error(w, r, notFound)
		return
	}
	trail, err := s.proj.PrincipalTrail(r.Context(), id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if len(trail) == 0 {
		s.Error(w, r, notFound)
		return
	}
	answer := principalTrail{PrincipalID: id, Events: trail}
	head, err := s.proveTrail(r, trail)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	answer.TreeHead = head
	writeJSON(w, http.StatusOK, answer)
}
