package http

import (
	"bytes"
	"net/http"
	"sync"

	"talentledger/eventstore"
)

// The answers most asked for (the fund list, a budget, a grant, the trial
// balance, whose every account's figures are formatted anew) are the
// same until an event changes the read models they are folded from, yet
// every request encoded them afresh. An answerCache keeps their encoded
// bytes, keyed by the request and by the position of the read models
// that answered it: an event folded moves the position, and every answer
// cached before it is dropped. So an answer is never served past an event
// that could change it, nor to a request it was not made for.
//
// It is small and bounded: at most answerCacheEntries answers of at most
// answerCacheMaxBody bytes each, answerCacheBytes in all; past that,
// answers are encoded as before and not kept.
type answerCache struct {
	mu sync.Mutex
	// at is the position of the read models the entries were answered
	// at; entries answered at another are gone.
	at      eventstore.Position
	entries map[string]*cachedAnswer
	size    int
}

type cachedAnswer struct {
	contentType string
	body        []byte
}

const (
	answerCacheEntries = 1024
	answerCacheBytes   = 16 << 20
	answerCacheMaxBody = 1 << 20
)

// get returns the answer cached for key at position at.
func (c *answerCache) get(at eventstore.Position, key string) *cachedAnswer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at != at {
		return nil
	}
	return c.entries[key]
}

// put keeps an answer made for key by read models at position at, unless
// the cache holds answers of a later position or is full.
func (c *answerCache) put(at eventstore.Position, key string, a *cachedAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at != at {
		if at.Before(c.at) {
			return
		}
		c.at, c.entries, c.size = at, nil, 0
	}
	if len(c.entries) >= answerCacheEntries || c.size+len(a.body) > answerCacheBytes {
		return
	}
	if c.entries == nil {
		c.entries = make(map[string]*cachedAnswer)
	}
	if _, ok := c.entries[key]; !ok {
		c.entries[key] = a
		c.size += len(a.body)
	}
}

// cachedRoutes are the queries whose answers follow from the read models,
// the path, the query string, the caller's role and the server's date
// alone: no principal, no clock but the date, nothing read elsewhere.
var cachedRoutes = map[string]bool{
	"/v1/funds":                      true,
	"/v1/funds/alerts":               true,
	"/v1/funds/{id}":                 true,
	"/v1/funds/{id}/projects":        true,
	"/v1/projects":                   true,
	"/v1/grants":                     true,
	"/v1/grants/{id}":                true,
	"/v1/ledger/balances":            true,
	"/v1/payments/{id}":              true,
	"/v1/talents/{id}":               true,
	"/v1/programs":                   true,
	"/v1/programs/{id}":              true,
	"/v1/programs/{id}/budgets/{fy}": true,
	"/v1/programs/{id}/budgets/{fy}/commitments": true,
}

// cached serves a query from the answer cache. The key is the route, the
// path, the query string without min_position, the caller's role and the
// server's date (what "today" a view is reckoned at). The read models'
// position is taken after min_position is waited for and before the
// handler reads them. Should they move on meanwhile, the answer, kept
// under the earlier position, is never served: positions only grow, so
// no later request finds the models at that position again.
func (s *Server) cached(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || s.waitMinPosition(r) != nil {
			h(w, r)
			return
		}
		q := r.URL.Query()
		q.Del("min_position")
		key := r.URL.Path + "?" + q.Encode() + "\x00" + actor(r.Context()).Role + "\x00" + s.svc.Today()
		at := s.proj.Position()
		if a := s.answers.get(at, key); a != nil {
			hd := w.Header()
			hd.Set("Content-Type", a.contentType)
			hd.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(a.body)
			return
		}
		rec := &answerRecorder{statusRecorder: statusRecorder{ResponseWriter: w}}
		h(rec, r)
		if rec.status == http.StatusOK && !rec.tooBig {
			s.answers.put(at, key, &cachedAnswer{contentType: w.Header().Get("Content-Type"), body: rec.body.Bytes()})
		}
	}
}

// answerRecorder passes an answer through and keeps a copy of it.
type answerRecorder struct {
	statusRecorder
	body   bytes.Buffer
	tooBig bool
}

func (a *answerRecorder) Write(p []byte) (int, error) {
	if !a.tooBig {
		if a.body.Len()+len(p) > answerCacheMaxBody {
			a.tooBig = true
			a.body = bytes.Buffer{}
		} else {
			a.body.Write(p)
		}
	}
	return a.statusRecorder.Write(p)
}
