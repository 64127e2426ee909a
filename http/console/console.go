// Package console serves the web console at /: server-drawn pages in
// Simplified Chinese (English on request) for finance officers, auditors,
// fund managers and admins. It keeps sessions, checks a CSRF token on
// every form, and records sign-ins. It holds no authority of its own:
// every page reads the read models and every change is a request to the
// JSON API, made in-process with the signed-in principal's token, so the
// API's roles, segregation of duties, limits and error codes apply
// unchanged.
package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"embed"
	"encoding/json"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what a Console needs.
type Config struct {
	// API is the JSON API, called in-process with the session's bearer
	// token for every change and every read the API restricts by role.
	API http.Handler
	// Authenticate returns the principal holding a bearer token and its
	// roles; it is asked on every request, so a rotated or revoked token
	// ends its sessions at once.
	Authenticate func(token string) (id string, roles []string, ok bool)
	// Projector is read for the pages any principal may see.
	Projector *projections.Projector
	// Store, when set, answers ?as_of= on the lists by replaying the log
	// up to that date.
	Store eventstore.Store
	// Today returns the server's business date (YYYY-MM-DD), by which
	// work is due or overdue.
	Today func() string
	// AuditPublicKey checks the signature of tree heads shown with trails;
	// without it the badge says the signature was not checked.
	AuditPublicKey ed25519.PublicKey
	Logger         *slog.Logger
	// SignInLog is the file sign-ins, sign-outs and failed sign-ins are
	// appended to; empty keeps them in memory only.
	SignInLog string
	// Now is the clock of session expiry (default time.Now).
	Now func() time.Time
	// IdleTimeout and MaxAge bound a session (defaults 30 min and 8 h).
	IdleTimeout, MaxAge time.Duration
}

// Console is the web console's handler.
type Console struct {
	api      http.Handler
	auth     func(string) (string, []string, bool)
	proj     *projections.Projector
	store    eventstore.Store
	replays  chan struct{}
	today    func() string
	pub      ed25519.PublicKey
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	signins  *signinLog
	pages    map[string]*template.Template
	router   *mux.Router
	routes   []Route
}

// Route is one of the console's endpoints and the roles that may use it.
type Route struct {
	Method string
	Path   string
	// Roles is nil for a route open without a session, AnyRole for any
	// signed-in principal.
	Roles   []string
	handler func(w http.ResponseWriter, r *http.Request, s *session)
}

// AnyRole marks a route any signed-in principal may use.
var AnyRole = []string{"*"}

// New returns a Console.
func New(cfg Config) (*Console, error) {
	c := &Console{api: cfg.API, auth: cfg.Authenticate, proj: cfg.Projector, store: cfg.Store, replays: make(chan struct{}, 1),
		today: cfg.Today, pub: cfg.AuditPublicKey, log: cfg.Logger, now: cfg.Now}
	if c.today == nil {
		c.today = func() string { return domain.Today(c.now()) }
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	idle, max := cfg.IdleTimeout, cfg.MaxAge
	if idle == 0 {
		idle = 30 * time.Minute
	}
	if max == 0 {
		max = 8 * time.Hour
	}
	c.sessions = newSessions(idle, max)
	var err error
	if c.signins, err = openSigninLog(cfg.SignInLog); err != nil {
		return nil, err
	}
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.router = mux.NewRouter()
	c.registerRoutes()
	for _, rt := range c.routes {
		c.router.Handle(rt.Path, c.guard(rt)).Methods(rt.Method).Name(rt.Method + " " + rt.Path)
	}
	c.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, c.sessionOf(r), http.StatusNotFound, "not_found", "")
	})
	c.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, c.sessionOf(r), http.StatusMethodNotAllowed, "method_not_allowed", "")
	})
	return c, nil
}

// Close closes the sign-in journal.
func (c *Console) Close() error { return c.signins.close() }

// Routes returns the console's route table.
func (c *Console) Routes() []Route { return slices.Clone(c.routes) }

// Router returns the console's router, for walking its routes.
func (c *Console) Router() *mux.Router { return c.router }

// Mount returns a handler serving the console's pages and the API:
// a path of the console goes to it, every other one (/v1/…, /healthz,
// /readyz, /openapi.json, and paths of neither) to the API.
func (c *Console) Mount(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m mux.RouteMatch
		if !strings.HasPrefix(r.URL.Path, "/v1/") && c.router.Match(r, &m) && (m.MatchErr == nil || m.MatchErr == mux.ErrMethodMismatch) {
			c.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// csp allows only the console's own origin: no inline script or style, no
// eval, no frames.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ServeHTTP sets the security headers and routes the request.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=63072000")
	}
	c.router.ServeHTTP(w, r)
}

// guard finds the session, refuses a POST without its CSRF token, and
// checks the route's roles.
func (c *Console) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.sessionOf(r)
		if rt.Roles != nil {
			if s == nil {
				if rt.Method == http.MethodGet {
					http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
					return
				}
				c.fail(w, r, nil, http.StatusUnauthorized, "unauthenticated", "")
				return
			}
			if !(len(rt.Roles) == 1 && rt.Roles[0] == "*") && !anyOf(s, rt.Roles) {
				c.fail(w, r, s, http.StatusForbidden, "forbidden", "")
				return
			}
		}
		if rt.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := r.ParseForm(); err != nil {
				c.fail(w, r, s, http.StatusBadRequest, "invalid", "")
				return
			}
			if !c.checkCSRF(r, s) {
				c.fail(w, r, s, http.StatusForbidden, "csrf", "")
				return
			}
		}
		rt.handler(w, r, s)
	})
}

// apiResult is the API's answer to an in-process call.
type apiResult struct {
	Status int
	Body   []byte
	Header http.Header
	// Code and Detail are the problem's, for an error.
	Code, Detail string
}

func (a apiResult) ok() bool { return a.Status < 300 }

// call makes a request to the API as the session's principal. A POST
// carries body as JSON and, when the form chose one, an Idempotency-Key
// (the form's key and item), so a form sent twice acts once.
func (c *Console) call(ctx context.Context, r *http.Request, s *session, method, path string, body any, item ...string) apiResult {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResult{Status: http.StatusInternalServerError, Code: domain.EINTERNAL}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return apiResult{Status: http.StatusBadRequest, Code: domain.EINVALID}
	}
	req.RequestURI, req.Host, req.RemoteAddr = path, r.Host, r.RemoteAddr
	if s != nil {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if k := r.PostFormValue("idem"); k != "" {
			req.Header.Set("Idempotency-Key", strings.Join(append([]string{"console", k}, item...), "-"))
		}
	}
	rec := &recorder{header: http.Header{}}
	c.api.ServeHTTP(rec, req)
	res := apiResult{Status: rec.code(), Body: rec.body.Bytes(), Header: rec.header}
	if !res.ok() {
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(res.Body, &p)
		res.Code, res.Detail = p.Code, p.Detail
		if res.Code == "" {
			res.Code = domain.EINTERNAL
		}
	}
	return res
}

// get calls the API and decodes its answer into v.
func (c *Console) get(r *http.Request, s *session, path string, v any) apiResult {
	res := c.call(r.Context(), r, s, http.MethodGet, path, nil)
	if res.ok() && v != nil {
		if err := json.Unmarshal(res.Body, v); err != nil {
			c.log.Error("console: decode API answer", "path", path, "err", err)
			return apiResult{Status: http.StatusInternalServerError, Code: domain.EINTERNAL}
		}
	}
	return res
}

// static serves the embedded assets, cached for a day: their names carry
// their version.
func (c *Console) static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fsrv.ServeHTTP(w, r)
	})
}

// recorder keeps the API's answer to an in-process request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
