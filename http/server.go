// Package http serves the ledger's JSON API over gorilla/mux: routes,
// authentication and roles, request decoding, idempotency, and the mapping
// of errors to problem+json. It depends on the domain and the projections,
// never on a concrete event store.
package http

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/projections"
	"talentledger/projections/viewstore"
)

// Config is what a Server needs.
type Config struct {
	Service    *domain.Service
	Projector  *projections.Projector
	Principals *Principals
	Logger     *slog.Logger
	// AuditKey signs the Merkle tree heads; without it the audit
	// endpoints that sign answer 503.
	AuditKey ed25519.PrivateKey
	// MinPositionWait bounds how long a query waits for ?min_position
	// (default 5 s).
	MinPositionWait time.Duration
	// Observer, when set, is told of every request and idempotent replay.
	Observer Observer
	// MaxInFlight caps the requests served at once; more are answered 503
	// at once (default DefaultMaxInFlight; negative for no cap).
	MaxInFlight int
	// CORSOrigins lists the browser origins allowed to call the API; none
	// (the default) turns CORS off.
	CORSOrigins []string
	// MaxInFlightPerPrincipal, MaxWaitingPerPrincipal and
	// MaxUploadsPerPrincipal are each principal's share of the requests
	// in flight, of the queries waiting for ?min_position, and of the
	// bodies being read (defaults in fairness.go; negative for no cap).
	MaxInFlightPerPrincipal, MaxWaitingPerPrincipal, MaxUploadsPerPrincipal int
	// MinBodyRate is the slowest, in bytes per second, a request body may
	// arrive after BodyRateGrace (default DefaultMinBodyRate; negative for
	// no minimum).
	MinBodyRate int
	// ReadTimeout is the HTTP server's read timeout, which a body's
	// deadline never passes (default DefaultReadTimeout).
	ReadTimeout time.Duration
	// Integrity, when set, returns the server's integrity status (witness,
	// background scrub, read-only for damage), shown by GET
	// /v1/audit/verify as its "integrity" section.
	Integrity func() any
	// VerifiedSize, when set, verifies the log's hash chains up to its end
	// and returns how many events are verified; tree heads are then signed
	// only over verified events. Its error refuses the head (503).
	VerifiedSize func() (uint64, error)
}

// Server is the HTTP API.
type Server struct {
	svc    *domain.Service
	proj   *projections.Projector
	auth   *Principals
	log    *slog.Logger
	wait   time.Duration
	router *mux.Router
	// auditKey signs tree heads.
	auditKey ed25519.PrivateKey
	routes   []Route
	obs      Observer
	// integrity reports the integrity status; nil when not configured.
	integrity func() any
	verified  func() (uint64, error)
	// inflight holds a token per request being served; nil for no cap.
	inflight chan struct{}
	cors     map[string]bool
	// shares, minBodyRate and readTimeout share the server fairly among
	// principals (fairness.go).
	shares      *shares
	minBodyRate int64
	bodyGrace   time.Duration
	readTimeout time.Duration
	// answers keeps the encoded answers of the cachedRoutes (cache.go).
	answers answerCache
}

// Route describes one endpoint: who may call it and what it does. The
// route table is the single source for routing, role checks and the
// OpenAPI document.
type Route struct {
	Method  string
	Path    string
	Roles   []string // nil: no authentication; AnyRole: any principal
	Summary string
	handler http.HandlerFunc
	// doc describes the route's bodies, parameters and errors for the
	// OpenAPI document.
	doc routeDoc
}

// AnyRole marks a route any authenticated principal may call.
var AnyRole = []string{"*"}

// New returns a Server with every route registered.
func New(cfg Config) *Server {
	s := &Server{svc: cfg.Service, proj: cfg.Projector, auth: cfg.Principals, log: cfg.Logger, wait: cfg.MinPositionWait, auditKey: cfg.AuditKey, obs: cfg.Observer,
		integrity: cfg.Integrity, verified: cfg.VerifiedSize}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.wait == 0 {
		s.wait = 5 * time.Second
	}
	s.limits(cfg)
	s.router = mux.NewRouter()
	s.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, domain.ENOTFOUND, "no such endpoint")
	})
	s.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusMethodNotAllowed, EMETHOD, "method not allowed on this endpoint")
	})
	s.registerHealthRoutes()
	s.registerProgramRoutes()
	s.registerTalentRoutes()
	s.registerPersonalRoutes()
	s.registerGrantRoutes()
	s.registerWorkRoutes()
	s.registerBankRoutes()
	s.registerPaymentRoutes()
	s.registerLedgerRoutes()
	s.registerFundRoutes()
	s.registerAuditRoutes()
	s.registerPrincipalRoutes()
	s.registerExportRoutes()
	s.registerReportRoutes()
	s.registerApartmentRoutes()
	s.registerExtraRoutes()
	for _, rt := range s.routes {
		s.router.Handle(rt.Path, s.guard(rt)).Methods(rt.Method).Name(rt.Method + " " + rt.Path)
	}
	return s
}

// Routes returns the route table.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Router returns the mux router, for walking the registered routes.
func (s *Server) Router() *mux.Router { return s.router }

func (s *Server) handle(method, path string, roles []string, summary string, h http.HandlerFunc, doc routeDoc) {
	if method == http.MethodGet && cachedRoutes[path] {
		h = s.cached(h)
	}
	s.routes = append(s.routes, Route{Method: method, Path: path, Roles: roles, Summary: summary, handler: h, doc: doc})
}

// ServeHTTP runs the middleware chain: request ID, security headers,
// recovery, logging, then routing.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-ID")
	if !reRequestID.MatchString(id) {
		id = newRequestID()
	}
	ctx := context.WithValue(r.Context(), keyRequestID, id)
	r = r.WithContext(ctx)
	h := w.Header()
	h.Set("X-Request-ID", id)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=63072000")
	}

	info := &reqInfo{route: "unmatched"}
	r = r.WithContext(context.WithValue(r.Context(), keyInfo, info))
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	defer func() {
		v := recover()
		if v != nil && v != http.ErrAbortHandler {
			s.log.Error("panic", "request_id", id, "panic", v, "stack", string(debug.Stack()))
			if rec.status == 0 {
				writeProblem(rec, r, http.StatusInternalServerError, domain.EINTERNAL, "internal error")
			}
		}
		// Never the token, the body or the query: they may carry secrets
		// and personal data.
		elapsed := time.Since(start)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("request_id", id), slog.String("principal", info.principal),
			slog.String("method", r.Method), slog.String("route", info.route), slog.Int("status", rec.code()),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
		if s.obs != nil {
			s.obs.Request(info.route, rec.code(), elapsed)
		}
		if v == http.ErrAbortHandler {
			// A streamed answer failed midway: net/http cuts the
			// connection, so the client sees it fail.
			panic(v)
		}
	}()
	if s.preflight(rec, r) {
		return
	}
	rw := newRevealWriter(rec, s, info)
	defer rw.finish()
	s.router.ServeHTTP(rw, r)
}

// reqInfo collects, for the request log line, what routing and
// authentication learn.
type reqInfo struct {
	route     string
	principal string
	// role is the role the request acts in, once authenticated: what it
	// may see of personal fields follows from it.
	role string
	// sealed keeps the answer's personal fields as stored (keepSealed).
	sealed bool
}

const keyInfo ctxKey = 100

var reRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// guard authenticates the request and checks the route's roles before
// calling its handler.
func (s *Server) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := r.Context().Value(keyInfo).(*reqInfo)
		if info != nil {
			info.route = rt.Method + " " + rt.Path
		}
		if rt.Roles == nil {
			// Liveness and readiness take no place: they never wait
			// behind API traffic.
			if rt.Path != "/healthz" && rt.Path != "/readyz" {
				a, ok := s.admit(w, r, "")
				if !ok {
					return
				}
				defer a.release()
			}
			if r, ok := s.strictQuery(w, r, rt); ok {
				rt.handler(w, r)
			}
			return
		}
		// A replica that met an event of a newer build decides on nothing
		// until it is upgraded; it still answers reads of what it folded.
		// Read models stopped by anything else (an event that cannot be
		// read, a damaged views store) answer nothing: what they hold may
		// be wrong.
		if err := s.proj.Stopped(); err != nil {
			upgrade := errors.Is(err, domain.ErrUpgradeRequired)
			switch {
			case rt.Method != http.MethodGet && upgrade:
				writeProblem(w, r, http.StatusServiceUnavailable, EUNAVAILABLE, "this server refuses commands until it is upgraded: "+err.Error())
				return
			case !upgrade:
				writeProblem(w, r, http.StatusServiceUnavailable, EUNAVAILABLE, "this server answers nothing: its read models stopped: "+err.Error())
				return
			}
		}
		if p, role, imported := importedPrincipal(r, rt); imported {
			if role == "" {
				writeProblem(w, r, http.StatusForbidden, domain.EFORBIDDEN, "the imported command's role may not call this endpoint")
				return
			}
			if info != nil {
				info.role = role
			}
			r, ok := s.strictQuery(w, r, rt)
			if !ok {
				return
			}
			ctx := context.WithValue(r.Context(), keyPrincipal, p)
			rt.handler(w, r.WithContext(context.WithValue(ctx, keyRole, role)))
			return
		}
		token, ok := bearer(r)
		p := s.authenticate(token)
		if !ok || p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="talentledger"`)
			writeProblem(w, r, http.StatusUnauthorized, domain.EUNAUTHENTICATED, "a valid bearer token is required")
			return
		}
		if info != nil {
			info.principal = p.ID
		}
		role := ""
		if len(rt.Roles) == 1 && rt.Roles[0] == "*" && len(p.Roles) > 0 {
			role = p.Roles[0]
		} else {
			for _, want := range rt.Roles {
				if p.has(want) {
					role = want
					break
				}
			}
		}
		if role == "" {
			writeProblem(w, r, http.StatusForbidden, domain.EFORBIDDEN, "your role may not call this endpoint")
			return
		}
		a, ok := s.admit(w, r, p.ID)
		if !ok {
			return
		}
		defer a.release()
		if info != nil {
			info.role = role
		}
		r, ok = s.strictQuery(w, r, rt)
		if !ok {
			return
		}
		if rt.Method == http.MethodGet && !slices.Contains(rt.doc.Query, "min_position") {
			// Every query honours ?min_position=: here when its handler
			// does not wait itself.
			if err := s.waitMinPosition(r); err != nil {
				s.Error(w, r, err)
				return
			}
		}
		ctx := context.WithValue(r.Context(), keyPrincipal, p)
		ctx = context.WithValue(ctx, keyRole, role)
		ctx = context.WithValue(ctx, keyAdmission, a)
		if rt.Method == http.MethodGet {
			s.gateQuery(w, r.WithContext(ctx), rt.handler)
			return
		}
		rt.handler(w, r.WithContext(ctx))
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !equalFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return h[len(prefix):], true
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// statusRecorder remembers the status written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets streamed responses (exports) reach the client as they go.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection, so exports can
// extend their write deadline as they stream.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// waitMinPosition honours ?min_position= on queries: it waits, bounded, for
// the projections to reach the position.
func (s *Server) waitMinPosition(r *http.Request) error {
	v := r.URL.Query().Get("min_position")
	if v == "" {
		return nil
	}
	pos, err := parsePosition(v)
	if err != nil {
		return err
	}
	if s.proj.Position().Before(pos) {
		// Waiting takes no place in flight, but one of the principal's
		// few waiting places (fairness.go).
		if a := admissionOf(r.Context()); a != nil && !a.wait() {
			return busy("you have as many queries waiting for min_position as one principal may; retry shortly")
		}
	}
	if err := s.proj.WaitFor(r.Context(), pos, s.wait); err != nil {
		if err == projections.ErrNotReached {
			return &domain.Error{Code: ETIMEOUT, Message: "the read models have not reached min_position yet; retry", Err: err}
		}
		return err
	}
	return nil
}

func (s *Server) registerHealthRoutes() {
	s.handle("GET", "/healthz", nil, "liveness", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}, routeDoc{Response: healthAnswer{}})
	s.handle("GET", "/readyz", nil, "readiness: the read models have caught up with the log", func(w http.ResponseWriter, r *http.Request) {
		if err := s.proj.Stopped(); err != nil {
			writeProblem(w, r, http.StatusServiceUnavailable, EUNAVAILABLE, "the read models stopped: "+err.Error())
			return
		}
		if !s.proj.Ready() {
			if p := s.proj.Rebuilding(); p != nil {
				// Say how far a rebuild from the log has got: it can
				// take minutes on a long log.
				w.Header().Set("Content-Type", "application/problem+json")
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusServiceUnavailable)
				_ = json.NewEncoder(w).Encode(struct {
					Problem
					Rebuild *viewstore.Progress `json:"rebuild"`
				}{Problem{Type: "urn:talentledger:problem:" + EUNAVAILABLE, Title: http.StatusText(http.StatusServiceUnavailable),
					Status: http.StatusServiceUnavailable, Code: EUNAVAILABLE, Instance: r.URL.Path, RequestID: requestID(r.Context()),
					Detail: fmt.Sprintf("the read models %s are being rebuilt from the log: %.1f %%, %.0f events/s, about %.0f s left",
						strings.Join(p.Models, ", "), p.Percent, p.EventsPerSec, p.ETASeconds)}, p})
				return
			}
			writeProblem(w, r, http.StatusServiceUnavailable, EUNAVAILABLE, "the read models are catching up with the log")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "position": s.proj.Position().String()})
	}, routeDoc{Response: healthAnswer{}, Errors: []string{EUNAVAILABLE}})
}
