package http

import (
	"net/http"
	"time"
)

// Observer receives measurements of the API, e.g. to export them as
// metrics. Its methods are called on every request, concurrently, so they
// must be cheap and must not block.
type Observer interface {
	// Request reports a finished request: its route template, such as
	// "POST /v1/grants/{id}/approve" ("unmatched" when no route matched;
	// never the raw path, which carries IDs), its status and how long it
	// took.
	Request(route string, status int, elapsed time.Duration)
	// IdempotentReplay reports a command answered with the recorded
	// answer of an earlier request with the same Idempotency-Key.
	IdempotentReplay(route string)
}

// routeOf returns the route template of a request being served.
func routeOf(r *http.Request) string {
	if info, _ := r.Context().Value(keyInfo).(*reqInfo); info != nil {
		return info.route
	}
	return "unmatched"
}
