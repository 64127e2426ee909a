package http

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"talentledger/domain"
)

// Principal is someone who may call the API, with the roles they hold.
type Principal struct {
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
	// TokenSHA256 is the hex SHA-256 of the bearer token; the token itself
	// is never stored.
	TokenSHA256 string `json:"token_sha256"`
}

// has reports whether the principal holds role.
func (p *Principal) has(role string) bool {
	for _, r := range p.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Principals authenticates bearer tokens against a fixed set, the
// principals file: the bootstrap admin and any principal kept outside the
// log. It is safe for concurrent use; a nil *Principals holds nobody.
type Principals struct {
	mu      sync.RWMutex
	byToken map[string]*Principal // by token hash
	byID    map[string]*Principal
}

// NewPrincipals returns a set of principals, checking each: a valid ID
// (domain.ValidPrincipalID), roles that pass domain.CheckRoles (so no
// admin holds a money role and no auditor another role), and a token
// hash.
func NewPrincipals(ps []Principal) (*Principals, error) {
	set := &Principals{byToken: map[string]*Principal{}, byID: map[string]*Principal{}}
	for i := range ps {
		p := ps[i]
		if !domain.ValidPrincipalID(p.ID) {
			return nil, fmt.Errorf("principal %d: id must be 1–64 lower-case letters, digits or ._@- starting with a letter or digit", i)
		}
		if set.byID[p.ID] != nil {
			return nil, fmt.Errorf("principal %s appears twice", p.ID)
		}
		if err := domain.CheckRoles(p.Roles); err != nil {
			return nil, fmt.Errorf("principal %s: %s", p.ID, domain.ErrorMessage(err))
		}
		p.Roles = slices.Clone(p.Roles)
		if b, err := hex.DecodeString(p.TokenSHA256); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("principal %s: token_sha256 must be 64 hex digits", p.ID)
		}
		h := strings.ToLower(p.TokenSHA256)
		if set.byToken[h] != nil {
			return nil, fmt.Errorf("principal %s shares a token with another", p.ID)
		}
		set.byToken[h] = &p
		set.byID[p.ID] = &p
	}
	return set, nil
}

// LoadPrincipals reads a JSON file: {"principals": [{"id", "roles",
// "token_sha256"}, ...]}.
func LoadPrincipals(path string) (*Principals, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Principals []Principal `json:"principals"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("principals file %s: %w", path, err)
	}
	return NewPrincipals(f.Principals)
}

// Authenticate returns the principal holding token, or nil.
func (ps *Principals) Authenticate(token string) *Principal {
	if ps == nil || token == "" {
		return nil
	}
	h := HashToken(token)
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.byToken[h]
}

// has reports whether the set names the principal id.
func (ps *Principals) has(id string) bool {
	if ps == nil {
		return false
	}
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.byID[id] != nil
}

// get returns the principal id, without its token hash.
func (ps *Principals) get(id string) (Principal, bool) {
	if ps == nil {
		return Principal{}, false
	}
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	p := ps.byID[id]
	if p == nil {
		return Principal{}, false
	}
	return Principal{ID: p.ID, Roles: slices.Clone(p.Roles)}, true
}

// list returns the principals sorted by ID, without their token hashes.
func (ps *Principals) list() []Principal {
	if ps == nil {
		return nil
	}
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	out := make([]Principal, 0, len(ps.byID))
	for _, p := range ps.byID {
		out = append(out, Principal{ID: p.ID, Roles: slices.Clone(p.Roles)})
	}
	slices.SortFunc(out, func(a, b Principal) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// HashToken returns the hex SHA-256 of a token, as stored.
func HashToken(token string) string { return domain.TokenSHA256(token) }

// NewToken returns a new 256-bit random token, hex-encoded.
func NewToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type ctxKey int

const (
	keyPrincipal ctxKey = iota
	keyRequestID
	keyRole
)

func principalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(keyPrincipal).(*Principal)
	return p
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// actor returns the principal and the role the request acts in.
func actor(ctx context.Context) domain.Actor {
	p := principalFrom(ctx)
	role, _ := ctx.Value(keyRole).(string)
	if p == nil {
		return domain.Actor{}
	}
	return domain.Actor{Principal: p.ID, Role: role}
}
