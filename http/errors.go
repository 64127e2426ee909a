package http

import (
	"encoding/json"
	"errors"
	"net/http"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

// The API's own error codes, by their short names here (see domain.Codes).
const (
	ETIMEOUT          = domain.ETIMEOUT
	ETOOLARGE         = domain.ETOOLARGE
	EUNSUPPORTEDMEDIA = domain.EUNSUPPORTEDMEDIA
	EMETHOD           = domain.EMETHOD
	EUNAVAILABLE      = domain.EUNAVAILABLE
	ESLOWBODY         = domain.ESLOWBODY
)

// codes maps every error code to its HTTP status, from domain.Codes: the
// one table; handlers never choose a status for an error themselves.
var codes = func() map[string]int {
	m := make(map[string]int, len(domain.Codes))
	for _, c := range domain.Codes {
		m[c.Code] = c.Status
	}
	return m
}()

// Problem is an RFC 9457 problem document with the ledger's stable code.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Pointer names the field of the request body at fault, as a JSON
	// pointer (RFC 6901), when the problem is about one.
	Pointer string `json:"pointer,omitempty"`
	// Parameter names the query parameter at fault, and Allowed what it
	// takes (the parameters of the endpoint, or the values of a filter),
	// when the problem is about one.
	Parameter string   `json:"parameter,omitempty"`
	Allowed   []string `json:"allowed,omitempty"`
	// Lines lists, for an uploaded file refused, each malformed line with
	// its number and what is wrong with it.
	Lines []ProblemLine `json:"lines,omitempty"`
}

// ProblemLine is one malformed line of an uploaded file.
type ProblemLine struct {
	Line   int    `json:"line"`
	Detail string `json:"detail"`
}

// LinesError refuses an uploaded file for its malformed lines. It is a
// domain error (EINVALID) with the lines.
type LinesError struct {
	Err   *domain.Error
	Lines []ProblemLine
}

func (e *LinesError) Error() string { return e.Err.Error() }

// Unwrap exposes the domain error.
func (e *LinesError) Unwrap() error { return e.Err }

// Error writes err as problem+json. Errors that are not domain errors are
// logged in full and shown as a generic internal error, so internals never
// leak.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := errorCode(err)
	status, ok := codes[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	detail := domain.ErrorMessage(err)
	if errors.Is(err, errBusy) || code == ESLOWBODY {
		// A limit of fair sharing (fairness.go). The body is not read
		// to its end, so the connection is closed after the answer.
		if r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
		if code != ESLOWBODY {
			w.Header().Set("Retry-After", "1")
		}
	} else if errors.Is(err, domain.ErrUpgradeRequired) {
		// A stream holds an event of a newer build: this server cannot
		// decide on it until it is upgraded.
		detail = "this server must be upgraded to read the records involved; retry on an upgraded server"
		s.log.Error("upgrade required", "request_id", requestID(r.Context()), "route", r.URL.Path, "err", err.Error())
	} else if code == EUNAVAILABLE {
		// Say so plainly, and log the cause: the client should retry.
		what := "event store"
		if errors.Is(err, domain.ErrKeyService) {
			what = "key service"
		}
		detail = "the " + what + " cannot be reached now; retry the request (with its Idempotency-Key)"
		s.log.Warn(what+" unavailable", "request_id", requestID(r.Context()), "route", r.URL.Path, "err", err.Error())
		w.Header().Set("Retry-After", "1")
	}
	if code == domain.EINTERNAL {
		detail = "internal error"
		s.log.Error("internal error", "request_id", requestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err.Error())
	}
	var de *domain.Error
	pointer := ""
	if errors.As(err, &de) {
		pointer = de.Field
	}
	var le *LinesError
	if errors.As(err, &le) {
		writeProblemDoc(w, r, Problem{Status: status, Code: code, Detail: detail, Lines: le.Lines})
		return
	}
	var pe *ParamError
	if errors.As(err, &pe) {
		writeProblemDoc(w, r, Problem{Status: status, Code: code, Detail: detail, Parameter: pe.Param, Allowed: pe.Allowed})
		return
	}
	writeProblemAt(w, r, status, code, detail, pointer)
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	writeProblemAt(w, r, status, code, detail, "")
}

// writeProblemAt writes a problem about the body's field at pointer.
func writeProblemAt(w http.ResponseWriter, r *http.Request, status int, code, detail, pointer string) {
	writeProblemDoc(w, r, Problem{Status: status, Code: code, Detail: detail, Pointer: pointer})
}

// writeProblemDoc writes p, filling in what every problem carries.
func writeProblemDoc(w http.ResponseWriter, r *http.Request, p Problem) {
	status := p.Status
	p.Type = "urn:talentledger:problem:" + p.Code
	p.Title = http.StatusText(status)
	p.Instance = r.URL.Path
	p.RequestID = requestID(r.Context())
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// errorCode classifies an error, including the few non-domain errors the
// HTTP layer itself meets.
func errorCode(err error) string {
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return ETOOLARGE
	case errors.Is(err, projections.ErrNotReached):
		return ETIMEOUT
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, eventstore.ErrClosed),
		errors.Is(err, domain.ErrUpgradeRequired):
		return EUNAVAILABLE
	}
	return domain.ErrorCode(err)
}
