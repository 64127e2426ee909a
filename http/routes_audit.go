package http

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"time"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	"talentledger/projections"
)

func (s *Server) registerAuditRoutes() {
	auditor := []string{domain.RoleAuditor}
	s.handle("GET", "/v1/audit/public-key", auditor, "the Ed25519 key tree heads are signed with", s.handleAuditPublicKey,
		routeDoc{Response: publicKeyAnswer{}, Errors: []string{EUNAVAILABLE}})
	s.handle("GET", "/v1/audit/tree-head", auditor, "the signed head of the Merkle tree over the log (?tree_size= for an earlier one)", s.handleAuditTreeHead,
		routeDoc{Response: headAnswer{}, Query: []string{"min_position", "tree_size"}, Errors: []string{EUNAVAILABLE}})
	s.handle("GET", "/v1/audit/proofs/inclusion", auditor, "proof that the event at ?position= is in the tree of ?tree_size=", s.handleAuditInclusion,
		routeDoc{Response: inclusionAnswer{}, Query: []string{"min_position", "position", "tree_size"}, Errors: []string{EUNAVAILABLE, domain.ENOTFOUND}})
	s.handle("GET", "/v1/audit/proofs/consistency", auditor, "proof that the tree of ?to= extends the tree of ?from=", s.handleAuditConsistency,
		routeDoc{Response: consistencyAnswer{}, Query: []string{"from", "to"}, Errors: []string{EUNAVAILABLE, domain.ENOTFOUND}})
}

func (s *Server) handleAuditPublicKey(w http.ResponseWriter, r *http.Request) {
	if s.auditKey == nil {
		s.Error(w, r, &domain.Error{Code: EUNAVAILABLE, Message: "no audit key is configured"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"algorithm": "ed25519", "public_key": s.auditKey.Public().(ed25519.PublicKey)})
}

// signedHead signs the head of the tree of size, or of the whole tree when
// size is zero.
func (s *Server) signedHead(size uint64) (auditproof.TreeHead, eventstore.Position, error) {
	if s.auditKey == nil {
		return auditproof.TreeHead{}, eventstore.Start, &domain.Error{Code: EUNAVAILABLE, Message: "no audit key is configured"}
	}
	if size == 0 {
		size = s.proj.TreeSize()
	}
	if s.verified != nil {
		n, err := s.verified()
		if err != nil {
			return auditproof.TreeHead{}, eventstore.Start, &domain.Error{Code: EUNAVAILABLE, Message: "the log failed verification: no head is signed over it", Err: err}
		}
		if size > n {
			return auditproof.TreeHead{}, eventstore.Start, &domain.Error{Code: EUNAVAILABLE, Message: "the log is not yet verified that far; retry shortly"}
		}
	}
	if size > s.proj.TreeSize() {
		return auditproof.TreeHead{}, eventstore.Start, domain.Errorf(domain.EINVALID, "tree_size %d is larger than the tree (%d)", size, s.proj.TreeSize())
	}
	root, pos, err := s.proj.TreeRoot(size)
	if err != nil {
		return auditproof.TreeHead{}, eventstore.Start, err
	}
	return auditproof.Sign(s.auditKey, size, root, time.Now()), pos, nil
}

// headAnswer is a signed tree head with the log position of its last leaf.
type headAnswer struct {
	auditproof.TreeHead
	Position string `json:"position"`
}

func (s *Server) handleAuditTreeHead(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	size, err := queryUint(r, "tree_size", false)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	head, pos, err := s.signedHead(size)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, headAnswer{head, pos.String()})
}

func (s *Server) handleAuditInclusion(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	pos, err := parsePosition(r.URL.Query().Get("position"))
	if err != nil {
		s.Error(w, r, domain.Errorf(domain.EINVALID, "position must be a log position such as 42"))
		return
	}
	size, err := queryUint(r, "tree_size", false)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	head, _, err := s.signedHead(size)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	index, proof, err := s.proj.InclusionProof(pos, head.TreeSize)
	if err != nil {
		s.Error(w, r, auditError(err))
		return
	}
	ev, err := s.proj.LeafEvent(r.Context(), index)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tree_head": head, "leaf_index": index, "leaf_hash": auditproof.HexBytes(auditproof.LeafHash(&ev)),
		"proof": proof, "event": ev,
	})
}

func (s *Server) handleAuditConsistency(w http.ResponseWriter, r *http.Request) {
	from, err := queryUint(r, "from", true)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	to, err := queryUint(r, "to", true)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if from > to {
		s.Error(w, r, domain.Errorf(domain.EINVALID, "from must not be greater than to"))
		return
	}
	head, _, err := s.signedHead(to)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	proof, err := s.proj.ConsistencyProof(from, to)
	if err != nil {
		s.Error(w, r, auditError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "to_head": head, "proof": proof})
}

func auditError(err error) error {
	if errors.Is(err, projections.ErrNoSuchLeaf) {
		return domain.Errorf(domain.ENOTFOUND, "%s", err.Error())
	}
	return err
}

// queryUint parses an unsigned integer query parameter.
func queryUint(r *http.Request, name string, required bool) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if required {
			return 0, domain.Errorf(domain.EINVALID, "%s is required", name)
		}
		return 0, nil
	}
	n, ok := eventstore.ParseUint(v)
	if !ok {
		return 0, domain.Errorf(domain.EINVALID, "%s must be a whole number", name)
	}
	return n, nil
}
