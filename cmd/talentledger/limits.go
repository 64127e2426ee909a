package main

import (
	"errors"
	"flag"
	"time"

	ledgerhttp "talentledger/http"
)

// limitsConfig is how serve and demo share the server among clients: each
// principal's shares (ledgerhttp's fairness) and the HTTP server's
// timeouts.
type limitsConfig struct {
	perPrincipal, waiting, uploads, minBodyRate int
	timeouts                                    serverTimeouts
}

// serverTimeouts are the HTTP server's limits on one connection.
type serverTimeouts struct {
	readHeader, read, write, idle time.Duration
}

// defaultTimeouts: headers within 5 s, the whole request within 30 s, the
// answer within 60 s (CSV exports extend it while the client reads), and
// an idle keep-alive connection closed after 120 s.
var defaultTimeouts = serverTimeouts{readHeader: 5 * time.Second, read: 30 * time.Second, write: 60 * time.Second, idle: 120 * time.Second}

func (l *limitsConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&l.perPrincipal, "max-in-flight-per-principal", ledgerhttp.DefaultMaxInFlightPerPrincipal, "requests of one principal served at once, within --max-in-flight; more are answered 503 (negative: no cap)")
	fs.IntVar(&l.waiting, "max-waiting-per-principal", ledgerhttp.DefaultMaxWaitingPerPrincipal, "queries of one principal waiting for ?min_position at once; more are answered 503 (negative: no cap)")
	fs.IntVar(&l.uploads, "max-uploads-per-principal", ledgerhttp.DefaultMaxUploadsPerPrincipal, "request bodies of one principal read at once; more are answered 503 (negative: no cap)")
	fs.IntVar(&l.minBodyRate, "min-body-rate", ledgerhttp.DefaultMinBodyRate, "bytes per second a request body must keep up after its first 5 s, or it is cut with 408 (negative: no minimum)")
	fs.DurationVar(&l.timeouts.readHeader, "read-header-timeout", defaultTimeouts.readHeader, "time to read a request's headers")
	fs.DurationVar(&l.timeouts.read, "read-timeout", defaultTimeouts.read, "time to read a whole request, body included")
	fs.DurationVar(&l.timeouts.write, "write-timeout", defaultTimeouts.write, "time to write an answer, from the end of the request's headers")
	fs.DurationVar(&l.timeouts.idle, "idle-timeout", defaultTimeouts.idle, "time an idle keep-alive connection is kept open")
}

// check refuses limits that would switch a limit off by accident.
func (l *limitsConfig) check() error {
	if l.perPrincipal == 0 || l.waiting == 0 || l.uploads == 0 || l.minBodyRate == 0 {
		return errors.New("--max-in-flight-per-principal, --max-waiting-per-principal, --max-uploads-per-principal and --min-body-rate must not be 0 (negative: no limit)")
	}
	t := l.timeouts
	if t.readHeader <= 0 || t.read <= 0 || t.write <= 0 || t.idle <= 0 {
		return errors.New("--read-header-timeout, --read-timeout, --write-timeout and --idle-timeout must be positive")
	}
	return nil
}

func (l *limitsConfig) apply(api *ledgerhttp.Config) {
	api.MaxInFlightPerPrincipal, api.MaxWaitingPerPrincipal, api.MaxUploadsPerPrincipal = l.perPrincipal, l.waiting, l.uploads
	api.MinBodyRate = l.minBodyRate
	api.ReadTimeout = l.timeouts.read
}
