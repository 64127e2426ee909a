package projections

import (
	"slices"
	"sync"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
)

// PrincipalView is a principal created through the API, as the log has
// it. It never holds the token, and its hash is not exported.
type PrincipalView struct {
	ID        string    `json:"id"`
	Roles     []string  `json:"roles"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy is the admin who approved the principal's creation (the
	// one who requested it is in the trail).
	CreatedBy string `json:"created_by"`
	// TokenIssuedAt is when the current token was issued: when the person
	// redeemed their enrollment code. Absent while they hold none.
	TokenIssuedAt *time.Time `json:"token_issued_at,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedBy     string     `json:"revoked_by,omitempty"`
	// Position is the log position of the last change.
	Position string `json:"position"`

	tokenSHA256 string
	// access is the principal's roles, token and revocation, as the
	// domain folds them.
	access domain.PrincipalAccess
}

// AccessRequestView is a pending request for a change of access, waiting
// for a second admin.
type AccessRequestView struct {
	RequestID   string `json:"request_id"`
	PrincipalID string `json:"principal_id"`
	// Change is create, grant_role, rotate or restore.
	Change string `json:"change"`
	// Roles of a principal to create; Role to grant.
	Roles       []string  `json:"roles,omitempty"`
	Role        string    `json:"role,omitempty"`
	RevokeNow   bool      `json:"revoke_now,omitempty"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	Reason      string    `json:"reason,omitempty"`
	DocumentRef string    `json:"document_ref,omitempty"`
	Position    string    `json:"position"`
}

// Principals is the principals created through the API and the access
// requests waiting for a second admin.
type Principals struct {
	mu      sync.RWMutex
	byID    map[string]*PrincipalView
	order   []string
	byToken map[string]*PrincipalView // active principals by token hash
	// pending holds the requests not yet decided, in the order made.
	pending []*AccessRequestView
}

// NewPrincipals returns an empty principals model.
func NewPrincipals() *Principals {
	return &Principals{byID: map[string]*PrincipalView{}, byToken: map[string]*PrincipalView{}}
}

// Name implements Model.
func (m *Principals) Name() string { return "principals" }

// Apply implements Model.
func (m *Principals) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Changes {
		m.apply(b.Changes[i].Event, b.Changes[i].Payload)
	}
}

func (pm *Principals) apply(ev *eventstore.Event, payload domain.Event) {
	at := ev.Metadata.RecordedAt
	var id string
	switch e := payload.(type) {
	case *domain.PrincipalCreated:
		if pm.byID[e.PrincipalID] == nil {
			pm.byID[e.PrincipalID] = &PrincipalView{ID: e.PrincipalID, CreatedAt: at, CreatedBy: ev.Metadata.Principal}
			pm.order = append(pm.order, e.PrincipalID)
		}
		id = e.PrincipalID
	case *domain.RoleGranted:
		id = e.PrincipalID
	case *domain.RoleRevoked:
		id = e.PrincipalID
	case *domain.TokenRotated:
		id = e.PrincipalID
	case *domain.EnrollmentRedeemed:
		id = e.PrincipalID
	case *domain.PrincipalRevoked:
		id = e.PrincipalID
	case *domain.PrincipalRestored:
		id = e.PrincipalID
	case *domain.AccessRequested:
		pm.pending = append(pm.pending, &AccessRequestView{RequestID: e.RequestID, PrincipalID: e.PrincipalID, Change: e.Change,
			Roles: slices.Clone(e.Roles), Role: e.Role, RevokeNow: e.RevokeNow, RequestedBy: e.RequestedBy, RequestedAt: at,
			Reason: ev.Metadata.Reason, DocumentRef: ev.Metadata.DocumentRef, Position: ev.Position.String()})
		id = e.PrincipalID
	case *domain.AccessApproved:
		pm.decided(e.RequestID)
		id = e.PrincipalID
	case *domain.AccessRejected:
		pm.decided(e.RequestID)
		id = e.PrincipalID
	default:
		return
	}
	v := pm.byID[id]
	if v == nil {
		return
	}
	wasRevoked := v.access.Revoked
	v.access.Apply(payload)
	v.Roles, v.Active = v.access.Roles, !v.access.Revoked
	switch {
	case v.access.Revoked && !wasRevoked:
		t := at
		v.RevokedAt, v.RevokedBy = &t, ev.Metadata.Principal
	case !v.access.Revoked && wasRevoked:
		v.RevokedAt, v.RevokedBy = nil, ""
	}
	if v.access.TokenSHA256 != v.tokenSHA256 {
		pm.setToken(v, v.access.TokenSHA256, at)
	}
	v.Position = ev.Position.String()
}

// setToken makes hash the principal's token (none when empty), issued at.
func (pm *Principals) setToken(v *PrincipalView, hash string, at time.Time) {
	delete(pm.byToken, v.tokenSHA256)
	v.tokenSHA256 = hash
	v.TokenIssuedAt = nil
	if hash == "" {
		return
	}
	t := at
	v.TokenIssuedAt = &t
	if v.Active {
		pm.byToken[hash] = v
	}
}

// decided drops a request from the pending ones.
func (pm *Principals) decided(requestID string) {
	pm.pending = slices.DeleteFunc(pm.pending, func(r *AccessRequestView) bool { return r.RequestID == requestID })
}

// AccessRequests lists the requests for a change of access that wait for
// a second admin, oldest first.
func (m *Principals) AccessRequests() []AccessRequestView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]AccessRequestView, 0, len(m.pending))
	for _, r := range m.pending {
		c := *r
		c.Roles = slices.Clone(r.Roles)
		out = append(out, c)
	}
	return out
}

// PrincipalByToken returns the active principal whose token has the hex
// SHA-256 hash, as of the last event applied.
func (m *Principals) PrincipalByToken(hash string) (PrincipalView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v := m.byToken[hash]
	if v == nil || !v.Active || len(v.Roles) == 0 {
		return PrincipalView{}, false
	}
	return *v, true
}

// Principal returns a principal by ID, active or revoked.
func (m *Principals) Principal(id string) (PrincipalView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v := m.byID[id]
	if v == nil {
		return PrincipalView{}, false
	}
	return *v, true
}

// Principals lists the principals in the order they were created.
func (m *Principals) Principals() []PrincipalView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]PrincipalView, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, *m.byID[id])
	}
	return out
}

var _ Model = (*Principals)(nil)
