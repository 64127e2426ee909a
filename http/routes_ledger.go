package http

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	"talentledger/projections"
)

func (s *Server) registerLedgerRoutes() {
	s.handle("GET", "/v1/ledger/balances", []string{domain.RoleApprover, domain.RoleAuditor}, "trial balance, also ?as_of= a business date and ?recorded_as_of= an instant", s.handleLedgerBalances)
	s.handle("GET", "/v1/grants/{id}/trail", []string{domain.RoleAuditor, domain.RoleApprover}, "every event of a grant, its payments and its budget postings", s.handleGrantTrail)
	s.handle("GET", "/v1/audit/verify", []string{domain.RoleAuditor}, "verify every stream's hash chain", s.handleAuditVerify)
}

func (s *Server) handleLedgerBalances(w http.ResponseWriter, r *http.Request) {
	pt, err := pointInTime(r)
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
	// Only balances are needed: stream the log rather than replay every
	// model.
	tb, err := projections.BalancesAt(r.Context(), s.svc.Store(), pt)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tb)
}

// TrailEntry is one event in a grant's audit trail.
type TrailEntry struct {
	Position      string `json:"position"`
	Stream        string `json:"stream"`
	Version       int64  `json:"version"`
	EventID       string `json:"event_id"`
	Type          string `json:"type"`
	Principal     string `json:"principal"`
	Role          string `json:"role"`
	RecordedAt    string `json:"recorded_at"`
	EffectiveDate string `json:"effective_date"`
	Reason        string `json:"reason,omitempty"`
	DocumentRef   string `json:"document_ref,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// Source is "import" for history entered by an offline import.
	Source string `json:"source,omitempty"`
	// CompletedBy names who finished a step Principal decided:
	// "reconcile", or the principal whose retry completed it.
	CompletedBy string           `json:"completed_by,omitempty"`
	Data        json.RawMessage  `json:"data"`
	Postings    []domain.Posting `json:"postings"`
	PrevHash    string           `json:"prev_hash"`
	Hash        string           `json:"hash"`
	// HashValid is whether the stored hash matches the event's content and
	// its predecessor in the stream.
	HashValid bool `json:"hash_valid"`
	// LeafIndex and Proof show the event is in the Merkle tree of the
	// response's signed tree head.
	LeafIndex *uint64               `json:"leaf_index,omitempty"`
	Proof     []auditproof.HexBytes `json:"proof,omitempty"`

	pos eventstore.Position
}

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
	trail, err := s.grantTrail(r, g)
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

// grantTrail collects the grant's own stream, the events of its talent's
// stream that changed it (the registration, the departure that ended it,
// the entitlement it used and gave back), and the events of its budget
// streams (every fiscal year its installments are charged to) that
// concern it, in global order.
func (s *Server) grantTrail(r *http.Request, g projections.GrantView) ([]TrailEntry, error) {
	var out []TrailEntry
	collect := func(stream string, keep func(payload domain.Event) bool) error {
		it := s.svc.Store().ReadStream(r.Context(), stream, 0)
		defer it.Close()
		prev := ""
		for it.Next() {
			ev := it.Event()
			valid := domain.VerifyEventHash(prev, &ev)
			prev = ev.Metadata.Hash
			payload, err := domain.DecodeEvent(ev.Type, ev.Data)
			if err != nil {
				return err
			}
			if keep != nil && !keep(payload) {
				continue
			}
			out = append(out, trailEntry(&ev, payload, valid))
		}
		if err := it.Err(); err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			return err
		}
		return nil
	}
	if err := collect(domain.StreamGrant(g.ID), nil); err != nil {
		return nil, err
	}
	err := collect(domain.StreamTalent(g.TalentID), func(p domain.Event) bool {
		switch e := p.(type) {
		case *domain.TalentRegistered, *domain.TalentDeparted:
			return true
		case *domain.EntitlementReserved:
			return e.GrantID == g.ID
		case *domain.EntitlementReleased:
			return e.GrantID == g.ID
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	for _, fy := range g.BudgetYears() {
		err := collect(domain.StreamBudget(g.ProgramID, fy), func(p domain.Event) bool {
			switch e := p.(type) {
			case *domain.BudgetReserved:
				return e.GrantID == g.ID
			case *domain.BudgetReservationReleased:
				return e.GrantID == g.ID
			case *domain.ForwardCommitted:
				return e.GrantID == g.ID
			case *domain.ForwardCommitmentCovered:
				return e.GrantID == g.ID
			case *domain.PaymentCharged:
				return e.GrantID == g.ID
			case *domain.PaymentChargeReversed:
				return e.GrantID == g.ID
			case *domain.BudgetCarriedOver:
				return e.GrantID == g.ID
			case *domain.YearEndClosed:
				for _, it := range append(slices.Clip(e.Carried), e.Lapsed...) {
					if it.GrantID == g.ID {
						return true
					}
				}
			}
			return false
		})
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].pos.Before(out[j].pos) })
	for i := range out {
		out[i].Position = out[i].pos.String()
	}
	return out, nil
}

// proveTrail gives each entry its inclusion proof against one signed head
// that covers them all, and returns that head; nil when no audit key is
// configured.
func (s *Server) proveTrail(r *http.Request, trail []TrailEntry) (*auditproof.TreeHead, error) {
	if s.auditKey == nil || len(trail) == 0 {
		return nil, nil
	}
	last := trail[0].pos
	for _, e := range trail {
		if last.Before(e.pos) {
			last = e.pos
		}
	}
	if err := s.proj.WaitFor(r.Context(), last, s.wait); err != nil {
		return nil, err
	}
	head, _, err := s.signedHead(0)
	if err != nil {
		return nil, err
	}
	for i := range trail {
		index, proof, err := s.proj.InclusionProof(trail[i].pos, head.TreeSize)
		if err != nil {
			return nil, err
		}
		trail[i].LeafIndex, trail[i].Proof = &index, proof
	}
	return &head, nil
}

func trailEntry(ev *eventstore.Event, payload domain.Event, valid bool) TrailEntry {
	ps := domain.Postings(payload)
	if ps == nil {
		ps = []domain.Posting{}
	}
	recorded := ""
	if !ev.Metadata.RecordedAt.IsZero() {
		recorded = ev.Metadata.RecordedAt.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	return TrailEntry{
		pos: ev.Position, Stream: ev.Stream, Version: int64(ev.Version), EventID: ev.ID.String(), Type: ev.Type,
		Principal: ev.Metadata.Principal, Role: ev.Metadata.Role, RecordedAt: recorded,
		EffectiveDate: projections.EffectiveDate(ev), Reason: ev.Metadata.Reason, DocumentRef: ev.Metadata.DocumentRef,
		CorrelationID: ev.Metadata.CorrelationID, Source: ev.Metadata.Source, CompletedBy: ev.Metadata.CompletedBy, Data: ev.Data, Postings: ps,
		PrevHash: ev.Metadata.PrevHash, Hash: ev.Metadata.Hash, HashValid: valid,
	}
}

func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request) {
	rep, err := domain.VerifyLog(r.Context(), s.svc.Store())
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
