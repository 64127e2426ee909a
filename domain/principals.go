package domain

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"regexp"
	"slices"
	"time"
)

// Principals (who may call the API) are kept as events, like money: each
// principal has a stream principal-<id>, and every change of access is an
// event with its actor, time and reason, in the hash chain and the Merkle
// tree. Only an admin changes access.
//
// Four eyes. A change that gives access (creating a principal, granting a
// role, rotating a token, restoring a revoked principal) is a request by
// one admin (AccessRequested) that takes effect only when a second,
// different admin approves it (AccessApproved, followed in the same append
// by the change itself). Both checks, "pending" and "another admin than
// the requester and than the principal concerned", are made on the
// principal's stream and appended at its expected version, never on a
// read model. Taking access away (revoking a role or a principal, or the
// old token with a rotation's revoke_now) takes effect at once: one admin
// may always do that.
//
// Enrollment. No admin ever holds another principal's token. A request
// that issues a token (create, rotate, restore) answers the requesting
// admin with one half of an enrollment code, and its approval answers the
// approving admin with the other half; only their hashes are recorded.
// The person redeems the two halves (Enroll) within the enrollment TTL
// (72 h by default, by the server's clock) to receive a token made then;
// the redemption is an event (EnrollmentRedeemed) and the code works once.
// Neither admin alone holds a code that works, and if both pooled their
// halves and redeemed it, the real person cannot, and notices. A rotation
// ends the old token when the new one is redeemed, or at once with
// revoke_now.
//
// Tokens are 256-bit random values made here, handed to the person once,
// and recorded only as their SHA-256: the log never holds a token.
//
// Role rules, enforced on every change (and by the HTTP layer on the
// bootstrap principals file):
//
//   - admin never goes with a money role (clerk, reviewer, approver,
//     treasurer, fund_manager): whoever manages access cannot also move
//     money, so an admin cannot give themself money authority;
//   - auditor goes with no other role: an auditor can never write;
//   - an admin cannot request a money role for themself, nor revoke
//     themself or their own admin role (another admin must), so one admin
//     alone cannot lock everyone out. The principals file is the way back
//     in if the last admin is revoked by another.
//
// Every principal created through the API, an admin included, needs two
// admins, so one person holding one admin identity can never make a second
// one: a fresh installation's second admin is added to the principals
// file by whoever runs the server.

// Principal event types.
const (
	TypePrincipalCreated = "PrincipalCreated"
	TypeRoleGranted      = "RoleGranted"
	TypeRoleRevoked      = "RoleRevoked"
	// TypeTokenRotated is no longer written (a token now comes from an
	// enrollment); it is still read from older logs.
	TypeTokenRotated       = "TokenRotated"
	TypePrincipalRevoked   = "PrincipalRevoked"
	TypeAccessRequested    = "AccessRequested"
	TypeAccessApproved     = "AccessApproved"
	TypeAccessRejected     = "AccessRejected"
	TypePrincipalRestored  = "PrincipalRestored"
	TypeEnrollmentRedeemed = "EnrollmentRedeemed"
)

// Changes of access that need a second admin.
const (
	ChangeCreate    = "create"
	ChangeGrantRole = "grant_role"
	ChangeRotate    = "rotate"
	ChangeRestore   = "restore"
)

// DefaultEnrollmentTTL is how long an enrollment code can be redeemed
// after its approval, unless WithEnrollmentTTL says otherwise.
const DefaultEnrollmentTTL = 72 * time.Hour

// EnrollmentCodeLen is the length of an enrollment code: two halves of 32
// hex digits (128 bits) each, one from each admin.
const EnrollmentCodeLen = 64

// PrincipalCreated records a new principal with its roles. Since four
// eyes it follows the AccessApproved of a create request and has no token
// (the person enrolls); in older logs it carries the hash of the first
// token.
type PrincipalCreated struct {
	PrincipalID string   `json:"principal_id"`
	Roles       []string `json:"roles"`
	// TokenSHA256 is the hex SHA-256 of the bearer token, in older logs.
	TokenSHA256 string `json:"token_sha256,omitempty"`
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

// TokenRotated replaced a principal's token in older logs; the old one
// stopped working.
type TokenRotated struct {
	PrincipalID string `json:"principal_id"`
	TokenSHA256 string `json:"token_sha256"`
}

// PrincipalRevoked ends a principal's access, and any enrollment it has
// open, until a restore request is approved.
type PrincipalRevoked struct {
	PrincipalID string `json:"principal_id"`
}

// AccessRequested is an admin's request to change a principal's access,
// in force only once another admin approves it.
type AccessRequested struct {
	PrincipalID string `json:"principal_id"`
	RequestID   string `json:"request_id"`
	// Change is ChangeCreate, ChangeGrantRole, ChangeRotate or
	// ChangeRestore.
	Change string `json:"change"`
	// Roles are the roles of a principal to create.
	Roles []string `json:"roles,omitempty"`
	// Role is the role to grant.
	Role string `json:"role,omitempty"`
	// RevokeNow, on a rotation, ended the current token at once.
	RevokeNow   bool   `json:"revoke_now,omitempty"`
	RequestedBy string `json:"requested_by"`
	// CodeSHA256 is the hash of the requester's half of the enrollment
	// code, for a change that issues a token.
	CodeSHA256 string `json:"code_sha256,omitempty"`
}

// AccessApproved is a second admin's approval of a request. The change
// itself (PrincipalCreated, RoleGranted, PrincipalRestored) follows it in
// the same append; for a change that issues a token it opens an
// enrollment.
type AccessApproved struct {
	PrincipalID string `json:"principal_id"`
	RequestID   string `json:"request_id"`
	ApprovedBy  string `json:"approved_by"`
	// CodeSHA256 is the hash of the approver's half of the enrollment
	// code, and ExpiresAt when the code stops working (server time).
	CodeSHA256 string     `json:"code_sha256,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// AccessRejected closes a request without effect: withdrawn by its
// requester or rejected by another admin.
type AccessRejected struct {
	PrincipalID string `json:"principal_id"`
	RequestID   string `json:"request_id"`
	RejectedBy  string `json:"rejected_by"`
}

// PrincipalRestored gives a revoked principal back its access, with the
// roles it had; it follows the approval of a restore request, and the
// person enrolls for a new token.
type PrincipalRestored struct {
	PrincipalID string `json:"principal_id"`
}

// EnrollmentRedeemed records that the enrollment code of a request was
// redeemed and the principal's token is now the one with this hash; the
// previous token stops working.
type EnrollmentRedeemed struct {
	PrincipalID string `json:"principal_id"`
	RequestID   string `json:"request_id"`
	TokenSHA256 string `json:"token_sha256"`
}

func (PrincipalCreated) EventType() string   { return TypePrincipalCreated }
func (RoleGranted) EventType() string        { return TypeRoleGranted }
func (RoleRevoked) EventType() string        { return TypeRoleRevoked }
func (TokenRotated) EventType() string       { return TypeTokenRotated }
func (PrincipalRevoked) EventType() string   { return TypePrincipalRevoked }
func (AccessRequested) EventType() string    { return TypeAccessRequested }
func (AccessApproved) EventType() string     { return TypeAccessApproved }
func (AccessRejected) EventType() string     { return TypeAccessRejected }
func (PrincipalRestored) EventType() string  { return TypePrincipalRestored }
func (EnrollmentRedeemed) EventType() string { return TypeEnrollmentRedeemed }

// WithEnrollmentTTL sets how long an enrollment code can be redeemed after
// its approval (default DefaultEnrollmentTTL).
func WithEnrollmentTTL(d time.Duration) Option { return func(s *Service) { s.enrollTTL = d } }

func (s *Service) enrollmentTTL() time.Duration {
	if s.enrollTTL > 0 {
		return s.enrollTTL
	}
	return DefaultEnrollmentTTL
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

// newCodeHalf returns one half of an enrollment code: 128 random bits in
// hex.
func newCodeHalf() string { return randomHex(EnrollmentCodeLen / 4) }

func streamPrincipal(id string) string { return "principal-" + id }

// StreamPrincipal returns the stream of a principal's changes.
func StreamPrincipal(id string) string { return streamPrincipal(id) }

// prefixAccessRequest starts the IDs of access requests.
const prefixAccessRequest = "r"

// ValidAccessRequestID reports whether id has the form of an access
// request's ID.
func ValidAccessRequestID(id string) bool { return validGenerated(prefixAccessRequest, id) }

// principal is the state of a principal stream.
type principal struct {
	PrincipalAccess
	// requests holds every request of the stream by ID, decided or not.
	requests map[string]*accessRequest
	// enrollments holds every enrollment by its request's ID; open names
	// the one that can still be redeemed, "" for none.
	enrollments map[string]*enrollment
	open        string
}

type accessRequest struct {
	AccessRequested
	decided bool
}

type enrollment struct {
	// codes are the hashes of the requester's and the approver's halves.
	codes     [2]string
	expiresAt time.Time
	redeemed  bool
}

func newPrincipal() aggregate {
	return &principal{requests: map[string]*accessRequest{}, enrollments: map[string]*enrollment{}}
}

func (p *principal) apply(e Event) {
	p.PrincipalAccess.Apply(e)
	switch e := e.(type) {
	case *PrincipalRevoked:
		p.open = ""
	case *AccessRequested:
		p.requests[e.RequestID] = &accessRequest{AccessRequested: *e}
	case *AccessApproved:
		r := p.requests[e.RequestID]
		if r == nil {
			return
		}
		r.decided = true
		if e.CodeSHA256 != "" && e.ExpiresAt != nil {
			p.enrollments[e.RequestID] = &enrollment{codes: [2]string{r.CodeSHA256, e.CodeSHA256}, expiresAt: *e.ExpiresAt}
			p.open = e.RequestID
		}
	case *AccessRejected:
		if r := p.requests[e.RequestID]; r != nil {
			r.decided = true
		}
	case *EnrollmentRedeemed:
		if en := p.enrollments[e.RequestID]; en != nil {
			en.redeemed = true
		}
		if p.open == e.RequestID {
			p.open = ""
		}
	}
}

// active returns an error unless the principal exists and is not revoked.
func (p *principal) active(id string) error {
	if !p.Created {
		return Errorf(ENOTFOUND, "principal %s not found", id)
	}
	if p.Revoked {
		return Errorf(ECONFLICT, "principal %s is revoked", id)
	}
	return nil
}

// pending returns the ID of a pending request for the same change, or "".
func (p *principal) pending(change, role string) string {
	for id, r := range p.requests {
		if !r.decided && r.Change == change && r.Role == role {
			return id
		}
	}
	return ""
}

// CreatePrincipal is the command that requests a new principal.
type CreatePrincipal struct {
	Meta        CommandMeta
	PrincipalID string
	Roles       []string
}

// PrincipalRole is the command that requests a role or revokes one.
type PrincipalRole struct {
	Meta        CommandMeta
	PrincipalID string
	Role        string
}

// PrincipalCommand is a command on a principal as a whole: revoking it or
// requesting its restoration.
type PrincipalCommand struct {
	Meta        CommandMeta
	PrincipalID string
}

// RotateToken is the command that requests a new token for a principal.
type RotateToken struct {
	Meta        CommandMeta
	PrincipalID string
	// RevokeNow ends the current token at once instead of when the new
	// one is redeemed.
	RevokeNow bool
}

// AccessDecision approves or rejects a pending request.
type AccessDecision struct {
	Meta        CommandMeta
	PrincipalID string
	RequestID   string
	// ActorInFile is set by the caller when the deciding admin is a
	// principal of the bootstrap file, which has no stream; otherwise an
	// approver must be an active admin on their own stream.
	ActorInFile bool
}

// Enroll redeems an enrollment code for a token. It is the one command
// sent without a token: the code is the credential.
type Enroll struct {
	PrincipalID string
	// Code is the two halves of the enrollment code, the requester's and
	// the approver's, one after the other in either order.
	Code          string
	CorrelationID string
}

// Requested answers a request for a change of access: its ID and, for a
// change that issues a token, the requester's half of the enrollment code,
// shown this once (empty when the command was a retry of one that already
// made the request).
type Requested struct {
	Result
	RequestID string
	Change    string
	CodeHalf  string
}

// Approved answers an approval: for a change that issues a token, the
// approver's half of the enrollment code, shown this once, and when the
// code expires.
type Approved struct {
	Result
	RequestID string
	Change    string
	CodeHalf  string
	ExpiresAt *time.Time
}

// Issued answers a redeemed enrollment: the bearer token itself, shown
// this once.
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

func checkRole(role string) error {
	if !contains(Roles, role) {
		return Errorf(EINVALID, "unknown role %q; roles are %v", truncate(role, 20), Roles)
	}
	return nil
}

// CreatePrincipal requests a principal with its roles; it exists once
// another admin approves (ApproveAccess), and the person enrolls for a
// token. Only an admin may.
//
// Errors: EINVALID, ESEGREGATION (admin with a money role, auditor with
// another role, or an admin giving themself a money role), ECONFLICT (the
// ID is taken, even by a revoked principal, or a request to create it is
// pending).
func (s *Service) CreatePrincipal(ctx context.Context, c CreatePrincipal) (Requested, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Requested{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Requested{}, err
	}
	if err := CheckRoles(c.Roles); err != nil {
		return Requested{}, err
	}
	if err := selfGrant(m, c.PrincipalID, c.Roles...); err != nil {
		return Requested{}, err
	}
	return s.request(ctx, c.PrincipalID, m, AccessRequested{Change: ChangeCreate, Roles: slices.Clone(c.Roles)}, func(p *principal) error {
		if p.Created {
			return Errorf(ECONFLICT, "principal %s already exists (a revoked one is restored, never created again)", c.PrincipalID)
		}
		if id := p.pending(ChangeCreate, ""); id != "" {
			return Errorf(ECONFLICT, "request %s to create principal %s is pending", id, c.PrincipalID)
		}
		return nil
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

// GrantRole requests one more role for a principal, in force once another
// admin approves. Only an admin may.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (revoked, already holds the role,
// or the same request is pending), ESEGREGATION (the roles would break
// CheckRoles, or an admin asks a money role for themself).
func (s *Service) GrantRole(ctx context.Context, c PrincipalRole) (Requested, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Requested{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Requested{}, err
	}
	if err := checkRole(c.Role); err != nil {
		return Requested{}, err
	}
	if err := selfGrant(m, c.PrincipalID, c.Role); err != nil {
		return Requested{}, err
	}
	return s.request(ctx, c.PrincipalID, m, AccessRequested{Change: ChangeGrantRole, Role: c.Role}, func(p *principal) error {
		if err := p.canGrant(c.PrincipalID, c.Role); err != nil {
			return err
		}
		if id := p.pending(ChangeGrantRole, c.Role); id != "" {
			return Errorf(ECONFLICT, "request %s to grant %s the %s role is pending", id, c.PrincipalID, c.Role)
		}
		return nil
	})
}

// canGrant checks that the principal may receive role now.
func (p *principal) canGrant(id, role string) error {
	if err := p.active(id); err != nil {
		return err
	}
	if contains(p.Roles, role) {
		return Errorf(ECONFLICT, "principal %s already holds the %s role", id, role)
	}
	return CheckRoles(append(slices.Clone(p.Roles), role))
}

// RotateToken requests a new token for a principal: once another admin
// approves, the person enrolls, and the old token stops working when the
// new one is redeemed, or at once with RevokeNow. Only an admin may.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (revoked).
func (s *Service) RotateToken(ctx context.Context, c RotateToken) (Requested, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Requested{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Requested{}, err
	}
	return s.request(ctx, c.PrincipalID, m, AccessRequested{Change: ChangeRotate, RevokeNow: c.RevokeNow}, func(p *principal) error {
		return p.active(c.PrincipalID)
	})
}

// RestorePrincipal requests that a revoked principal get its access back,
// with the roles it had; once another admin approves, the person enrolls
// for a new token. Only an admin may.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (not revoked, or the same request
// is pending).
func (s *Service) RestorePrincipal(ctx context.Context, c PrincipalCommand) (Requested, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Requested{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Requested{}, err
	}
	return s.request(ctx, c.PrincipalID, m, AccessRequested{Change: ChangeRestore}, func(p *principal) error {
		if !p.Created {
			return Errorf(ENOTFOUND, "principal %s not found", c.PrincipalID)
		}
		if !p.Revoked {
			return Errorf(ECONFLICT, "principal %s is not revoked", c.PrincipalID)
		}
		if id := p.pending(ChangeRestore, ""); id != "" {
			return Errorf(ECONFLICT, "request %s to restore principal %s is pending", id, c.PrincipalID)
		}
		return nil
	})
}

// issuesToken reports whether a change gives the principal a new token.
func issuesToken(change string) bool { return change != ChangeGrantRole }

// request records an AccessRequested after check passes on the
// principal's state. The code half is made before deciding, so that a
// decision retried after a conflict records the same hash; it is handed
// back only if the recorded request holds this hash, which is not the
// case when the command was a retry answered from the log (its half went
// to the first attempt).
func (s *Service) request(ctx context.Context, id string, m *meta, req AccessRequested, check func(p *principal) error) (Requested, error) {
	req.PrincipalID = id
	req.RequestID = newID(prefixAccessRequest, m.CommandID, id)
	req.RequestedBy = m.Actor.Principal
	half := ""
	if issuesToken(req.Change) {
		half = newCodeHalf()
		req.CodeSHA256 = TokenSHA256(half)
	}
	out := Requested{RequestID: req.RequestID, Change: req.Change}
	stream := streamPrincipal(id)
	defer s.repo.lock(stream)()
	e, err := s.repo.load(ctx, stream, newPrincipal)
	if err != nil {
		return out, err
	}
	res, err := s.repo.executeLocked(ctx, e, m, func(e *entry) ([]Event, error) {
		if err := check(e.agg.(*principal)); err != nil {
			return nil, err
		}
		ev := req
		return []Event{&ev}, nil
	})
	out.Result = result(id, res)
	if err != nil {
		return out, err
	}
	if r := e.agg.(*principal).requests[req.RequestID]; half != "" && r != nil && r.CodeSHA256 == req.CodeSHA256 {
		out.CodeHalf = half
	}
	return out, nil
}

// ApproveAccess approves a pending request, which takes effect at once.
// Only an admin may, and neither the admin who requested it nor the
// principal it concerns. For a change that issues a token it answers the
// approver's half of the enrollment code, which works until the
// enrollment TTL has passed on the server's clock.
//
// Errors: EINVALID, ENOTFOUND (no such request), ECONFLICT (already
// decided, or the principal's state no longer allows the change),
// ESEGREGATION (the requester or the principal concerned approves, or
// the roles would break CheckRoles).
func (s *Service) ApproveAccess(ctx context.Context, c AccessDecision) (Approved, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Approved{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Approved{}, err
	}
	if !ValidAccessRequestID(c.RequestID) {
		return Approved{}, Errorf(ENOTFOUND, "access request %q not found", truncate(c.RequestID, 20))
	}
	if !c.ActorInFile {
		if err := s.checkAdmin(ctx, m.Actor.Principal); err != nil {
			return Approved{}, err
		}
	}
	half := newCodeHalf()
	expires := m.recordedAt.Add(s.enrollmentTTL())
	out := Approved{RequestID: c.RequestID}
	stream := streamPrincipal(c.PrincipalID)
	defer s.repo.lock(stream)()
	e, err := s.repo.load(ctx, stream, newPrincipal)
	if err != nil {
		return out, err
	}
	res, err := s.repo.executeLocked(ctx, e, m, func(e *entry) ([]Event, error) {
		p := e.agg.(*principal)
		r, err := p.decidable(c.PrincipalID, c.RequestID)
		if err != nil {
			return nil, err
		}
		if r.RequestedBy == m.Actor.Principal {
			return nil, Errorf(ESEGREGATION, "you requested this change; another admin must approve it")
		}
		if c.PrincipalID == m.Actor.Principal {
			return nil, Errorf(ESEGREGATION, "this change concerns you; another admin must approve it")
		}
		ok := &AccessApproved{PrincipalID: c.PrincipalID, RequestID: c.RequestID, ApprovedBy: m.Actor.Principal}
		if issuesToken(r.Change) {
			ok.CodeSHA256, ok.ExpiresAt = TokenSHA256(half), &expires
		}
		switch r.Change {
		case ChangeCreate:
			if p.Created {
				return nil, Errorf(ECONFLICT, "principal %s already exists", c.PrincipalID)
			}
			if err := CheckRoles(r.Roles); err != nil {
				return nil, err
			}
			return []Event{ok, &PrincipalCreated{PrincipalID: c.PrincipalID, Roles: slices.Clone(r.Roles)}}, nil
		case ChangeGrantRole:
			if err := p.canGrant(c.PrincipalID, r.Role); err != nil {
				return nil, err
			}
			return []Event{ok, &RoleGranted{PrincipalID: c.PrincipalID, Role: r.Role}}, nil
		case ChangeRotate:
			if err := p.active(c.PrincipalID); err != nil {
				return nil, err
			}
			return []Event{ok}, nil
		case ChangeRestore:
			if !p.Revoked {
				return nil, Errorf(ECONFLICT, "principal %s is not revoked", c.PrincipalID)
			}
			return []Event{ok, &PrincipalRestored{PrincipalID: c.PrincipalID}}, nil
		}
		return nil, Errorf(ECONFLICT, "request %s asks an unknown change", c.RequestID)
	})
	out.Result = result(c.PrincipalID, res)
	if err != nil {
		return out, err
	}
	p := e.agg.(*principal)
	if r := p.requests[c.RequestID]; r != nil {
		out.Change = r.Change
	}
	if en := p.enrollments[c.RequestID]; en != nil && en.codes[1] == TokenSHA256(half) {
		out.CodeHalf, out.ExpiresAt = half, &en.expiresAt
	}
	return out, nil
}

// checkAdmin refuses an approver who is not, on their own stream as the
// store has it now, an active admin: authentication rests on a read model
// that may lag a revocation (on another server, say), an approval does
// not. It runs before the principal's stream is locked, so that two
// approvals never hold two principals' locks.
func (s *Service) checkAdmin(ctx context.Context, id string) error {
	if !ValidPrincipalID(id) {
		return Errorf(EFORBIDDEN, "only an active admin may approve")
	}
	// view reads the stream forward from the store unless this service
	// is its sole writer.
	return s.repo.view(ctx, streamPrincipal(id), newPrincipal, func(e *entry) error {
		p := e.agg.(*principal)
		if !p.Created || p.Revoked || !contains(p.Roles, RoleAdmin) || p.TokenSHA256 == "" {
			return Errorf(EFORBIDDEN, "only an active admin may approve: %s is not one now", id)
		}
		return nil
	})
}

// decidable returns a pending request of the principal.
func (p *principal) decidable(id, requestID string) (*accessRequest, error) {
	r := p.requests[requestID]
	if r == nil {
		return nil, Errorf(ENOTFOUND, "principal %s has no access request %s", id, requestID)
	}
	if r.decided {
		return nil, Errorf(ECONFLICT, "access request %s is already decided", requestID)
	}
	return r, nil
}

// RejectAccess closes a pending request without effect. Any admin may:
// its requester withdraws it, another admin rejects it.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (already decided).
func (s *Service) RejectAccess(ctx context.Context, c AccessDecision) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return Result{}, err
	}
	if err := checkPrincipalID(c.PrincipalID); err != nil {
		return Result{}, err
	}
	if !ValidAccessRequestID(c.RequestID) {
		return Result{}, Errorf(ENOTFOUND, "access request %q not found", truncate(c.RequestID, 20))
	}
	res, err := s.repo.execute(ctx, streamPrincipal(c.PrincipalID), newPrincipal, m, func(e *entry) ([]Event, error) {
		if _, err := e.agg.(*principal).decidable(c.PrincipalID, c.RequestID); err != nil {
			return nil, err
		}
		return []Event{&AccessRejected{PrincipalID: c.PrincipalID, RequestID: c.RequestID, RejectedBy: m.Actor.Principal}}, nil
	})
	return result(c.PrincipalID, res), err
}

// errBadCode answers every code that matches no enrollment of the
// principal, and every principal that has none, alike: an unauthenticated
// caller learns nothing about who exists.
var errBadCode = Errorf(EUNAUTHENTICATED, "the enrollment code is not valid for this principal")

var reEnrollmentCode = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Enroll redeems an enrollment code for the principal's new token, shown
// this once. The code works once, before it expires on the server's
// clock, while it is the principal's latest and the principal is not
// revoked; of concurrent redemptions exactly one wins.
//
// Errors: EINVALID (not 64 hex digits), EUNAUTHENTICATED (no such code for
// this principal), ECONFLICT (the code was already redeemed, has expired,
// or was replaced by a newer one or by a revocation).
func (s *Service) Enroll(ctx context.Context, c Enroll) (Issued, error) {
	if !reEnrollmentCode.MatchString(c.Code) {
		return Issued{}, Errorf(EINVALID, "code must be the two halves of the enrollment code, 64 lower-case hex digits")
	}
	if !ValidPrincipalID(c.PrincipalID) {
		return Issued{}, errBadCode
	}
	if err := checkText("correlation id", c.CorrelationID, false); err != nil {
		return Issued{}, err
	}
	a, b := TokenSHA256(c.Code[:32]), TokenSHA256(c.Code[32:])
	token := newToken()
	hash := TokenSHA256(token)
	stream := streamPrincipal(c.PrincipalID)
	defer s.repo.lock(stream)()
	e, err := s.repo.load(ctx, stream, newPrincipal)
	if err != nil {
		return Issued{}, err
	}
	// The person acts as themself, in their first role.
	now := s.now()
	m := &meta{CommandMeta: CommandMeta{Actor: Actor{Principal: c.PrincipalID}, CommandID: randomHex(16),
		CorrelationID: c.CorrelationID, CausationID: c.CorrelationID}, recordedAt: now.UTC().Truncate(time.Microsecond), today: Today(now)}
	m.date = m.today
	if roles := e.agg.(*principal).Roles; len(roles) > 0 {
		m.Actor.Role = roles[0]
	}
	res, err := s.repo.executeLocked(ctx, e, m, func(e *entry) ([]Event, error) {
		p := e.agg.(*principal)
		rid := ""
		for id, en := range p.enrollments {
			if codeIs(en.codes, a, b) || codeIs(en.codes, b, a) {
				rid = id
			}
		}
		if rid == "" {
			return nil, errBadCode
		}
		en := p.enrollments[rid]
		switch {
		case en.redeemed:
			return nil, Errorf(ECONFLICT, "this enrollment code was already redeemed; if not by you, tell an admin at once")
		case p.Revoked:
			return nil, Errorf(ECONFLICT, "principal %s is revoked", c.PrincipalID)
		case p.open != rid:
			return nil, Errorf(ECONFLICT, "this enrollment code was replaced by a newer one")
		case !m.recordedAt.Before(en.expiresAt):
			return nil, Errorf(ECONFLICT, "this enrollment code expired at %s; ask the admins for a new one", en.expiresAt.UTC().Format(time.RFC3339))
		}
		return []Event{&EnrollmentRedeemed{PrincipalID: c.PrincipalID, RequestID: rid, TokenSHA256: hash}}, nil
	})
	out := Issued{Result: result(c.PrincipalID, res)}
	if err != nil {
		return out, err
	}
	if e.agg.(*principal).TokenSHA256 == hash {
		out.Token = token
	}
	return out, nil
}

// codeIs compares hashes in constant time.
func codeIs(codes [2]string, a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(codes[0]), []byte(a))&subtle.ConstantTimeCompare([]byte(codes[1]), []byte(b)) == 1
}

// RevokeRole takes a role from a principal, at once. Only an admin may;
// an admin may not take their own admin role, and a principal keeps at
// least one role (revoke the principal instead).
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
	if err := checkRole(c.Role); err != nil {
		return Result{}, err
	}
	if c.PrincipalID == m.Actor.Principal && c.Role == RoleAdmin {
		return Result{}, Errorf(ECONFLICT, "you may not revoke your own admin role; another admin must")
	}
	res, err := s.repo.execute(ctx, streamPrincipal(c.PrincipalID), newPrincipal, m, func(e *entry) ([]Event, error) {
		p := e.agg.(*principal)
		if err := p.active(c.PrincipalID); err != nil {
			return nil, err
		}
		if !contains(p.Roles, c.Role) {
			return nil, Errorf(ECONFLICT, "principal %s does not hold the %s role", c.PrincipalID, c.Role)
		}
		if len(p.Roles) == 1 {
			return nil, Errorf(ECONFLICT, "%s is the only role of principal %s; revoke the principal instead", c.Role, c.PrincipalID)
		}
		return []Event{&RoleRevoked{PrincipalID: c.PrincipalID, Role: c.Role}}, nil
	})
	return result(c.PrincipalID, res), err
}

// RevokePrincipal ends a principal's access at once, and any enrollment
// it has open. Only an admin may, and not on themself.
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
