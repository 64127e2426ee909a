package http

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"talentledger/domain"
)

// commandFields are accepted in every command body.
type commandFields struct {
	Reason      string `json:"reason,omitempty"`
	DocumentRef string `json:"document_ref,omitempty"`
	// EffectiveDate (YYYY-MM-DD) is the business date, when it is not
	// today.
	EffectiveDate string `json:"effective_date,omitempty"`
}

// commandFunc decodes a command's body, runs it and returns the status and
// body to answer with.
type commandFunc func(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error)

// command wraps a command handler with the Idempotency-Key semantics:
//
//   - without a key, the command runs once per request;
//   - with a key, the command runs under a command ID derived from the
//     principal and the key, so that its events, and the IDs it creates,
//     are the same on every retry; a retry with the same body gets the
//     first answer back without anything being appended; the same key
//     with another body is refused (409).
//
// Retries racing in this process are serialized by key; across processes
// the derived event IDs make the store itself refuse a second write.
//
// A command wrapped by command keeps its first answer in a stream of its
// own, idempotency-<command ID>, appended once the command's events are:
// a retry may carry a body that sends the command to other streams (a
// program's ID, a fiscal year, a principal named in the body), where its
// events could not be found. pathCommand is for the commands whose events
// can be found from the path alone.
func (s *Server) command(run commandFunc) http.HandlerFunc {
	return s.keyedCommand(readBody, run, false)
}

// commandOf is command for a body read by read.
func (s *Server) commandOf(read func(w http.ResponseWriter, r *http.Request) ([]byte, error), run commandFunc) http.HandlerFunc {
	return s.keyedCommand(read, run, false)
}

// pathCommand wraps a command whose first stream follows from its path and
// its command ID alone (a grant, a payment or a talent named in the path,
// or one the command creates with an ID derived from the command) and
// whose answer follows from its domain.Result. With an Idempotency-Key, its
// events carry the request's hash, and a retry is answered from them: the
// command runs again, finds its events by their IDs in that first stream
// and answers as the first run did, appending nothing; a retry with another
// body finds the other hash there and is refused before anything is
// written. One durable append per keyed command, where command needs two.
func (s *Server) pathCommand(run commandFunc) http.HandlerFunc {
	return s.keyedCommand(readBody, run, true)
}

func (s *Server) keyedCommand(read func(w http.ResponseWriter, r *http.Request) ([]byte, error), run commandFunc, byEvents bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := read(w, r)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		a := actor(r.Context())
		m := domain.CommandMeta{Actor: a, CorrelationID: requestID(r.Context()), CausationID: requestID(r.Context())}
		if c := r.Header.Get("X-Correlation-ID"); reRequestID.MatchString(c) {
			m.CorrelationID = c
		}
		key := r.Header.Get("Idempotency-Key")
		if id := importedCommandID(r); id != "" {
			// An imported command has its ID from its line; importing the
			// line again finds its events and appends nothing.
			m.CommandID, key = id, ""
		}
		if key == "" {
			status, resp, err := run(r, body, m)
			if err != nil {
				s.Error(w, r, err)
				return
			}
			writeJSON(w, status, resp)
			return
		}
		if !validIdempotencyKey(key) {
			s.Error(w, r, domain.Errorf(domain.EINVALID, "Idempotency-Key must be 1–200 printable ASCII characters"))
			return
		}
		m.CommandID = domain.IdempotencyCommandID(a.Principal, key)
		hash := requestHash(r, body)
		defer s.svc.LockCommand(m.CommandID)()
		if byEvents {
			s.answerByEvents(w, r, run, body, m, hash)
			return
		}

		if rec, err := s.svc.LookupIdempotency(r.Context(), m.CommandID); err != nil {
			s.Error(w, r, err)
			return
		} else if rec != nil {
			s.replay(w, r, rec, hash)
			return
		}
		status, resp, err := run(r, body, m)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		// An answer holding a secret (a new token) is kept without it: the
		// log never holds a secret, and a retry is told to ask again.
		kept, secret := resp, false
		if rd, ok := resp.(redactor); ok {
			kept, secret = rd.redacted(), true
		}
		raw, err := json.Marshal(kept)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		first, err := s.svc.RecordIdempotency(r.Context(), a, m.CommandID, domain.IdempotencyRecorded{
			Key: m.CommandID, RequestHash: hash, Status: status, Response: raw})
		if err != nil {
			s.Error(w, r, err)
			return
		}
		if first != nil && first.RequestHash != hash {
			s.replay(w, r, first, hash)
			return
		}
		if secret {
			writeJSON(w, status, resp)
			return
		}
		writeJSON(w, status, json.RawMessage(raw))
	}
}

// answerByEvents runs a keyed pathCommand with the request's hash on its
// events and answers it, as a replay when it found them already recorded.
func (s *Server) answerByEvents(w http.ResponseWriter, r *http.Request, run commandFunc, body []byte, m domain.CommandMeta, hash string) {
	out := &domain.Outcome{}
	m.RequestHash, m.Outcome = hash, out
	status, resp, err := run(r, body, m)
	if out.Unhashed() {
		// Its events were recorded by a build that kept the first answer
		// in the command's idempotency stream: that answer, and the hash
		// there, are the ones to go by.
		rec, lerr := s.svc.LookupIdempotency(r.Context(), m.CommandID)
		if lerr != nil {
			s.Error(w, r, lerr)
			return
		}
		if rec != nil {
			s.replay(w, r, rec, hash)
			return
		}
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if out.Replayed() {
		if s.obs != nil {
			s.obs.IdempotentReplay(routeOf(r))
		}
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, resp)
}

// replay answers a retried command with its recorded first answer.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, rec *domain.IdempotencyRecorded, hash string) {
	if rec.RequestHash != hash {
		s.Error(w, r, domain.Errorf(domain.EIDEMPOTENCYMISMATCH, "this Idempotency-Key was used with a different request"))
		return
	}
	if s.obs != nil {
		s.obs.IdempotentReplay(routeOf(r))
	}
	w.Header().Set("Idempotent-Replayed", "true")
	writeJSON(w, rec.Status, json.RawMessage(rec.Response))
}

// requestHash identifies a request for idempotency: the method, the path
// and the body with insignificant white space removed.
func requestHash(r *http.Request, body []byte) string {
	var compact bytes.Buffer
	if json.Compact(&compact, body) != nil {
		compact.Reset()
		compact.Write(body)
	}
	h := sha256.New()
	h.Write([]byte(r.Method + " " + r.URL.Path + "\x00"))
	h.Write(compact.Bytes())
	return hex.EncodeToString(h.Sum(nil))
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 200 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// meta fills a command's metadata from its common body fields.
func (c commandFields) meta(m domain.CommandMeta) domain.CommandMeta {
	m.Reason, m.DocumentRef, m.EffectiveDate = c.Reason, c.DocumentRef, c.EffectiveDate
	return m
}

// created is the answer to a command.
type created struct {
	ID       string `json:"id"`
	Position string `json:"position"`
}

func answer(res domain.Result) created {
	return created{ID: res.ID, Position: res.Position.String()}
}
