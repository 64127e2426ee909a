package http

import (
	"encoding/json"
	"html"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

// Personal fields reach the read side sealed: the read models, their
// views on disk, the trails and the registers all carry the sealed form.
// They are opened on the way out, in one place: revealWriter rewrites
// every sealed value of an answer into what the caller's role may see
// (plain, masked, or erased), escaped for the answer's format.

// revealWriter is a ResponseWriter that opens the sealed values written
// through it into what the caller's role may see (plain, masked, or
// erased), escaped for the answer's content type.
type revealWriter struct {
	http.ResponseWriter
	rw   projections.RevealWriter
	s    *Server
	info *reqInfo
}

func newRevealWriter(w http.ResponseWriter, s *Server, info *reqInfo) *revealWriter {
	r := &revealWriter{ResponseWriter: w, s: s, info: info}
	r.rw = projections.RevealWriter{W: w, Reveal: r.appendRevealed}
	return r
}

func (w *revealWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *revealWriter) Write(p []byte) (int, error) {
	if w.info != nil && w.info.sealed {
		return w.ResponseWriter.Write(p)
	}
	return w.rw.Write(p)
}

// keepSealed makes the answer to r carry personal fields as stored,
// sealed: an answer whose events an auditor hashes again (an inclusion
// proof) must hold their bytes as the log does.
func keepSealed(r *http.Request) {
	if info, _ := r.Context().Value(keyInfo).(*reqInfo); info != nil {
		info.sealed = true
	}
}

// appendRevealed appends what the caller sees of the sealed value v,
// escaped for the answer's content type.
func (w *revealWriter) appendRevealed(dst []byte, v string) []byte {
	role := ""
	if w.info != nil {
		role = w.info.role
	}
	plain := w.s.svc.Cipher().Reveal(v, role, false)
	ct := w.Header().Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "text/csv"):
		// The sealed value was a whole field, written unquoted.
		return projections.AppendCSVField(dst, plain)
	case strings.HasPrefix(ct, "text/html"):
		return append(dst, html.EscapeString(plain)...)
	case strings.Contains(ct, "json"):
		q, _ := json.Marshal(plain)
		return append(dst, q[1:len(q)-1]...)
	}
	return append(dst, plain...)
}

// Flush writes what is settled and flushes the connection.
func (w *revealWriter) Flush() {
	_ = w.rw.Settle()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// finish writes what is held back.
func (w *revealWriter) finish() { _ = w.rw.Close() }

func (s *Server) registerPersonalRoutes() {
	s.handle("POST", "/v1/talents/{id}/erasure", []string{domain.RoleClerk},
		"request the erasure of a talent's personal data: reason and document_ref are required; an approver other than the requesting clerk approves it",
		s.pathCommand(s.handleErasureRequest),
		routeDoc{Request: commandFields{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/talents/{id}/erasure/approve", []string{domain.RoleApprover},
		"approve a requested erasure: carried out at once (the talent's data key destroyed) when the talent has no open grant, no outstanding clawback and no payment within its programs' retention; scheduled for the day the retention ends otherwise",
		s.command(s.handleErasureApprove),
		routeDoc{Request: commandFields{}, Response: domain.ErasureOutcome{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION}})
	s.handle("GET", "/v1/erasures", []string{domain.RoleClerk, domain.RoleApprover, domain.RoleAuditor},
		"the talents' erasures, requested, scheduled (with the day they are carried out) and carried out; ?state= one of requested, scheduled, erased",
		s.handleErasureList, routeDoc{Response: []projections.ErasureItem{}, Query: []string{"min_position", "state"}})
	s.handle("POST", "/v1/talents/{id}/unmask", []string{domain.RoleAuditor},
		"see a talent's masked fields (ID number, bank account) in full; recorded with its reason, which is required",
		s.pathCommand(s.handleUnmask),
		routeDoc{Request: commandFields{}, Response: unmaskAnswer{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/talents/{id}/key-rotation", []string{domain.RoleAdmin},
		"give a talent a new data key (reason required): personal fields recorded from now on are sealed under it, those recorded before stay readable under theirs until the erasure destroys every version; TalentKeyRotated names the key, never holds it; refused once the talent is erased",
		s.pathCommand(s.handleKeyRotation),
		routeDoc{Request: commandFields{}, Response: domain.KeyRotation{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
}

func (s *Server) handleKeyRotation(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	out, err := s.svc.RotateTalentKey(r.Context(), domain.RotateTalentKey{Meta: req.meta(m), TalentID: mux.Vars(r)["id"]})
	return http.StatusOK, out, err
}

func (s *Server) handleErasureRequest(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RequestErasure(r.Context(), domain.RequestErasure{Meta: req.meta(m), TalentID: mux.Vars(r)["id"]})
	return http.StatusCreated, answer(res), err
}

func (s *Server) handleErasureApprove(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	out, err := s.svc.ApproveErasure(r.Context(), domain.ApproveErasure{Meta: req.meta(m), TalentID: mux.Vars(r)["id"]})
	return http.StatusOK, out, err
}

func (s *Server) handleErasureList(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	switch state {
	case "", projections.ErasureRequested, projections.ErasureScheduled, projections.ErasureErased:
	default:
		s.Error(w, r, domain.Errorf(domain.EINVALID, "state must be one of requested, scheduled, erased"))
		return
	}
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.proj.Talents().Erasures(state))
}

// unmaskAnswer is a talent's masked fields in full.
type unmaskAnswer struct {
	ID          string              `json:"id"`
	Position    eventstore.Position `json:"position"`
	IDNumber    string              `json:"id_number"`
	BankAccount string              `json:"bank_account"`
}

func (s *Server) handleUnmask(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	id := mux.Vars(r)["id"]
	res, err := s.svc.UnmaskPersonalData(r.Context(), domain.UnmaskPersonalData{Meta: req.meta(m), TalentID: id})
	if err != nil {
		return 0, nil, err
	}
	if err := s.proj.WaitFor(r.Context(), res.Position, s.wait); err != nil {
		return 0, nil, err
	}
	t, _ := s.proj.Talent(id)
	c := s.svc.Cipher()
	return http.StatusOK, unmaskAnswer{ID: id, Position: res.Position,
		IDNumber: c.Reveal(t.IDNumber, m.Actor.Role, true), BankAccount: c.Reveal(t.BankAccount, m.Actor.Role, true)}, nil
}
