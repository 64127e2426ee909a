package http

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
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

// Principals authenticates bearer tokens. It is safe for concurrent use.
type Principals struct {
	mu      sync.RWMutex
	byToken map[string]*Principal // by token hash
}

// NewPrincipals returns a set of principals, checking each.
func NewPrincipals(ps []Principal) (*Principals, error) {
	set := &Principals{byToken: map[string]*Principal{}}
	ids := map[string]bool{}
	for i := range ps {
		p := ps[i]
		if p.ID == "" || len(p.ID) > 100 || strings.ContainsAny(p.ID, " \t\r\n") {
			return nil, fmt.Errorf("principal %d: id must be 1–100 characters without spaces", i)
		}
		if ids[p.ID] {
			return nil, fmt.Errorf("principal %s appears twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Roles) == 0 {
			return nil, fmt.Errorf("principal %s has no role", p.ID)
		}
		for _, r := range p.Roles {
			if !contains(domain.Roles, r) {
				return nil, fmt.Errorf("principal %s: unknown role %q", p.ID, r)
			}
		}
		if b, err := hex.DecodeString(p.TokenSHA256); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("principal %s: token_sha256 must be 64 hex digits", p.ID)
		}
		h := strings.ToLower(p.TokenSHA256)
		if set.byToken[h] != nil {
			return nil, fmt.Errorf("principal %s shares a token with another", p.ID)
		}
		set.byToken[h] = &p
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
	if token == "" {
		return nil
	}
	h := HashToken(token)
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.byToken[h]
}

// HashToken returns the hex SHA-256 of a token, as stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

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
