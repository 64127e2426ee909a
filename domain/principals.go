package domain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"slices"
)

// Principals (who may call the API) are kept as events, like money: each
// principal has a stream principal-<id>, and every change of access (a
// principal created, a role granted or revoked, a token rotated, a
// principal revoked) is an event with its actor, time and reason, in the
// hash chain and the Merkle tree. Only an admin changes access.
//
// Tokens are 256-bit random values made here, handed to the caller once,
// and recorded only as their SHA-256: the log never holds a token.
//
// Role rules, enforced on every change (and by the HTTP layer on the
// bootstrap principals file):
//
//   - admin never goes with a money role (clerk, reviewer, approver,
//     treasurer, fund_manager): whoever manages access cannot also move
//     money, so an admin cannot give themself money authority;
//   - auditor goes with no other role: an auditor can never write;
//   - an admin cannot grant themself a money role, nor revoke themself or
//     their own admin role (another admin must), so one admin alone
//     cannot lock everyone out. The principals file is the way back in
//     if the last admin is revoked by another.

// Principal event types.
const (
	TypePrincipalCreated = "PrincipalCreated"
	TypeRoleGranted      = "RoleGranted"
	TypeRoleRevoked      = "RoleRevoked"
	TypeTokenRotated     = "TokenRotated"
	TypePrincipalRevoked = "PrincipalRevoked"
)

// PrincipalCreated records a new principal with its roles and the hash of
// its first token.
type PrincipalCreated struct {
	PrincipalID string   `json:"principal_id"`
	Roles       []string `json:"roles"`
	// TokenSHA256 is the hex SHA-256 of the bearer token.
	TokenSHA256 string `json:"token_sha256"`
}

// RoleGranted gives a principal one more role.
type RoleGranted struct {
	PrincipalID string `json:"principal_id"`
	Role        string `json:"role"`
}

// RoleRevoked takes a role from a principal.
type RoleRevoked struct {
	PrincipalID string `json:"principal_id"`
	Role        string `json:"role"`
}

// TokenRotated replaces a principal's token; the old one stops working.
type TokenRotated struct {
	PrincipalID string `json:"principal_id"`
	TokenSHA256 string `json:"token_sha256"`
}

// PrincipalRevoked ends a principal's access for good; its ID is never
// given out again.
type PrincipalRevoked struct {
	PrincipalID string `json:"principal_id"`
}

func (PrincipalCreated) EventType() string { return TypePrincipalCreated }
func (RoleGranted) EventType() string      { return TypeRoleGranted }
func (RoleRevoked) EventType() string      { return TypeRoleRevoked }
func (TokenRotated) EventType() string     { return TypeTokenRotated }
func (PrincipalRevoked) EventType() string { return TypePrincipalRevoked }

func init() {
	for typ, f := range map[string]func() Event{
		TypePrincipalCreated: func() Event { return &PrincipalCreated{} },
		TypeRoleGranted:      func() Event { return &RoleGranted{} },
		TypeRoleRevoked:      func() Event { return &RoleRevoked{} },
		TypeTokenRotated:     func() Event { return &TokenRotated{} },
		TypePrincipalRevoked: func() Event { return &PrincipalRevoked{} },
	} {
		extraDecoders[typ] = f
	}
}

// MoneyRoles are the roles that prepare, check, release or invest money.
var MoneyRoles = []string{RoleClerk, RoleReviewer, RoleApprover, RoleTreasurer, RoleFundManager}

// rePrincipalID: lower-case, so that two IDs never differ by case alone,
// and only characters that are safe in a stream name and a log line.
var rePrincipalID = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// ValidPrincipalID reports whether id is a valid principal ID: 1 to 64
// lower-case letters, digits and "._@-", starting with a letter or digit.
func ValidPrincipalID(id string) bool { return rePrincipalID.MatchString(id) }

// CheckRoles checks a principal's set of roles: at least one, each known,
// none twice, admin without a money role, auditor alone.
//
// Errors: EINVALID, ESEGREGATION.
func CheckRoles(roles []string) error {
	if len(roles) == 0 {
		return Errorf(EINVALID, "a principal needs at least one role")
	}
	for i, r := range roles {
		if !contains(Roles, r) {
			return Errorf(EINVALID, "unknown role %q; roles are %v", truncate(r, 20), Roles)
		}
		if slices.Contains(roles[:i], r) {
			return Errorf(EINVALID, "role %s is listed twice", r)
		}
	}
	if contains(roles, RoleAdmin) {
		for _, r := range roles {
			if contains(MoneyRoles, r) {
				return Errorf(ESEGREGATION, "admin and %s may not be held together: whoever manages access has no money authority", r)
			}
		}
	}
	if contains(roles, RoleAuditor) && len(roles) > 1 {
		return Errorf(ESEGREGATION, "an auditor holds no other role")
	}
	return nil
}

// TokenSHA256 returns the hex SHA-256 of a bearer token, the only form in
// which tokens are stored.
func TokenSHA256(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newToken returns a new 256-bit random token in hex.
func newToken() string { return randomHex(32) }

func streamPrincipal(id string) string { return "principal-" + id }

// StreamPrincipal returns the stream of a principal's changes.
func StreamPrincipal(id string) string { return streamPrincipal(id) }

// principal is the state of a principal stream.
type principal struct {
	created     bool
	roles       []string
	tokenSHA256 string
	revoked     bool
}

func newPrincipal() aggregate { return &principal{} }

func (p *principal) apply(e Event) {
	switch e := e.(type) {
	case *PrincipalCreated:
		p.created = true
		p.roles = slices.Clone(e.Roles)
		p.tokenSHA256 = e.TokenSHA256
	case *RoleGranted:
		if !contains(p.roles, e.Role) {
			p.roles = append(p.roles, e.Role)
		}
	case *RoleRevoked:
		p.roles = slices.DeleteFunc(p.roles, func(r string) bool { return r == e.Role })
	case *TokenRotated:
		p.tokenSHA256 = e.TokenSHA256
	case *PrincipalRevoked:
		p.revoked = true
	}
}

// active returns an error unless the principal exists and is not revoked.
func (p *principal) active(id string) error {
	if !p.created {
		return Errorf(ENOTFOUND, "principal %s not found", id)
	}
	if p.revoked {
		return Errorf(ECONFLICT, "principal %s is revoked", id)
	}
	return nil
}

// CreatePrincipal is the command that creates a principal.
type CreatePrincipal struct {
	Meta        CommandMeta
	PrincipalID string
	Roles       []string
}

// PrincipalRole is the command that grants or revokes one role.
type PrincipalRole struct {
	Meta        CommandMeta
	PrincipalID string
	Role        string
}

// PrincipalCommand is a command on a principal as a whole: rotating its
// token or revoking it.
type PrincipalCommand struct {
	Meta        CommandMeta
	PrincipalID string
}

// Issued answers a command that issues a token. Token is the bearer token
// itself, shown this once; it is empty when the command was a retry of
// one that already issued a token (that token was given to the first
// attempt and is not kept).
type Issued struct {
	Result
	Token string
}

func checkPrincipalID(id string) error {
	if !ValidPrincipalID(id) {
		return Errorf(EINVALID, "principal id must be 1–64 lower-case letters, digits or ._@- starting with a letter or digit")
	}
	return nil
}

// CreatePrincipal creates a principal with its roles and a new token.
// Only an admin may.
//
// Errors: EINVALID, ESEGREGATION (admin with a money role, auditor with
// another role, or an admin giving themself a money role), ECONFLICT (the
// ID is taken, even by a revoked principal).
func (s *Service) CreatePrincipal(ctx context.Context, c CreatePrincipal) (Issued, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Issued{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Issued{}, err
	}
	if err := CheckRoles(c.Roles); err != nil {
		return Issued{}, err
	}
	if err := selfGrant(m, c.PrincipalID, c.Roles...); err != nil {
		return Issued{}, err
	}
	return s.issue(ctx, c.PrincipalID, m, func(p *principal, hash string) ([]Event, error) {
		if p.created {
			return nil, Errorf(ECONFLICT, "principal %s already exists", c.PrincipalID)
		}
		return []Event{&PrincipalCreated{PrincipalID: c.PrincipalID, Roles: slices.Clone(c.Roles), TokenSHA256: hash}}, nil
	})
}

// selfGrant refuses an admin giving themself a money role.
func selfGrant(m *meta, id string, roles ...string) error {
	if id != m.Actor.Principal {
		return nil
	}
	for _, r := range roles {
		if contains(MoneyRoles, r) {
			return Errorf(ESEGREGATION, "you may not give yourself the %s role", r)
		}
	}
	return nil
}

// GrantRole gives a principal one more role. Only an admin may.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (revoked, or already holds the
// role), ESEGREGATION (the roles would break CheckRoles, or an admin gives
// themself a money role).
func (s *Service) GrantRole(ctx context.Context, c PrincipalRole) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Result{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Result{}, err
	}
	if !contains(Roles, c.Role) {
		return Result{}, Errorf(EINVALID, "unknown role %q; roles are %v", truncate(c.Role, 20), Roles)
	}
	if err := selfGrant(m, c.PrincipalID, c.Role); err != nil {
		return Result{}, err
	}
	res, err := s.repo.execute(ctx, streamPrincipal(c.PrincipalID), newPrincipal, m, func(e *entry) ([]Event, error) {
		p := e.agg.(*principal)
		if err := p.active(c.PrincipalID); err != nil {
			return nil, err
		}
		if contains(p.roles, c.Role) {
			return nil, Errorf(ECONFLICT, "principal %s already holds the %s role", c.PrincipalID, c.Role)
		}
		if err := CheckRoles(append(slices.Clone(p.roles), c.Role)); err != nil {
			return nil, err
		}
		return []Event{&RoleGranted{PrincipalID: c.PrincipalID, Role: c.Role}}, nil
	})
	return result(c.PrincipalID, res), err
}

// RevokeRole takes a role from a principal. Only an admin may; an admin
// may not take their own admin role, and a principal keeps at least one
// role (revoke the principal instead).
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) RevokeRole(ctx context.Context, c PrincipalRole) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Result{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Result{}, err
	}
	if !contains(Roles, c.Role) {
		return Result{}, Errorf(EINVALID, "unknown role %q; roles are %v", truncate(c.Role, 20), Roles)
	}
	if c.PrincipalID == m.Actor.Principal && c.Role == RoleAdmin {
		return Result{}, Errorf(ECONFLICT, "you may not revoke your own admin role; another admin must")
	}
	res, err := s.repo.execute(ctx, streamPrincipal(c.PrincipalID), newPrincipal, m, func(e *entry) ([]Event, error) {
		p := e.agg.(*principal)
		if err := p.active(c.PrincipalID); err != nil {
			return nil, err
		}
		if !contains(p.roles, c.Role) {
			return nil, Errorf(ECONFLICT, "principal %s does not hold the %s role", c.PrincipalID, c.Role)
		}
		if len(p.roles) == 1 {
			return nil, Errorf(ECONFLICT, "%s is the only role of principal %s; revoke the principal instead", c.Role, c.PrincipalID)
		}
		return []Event{&RoleRevoked{PrincipalID: c.PrincipalID, Role: c.Role}}, nil
	})
	return result(c.PrincipalID, res), err
}

// RotateToken gives a principal a new token; the old one stops working.
// Only an admin may.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (revoked).
func (s *Service) RotateToken(ctx context.Context, c PrincipalCommand) (Issued, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Issued{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Issued{}, err
	}
	return s.issue(ctx, c.PrincipalID, m, func(p *principal, hash string) ([]Event, error) {
		if err := p.active(c.PrincipalID); err != nil {
			return nil, err
		}
		return []Event{&TokenRotated{PrincipalID: c.PrincipalID, TokenSHA256: hash}}, nil
	})
}

// RevokePrincipal ends a principal's access. Only an admin may, and not
// on themself.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (already revoked, or oneself).
func (s *Service) RevokePrincipal(ctx context.Context, c PrincipalCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Result{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Result{}, err
	}
	if c.PrincipalID == m.Actor.Principal {
		return Result{}, Errorf(ECONFLICT, "you may not revoke yourself; another admin must")
	}
	res, err := s.repo.execute(ctx, streamPrincipal(c.PrincipalID), newPrincipal, m, func(e *entry) ([]Event, error) {
		if err := e.agg.(*principal).active(c.PrincipalID); err != nil {
			return nil, err
		}
		return []Event{&PrincipalRevoked{PrincipalID: c.PrincipalID}}, nil
	})
	return result(c.PrincipalID, res), err
}

// issue runs a command that records a new token's hash. The token is made
// before deciding, so that a decision retried after a conflict records
// the same hash; it is handed back only if the principal's token is then
// this one, which is not the case when the command was a retry answered
// from the log (its token went to the first attempt).
func (s *Service) issue(ctx context.Context, id string, m *meta, decide func(p *principal, hash string) ([]Event, error)) (Issued, error) {
	token := newToken()
	hash := TokenSHA256(token)
	stream := streamPrincipal(id)
	defer s.repo.lock(stream)()
	e, err := s.repo.load(ctx, stream, newPrincipal)
	if err != nil {
		return Issued{}, err
	}
	res, err := s.repo.executeLocked(ctx, e, m, func(e *entry) ([]Event, error) {
		return decide(e.agg.(*principal), hash)
	})
	out := Issued{Result: result(id, res)}
	if err != nil {
		return out, err
	}
	if e.agg.(*principal).tokenSHA256 == hash {
		out.Token = token
	}
	return out, nil
}
