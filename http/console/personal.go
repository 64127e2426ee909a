package console

import (
	"encoding/json"
	"html"
	"net/http"
	"slices"
	"strings"

	"talentledger/projections"
)

// Pages are rendered from the read models, which hold personal fields
// sealed; a revealWriter opens them on the way out into what the
// session's roles may see (Config.Reveal), escaped for the page.
type revealWriter struct {
	http.ResponseWriter
	rw projections.RevealWriter
}

func (w *revealWriter) Write(p []byte) (int, error) { return w.rw.Write(p) }

func (w *revealWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *revealWriter) Flush() {
	_ = w.rw.Settle()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// revealing wraps w for the request r; finish writes what it holds back.
func (c *Console) revealing(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	if c.reveal == nil {
		return w, func() {}
	}
	rw := &revealWriter{ResponseWriter: w}
	var roles []string
	looked := false
	rw.rw = projections.RevealWriter{W: w, Reveal: func(dst []byte, v string) []byte {
		if !looked {
			roles, looked = c.rolesOf(r), true
		}
		plain := c.reveal(v, roles)
		ct := w.Header().Get("Content-Type")
		switch {
		case strings.HasPrefix(ct, "text/csv"):
			return projections.AppendCSVField(dst, plain)
		case strings.Contains(ct, "json"):
			q, _ := json.Marshal(plain)
			return append(dst, q[1:len(q)-1]...)
		}
		return append(dst, html.EscapeString(plain)...)
	}}
	return rw, func() { _ = rw.rw.Close() }
}

// rolesOf returns the roles of the request's session, without touching it.
func (c *Console) rolesOf(r *http.Request) []string {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	if s := c.sessions.byID[ck.Value]; s != nil {
		return slices.Clone(s.roles)
	}
	return nil
}
