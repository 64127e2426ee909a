package http

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"talentledger/domain"
)

// Fair sharing: no one principal can take the whole server. Under the
// global cap on requests in flight (MaxInFlight), each principal has its
// own share of it; a query waiting for ?min_position gives its place back
// while it waits and holds one of its principal's few waiting places
// instead; bodies are read with a cap on each principal's concurrent
// uploads and a minimum data rate, so a body that trickles is cut with 408
// rather than holding its place until the read timeout. Every refusal is at
// once, 503 with Retry-After: nothing queues. /healthz and /readyz take no
// place at all.
const (
	// DefaultMaxInFlightPerPrincipal is each principal's share of the
	// requests in flight.
	DefaultMaxInFlightPerPrincipal = 64
	// DefaultMaxWaitingPerPrincipal bounds each principal's queries waiting
	// for ?min_position at once.
	DefaultMaxWaitingPerPrincipal = 16
	// DefaultMaxUploadsPerPrincipal bounds each principal's request bodies
	// being read at once.
	DefaultMaxUploadsPerPrincipal = 8
	// DefaultMinBodyRate is the slowest a body may arrive, in bytes per
	// second, after BodyRateGrace: 64 KiB at this rate takes a minute.
	DefaultMinBodyRate = 1024
	// BodyRateGrace is how long a body may take before the minimum rate
	// applies to it, so small bodies on slow links are never cut.
	BodyRateGrace = 5 * time.Second
	// DefaultReadTimeout is the server's usual limit on reading a request;
	// the body's deadline never reaches past it.
	DefaultReadTimeout = 30 * time.Second
)

// Kinds of place a request can hold.
const (
	placeInFlight = iota
	placeWaiting
	placeUpload
)

// usage counts one principal's places.
type usage [3]int

// shares tracks each principal's places against its limits (0: no limit).
type shares struct {
	mu    sync.Mutex
	used  map[string]*usage
	limit usage
	// waiting counts every principal's waiting queries, bounded by
	// maxWaiting (0: no bound) so that many principals cannot together
	// hold unbounded waits.
	waiting, maxWaiting int
}

func (sh *shares) take(principal string, kind int) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	u := sh.used[principal]
	if u == nil {
		u = &usage{}
	}
	if sh.limit[kind] > 0 && u[kind] >= sh.limit[kind] {
		return false
	}
	if kind == placeWaiting {
		if sh.maxWaiting > 0 && sh.waiting >= sh.maxWaiting {
			return false
		}
		sh.waiting++
	}
	u[kind]++
	sh.used[principal] = u
	return true
}

func (sh *shares) give(principal string, kind int) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	u := sh.used[principal]
	if u == nil || u[kind] == 0 {
		return
	}
	u[kind]--
	if kind == placeWaiting {
		sh.waiting--
	}
	if *u == (usage{}) {
		delete(sh.used, principal)
	}
}

// held returns how many places of kind principal holds, for tests.
func (sh *shares) held(principal string, kind int) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if u := sh.used[principal]; u != nil {
		return u[kind]
	}
	return 0
}

// admission is the places one request holds. It lives in the request's
// context and is used only by the request's own goroutine.
type admission struct {
	s         *Server
	principal string // "" for a request without one
	inFlight  bool   // a place among the requests in flight, global and the principal's
	waiting   bool
}

const keyAdmission ctxKey = 101

// errBusy marks a refusal because a limit is reached: 503 with
// Retry-After, the client should retry shortly.
var errBusy = errors.New("busy")

func busy(msg string) error {
	return &domain.Error{Code: EUNAVAILABLE, Message: msg, Err: errBusy}
}

// admit takes a place among the requests in flight for principal ("" for
// a route without authentication), the principal's share first, or
// answers 503 and reports false.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, principal string) (*admission, bool) {
	a := &admission{s: s, principal: principal}
	if principal != "" && !s.shares.take(principal, placeInFlight) {
		s.Error(w, r, busy("you have as many requests in flight as one principal may; retry shortly"))
		return nil, false
	}
	if s.inflight != nil {
		select {
		case s.inflight <- struct{}{}:
		default:
			if principal != "" {
				s.shares.give(principal, placeInFlight)
			}
			s.Error(w, r, busy("the server is serving as many requests as it may; retry shortly"))
			return nil, false
		}
	}
	a.inFlight = true
	return a, true
}

// release gives back every place the request holds.
func (a *admission) release() {
	if a.inFlight {
		a.inFlight = false
		if a.s.inflight != nil {
			<-a.s.inflight
		}
		if a.principal != "" {
			a.s.shares.give(a.principal, placeInFlight)
		}
	}
	if a.waiting {
		a.waiting = false
		a.s.shares.give(a.principal, placeWaiting)
	}
}

// wait trades the request's place in flight for a waiting place, which it
// keeps to the end; false when its principal has no waiting place left.
func (a *admission) wait() bool {
	if a.waiting {
		return true
	}
	if !a.s.shares.take(a.principal, placeWaiting) {
		return false
	}
	a.waiting = true
	if a.inFlight {
		a.inFlight = false
		if a.s.inflight != nil {
			<-a.s.inflight
		}
		if a.principal != "" {
			a.s.shares.give(a.principal, placeInFlight)
		}
	}
	return true
}

func admissionOf(ctx context.Context) *admission {
	a, _ := ctx.Value(keyAdmission).(*admission)
	return a
}

// errSlowBody is a body that arrived slower than the minimum rate.
var errSlowBody = &domain.Error{Code: ESLOWBODY, Message: "the body arrived too slowly; send it at once"}

// rateReader reads a request body, cutting it when it falls behind the
// minimum rate: by BodyRateGrace + n/rate after the start, n bytes must
// have arrived. It enforces this with the connection's read deadline,
// never later than the server's own read timeout, and restores that
// deadline when the body is done, so the rest of the request is bound as
// usual.
type rateReader struct {
	body  io.Reader
	rc    *http.ResponseController
	start time.Time
	end   time.Time // the server's read deadline, as near as known
	grace time.Duration
	rate  int64
	n     int64
	done  bool
}

func (s *Server) bodyReader(w http.ResponseWriter, r *http.Request) io.Reader {
	if s.minBodyRate <= 0 {
		return r.Body
	}
	now := time.Now()
	return &rateReader{body: r.Body, rc: http.NewResponseController(w), start: now, end: now.Add(s.readTimeout), grace: s.bodyGrace, rate: s.minBodyRate}
}

func (b *rateReader) Read(p []byte) (int, error) {
	if b.rc != nil && !b.done {
		d := b.start.Add(b.grace + time.Duration((b.n+1)*int64(time.Second)/b.rate))
		if d.After(b.end) {
			d = b.end
		}
		if b.rc.SetReadDeadline(d) != nil {
			b.rc = nil // not a network connection (a test's recorder)
		}
	}
	n, err := b.body.Read(p)
	b.n += int64(n)
	if err != nil && !b.done {
		b.done = true
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// The connection is closed after the answer (see
			// Server.Error): the rest of the body is never waited for.
			return n, errSlowBody
		}
		if b.rc != nil {
			_ = b.rc.SetReadDeadline(b.end)
		}
	}
	return n, err
}
