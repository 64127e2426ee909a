package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"
)

const (
	sessionCookie = "tl_session"
	// preCookie binds the CSRF token of the forms shown before sign-in
	// (sign-in itself, the language switch).
	preCookie = "tl_pre"
)

// session is a signed-in principal's stay in the console. It holds the
// principal's bearer token in memory only, to make requests to the API
// as them; the cookie holds a random ID that names the session.
type session struct {
	id        string
	handle    string // a public name of the session, for listing and revoking
	principal string
	roles     []string
	token     string
	csrf      string
	addr      string
	created   time.Time
	seen      time.Time
	flash     string // a message key shown once
	flashArg  string
}

func (s *session) has(role string) bool { return slices.Contains(s.roles, role) }

// sessions holds the sessions of this server. They end after idle time
// without a request, at an absolute age, at sign-out, when an admin
// revokes them, and as soon as their token no longer authenticates.
type sessions struct {
	mu        sync.Mutex
	byID      map[string]*session
	idle, max time.Duration
	// key makes the CSRF tokens of forms shown before sign-in.
	key [32]byte
}

func newSessions(idle, max time.Duration) *sessions {
	ss := &sessions{byID: map[string]*session{}, idle: idle, max: max}
	_, _ = rand.Read(ss.key[:])
	return ss
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// start begins a session for principal and sets its cookie.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, principal string, roles []string, token string) *session {
	now := c.now()
	id := randomHex(32)
	sum := sha256.Sum256([]byte(id))
	s := &session{id: id, handle: hex.EncodeToString(sum[:8]), principal: principal, roles: roles, token: token,
		csrf: randomHex(32), addr: r.RemoteAddr, created: now, seen: now}
	ss := c.sessions
	ss.mu.Lock()
	// Sessions nobody came back to are forgotten here, so they do not
	// pile up.
	for k, o := range ss.byID {
		if now.Sub(o.seen) >= ss.idle || now.Sub(o.created) >= ss.max {
			delete(ss.byID, k)
		}
	}
	ss.byID[id] = s
	ss.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode})
	cp := *s
	cp.roles = slices.Clone(roles)
	return &cp
}

// sessionOf returns the request's live session, or nil. An expired
// session, or one whose token no longer authenticates (rotated, revoked),
// ends here.
func (c *Console) sessionOf(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	ss := c.sessions
	ss.mu.Lock()
	s := ss.byID[ck.Value]
	if s == nil {
		ss.mu.Unlock()
		return nil
	}
	now := c.now()
	reason := ""
	switch {
	case now.Sub(s.seen) >= ss.idle:
		reason = "idle"
	case now.Sub(s.created) >= ss.max:
		reason = "max_age"
	}
	if reason == "" {
		s.seen = now
	} else {
		delete(ss.byID, s.id)
	}
	ss.mu.Unlock()
	if reason != "" {
		c.signins.record(c.now(), eventSessionEnded, s.principal, r.RemoteAddr, reason)
		return nil
	}
	id, roles, ok := c.auth(s.token)
	if !ok || id != s.principal {
		c.endSession(s)
		c.signins.record(c.now(), eventSessionEnded, s.principal, r.RemoteAddr, "token")
		return nil
	}
	// Each request gets its own copy, with the roles the token holds now;
	// the stored session is changed only under the lock.
	ss.mu.Lock()
	s.roles = roles
	cp := *s
	ss.mu.Unlock()
	cp.roles = slices.Clone(roles)
	return &cp
}

// endSession forgets a session.
func (c *Console) endSession(s *session) {
	c.sessions.mu.Lock()
	delete(c.sessions.byID, s.id)
	c.sessions.mu.Unlock()
}

// sessionView is a session as admins see it: never its ID or token.
type sessionView struct {
	Handle, Principal, Addr string
	Created, Seen           time.Time
}

// list returns the live sessions, oldest first.
func (c *Console) listSessions() []sessionView {
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	out := make([]sessionView, 0, len(c.sessions.byID))
	for _, s := range c.sessions.byID {
		out = append(out, sessionView{Handle: s.handle, Principal: s.principal, Addr: s.addr, Created: s.created, Seen: s.seen})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// revokeSession ends the session of handle and reports its principal.
func (c *Console) revokeSession(handle string) (string, bool) {
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	for id, s := range c.sessions.byID {
		if s.handle == handle {
			delete(c.sessions.byID, id)
			return s.principal, true
		}
	}
	return "", false
}

// setFlash leaves a message for the session's next page.
func (c *Console) setFlash(s *session, key, arg string) {
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	if st := c.sessions.byID[s.id]; st != nil {
		st.flash, st.flashArg = key, arg
	}
}

// takeFlash returns and clears the session's message.
func (c *Console) takeFlash(s *session) (string, string) {
	if s == nil {
		return "", ""
	}
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	st := c.sessions.byID[s.id]
	if st == nil {
		return "", ""
	}
	k, a := st.flash, st.flashArg
	st.flash, st.flashArg = "", ""
	return k, a
}

// csrfToken returns the CSRF token for the forms of the page: the
// session's, or before sign-in one bound to a cookie of its own.
func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request, s *session) string {
	if s != nil {
		return s.csrf
	}
	v := ""
	if ck, err := r.Cookie(preCookie); err == nil && len(ck.Value) == 64 {
		v = ck.Value
	} else {
		v = randomHex(32)
		http.SetCookie(w, &http.Cookie{Name: preCookie, Value: v, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
			SameSite: http.SameSiteStrictMode})
	}
	return c.preToken(v)
}

func (c *Console) preToken(v string) string {
	m := hmac.New(sha256.New, c.sessions.key[:])
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

// checkCSRF reports whether a POST carries the token of its session, or
// before sign-in the token of its cookie.
func (c *Console) checkCSRF(r *http.Request, s *session) bool {
	got := r.PostFormValue("csrf")
	if got == "" {
		return false
	}
	want := ""
	if s != nil {
		want = s.csrf
	} else if ck, err := r.Cookie(preCookie); err == nil && ck.Value != "" {
		want = c.preToken(ck.Value)
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
