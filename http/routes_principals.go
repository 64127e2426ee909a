package http

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	"talentledger/projections"
)

// Principals are managed through the API by admins and read by admins and
// auditors. Each change is an event in the principal's stream, audited
// like money. A command answers only once the read models hold the change,
// so that a revoked token or role is refused from the very next request to
// this server. Principals of the principals file are changed in the file,
// never here.
func (s *Server) registerPrincipalRoutes() {
	admin := []string{domain.RoleAdmin}
	readers := []string{domain.RoleAdmin, domain.RoleAuditor}
	s.handle("POST", "/v1/principals", admin, "create a principal; its token is in this answer only", s.command(s.handlePrincipalCreate))
	s.handle("GET", "/v1/principals", readers, "every principal, from the log and from the principals file (never a token or its hash)", s.handlePrincipalList)
	s.handle("GET", "/v1/principals/{id}", readers, "one principal", s.handlePrincipalGet)
	s.handle("GET", "/v1/principals/{id}/trail", readers, "every change of a principal's access: who, when, why, hash, and inclusion proofs", s.handlePrincipalTrail)
	s.handle("POST", "/v1/principals/{id}/roles", admin, "grant a role", s.command(s.handlePrincipalGrant))
	s.handle("POST", "/v1/principals/{id}/roles/{role}/revoke", admin, "revoke a role", s.command(s.handlePrincipalRevokeRole))
	s.handle("POST", "/v1/principals/{id}/rotate", admin, "issue a new token, ending the old one; the token is in this answer only", s.command(s.handlePrincipalRotate))
	s.handle("POST", "/v1/principals/{id}/revoke", admin, "revoke a principal for good", s.command(s.handlePrincipalRevoke))
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

// issuedAnswer answers a command that issues a token. The token is shown
// in this answer only: the answer kept for an Idempotency-Key retry leaves
// it out, so the log never holds it.
type issuedAnswer struct {
	ID       string `json:"id"`
	Position string `json:"position"`
	// Token is empty when a retry answers a command that already issued
	// one: rotate to get a new one.
	Token string `json:"token,omitempty"`
}

// redacted is the answer as kept for retries.
func (a issuedAnswer) redacted() any { return created{ID: a.ID, Position: a.Position} }

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

func (s *Server) handlePrincipalCreate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req principalRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	if err := s.notInFile(req.ID); err != nil {
		return 0, nil, err
	}
	is, err := s.svc.CreatePrincipal(r.Context(), domain.CreatePrincipal{Meta: req.meta(m), PrincipalID: req.ID, Roles: req.Roles})
	if err == nil {
		err = s.applied(r, is.Result)
	}
	return http.StatusCreated, issuedAnswer{ID: is.ID, Position: is.Position.String(), Token: is.Token}, err
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
	res, err := s.svc.GrantRole(r.Context(), domain.PrincipalRole{Meta: req.meta(m), PrincipalID: id, Role: req.Role})
	if err == nil {
		err = s.applied(r, res)
	}
	return http.StatusOK, answer(res), err
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
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	id := mux.Vars(r)["id"]
	if err := s.notInFile(id); err != nil {
		return 0, nil, err
	}
	is, err := s.svc.RotateToken(r.Context(), domain.PrincipalCommand{Meta: req.meta(m), PrincipalID: id})
	if err == nil {
		err = s.applied(r, is.Result)
	}
	return http.StatusOK, issuedAnswer{ID: is.ID, Position: is.Position.String(), Token: is.Token}, err
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
	writeJSON(w, http.StatusOK, principalList{Principals: out, Position: s.proj.Position().String()})
}

// principalList answers GET /v1/principals.
type principalList struct {
	Principals []principalAnswer `json:"principals"`
	Position   string            `json:"position"`
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
	it := s.svc.Store().ReadStream(r.Context(), domain.StreamPrincipal(id), 0)
	defer it.Close()
	trail := []TrailEntry{}
	prev := ""
	for it.Next() {
		ev := it.Event()
		payload, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		e := trailEntry(&ev, payload, domain.VerifyEventHash(prev, &ev))
		e.Position = ev.Position.String()
		trail = append(trail, e)
		prev = ev.Metadata.Hash
	}
	if err := it.Err(); err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
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
