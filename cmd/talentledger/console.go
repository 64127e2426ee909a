package main

import (
	"net/http"
	"os"
	"path/filepath"

	"talentledger/http/console"
)

// withConsole serves the web console at / beside the API. The console
// makes its requests to api, the same handler the network reaches, so
// the integrity guard and every check of the API apply to it.
func (a *app) withConsole(api http.Handler) (http.Handler, func(), error) {
	if a.signins != "" {
		if err := os.MkdirAll(filepath.Dir(a.signins), 0o700); err != nil {
			return nil, nil, err
		}
	}
	c, err := console.New(console.Config{API: api, Authenticate: a.api.Authenticate, Projector: a.proj, Store: a.store,
		Today: a.svc.Today, AuditPublicKey: a.auditPub, Logger: a.log, SignInLog: a.signins})
	if err != nil {
		return nil, nil, err
	}
	return c.Mount(api), func() { _ = c.Close() }, nil
}
