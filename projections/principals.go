package projections

import (
	"slices"
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
	CreatedBy string    `json:"created_by"`
	// TokenIssuedAt is when the current token was issued: at creation or
	// at the last rotation.
	TokenIssuedAt time.Time  `json:"token_issued_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedBy     string     `json:"revoked_by,omitempty"`
	// Position is the log position of the last change.
	Position string `json:"position"`

	tokenSHA256 string
}

type principalModels struct {
	byID    map[string]*PrincipalView
	order   []string
	byToken map[string]*PrincipalView // active principals by token hash
}

func (p *Projector) initPrincipals() {
	p.pm = &principalModels{byID: map[string]*PrincipalView{}, byToken: map[string]*PrincipalView{}}
	p.extra = append(p.extra, p.applyPrincipal)
}

func (p *Projector) applyPrincipal(ev *eventstore.Event, payload domain.Event) {
	pm := p.pm
	at := ev.Metadata.RecordedAt
	var v *PrincipalView
	switch e := payload.(type) {
	case *domain.PrincipalCreated:
		if pm.byID[e.PrincipalID] != nil {
			return
		}
		v = &PrincipalView{ID: e.PrincipalID, Roles: slices.Clone(e.Roles), Active: true, CreatedAt: at,
			CreatedBy: ev.Metadata.Principal, TokenIssuedAt: at, tokenSHA256: e.TokenSHA256}
		pm.byID[e.PrincipalID] = v
		pm.order = append(pm.order, e.PrincipalID)
		pm.byToken[e.TokenSHA256] = v
	case *domain.RoleGranted:
		if v = pm.byID[e.PrincipalID]; v != nil && !slices.Contains(v.Roles, e.Role) {
			// A new slice: a view handed out earlier keeps its roles.
			v.Roles = append(slices.Clone(v.Roles), e.Role)
		}
	case *domain.RoleRevoked:
		if v = pm.byID[e.PrincipalID]; v != nil {
			v.Roles = slices.DeleteFunc(slices.Clone(v.Roles), func(r string) bool { return r == e.Role })
		}
	case *domain.TokenRotated:
		if v = pm.byID[e.PrincipalID]; v != nil {
			delete(pm.byToken, v.tokenSHA256)
			v.tokenSHA256 = e.TokenSHA256
			v.TokenIssuedAt = at
			if v.Active {
				pm.byToken[e.TokenSHA256] = v
			}
		}
	case *domain.PrincipalRevoked:
		if v = pm.byID[e.PrincipalID]; v != nil {
			delete(pm.byToken, v.tokenSHA256)
			v.Active = false
			t := at
			v.RevokedAt = &t
			v.RevokedBy = ev.Metadata.Principal
		}
	default:
		return
	}
	if v != nil {
		v.Position = ev.Position.String()
	}
}

// PrincipalByToken returns the active principal whose token has the hex
// SHA-256 hash, as of the last event applied.
func (p *Projector) PrincipalByToken(hash string) (PrincipalView, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	v := p.pm.byToken[hash]
	if v == nil || !v.Active || len(v.Roles) == 0 {
		return PrincipalView{}, false
	}
	return *v, true
}

// Principal returns a principal by ID, active or revoked.
func (p *Projector) Principal(id string) (PrincipalView, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	v := p.pm.byID[id]
	if v == nil {
		return PrincipalView{}, false
	}
	return *v, true
}

// Principals lists the principals in the order they were created.
func (p *Projector) Principals() []PrincipalView {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]PrincipalView, 0, len(p.pm.order))
	for _, id := range p.pm.order {
		out = append(out, *p.pm.byID[id])
	}
	return out
}
