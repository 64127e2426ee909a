package http

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
)

// keyImport carries an imported command's actor and command ID; only
// Import sets it.
const keyImport ctxKey = 101

type importActor struct {
	principal, role, commandID string
}

// Import carries out one command of an offline import: the request
// method, path and JSON body of the API, as principal acting in role,
// with the command ID commandID (so that importing the same line again
// appends nothing). It goes through the same routes, decoding, checks and
// role table as a request over the network, but without a token: the
// import is run by the operator of a stopped server, never reachable over
// the network. The Service must be made with domain.WithImport. It
// returns the status and body the API would have answered.
func (s *Server) Import(ctx context.Context, principal, role, method, path string, body []byte, commandID string) (int, []byte) {
	ctx = context.WithValue(ctx, keyImport, &importActor{principal: principal, role: role, commandID: commandID})
	req, err := http.NewRequestWithContext(ctx, method, "http://import"+path, bytes.NewReader(body))
	if err != nil {
		return http.StatusBadRequest, []byte(`{"code":"invalid","detail":"not a request path"}`)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// importedPrincipal returns the principal and role of an imported command
// if the route admits that role.
func importedPrincipal(r *http.Request, rt Route) (*Principal, string, bool) {
	ia, _ := r.Context().Value(keyImport).(*importActor)
	if ia == nil {
		return nil, "", false
	}
	p := &Principal{ID: ia.principal, Roles: []string{ia.role}}
	if slices.Equal(rt.Roles, AnyRole) || slices.Contains(rt.Roles, ia.role) {
		return p, ia.role, true
	}
	return p, "", true
}

// importedCommandID returns the command ID of an imported command, if the
// request is one.
func importedCommandID(r *http.Request) string {
	if ia, _ := r.Context().Value(keyImport).(*importActor); ia != nil {
		return ia.commandID
	}
	return ""
}
