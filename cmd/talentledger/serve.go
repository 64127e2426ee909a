package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"talentledger/domain"
	"talentledger/domain/keystore"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// serveConfig is what serve and demo share.
type serveConfig struct {
	addr       string
	data       string
	principals string
	store      string
	auditKey   string
	// metricsAddr is where /metrics is served; empty for nowhere.
	metricsAddr string
	// tlsCert and tlsKey are PEM files; with them the API is served over
	// HTTPS only.
	tlsCert, tlsKey string
	corsOrigins     string
	maxInFlight     int
	// maxBackdate is how many days before the server's date a business
	// date may lie.
	maxBackdate int
	limits      limitsConfig
	// integ is the witness, self-check and scrub configuration.
	integ integrityConfig
	// views is the read models' views directory, "" for none.
	views string
	// keyService is the key service shared by replicas, instead.
	keyService keyServiceConfig
	// personal is the master key and the key store of personal data.
	personal personalConfig
	// signins is the web console's sign-in journal; empty for the data
	// directory's (embedded store) or memory only (EventStoreDB).
	signins string
}

// viewsDir returns the views directory the flags name, "" to keep the
// read models in memory.
func (c *serveConfig) viewsDir() (string, error) {
	switch {
	case c.views == "memory":
		return "", nil
	case c.views != "":
		return filepath.Clean(c.views), nil
	case c.store != "":
		// Replicas on EventStoreDB share no directory: each names its
		// own, or folds the log at every start.
		return "", nil
	}
	return filepath.Clean(c.data) + ".views", nil
}

func (c *serveConfig) register(fs *flag.FlagSet, defaultData string) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.data, "data", defaultData, "data directory of the embedded store")
	fs.StringVar(&c.views, "views", "", "directory of the persisted read models, which a start resumes from (default: beside --data, its path + \".views\"; with EventStoreDB each replica names its own, or none: \"memory\", the default there, folds the log at every start)")
	fs.StringVar(&c.principals, "principals", "", "JSON file of principals (id, roles, token_sha256)")
	fs.StringVar(&c.store, "store", "", "event store: empty for the embedded store in --data, or an esdb:// URL")
	fs.StringVar(&c.auditKey, "audit-key", "", "PEM file of the Ed25519 key that signs audit tree heads (see keygen)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "listen address of the Prometheus /metrics endpoint, which needs no token (empty: not served)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS, with --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.StringVar(&c.corsOrigins, "cors-origins", "", "comma-separated browser origins allowed to call the API (CORS); empty: CORS off")
	fs.IntVar(&c.maxInFlight, "max-in-flight", ledgerhttp.DefaultMaxInFlight, "requests served at once; more are answered 503 (negative: no cap)")
	fs.IntVar(&c.maxBackdate, "max-backdate", domain.DefaultMaxBackdate, "days before the server's date a command's effective_date may lie; older history enters by import")
	fs.StringVar(&c.signins, "console-signins", "", "file the web console appends sign-ins to (default: console-signins.jsonl in --data with the embedded store; with EventStoreDB, memory only unless given)")
	c.limits.register(fs)
	c.integ.register(fs)
	c.personal.register(fs)
	c.keyService.register(fs)
}

// signinJournal returns the web console's sign-in journal: the flag's,
// else the data directory's with the embedded store; with EventStoreDB,
// whose servers keep no data directory, none (memory only, said in the
// log).
func (c *serveConfig) signinJournal(log *slog.Logger) string {
	switch {
	case c.signins != "":
		return c.signins
	case c.store == "":
		return filepath.Join(c.data, "console-signins.jsonl")
	}
	log.Warn("the web console keeps its sign-in records in memory only: give --console-signins FILE to keep them")
	return ""
}

// serviceOptions returns the domain options the flags set.
func (c *serveConfig) serviceOptions() ([]domain.Option, error) {
	if c.maxBackdate < 0 || c.maxBackdate > 366 {
		return nil, errors.New("--max-backdate must be between 0 and 366 days")
	}
	return []domain.Option{domain.WithMaxBackdate(c.maxBackdate)}, nil
}

// transport returns the TLS configuration, nil for plain HTTP, and the
// API options the flags set.
func (c *serveConfig) transport() (*tls.Config, func(*ledgerhttp.Config), error) {
	opts := func(api *ledgerhttp.Config) {
		api.MaxInFlight = c.maxInFlight
		c.limits.apply(api)
		if c.corsOrigins != "" {
			api.CORSOrigins = strings.Split(c.corsOrigins, ",")
		}
	}
	if c.maxInFlight == 0 {
		return nil, nil, errors.New("--max-in-flight must not be 0")
	}
	if err := c.limits.check(); err != nil {
		return nil, nil, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, nil, errors.New("--tls-cert and --tls-key go together")
	}
	if c.tlsCert == "" {
		return nil, opts, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS key pair: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, opts, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stdout)
	var cfg serveConfig
	cfg.register(fs, "./data")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.principals == "" {
		return errors.New("--principals is required: nobody could call the API without it")
	}
	principals, err := ledgerhttp.LoadPrincipals(cfg.principals)
	if err != nil {
		return err
	}
	tlsConfig, apiOpts, err := cfg.transport()
	if err != nil {
		return err
	}
	svcOpts, err := cfg.serviceOptions()
	if err != nil {
		return err
	}
	views, err := cfg.viewsDir()
	if err != nil {
		return err
	}
	cipher, err := cfg.keyService.open(ctx, cfg.personal)
	if err != nil {
		return err
	}
	var keys *keystore.Store
	if cipher == nil {
		if cipher, keys, err = cfg.personal.open(cfg.data, false); err != nil {
			return err
		}
	}
	if keys != nil {
		// Closing destroys the pooled keys never handed out.
		defer keys.Close()
	}
	svcOpts = append(svcOpts, domain.WithCipher(cipher))
	var auditKey ed25519.PrivateKey
	if cfg.auditKey != "" {
		if auditKey, err = loadAuditKey(cfg.auditKey); err != nil {
			return err
		}
	}
	if err := cfg.integ.validate(cfg.data, cfg.store == "", auditKey); err != nil {
		return err
	}
	// The request log is buffered; it is all written when this returns.
	log, logBuf := newBufferedLogger(stderr)
	defer logBuf.Close()
	if auditKey == nil {
		log.Warn("no --audit-key: tree heads cannot be signed and the audit proof endpoints answer 503")
	}
	if cipher == nil {
		log.Warn("--no-encryption: personal data is recorded in plain text and cannot be erased; for tests only")
	}
	m := newMetrics()
	store, err := openStore(ctx, cfg, log, m)
	if err != nil {
		return err
	}
	if err := recoverKeyBindings(ctx, store, cipher, cfg.store == "", log); err != nil {
		store.Close()
		return err
	}
	g, err := openGuard(store, cfg.integ, auditKey, log)
	if err != nil {
		store.Close()
		return err
	}
	app := newAppWithService(store, principals, auditKey, log, m, svcOpts, apiOpts, g.configure)
	app.guard = g
	app.views = views
	if cipher != nil {
		// A replica forgets a talent's keys once the log says another
		// destroyed them, without waiting for its cache to expire.
		app.proj.Talents().OnKeyDestroyed(cipher.KeyDestroyed)
		app.keyCheck = func(ctx context.Context) { warnMissingKeys(ctx, store, cipher, log) }
	}
	if views == "" {
		log.Warn("the read models are kept in memory and folded from the whole log at every start; --views names a directory to resume from")
	}
	// The self-check runs while the read models catch up; nothing is
	// served or written before it passes.
	app.preflight = g.start
	g.registerMetrics(m)
	app.metricsAddr = cfg.metricsAddr
	app.tls = tlsConfig
	app.timeouts = cfg.limits.timeouts
	app.signins = cfg.signinJournal(log)
	return app.serve(ctx, cfg.addr, nil)
}

// openStore opens the embedded store in the data directory, or
// EventStoreDB when the store is an esdb:// URL.
func openStore(ctx context.Context, cfg serveConfig, log *slog.Logger, m *metrics) (eventstore.Store, error) {
	if strings.HasPrefix(cfg.store, "esdb://") || strings.HasPrefix(cfg.store, "esdb+discover://") {
		return openESDB(ctx, cfg.store, log)
	}
	if cfg.store != "" {
		return nil, fmt.Errorf("--store must be empty (embedded) or an esdb:// URL")
	}
	store, err := pebble.Open(cfg.data, pebble.WithLogger(log), pebble.WithObserver(m.storeObserver()))
	if errors.Is(err, pebble.ErrCorrupt) || errors.Is(err, fs.ErrNotExist) {
		// A data directory whose files are missing or damaged.
		log.Error("storage self-check failed: not serving: the store cannot be opened", "err", err.Error())
		return nil, &exitError{code: exitDamaged, err: err, logged: true}
	}
	return store, err
}

// app is the assembled ledger: store, domain service, read models and API.
type app struct {
	store eventstore.Store
	svc   *domain.Service
	proj  *projections.Projector
	api   *ledgerhttp.Server
	log   *slog.Logger

	metrics *metrics
	// metricsAddr is where serve also serves /metrics; empty for nowhere.
	metricsAddr string
	// keyCheck, when set, checks the key store against the log once the
	// read models are ready.
	keyCheck func(context.Context)
	// tls, when set, makes serve answer HTTPS only.
	tls *tls.Config
	// timeouts are the HTTP server's; zero for defaultTimeouts.
	timeouts serverTimeouts
	// views is the read models' views directory; "" keeps them in
	// memory only.
	views string
	// guard, when set, witnesses heads, scrubs the log and turns the
	// server read-only on damage.
	guard *guard
	// preflight, when set, runs before serve listens or reconciles,
	// while the read models catch up; its error ends serve.
	preflight func(context.Context) error
	// auditPub checks the signed heads the web console shows; signins
	// is the console's sign-in journal (empty: kept in memory).
	auditPub ed25519.PublicKey
	signins  string
}

func newApp(store eventstore.Store, principals *ledgerhttp.Principals, auditKey ed25519.PrivateKey, log *slog.Logger) *app {
	return newAppWith(store, principals, auditKey, log, newMetrics())
}

// newAppWith is newApp with the metrics the store was opened with; opts
// set more of the API's configuration.
func newAppWith(store eventstore.Store, principals *ledgerhttp.Principals, auditKey ed25519.PrivateKey, log *slog.Logger, m *metrics, opts ...func(*ledgerhttp.Config)) *app {
	return newAppWithService(store, principals, auditKey, log, m, nil, opts...)
}

// newAppWithService is newAppWith with more options for the domain
// service.
func newAppWithService(store eventstore.Store, principals *ledgerhttp.Principals, auditKey ed25519.PrivateKey, log *slog.Logger, m *metrics, extra []domain.Option, opts ...func(*ledgerhttp.Config)) *app {
	proj := projections.New(store, log)
	svcOpts := append([]domain.Option{domain.WithLogger(log)}, extra...)
	if _, embedded := store.(*pebble.Store); embedded {
		// The data directory is locked to this process, which writes
		// only through svc.
		svcOpts = append(svcOpts, domain.WithSoleWriter())
	}
	svc := domain.NewService(store, svcOpts...)
	cfg := ledgerhttp.Config{Service: svc, Projector: proj, Principals: principals, Logger: log, AuditKey: auditKey,
		Observer: m}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	api := ledgerhttp.New(cfg)
	m.watchProjections(store, proj)
	a := &app{store: store, svc: svc, proj: proj, api: api, log: log, metrics: m}
	if auditKey != nil {
		a.auditPub = auditKey.Public().(ed25519.PublicKey)
	}
	return a
}

// runProjections feeds the read models until ctx is done, resubscribing
// after a failure.
func (a *app) runProjections(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := a.proj.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		if a.proj.Stopped() != nil {
			// An event this build cannot read: the projector logged it
			// once, and resubscribing cannot help. Reads go on being
			// served as of the event before; /readyz answers 503 and
			// commands are refused until the server is upgraded.
			return
		}
		if errors.Is(err, pebble.ErrCorrupt) && a.guard != nil {
			// Reading again would fail again: the read models keep what
			// they folded, and the server turns read-only.
			a.guard.setDamaged(err)
			return
		}
		a.log.Error("projections stopped; resubscribing", "err", err, "backoff", backoff.String())
		a.metrics.resubscribes.Inc()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// reconcile finishes two-stream flows a crash interrupted: once when the
// read models are ready, then every interval for flows older than it.
func (a *app) reconcile(ctx context.Context, interval time.Duration) {
	for !a.proj.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	a.api.LogAccessState() // with one admin, changes of access wait for a second
	if a.keyCheck != nil {
		a.keyCheck(ctx)
	}
	cutoff := time.Now()
	for {
		if a.guard.damagedErr() != nil {
			return
		}
		if ids := a.proj.PendingGrants(cutoff); len(ids) > 0 {
			n, err := a.svc.Reconcile(ctx, ids)
			a.log.Info("reconciled interrupted grant flows", "grants", len(ids), "changed", n, "err", err)
		}
		if keys := a.proj.PendingCloses(cutoff); len(keys) > 0 {
			n, err := a.svc.ReconcileCloses(ctx, keys)
			a.log.Info("reconciled interrupted year-end closes", "budgets", len(keys), "changed", n, "err", err)
		}
		if keys := a.proj.PendingTransfers(cutoff); len(keys) > 0 {
			n, err := a.svc.ReconcileTransfers(ctx, keys)
			a.log.Info("reconciled interrupted budget transfers", "transfers", len(keys), "changed", n, "err", err)
		}
		a.erasures(ctx)
		if ids := a.proj.PendingFunds(); len(ids) > 0 {
			if n, err := a.svc.ReconcileFunds(ctx, ids); n > 0 || err != nil {
				a.log.Info("reconciled interrupted fund appropriations", "funds", len(ids), "changed", n, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		cutoff = time.Now().Add(-interval)
	}
}

// serve runs the API until ctx is done, then shuts down gracefully:
// in-flight requests finish, then the store is closed. If ready is not nil
// it receives the listener's address once serving.
func (a *app) serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if a.views != "" {
		if err := a.proj.OpenViews(a.views); err != nil {
			a.store.Close()
			return fmt.Errorf("views: %w", err)
		}
	}
	done := make(chan struct{}, 2)
	go func() { a.runProjections(ctx); done <- struct{}{} }()
	checked := make(chan struct{})
	go func() {
		select {
		case <-checked:
			a.reconcile(ctx, 30*time.Second)
		case <-ctx.Done():
		}
		done <- struct{}{}
	}()
	if a.preflight != nil {
		if err := a.preflight(ctx); err != nil {
			cancel()
			<-done
			<-done
			a.closeViews()
			a.store.Close()
			return err
		}
	}
	close(checked)
	var guards sync.WaitGroup
	var handler http.Handler = a.api
	if a.guard != nil {
		handler = a.guard.wrap(a.api)
		guards.Go(func() { a.guard.runHeads(ctx) })
		guards.Go(func() { a.guard.runScrub(ctx) })
		if a.guard.pstore != nil && a.guard.cfg.data != "" {
			guards.Go(func() { a.guard.serveControl(ctx, a.guard.cfg.data) })
		}
	}

	handler, closeConsole, cerr := a.withConsole(handler)
	if cerr == nil {
		defer closeConsole()
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil && cerr != nil {
		ln.Close()
		err = fmt.Errorf("web console: %w", cerr)
	}
	stopMetrics := func() {}
	if err == nil && a.metricsAddr != "" {
		if _, stopMetrics, err = a.metrics.serveMetrics(a.metricsAddr, a.log); err != nil {
			ln.Close()
			err = fmt.Errorf("metrics listener: %w", err)
		}
	}
	if err != nil {
		cancel()
		<-done
		<-done
		a.closeViews()
		guards.Wait()
		if a.guard != nil {
			a.guard.close()
		}
		a.store.Close()
		return err
	}
	t := a.timeouts
	if t == (serverTimeouts{}) {
		t = defaultTimeouts
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if a.tls != nil {
		srv.TLSConfig = a.tls
		scheme = "https"
	}
	a.log.Info("serving", "addr", ln.Addr().String(), "scheme", scheme)
	if ready != nil {
		ready(ln.Addr())
	}
	err = serveUntil(ctx, srv, ln, a.tls != nil, a.log, 30*time.Second)
	cancel()
	<-done
	<-done
	a.closeViews()
	guards.Wait()
	if a.guard != nil {
		a.guard.shutdown()
	}
	stopMetrics()
	if cerr := a.store.Close(); err == nil || errors.Is(err, http.ErrServerClosed) {
		err = cerr
	}
	return err
}

// closeViews commits what the read models folded since their last commit
// and closes their views; the feed has stopped.
func (a *app) closeViews() {
	if a.views == "" {
		return
	}
	if err := a.proj.CloseViews(); err != nil {
		a.log.Error("the read models' views could not be closed; the next start folds again from their last commit", "err", err.Error())
	}
}

// serveUntil serves srv on ln (HTTPS with srv's TLS configuration when
// tls is set) until it fails or ctx is done, then shuts it down, giving
// the requests under way up to grace to finish. http.ErrServerClosed is
// returned as it is.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, tls bool, log *slog.Logger, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		if tls {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
