package main

import (
	"bufio"
	"bytes"
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
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"

	"talentledger/domain"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
)

// benchConfig is the bench's flags.
type benchConfig struct {
	duration    time.Duration
	clients     int
	readRatio   float64
	rate        float64
	idempotency bool
	programs    int
	years       int
	jsonOut     string
	data        string
	logFile     string
	cpuProfile  string
	pprofAddr   string
	events      int
	writers     int
	soak        time.Duration
	window      time.Duration
	quiet       bool
	scrubRate   int
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	log := newLogger(logw)
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
	a := newAppWith(store, principals, auditKey, log, m, func(api *ledgerhttp.Config) {
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
	s := &benchServer{app: a, tokens: tokens, talents: talents, cancel: cancel, done: make(chan error, 1), logf: logf}
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
	return s, nil
}

func (s *benchServer) stop() error {
	s.cancel()
	err := <-s.done
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

// Operation kinds, in report order.
var (
	commandKinds = []string{"apply", "review", "notice_open", "notice_close", "approve", "payment_prepare", "payment_approve", "payment_release"}
	queryKinds   = []string{"budget", "grant", "grant_list", "talent", "fund_list", "fund"}
)

// opStats is one operation kind's tally.
type opStats struct {
	h      hist
	errors atomic.Uint64
}

// loadRun is one run of the load: its clients' shared state and tallies.
type loadRun struct {
	cfg    benchConfig
	srv    *benchServer
	stats  map[string]*opStats
	start  time.Time
	tokens <-chan struct{} // nil when unpaced
	funds  []string
	// recent holds grants the clients created, for queries to read, as
	// "<id>?min_position=<position>".
	recentMu sync.Mutex
	recent   []string
	recentI  int
	// errCodes counts errors by kind and status; errEx keeps the first
	// answer of each.
	errMu    sync.Mutex
	errCodes map[string]int
	errEx    map[string]string
}

// rememberGrant keeps a grant the clients created, with the position its
// application was written at: a query for it passes that as min_position,
// as a client reading its own writes does.
func (l *loadRun) rememberGrant(id, position string) {
	l.recentMu.Lock()
	defer l.recentMu.Unlock()
	g := id + "?min_position=" + position
	if len(l.recent) < 4096 {
		l.recent = append(l.recent, g)
		return
	}
	l.recent[l.recentI] = g
	l.recentI = (l.recentI + 1) % len(l.recent)
}

func (l *loadRun) recentGrant(n int) string {
	l.recentMu.Lock()
	defer l.recentMu.Unlock()
	if len(l.recent) == 0 {
		return ""
	}
	return l.recent[n%len(l.recent)]
}

func (l *loadRun) fail(kind string, status int, detail string) {
	l.stats[kind].errors.Add(1)
	key := kind + " " + strconv.Itoa(status)
	l.errMu.Lock()
	defer l.errMu.Unlock()
	l.errCodes[key]++
	if _, ok := l.errEx[key]; !ok {
		if len(detail) > 300 {
			detail = detail[:300]
		}
		l.errEx[key] = detail
	}
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

	l := &loadRun{cfg: c, srv: srv, stats: map[string]*opStats{}, errCodes: map[string]int{}, errEx: map[string]string{}}
	for _, k := range append(append([]string{}, commandKinds...), queryKinds...) {
		l.stats[k] = &opStats{}
	}
	if l.funds, err = benchFunds(l); err != nil {
		return err
	}

	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	if c.rate > 0 {
		l.tokens = pace(runCtx, c.rate, c.clients)
	}
	startPos, _ := srv.app.store.LastPosition(ctx)
	rssStart := rss()
	loadStart := readMachineLoad()
	l.start = time.Now()
	var wg sync.WaitGroup
	for i := range c.clients {
		wg.Go(func() { l.client(runCtx, i) })
	}
	mon := l.monitor(runCtx, stdout)
	wg.Wait()
	elapsed := time.Since(l.start)
	if c.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	windows := <-mon
	endPos, _ := srv.app.store.LastPosition(context.Background())
	res := l.results(elapsed, windows)
	res.EventsWritten = endPos.Commit - startPos.Commit
	res.Machine = [2]machineLoad{loadStart, readMachineLoad()}
	res.Memory.RSSStartMiB = mib(rssStart)
	res.Memory.RSSEndMiB = mib(rss())
	res.Memory.HeapLiveEndMiB = mib(heapLive())
	res.Server = serverFigures(srv.app.metrics)
	res.Server.MaxLagEvents, res.Server.MaxLagSeconds = maxLag(windows)
	if c.soak > 0 {
		res.Soak = soakVerdict(windows)
	}
	res.print(stdout)
	if len(l.errCodes) > 0 {
		fmt.Fprintln(stdout, "errors (kind status: count, first answer):")
		keys := make([]string, 0, len(l.errCodes))
		for k := range l.errCodes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stdout, "  %s: %d, %s\n", k, l.errCodes[k], l.errEx[k])
		}
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

// pace hands out n tokens a second, at most burst at once.
func pace(ctx context.Context, rate float64, burst int) <-chan struct{} {
	ch := make(chan struct{}, burst)
	go func() {
		const tick = time.Millisecond
		t := time.NewTicker(tick)
		defer t.Stop()
		start := time.Now()
		sent := 0.0
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				due := now.Sub(start).Seconds() * rate
				for ; sent < due; sent++ {
					select {
					case ch <- struct{}{}:
					default:
						// The clients are behind: drop the token rather
						// than let a burst build up.
					}
				}
			}
		}
	}()
	return ch
}

// benchFunds lists the funds the demo data set loaded.
func benchFunds(l *loadRun) ([]string, error) {
	var v struct {
		Funds []struct {
			ID string `json:"id"`
		} `json:"funds"`
	}
	conn := &benchConn{addr: strings.TrimPrefix(l.srv.base, "http://")}
	defer conn.close()
	body, status, err := conn.do("GET", "/v1/funds", l.srv.tokens[domain.RoleAuditor][0], "", nil)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("list funds: %d %v", status, err)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	var ids []string
	for _, f := range v.Funds {
		ids = append(ids, f.ID)
	}
	if len(ids) == 0 {
		return nil, errors.New("the demo data set has no funds")
	}
	return ids, nil
}

// benchConn is one client's keep-alive connection to the server. Requests
// are written by hand and answers read with http.ReadResponse, without
// net/http's Transport and the two goroutines it runs per connection: the
// load generator shares the machine with the server, so it should take as
// little of its CPU as it can.
type benchConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	buf  bytes.Buffer
}

func (bc *benchConn) close() {
	if bc.c != nil {
		bc.c.Close()
		bc.c = nil
	}
}

// do sends one request and returns the answer's body, valid until the next
// call, and its status. A request is never resent: commands without an
// Idempotency-Key are not safe to repeat.
func (bc *benchConn) do(method, path, token, key string, body []byte) ([]byte, int, error) {
	if bc.c == nil {
		c, err := net.DialTimeout("tcp", bc.addr, 5*time.Second)
		if err != nil {
			return nil, 0, err
		}
		bc.c, bc.br, bc.bw = c, bufio.NewReaderSize(c, 32<<10), bufio.NewWriterSize(c, 4<<10)
	}
	_ = bc.c.SetDeadline(time.Now().Add(30 * time.Second))
	w := bc.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(bc.addr)
	w.WriteString("\r\nAuthorization: Bearer ")
	w.WriteString(token)
	if key != "" {
		w.WriteString("\r\nIdempotency-Key: ")
		w.WriteString(key)
	}
	if body != nil {
		w.WriteString("\r\nContent-Type: application/json\r\nContent-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
	}
	w.WriteString("\r\n\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		bc.close()
		return nil, 0, err
	}
	resp, err := http.ReadResponse(bc.br, nil)
	if err != nil {
		bc.close()
		return nil, 0, err
	}
	bc.buf.Reset()
	_, err = bc.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		bc.close()
	}
	return bc.buf.Bytes(), resp.StatusCode, err
}

// clientState is where one client is in its grant's journey.
type clientState struct {
	conn    *benchConn
	id      int
	seq     int
	program string
	talents []string
	step    int
	grant   string
	payment string
	notice  bool
	rng     uint64
}

// next is a small xorshift generator: each client has its own, with no
// lock.
func (s *clientState) next() uint64 {
	s.rng ^= s.rng << 13
	s.rng ^= s.rng >> 7
	s.rng ^= s.rng << 17
	return s.rng
}

func (s *clientState) chance(p float64) bool { return float64(s.next()%1_000_000) < p*1_000_000 }

// client drives one simulated user until ctx is done: with probability
// read-ratio a query, otherwise the next step of its current grant.
func (l *loadRun) client(ctx context.Context, id int) {
	s := &clientState{id: id, program: benchProgram(id % l.cfg.programs), rng: uint64(id)*0x9E3779B97F4A7C15 + 1,
		conn: &benchConn{addr: strings.TrimPrefix(l.srv.base, "http://")}}
	defer s.conn.close()
	s.talents = l.srv.talents[id%l.cfg.programs]
	for ctx.Err() == nil {
		if l.tokens != nil {
			select {
			case <-ctx.Done():
				return
			case <-l.tokens:
			}
		}
		if s.chance(l.cfg.readRatio) {
			l.query(s)
		} else {
			l.command(s)
		}
	}
}

func (l *loadRun) token(role string, s *clientState) string {
	ts := l.srv.tokens[role]
	return ts[s.id%len(ts)]
}

// command runs the next step of the client's grant: apply, review, the
// public notice for half of the grants, approve, then prepare, approve and
// release the payment.
func (l *loadRun) command(s *clientState) {
	var kind, path, role, body string
	switch s.step {
	case 0:
		kind, path, role = "apply", "/v1/grants", domain.RoleClerk
		body = fmt.Sprintf(`{"talent_id":%q,"program_id":%q,"amount_requested":"1000.00","document_ref":"BENCH-APP-%d-%d"}`,
			s.talents[s.next()%uint64(len(s.talents))], s.program, s.id, s.seq)
	case 1:
		kind, path, role, body = "review", "/v1/grants/"+s.grant+"/review", domain.RoleReviewer, `{"decision":"approve","note":"documents complete"}`
	case 2:
		kind, path, role, body = "notice_open", "/v1/grants/"+s.grant+"/notice", domain.RoleReviewer, `{"document_ref":"BENCH-NOTICE"}`
	case 3:
		kind, path, role, body = "notice_close", "/v1/grants/"+s.grant+"/notice/close", domain.RoleReviewer, `{}`
	case 4:
		kind, path, role, body = "approve", "/v1/grants/"+s.grant+"/approve", domain.RoleApprover, `{"document_ref":"BENCH-APR"}`
	case 5:
		kind, path, role, body = "payment_prepare", "/v1/grants/"+s.grant+"/installments/1/payments", domain.RoleClerk, `{}`
	case 6:
		kind, path, role, body = "payment_approve", "/v1/payments/"+s.payment+"/approve", domain.RoleApprover, `{}`
	case 7:
		kind, path, role = "payment_release", "/v1/payments/"+s.payment+"/release", domain.RoleTreasurer
		body = fmt.Sprintf(`{"bank_reference":"BENCH-BANK-%d-%d"}`, s.id, s.seq)
	}
	s.seq++
	key := ""
	if l.cfg.idempotency {
		key = fmt.Sprintf("bench-%d-%d-%d", l.start.UnixNano(), s.id, s.seq)
	}
	start := time.Now()
	b, status, err := s.conn.do("POST", path, l.token(role, s), key, []byte(body))
	d := time.Since(start)
	st := l.stats[kind]
	if err != nil || status/100 != 2 {
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return
			}
			b = []byte(err.Error())
		}
		l.fail(kind, status, string(b))
		s.step = 0
		return
	}
	st.h.record(d)
	var res struct{ ID, Position string }
	_ = json.Unmarshal(b, &res)
	switch s.step {
	case 0:
		s.grant = res.ID
		s.notice = s.chance(0.5)
		s.step = 1
		l.rememberGrant(res.ID, res.Position)
	case 1:
		if s.notice {
			s.step = 2
		} else {
			s.step = 4
		}
	case 5:
		s.payment = res.ID
		s.step = 6
	case 7:
		s.step = 0
	default:
		s.step++
	}
}

// query reads one view: a budget, a grant, a page of a program's approved
// grants, a talent, the funds, or one fund.
func (l *loadRun) query(s *clientState) {
	r := s.next() % 100
	var kind, path string
	switch {
	case r < 20:
		kind, path = "budget", fmt.Sprintf("/v1/programs/%s/budgets/%d", s.program, benchFiscalYear())
	case r < 50:
		g := l.recentGrant(int(s.next() % 4096))
		if g == "" {
			kind, path = "budget", fmt.Sprintf("/v1/programs/%s/budgets/%d", s.program, benchFiscalYear())
		} else {
			kind, path = "grant", "/v1/grants/"+g
		}
	case r < 60:
		kind, path = "grant_list", "/v1/grants?program="+s.program+"&state=completed&limit=20"
	case r < 75:
		kind, path = "talent", "/v1/talents/"+s.talents[s.next()%uint64(len(s.talents))]
	case r < 85:
		kind, path = "fund_list", "/v1/funds"
	default:
		kind, path = "fund", "/v1/funds/"+l.funds[s.next()%uint64(len(l.funds))]
	}
	start := time.Now()
	b, status, err := s.conn.do("GET", path, l.token(domain.RoleAuditor, s), "", nil)
	d := time.Since(start)
	if err != nil || status != http.StatusOK {
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return
			}
			b = []byte(err.Error())
		}
		l.fail(kind, status, string(b))
		return
	}
	l.stats[kind].h.record(d)
}

// window is what one interval of the run measured.
type window struct {
	At         float64 `json:"at_s"`
	Commands   float64 `json:"commands_per_s"`
	Queries    float64 `json:"queries_per_s"`
	Errors     uint64  `json:"errors"`
	CommandP50 float64 `json:"command_p50_ms"`
	CommandP99 float64 `json:"command_p99_ms"`
	QueryP50   float64 `json:"query_p50_ms"`
	QueryP99   float64 `json:"query_p99_ms"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_live_mib"`
	Events     uint64  `json:"events"`
	LagEvents  uint64  `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
}

func (l *loadRun) class(kinds []string) (histCounts, uint64) {
	var c histCounts
	var errs uint64
	for _, k := range kinds {
		c = c.add(l.stats[k].h.snapshot())
		errs += l.stats[k].errors.Load()
	}
	return c, errs
}

// monitor prints a progress line every second and returns, when ctx is
// done, one window per second (per --window when soaking).
func (l *loadRun) monitor(ctx context.Context, stdout io.Writer) <-chan []window {
	out := make(chan []window, 1)
	go func() {
		var wins []window
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		prevC, prevCE := l.class(commandKinds)
		prevQ, prevQE := l.class(queryKinds)
		winC, winQ, winE := prevC, prevQ, prevCE+prevQE
		winStart := l.start
		var maxLagE uint64
		var maxLagS float64
		sample := func(now time.Time, final bool) {
			c, ce := l.class(commandKinds)
			q, qe := l.class(queryKinds)
			p := l.srv.app.proj.Progress()
			last, _ := l.srv.app.store.LastPosition(context.Background())
			lagE, lagS := lag(p, last, now)
			maxLagE, maxLagS = max(maxLagE, lagE), max(maxLagS, lagS)
			dc, dq := c.sub(prevC), q.sub(prevQ)
			if !l.cfg.quiet {
				fmt.Fprintf(stdout, "%6.1fs  commands %6.0f/s p99 %6.1fms  queries %6.0f/s p99 %6.1fms  errors %d  lag %d events  rss %.0f MiB\n",
					now.Sub(l.start).Seconds(), float64(dc.total()), dc.quantile(0.99), float64(dq.total()), dq.quantile(0.99),
					ce+qe-prevCE-prevQE, lagE, mib(rss()))
			}
			prevC, prevQ, prevCE, prevQE = c, q, ce, qe
			span := l.cfg.window
			if l.cfg.soak == 0 {
				span = time.Second
			}
			if now.Sub(winStart) >= span-50*time.Millisecond || final {
				secs := now.Sub(winStart).Seconds()
				wc, wq := c.sub(winC), q.sub(winQ)
				wins = append(wins, window{At: now.Sub(l.start).Seconds(), Commands: float64(wc.total()) / secs,
					Queries: float64(wq.total()) / secs, Errors: ce + qe - winE,
					CommandP50: wc.quantile(0.5), CommandP99: wc.quantile(0.99), QueryP50: wq.quantile(0.5), QueryP99: wq.quantile(0.99),
					RSSMiB: mib(rss()), HeapMiB: mib(heapLive()), Events: last.Commit, LagEvents: maxLagE, LagSeconds: maxLagS})
				winC, winQ, winE, winStart = c, q, ce+qe, now
				maxLagE, maxLagS = 0, 0
			}
		}
		for {
			select {
			case <-ctx.Done():
				if l.cfg.soak > 0 && time.Since(winStart) > l.cfg.window/2 {
					sample(time.Now(), true)
				}
				out <- wins
				return
			case now := <-tick.C:
				sample(now, false)
			}
		}
	}()
	return out
}

// opResult is one operation kind's figures.
type opResult struct {
	Count     uint64  `json:"count"`
	Errors    uint64  `json:"errors"`
	PerSecond float64 `json:"per_second"`
	P50       float64 `json:"p50_ms"`
	P95       float64 `json:"p95_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p99_9_ms"`
	Max       float64 `json:"max_ms"`
}

func newOpResult(c histCounts, errs uint64, secs float64) opResult {
	n := c.total()
	return opResult{Count: n, Errors: errs, PerSecond: float64(n) / secs, P50: c.quantile(0.5), P95: c.quantile(0.95),
		P99: c.quantile(0.99), P999: c.quantile(0.999), Max: c.max()}
}

// benchResults is what bench prints and writes as JSON.
type benchResults struct {
	Config        map[string]any      `json:"config,omitempty"`
	Seconds       float64             `json:"seconds"`
	Commands      opResult            `json:"commands"`
	Queries       opResult            `json:"queries"`
	Ops           map[string]opResult `json:"operations"`
	EventsWritten uint64              `json:"events_written"`
	Server        serverResult        `json:"server"`
	Memory        struct {
		RSSStartMiB    float64 `json:"rss_start_mib"`
		RSSEndMiB      float64 `json:"rss_end_mib"`
		HeapLiveEndMiB float64 `json:"heap_live_end_mib"`
	} `json:"memory"`
	Windows []window     `json:"windows,omitempty"`
	Soak    *soakResults `json:"soak,omitempty"`
	// Machine is what else the machine was doing, at the start and the
	// end: the bench shares it with whatever runs there.
	Machine [2]machineLoad `json:"machine"`
}

// machineLoad is the load average and the CPU and I/O pressure (the share
// of the last 60 s some task waited for a CPU or for I/O), from /proc.
type machineLoad struct {
	LoadAvg1    float64 `json:"loadavg_1m"`
	CPUPressure float64 `json:"cpu_pressure_some_avg60"`
	IOPressure  float64 `json:"io_pressure_some_avg60"`
}

func readMachineLoad() machineLoad {
	var m machineLoad
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &m.LoadAvg1)
	}
	pressure := func(path string) float64 {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		for _, f := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0]) {
			if v, ok := strings.CutPrefix(f, "avg60="); ok {
				x, _ := strconv.ParseFloat(v, 64)
				return x
			}
		}
		return 0
	}
	m.CPUPressure = pressure("/proc/pressure/cpu")
	m.IOPressure = pressure("/proc/pressure/io")
	return m
}

func (l *loadRun) results(elapsed time.Duration, windows []window) *benchResults {
	secs := elapsed.Seconds()
	res := &benchResults{Seconds: secs, Ops: map[string]opResult{}, Windows: windows}
	for _, k := range append(append([]string{}, commandKinds...), queryKinds...) {
		st := l.stats[k]
		res.Ops[k] = newOpResult(st.h.snapshot(), st.errors.Load(), secs)
	}
	c, ce := l.class(commandKinds)
	q, qe := l.class(queryKinds)
	res.Commands = newOpResult(c, ce, secs)
	res.Queries = newOpResult(q, qe, secs)
	return res
}

func benchConfigJSON(c benchConfig) map[string]any {
	return map[string]any{"duration": c.duration.String(), "clients": c.clients, "read_ratio": c.readRatio, "rate": c.rate,
		"idempotency": c.idempotency, "programs": c.programs, "years": c.years, "gomaxprocs": runtime.GOMAXPROCS(0), "cpus": runtime.NumCPU(),
		"go": runtime.Version(), "scrub_rate": c.scrubRate}
}

func (r *benchResults) print(w io.Writer) {
	fmt.Fprintf(w, "\n%-16s %9s %7s %9s %8s %8s %8s %8s %8s\n", "operation", "count", "errors", "per s", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms")
	line := func(name string, o opResult) {
		fmt.Fprintf(w, "%-16s %9d %7d %9.0f %8.2f %8.2f %8.2f %8.2f %8.1f\n", name, o.Count, o.Errors, o.PerSecond, o.P50, o.P95, o.P99, o.P999, o.Max)
	}
	for _, k := range commandKinds {
		line(k, r.Ops[k])
	}
	for _, k := range queryKinds {
		line("GET "+k, r.Ops[k])
	}
	line("all commands", r.Commands)
	line("all queries", r.Queries)
	s := r.Server
	fmt.Fprintf(w, "\nevents written %d (%.0f/s)\n", r.EventsWritten, float64(r.EventsWritten)/r.Seconds)
	fmt.Fprintf(w, "server: appends %d, p50 %.2f ms, p99 %.2f ms; group commit: %d batches, %.1f appends and %.1f events a batch, sync mean %.2f ms\n",
		s.Appends, s.AppendP50, s.AppendP99, s.Batches, s.AppendsPerBatch, s.EventsPerBatch, s.SyncMean)
	fmt.Fprintf(w, "server: projection lag max %d events, %.3f s; idempotent replays %.0f; resubscribes %.0f\n",
		s.MaxLagEvents, s.MaxLagSeconds, s.IdempotentReplays, s.Resubscribes)
	fmt.Fprintf(w, "memory: RSS %.0f MiB at start, %.0f MiB at end; live heap %.0f MiB\n", r.Memory.RSSStartMiB, r.Memory.RSSEndMiB, r.Memory.HeapLiveEndMiB)
	fmt.Fprintf(w, "machine: load average %.2f -> %.2f; CPU pressure %.1f%% -> %.1f%%, I/O pressure %.1f%% -> %.1f%% (avg60, /proc/pressure)\n",
		r.Machine[0].LoadAvg1, r.Machine[1].LoadAvg1, r.Machine[0].CPUPressure, r.Machine[1].CPUPressure, r.Machine[0].IOPressure, r.Machine[1].IOPressure)
	if r.Soak != nil {
		r.Soak.print(w)
	}
}

// serverResult holds the server-side figures, read from its metrics.
type serverResult struct {
	Appends           uint64  `json:"appends"`
	AppendP50         float64 `json:"append_p50_ms"`
	AppendP99         float64 `json:"append_p99_ms"`
	Batches           uint64  `json:"batches"`
	AppendsPerBatch   float64 `json:"appends_per_batch"`
	EventsPerBatch    float64 `json:"events_per_batch"`
	SyncMean          float64 `json:"sync_mean_ms"`
	SyncP99           float64 `json:"sync_p99_ms"`
	IdempotentReplays float64 `json:"idempotent_replays"`
	Resubscribes      float64 `json:"resubscribes"`
	MaxLagEvents      uint64  `json:"max_lag_events"`
	MaxLagSeconds     float64 `json:"max_lag_seconds"`
}

// serverFigures reads the server's figures from its metrics registry, the
// one /metrics serves.
func serverFigures(m *metrics) serverResult {
	var r serverResult
	fams, err := m.reg.Gather()
	if err != nil {
		return r
	}
	by := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		by[f.GetName()] = f
	}
	hist := func(name string, labels map[string]string) *dto.Histogram {
		f := by[name]
		if f == nil {
			return &dto.Histogram{}
		}
	next:
		for _, m := range f.Metric {
			for k, v := range labels {
				if labelValue(m, k) != v {
					continue next
				}
			}
			return m.GetHistogram()
		}
		return &dto.Histogram{}
	}
	sum := func(name string) float64 {
		total := 0.0
		if f := by[name]; f != nil {
			for _, m := range f.Metric {
				total += m.GetCounter().GetValue()
			}
		}
		return total
	}
	a := hist("talentledger_store_append_duration_seconds", map[string]string{"result": "ok"})
	r.Appends = a.GetSampleCount()
	r.AppendP50, r.AppendP99 = promQuantile(a, 0.5)*1000, promQuantile(a, 0.99)*1000
	ba, be, st := hist("talentledger_store_batch_appends", nil), hist("talentledger_store_batch_events", nil), hist("talentledger_store_sync_duration_seconds", nil)
	r.Batches = ba.GetSampleCount()
	if r.Batches > 0 {
		r.AppendsPerBatch = ba.GetSampleSum() / float64(r.Batches)
		r.EventsPerBatch = be.GetSampleSum() / float64(r.Batches)
		r.SyncMean = st.GetSampleSum() / float64(r.Batches) * 1000
		r.SyncP99 = promQuantile(st, 0.99) * 1000
	}
	r.IdempotentReplays = sum("talentledger_idempotent_replays_total")
	r.Resubscribes = sum("talentledger_projection_resubscribes_total")
	return r
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func maxLag(ws []window) (uint64, float64) {
	var e uint64
	var s float64
	for _, w := range ws {
		e, s = max(e, w.LagEvents), max(s, w.LagSeconds)
	}
	return e, s
}

// soakResults compares the first and the second half of a soak's windows.
type soakResults struct {
	First          window     `json:"first"`
	Last           window     `json:"last"`
	CommandP99     [2]float64 `json:"command_p99_ms_median_halves"`
	QueryP99       [2]float64 `json:"query_p99_ms_median_halves"`
	LatencyFlat    bool       `json:"latency_flat"`
	MemoryFlat     bool       `json:"memory_flat"`
	HeapPerEventB  float64    `json:"heap_bytes_per_event_first"`
	HeapPerEventBL float64    `json:"heap_bytes_per_event_last"`
	Windows        []window   `json:"-"`
}

// soakVerdict calls latency flat when the median of the second half's
// windows' p99s is within 50 % (plus 1 ms) of the first half's, for
// commands and for queries: medians, so that one window disturbed by
// something else on the machine does not decide. It calls memory flat
// when the live heap per event in the log has not grown by more than 25 %
// from the first window to the last: the read models are in memory and
// grow with the log by design, so what must stay flat is the memory each
// event costs, not the total.
func soakVerdict(ws []window) *soakResults {
	if len(ws) < 2 {
		return nil
	}
	f, l := ws[0], ws[len(ws)-1]
	s := &soakResults{First: f, Last: l, Windows: ws}
	half := len(ws) / 2
	median := func(ws []window, v func(window) float64) float64 {
		xs := make([]float64, len(ws))
		for i, w := range ws {
			xs[i] = v(w)
		}
		sort.Float64s(xs)
		return (xs[(len(xs)-1)/2] + xs[len(xs)/2]) / 2
	}
	cmd := func(w window) float64 { return w.CommandP99 }
	qry := func(w window) float64 { return w.QueryP99 }
	s.CommandP99 = [2]float64{median(ws[:half], cmd), median(ws[half:], cmd)}
	s.QueryP99 = [2]float64{median(ws[:half], qry), median(ws[half:], qry)}
	s.LatencyFlat = s.CommandP99[1] <= s.CommandP99[0]*1.5+1 && s.QueryP99[1] <= s.QueryP99[0]*1.5+1
	if f.Events > 0 && l.Events > 0 {
		s.HeapPerEventB = f.HeapMiB * (1 << 20) / float64(f.Events)
		s.HeapPerEventBL = l.HeapMiB * (1 << 20) / float64(l.Events)
		s.MemoryFlat = s.HeapPerEventBL <= s.HeapPerEventB*1.25
	}
	return s
}

func (s *soakResults) print(w io.Writer) {
	verdict := func(ok bool) string {
		if ok {
			return "flat"
		}
		return "NOT flat"
	}
	fmt.Fprintf(w, "\nsoak windows:\n%8s %9s %9s %9s %9s %9s %9s %8s %8s %9s\n", "at", "cmds/s", "p50 ms", "p99 ms",
		"queries/s", "p50 ms", "p99 ms", "RSS MiB", "heap MiB", "events")
	for _, x := range s.Windows {
		fmt.Fprintf(w, "%7.0fs %9.0f %9.2f %9.2f %9.0f %9.2f %9.2f %8.0f %8.0f %9d\n", x.At, x.Commands, x.CommandP50, x.CommandP99,
			x.Queries, x.QueryP50, x.QueryP99, x.RSSMiB, x.HeapMiB, x.Events)
	}
	fmt.Fprintf(w, "soak, first half vs second half (medians of the windows' p99):\n")
	fmt.Fprintf(w, "  commands p99 %6.2f -> %6.2f ms; queries p99 %6.2f -> %6.2f ms\n", s.CommandP99[0], s.CommandP99[1], s.QueryP99[0], s.QueryP99[1])
	fmt.Fprintf(w, "  RSS %.0f -> %.0f MiB; live heap %.0f -> %.0f MiB; events in the log %d -> %d; live heap per event %.0f -> %.0f bytes\n",
		s.First.RSSMiB, s.Last.RSSMiB, s.First.HeapMiB, s.Last.HeapMiB, s.First.Events, s.Last.Events, s.HeapPerEventB, s.HeapPerEventBL)
	fmt.Fprintf(w, "  latency: %s; memory per event: %s\n", verdict(s.LatencyFlat), verdict(s.MemoryFlat))
}

// rss returns the process's resident set size in bytes (0 where /proc is
// not available).
func rss() uint64 { return procStatus(os.Getpid(), "VmRSS") }

// procStatus reads a kB field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// heapLive returns the live heap as of the last garbage collection.
func heapLive() uint64 {
	s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
