package http

import (
	"net/http"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/projections"
)

func (s *Server) registerLedgerRoutes() {
	s.handle("GET", "/v1/ledger/balances", []string{domain.RoleApprover, domain.RoleAuditor}, "trial balance, also ?as_of= a business date and ?recorded_as_of= an instant", s.handleLedgerBalances,
		routeDoc{Response: projections.TrialBalance{}, Query: qPointTime})
	s.handle("GET", "/v1/grants/{id}/trail", []string{domain.RoleAuditor, domain.RoleApprover}, "every event of a grant, its payments and its budget postings", s.handleGrantTrail,
		routeDoc{Response: trailAnswer{}, Query: qMin, Errors: []string{domain.ENOTFOUND}})
	s.handle("GET", "/v1/audit/verify", []string{domain.RoleAuditor}, "verify every stream's hash chain", s.handleAuditVerify,
		routeDoc{Response: verifyAnswer{}})
}

func (s *Server) handleLedgerBalances(w http.ResponseWriter, r *http.Request) {
	pt, err := s.pointInTime(r)
	if err == nil {
		err = s.waitMinPosition(r)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if pt.IsZero() {
		writeJSON(w, http.StatusOK, s.proj.TrialBalance())
		return
	}
	// From the as-of index (see asof.go), or folded from the log for a
	// business date the index cannot place: one of the replays allowed.
	if !s.proj.AsOf().Serves(pt) {
		release, err := replaySlot(r)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		defer release()
	}
	tb, err := s.proj.BalancesAt(r.Context(), pt)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tb)
}

// TrailEntry is one event in an audit trail.
type TrailEntry = projections.TrailEntry

func (s *Server) handleGrantTrail(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	id := mux.Vars(r)["id"]
	g, ok := s.proj.Grant(id)
	if !ok {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "grant %q not found", clip(id)))
		return
	}
	trail, err := s.proj.GrantTrail(r.Context(), g)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	answer := map[string]any{"grant_id": id, "events": trail}
	head, err := s.proveTrail(r, trail)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if head != nil {
		answer["tree_head"] = head
	}
	writeJSON(w, http.StatusOK, answer)
}

// proveTrail gives each entry its inclusion proof against one signed head
// that covers them all, and returns that head; nil when no audit key is
// configured.
func (s *Server) proveTrail(r *http.Request, trail []TrailEntry) (*auditproof.TreeHead, error) {
	if s.auditKey == nil || len(trail) == 0 {
		return nil, nil
	}
	last := projections.TrailEnd(trail)
	if err := s.proj.WaitFor(r.Context(), last, s.wait); err != nil {
		return nil, err
	}
	head, _, err := s.signedHead(0)
	if err != nil {
		return nil, err
	}
	if err := s.proj.ProveTrail(trail, head.TreeSize); err != nil {
		return nil, err
	}
	return &head, nil
}

func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request) {
	rep, err := s.proj.VerifyLog(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if s.integrity != nil {
		writeJSON(w, http.StatusOK, verifyAnswer{rep, s.integrity()})
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// verifyAnswer is the chain verification with the server's integrity
// status: witness, background scrub, read-only for damage.
type verifyAnswer struct {
	domain.VerifyReport
	Integrity any `json:"integrity,omitempty"`
}
