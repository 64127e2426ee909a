package http

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/projections"
)

func (s *Server) registerLedgerRoutes() {
	s.handle("GET", "/v1/ledger/balances", []string{domain.RoleApprover, domain.RoleAuditor}, "trial balance at control level (the per-talent accounts in their control accounts' lines: see /v1/ledger/subsidiary), also ?as_of= a business date and ?recorded_as_of= an instant", s.handleLedgerBalances,
		routeDoc{Response: projections.TrialBalance{}, Query: qPointTime})
	s.handle("GET", "/v1/ledger/subsidiary", []string{domain.RoleApprover, domain.RoleAuditor}, "the subsidiary ledgers: the per-talent accounts behind the control accounts, by account name, by cursor, also ?as_of= and ?recorded_as_of=", s.handleSubsidiaryLedger,
		routeDoc{Response: subsidiaryAnswer{}, Query: []string{"min_position", "as_of", "recorded_as_of", "control", "talent", "limit", "cursor"}})
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
	// Live, or from the as-of index (see asof.go), or folded from the log
	// for a business date the index cannot place: one of the replays
	// allowed.
	if !pt.IsZero() && !s.proj.AsOf().Serves(pt) {
		release, err := replaySlot(r)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		defer release()
	}
	tb, err := s.proj.TrialBalanceAt(r.Context(), pt)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tb)
}

// subsidiaryAnswer is a page of the subsidiary ledgers.
type subsidiaryAnswer struct {
	projections.SubsidiaryLedger
	Limit      int    `json:"limit"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *Server) handleSubsidiaryLedger(w http.ResponseWriter, r *http.Request) {
	pt, err := s.pointInTime(r)
	if err == nil {
		err = s.waitMinPosition(r)
	}
	q := r.URL.Query()
	f := projections.SubsidiaryFilter{Control: q.Get("control"), Talent: q.Get("talent"), Limit: 100}
	if v := q.Get("limit"); v != "" {
		f.Limit, _ = strconv.Atoi(v)
	}
	if c := q.Get("cursor"); c != "" && err == nil {
		// The cursor is the page's last account, opaque to clients.
		name, ok := strings.CutPrefix(c, "s")
		b, berr := base64.RawURLEncoding.DecodeString(name)
		if _, sub := domain.ControlAccount(string(b)); !ok || berr != nil || !sub {
			err = badCursor()
		}
		f.After = string(b)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if !pt.IsZero() && !s.proj.AsOf().Serves(pt) {
		release, err := replaySlot(r)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		defer release()
	}
	sl, err := s.proj.SubsidiaryAt(r.Context(), pt, f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	a := subsidiaryAnswer{SubsidiaryLedger: sl, Limit: f.Limit}
	if sl.Next != "" {
		a.NextCursor = "s" + base64.RawURLEncoding.EncodeToString([]byte(sl.Next))
	}
	writeJSON(w, http.StatusOK, a)
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
