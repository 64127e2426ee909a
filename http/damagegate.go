package http

import (
	"bytes"
	"errors"
	"net/http"
	"sync"

	"talentledger/domain"
)

// A query can be the first to find the views store damaged: the read
// models then stop (Feed.Stopped), but the rows that query read before the
// damage, or around it, may be partial. So a query's answer is held back
// until its handler returns and the read models are asked again: an
// answer read while they stopped is never served. A problem answer goes
// out instead; an answer that streams (an export, or one too long to
// hold) has already started, so its connection is cut, and the client
// sees a failed download rather than a short file that looks complete.

// gateHold is how much of an answer is held back before it starts to
// stream; every answer but the exports fits.
const gateHold = 1 << 20

var gateBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// damageGate holds a query's answer until the read models are known not
// to have stopped while it was read.
type damageGate struct {
	w      http.ResponseWriter
	buf    *bytes.Buffer
	status int
	// passed is set once the answer outgrew the hold and streams.
	passed bool
}

func (g *damageGate) Header() http.Header { return g.w.Header() }

func (g *damageGate) WriteHeader(code int) {
	if g.passed {
		g.w.WriteHeader(code)
		return
	}
	if g.status == 0 {
		g.status = code
	}
}

func (g *damageGate) Write(p []byte) (int, error) {
	if g.passed {
		return g.w.Write(p)
	}
	if g.status == 0 {
		g.status = http.StatusOK
	}
	if g.buf.Len()+len(p) <= gateHold {
		return g.buf.Write(p)
	}
	if err := g.pass(); err != nil {
		return 0, err
	}
	return g.w.Write(p)
}

// pass sends what is held and streams the rest.
func (g *damageGate) pass() error {
	g.passed = true
	g.w.WriteHeader(g.status)
	_, err := g.w.Write(g.buf.Bytes())
	g.buf.Reset()
	return err
}

// Flush is a handler saying its answer streams (an export): what is held
// goes out and the rest streams, checked once more at its end.
func (g *damageGate) Flush() {
	if !g.passed {
		if g.status == 0 {
			g.status = http.StatusOK
		}
		if err := g.pass(); err != nil {
			return
		}
	}
	if f, ok := g.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (exports extend
// their write deadline).
func (g *damageGate) Unwrap() http.ResponseWriter { return g.w }

// gateQuery runs a query's handler behind a damageGate.
func (s *Server) gateQuery(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	g := &damageGate{w: w, buf: gateBuffers.Get().(*bytes.Buffer)}
	defer func() {
		if g.buf.Cap() <= gateHold {
			g.buf.Reset()
			gateBuffers.Put(g.buf)
		}
	}()
	// The headers set before the handler (request ID, security headers)
	// stay on a problem answer; those the handler set go with its answer.
	before := w.Header().Clone()
	h(g, r)
	if err := s.proj.Stopped(); err != nil && !errors.Is(err, domain.ErrUpgradeRequired) {
		if g.passed {
			s.log.Error("a streamed answer was cut: the read models stopped while it was read", "err", err)
			panic(http.ErrAbortHandler)
		}
		h := w.Header()
		clear(h)
		for k, v := range before {
			h[k] = v
		}
		writeProblem(w, r, http.StatusServiceUnavailable, EUNAVAILABLE, "this server answers nothing: its read models stopped: "+err.Error())
		return
	}
	if g.passed {
		return
	}
	if g.status == 0 && g.buf.Len() == 0 {
		return
	}
	if g.status == 0 {
		g.status = http.StatusOK
	}
	w.WriteHeader(g.status)
	_, _ = w.Write(g.buf.Bytes())
}
