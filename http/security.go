package http

import (
	"cmp"
	"net/http"
	"strconv"
	"strings"
)

// DefaultMaxInFlight is the default cap on requests served at once. Past
// it, requests are refused at once with 503 rather than queued, so an
// overload shows as fast refusals instead of growing latency and memory.
const DefaultMaxInFlight = 1024

// limits sets up the in-flight cap and the CORS origins from cfg.
func (s *Server) limits(cfg Config) {
	n := cfg.MaxInFlight
	if n == 0 {
		n = DefaultMaxInFlight
	}
	if n > 0 {
		s.inflight = make(chan struct{}, n)
	}
	s.shares = &shares{used: map[string]*usage{}, maxWaiting: max(n, 0)}
	for kind, c := range map[int]struct{ set, def int }{
		placeInFlight: {cfg.MaxInFlightPerPrincipal, DefaultMaxInFlightPerPrincipal},
		placeWaiting:  {cfg.MaxWaitingPerPrincipal, DefaultMaxWaitingPerPrincipal},
		placeUpload:   {cfg.MaxUploadsPerPrincipal, DefaultMaxUploadsPerPrincipal},
	} {
		s.shares.limit[kind] = max(cmp.Or(c.set, c.def), 0)
	}
	s.minBodyRate = int64(cmp.Or(cfg.MinBodyRate, DefaultMinBodyRate))
	s.bodyGrace = BodyRateGrace
	s.readTimeout = cmp.Or(cfg.ReadTimeout, DefaultReadTimeout)
	for _, o := range cfg.CORSOrigins {
		if o = strings.TrimSpace(o); o != "" {
			if s.cors == nil {
				s.cors = map[string]bool{}
			}
			s.cors[strings.TrimSuffix(o, "/")] = true
		}
	}
}

// CORS: off unless origins are configured. For a configured origin, every
// answer names it in Access-Control-Allow-Origin, and a preflight is
// answered here, before authentication (browsers send preflights without
// credentials). Other origins get no CORS headers, so browsers refuse
// them.
const (
	corsMethods = "GET, POST"
	corsHeaders = "Authorization, Content-Type, Idempotency-Key, X-Request-ID, X-Correlation-ID"
	corsExpose  = "X-Request-ID, Idempotent-Replayed, Retry-After, WWW-Authenticate"
)

// preflight adds the CORS headers for an allowed origin and answers a
// preflight request. It reports whether the request was answered.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if s.cors == nil || origin == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !s.cors[origin] {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExpose)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Allow-Headers", corsHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(600))
	w.WriteHeader(http.StatusNoContent)
	return true
}

// authenticate returns the principal holding token: one of the principals
// file first (the bootstrap set), then one created through the API, as
// the read models have it. An API principal whose ID the file also names
// is refused, so that one ID is never two people.
func (s *Server) authenticate(token string) *Principal {
	if token == "" {
		return nil
	}
	if p := s.auth.Authenticate(token); p != nil {
		return p
	}
	if s.proj == nil {
		return nil
	}
	v, ok := s.proj.PrincipalByToken(HashToken(token))
	if !ok || s.auth.has(v.ID) {
		return nil
	}
	return &Principal{ID: v.ID, Roles: v.Roles}
}

// Authenticate returns the principal holding token and its roles, as the
// API's own checks see them: the web console asks it on every request,
// so a rotated or revoked token ends its sessions at once.
func (s *Server) Authenticate(token string) (id string, roles []string, ok bool) {
	p := s.authenticate(token)
	if p == nil {
		return "", nil, false
	}
	return p.ID, append([]string(nil), p.Roles...), true
}
