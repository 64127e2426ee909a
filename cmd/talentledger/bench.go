package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"talentledger/cmd/internal/loadgen"
	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
)

// benchConfig is the bench's flags.
type benchConfig struct {
	// noEncryption runs the server as serve --no-encryption does.
	noEncryption bool
	duration     time.Duration
	clients      int
	readRatio    float64
	rate         float64
	idempotency  bool
	programs     int
	years        int
	jsonOut      string
	data         string
	logFile      string
	cpuProfile   string
	pprofAddr    string
	events       int
	writers      int
	soak         time.Duration
	window       time.Duration
	quiet        bool
	scrubRate    int
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "scale" {
		return runScaleBench(ctx, args[1:], stdout)
	}
	fs := newFlagSet("bench", stdout)
	var c benchConfig
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "how long to drive the load")
	fs.IntVar(&c.clients, "clients", 64, "concurrent HTTP clients")
	fs.Float64Var(&c.readRatio, "read-ratio", 0.5, "fraction of operations that are queries (0: commands only, 1: queries only)")
	fs.Float64Var(&c.rate, "rate", 0, "operations per second for all clients together (0: as fast as the clients go)")
	fs.BoolVar(&c.idempotency, "idempotency", true, "send an Idempotency-Key with every command")
	fs.IntVar(&c.programs, "programs", 8, "subsidy programs the load spreads over (each has its own budget stream)")
	fs.IntVar(&c.years, "years", 1, "fiscal years each award is paid over, in yearly installments: each approval records a forward commitment on every later year's budget")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&c.data, "data", "", "data directory (default: a fresh temporary directory, removed afterwards)")
	fs.StringVar(&c.logFile, "log", "", "file for the server's log (default: server.log in the data directory; \"-\" for stderr)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured phase to this file")
	fs.StringVar(&c.pprofAddr, "pprof-addr", "", "serve net/http/pprof, with block and mutex profiling on, at this loopback address while the bench runs")
	fs.IntVar(&c.events, "events", 0, "instead of the load: build a data set of this many events, then measure replay, cold start and memory")
	fs.IntVar(&c.writers, "writers", 256, "with --events: concurrent writers building the data set")
	fs.DurationVar(&c.soak, "soak", 0, "instead of --duration: run this long and report whether memory and latency stay flat")
	fs.DurationVar(&c.window, "window", time.Minute, "with --soak: the length of the windows compared")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress line every second")
	fs.BoolVar(&c.noEncryption, "no-encryption", false, "record personal data in plain text, as serve --no-encryption does (default: sealed under data keys kept in a key store beside the bench's store, as serve with a master key does)")
	fs.IntVar(&c.scrubRate, "scrub-rate", 0, "run the background scrub at this many events/s during the load, as serve does (0: no scrub)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.clients < 1 || c.readRatio < 0 || c.readRatio > 1 || c.programs < 1 || c.years < 1 || c.years > 5 || c.rate < 0 || c.writers < 1 {
		return errors.New("--clients, --programs and --writers must be positive, --read-ratio in [0, 1], --rate not negative")
	}
	if c.soak > 0 {
		c.duration = c.soak
		if c.window <= 0 || c.window*2 > c.soak {
			return errors.New("--window must be positive and at most half of --soak")
		}
	}
	dir := c.data
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	} else {
		tmp, err := os.MkdirTemp("", "talentledger-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if c.pprofAddr != "" {
		stop, err := servePprof(c.pprofAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	if c.events > 0 {
		return runBuildBench(ctx, c, dir, stdout)
	}
	return runLoadBench(ctx, c, dir, stdout)
}

// servePprof serves the runtime's profiles on a loopback address.
func servePprof(addr string) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--pprof-addr must be a loopback address, not %s", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(10)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() {
		srv.Close()
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}, nil
}

// benchServer is the ledger running in this process for the bench.
type benchServer struct {
	app    *app
	base   string
	tokens map[string][]string // role → tokens of its principals
	// talents holds, per bench program, the talents setup registered.
	talents [][]string
	cancel  context.CancelFunc
	done    chan error
	logf    *os.File
	logBuf  *logBuffer
}

// benchPrincipalsPerRole is how many principals each role has, so that the
// load is spread over several people as in an office, and maker-checker
// always passes (roles are held by different principals).
const benchPrincipalsPerRole = 4

func benchPrincipals() (*ledgerhttp.Principals, map[string][]string, error) {
	tokens := map[string][]string{}
	var ps []ledgerhttp.Principal
	for _, role := range domain.Roles {
		for i := range benchPrincipalsPerRole {
			tok := ledgerhttp.NewToken()
			tokens[role] = append(tokens[role], tok)
			ps = append(ps, ledgerhttp.Principal{ID: fmt.Sprintf("bench-%s-%d", role, i+1), Roles: []string{role},
				TokenSHA256: ledgerhttp.HashToken(tok)})
		}
	}
	p, err := ledgerhttp.NewPrincipals(ps)
	return p, tokens, err
}

// startBenchServer opens a store in dir, loads the demo data and the bench's
// programs and talents, and serves the API on a loopback port.
func startBenchServer(ctx context.Context, c benchConfig, dir string) (*benchServer, error) {
	logPath := c.logFile
	if logPath == "" {
		logPath = filepath.Join(dir, "server.log")
	}
	var logw io.Writer = os.Stderr
	var logf *os.File
	if logPath != "-" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		logw, logf = f, f
	}
	// Buffered as serve's is: the bench measures the server as it runs.
	log, logBuf := newBufferedLogger(logw)
	started := false
	defer func() {
		if !started {
			logBuf.Close()
			if logf != nil {
				logf.Close()
			}
		}
	}()
	principals, tokens, err := benchPrincipals()
	if err != nil {
		return nil, err
	}
	auditKey, err := loadOrCreateAuditKey(filepath.Join(dir, "audit-key.pem"))
	if err != nil {
		return nil, err
	}
	m := newMetrics()
	store, err := pebble.Open(filepath.Join(dir, "store"), pebble.WithLogger(log), pebble.WithObserver(m.storeObserver()))
	if err != nil {
		return nil, err
	}
	// The bench's few principals stand for many clients: their shares
	// are lifted so that the load measures the ledger, not fairness.
	var svcOpts []domain.Option
	if !c.noEncryption {
		pc := personalConfig{masterKey: filepath.Join(dir, "master.key"), keystore: filepath.Join(dir, "keys")}
		cipher, _, err := pc.open(filepath.Join(dir, "store"), true)
		if err != nil {
			store.Close()
			return nil, err
		}
		svcOpts = append(svcOpts, domain.WithCipher(cipher))
	}
	a := newAppWithService(store, principals, auditKey, log, m, svcOpts, func(api *ledgerhttp.Config) {
		api.MaxInFlightPerPrincipal, api.MaxWaitingPerPrincipal, api.MaxUploadsPerPrincipal = -1, -1, -1
	})
	if c.scrubRate > 0 {
		g, err := newGuard(ctx, store, integrityConfig{noWitness: true, headInterval: time.Hour, scrubRate: c.scrubRate}, auditKey, log)
		if err != nil {
			store.Close()
			return nil, err
		}
		a.guard = g
	}
	var talents [][]string
	last, err := store.LastPosition(ctx)
	if err == nil && last.Commit != 0 {
		err = fmt.Errorf("the load needs an empty data directory; %s holds a log", dir)
	}
	if err == nil {
		if err = loadDemo(ctx, a.svc); err == nil {
			talents, err = benchSetup(ctx, a.svc, c.programs, c.years)
		}
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &benchServer{app: a, tokens: tokens, talents: talents, cancel: cancel, done: make(chan error, 1), logf: logf, logBuf: logBuf}
	addrc := make(chan net.Addr, 1)
	go func() { s.done <- a.serve(sctx, "127.0.0.1:0", func(addr net.Addr) { addrc <- addr }) }()
	select {
	case addr := <-addrc:
		s.base = "http://" + addr.String()
	case err := <-s.done:
		cancel()
		return nil, err
	}
	for !a.proj.Ready() {
		select {
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	started = true
	return s, nil
}

func (s *benchServer) stop() error {
	s.cancel()
	err := <-s.done
	s.logBuf.Close()
	if s.logf != nil {
		s.logf.Close()
	}
	return err
}

// benchProgram names bench program i.
func benchProgram(i int) string { return fmt.Sprintf("bench_%d", i+1) }

// benchTalentsPerProgram is how many talents the bench registers per
// program; grants cycle through them.
const benchTalentsPerProgram = 250

// benchSetup defines the bench's programs: transport subsidies without
// public notice days or service months, so that a grant goes from
// application to its first payment without waiting for a date, each with
// budgets that never run out, and talents to apply for them. An award is
// paid in one installment, or in one a year over years fiscal years, each
// later year's share a forward commitment covered by that year's budget.
func benchSetup(ctx context.Context, svc *domain.Service, programs, years int) ([][]string, error) {
	fy := benchFiscalYear()
	admin := domain.Actor{Principal: "bench-admin-1", Role: domain.RoleAdmin}
	approver := domain.Actor{Principal: "bench-approver-1", Role: domain.RoleApprover}
	clerk := domain.Actor{Principal: "bench-clerk-1", Role: domain.RoleClerk}
	caps := map[string]domain.Money{}
	for _, t := range domain.Tiers {
		// The bench measures throughput, not entitlements: no talent
		// reaches a cap.
		caps[t] = money("100000000")
	}
	for i := range programs {
		id := benchProgram(i)
		if _, err := svc.DefineProgram(ctx, domain.DefineProgram{Meta: domain.CommandMeta{Actor: admin, DocumentRef: "BENCH-PROGRAM"},
			ProgramID: id, Name: "Bench transport subsidy " + strconv.Itoa(i+1), Kind: domain.KindTransport, Caps: caps,
			Schedule: benchSchedule(years)}); err != nil {
			return nil, fmt.Errorf("define %s: %w", id, err)
		}
		for y := fy; y < fy+years; y++ {
			if _, err := svc.AppropriateBudget(ctx, domain.AppropriateBudget{Meta: domain.CommandMeta{Actor: approver, DocumentRef: "BENCH-BUDGET"},
				ProgramID: id, FiscalYear: y, Amount: money("1000000000000")}); err != nil {
				return nil, fmt.Errorf("budget %s %d: %w", id, y, err)
			}
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, programs)
	talents := make([][]string, programs)
	for i := range programs {
		wg.Go(func() {
			for j := range benchTalentsPerProgram {
				res, err := svc.RegisterTalent(ctx, domain.RegisterTalent{Meta: domain.CommandMeta{Actor: clerk},
					Name: fmt.Sprintf("Bench Talent %d-%d", i+1, j+1), Tier: domain.Tiers[j%len(domain.Tiers)],
					Employer: "Pinghu Bench Works"})
				if err != nil {
					errc <- err
					return
				}
				talents[i] = append(talents[i], res.ID)
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return talents, nil
}

// benchSchedule pays an award in one installment a year over years years.
func benchSchedule(years int) domain.Schedule {
	if years <= 1 {
		return domain.Schedule{Percentages: pct(100)}
	}
	ps := make([]int64, years)
	for i := range ps {
		ps[i] = 100 / int64(years)
	}
	ps[0] += 100 - ps[0]*int64(years)
	return domain.Schedule{Percentages: pct(ps...), IntervalMonths: 12}
}

func benchFiscalYear() int {
	y, _ := strconv.Atoi(domain.Today(time.Now())[:4])
	return y
}

func runLoadBench(ctx context.Context, c benchConfig, dir string, stdout io.Writer) error {
	fmt.Fprintf(stdout, "talentledger bench: %d clients, %s, read ratio %.2f, %d programs, awards over %d fiscal year(s), idempotency keys %v, data in %s\n",
		c.clients, c.duration, c.readRatio, c.programs, c.years, c.idempotency, dir)
	setupStart := time.Now()
	srv, err := startBenchServer(ctx, c, dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Fprintf(stdout, "server ready on %s after %.1fs (demo data and bench programs loaded)\n", srv.base, time.Since(setupStart).Seconds())

	programs := make([]string, c.programs)
	for i := range programs {
		programs[i] = benchProgram(i)
	}
	a := srv.app
	target := &loadgen.Target{Base: srv.base, Tokens: srv.tokens, Programs: programs, Talents: srv.talents, FiscalYear: benchFiscalYear(),
		LastPosition: func() uint64 {
			last, _ := a.store.LastPosition(context.Background())
			return last.Commit
		},
		Lag: func(last uint64, now time.Time) (uint64, float64) {
			return lag(a.proj.Progress(), eventstore.Position{Commit: last, Prepare: last}, now)
		},
		Metrics: a.metrics.reg,
	}
	res, err := loadgen.Run(ctx, loadgen.Config{Duration: c.duration, Clients: c.clients, ReadRatio: c.readRatio, Rate: c.rate,
		Idempotency: c.idempotency, Soak: c.soak, Window: c.window, Quiet: c.quiet, CPUProfile: c.cpuProfile}, target, stdout)
	if err != nil {
		return err
	}
	if c.jsonOut != "" {
		res.Config = benchConfigJSON(c)
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func benchConfigJSON(c benchConfig) map[string]any {
	return map[string]any{"duration": c.duration.String(), "clients": c.clients, "read_ratio": c.readRatio, "rate": c.rate,
		"idempotency": c.idempotency, "programs": c.programs, "years": c.years, "gomaxprocs": runtime.GOMAXPROCS(0), "cpus": runtime.NumCPU(),
		"go": runtime.Version(), "scrub_rate": c.scrubRate}
}
