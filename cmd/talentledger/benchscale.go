package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
)

// scaleConfig is bench scale's flags.
type scaleConfig struct {
	events   int
	data     string
	views    string
	clients  int
	duration time.Duration
	asOf     int
	jsonOut  string
	fold     bool
	// pprofAddr serves the generator's profiles (see servePprof).
	pprofAddr string
	// exe is the talentledger binary measured. views is "" when it does
	// not take --views (an earlier build keeps its read models in
	// memory).
	exe string
	// plain is set when the measured build takes --no-encryption: the
	// history is written without a cipher, so it is served as such.
	plain bool
}

// scaleResults is what bench scale prints and writes as JSON.
type scaleResults struct {
	Config map[string]any `json:"config"`
	Events uint64         `json:"events"`
	Build  struct {
		Seconds  float64 `json:"seconds"`
		Commands uint64  `json:"commands"`
		Reused   bool    `json:"reused"`
	} `json:"build"`
	// Mix is the share of each event type in the log, in percent.
	Mix      map[string]float64 `json:"event_mix_pct"`
	StoreMiB float64            `json:"store_mib"`
	// Fold is the first start of serve on an empty views directory: from
	// exec to /readyz 200, the whole log folded into every read model.
	// CPU is what the server process used until ready, user and system,
	// which depends far less than the clock on what else the machine
	// runs; the first start's includes the full self-check of the log.
	Fold struct {
		Seconds      float64 `json:"seconds_to_ready"`
		EventsPerSec float64 `json:"events_per_s"`
		CPUSeconds   float64 `json:"cpu_seconds"`
		CPUPerEvent  float64 `json:"cpu_us_per_event"`
	} `json:"fold_from_empty"`
	// ColdStart is the next start, on the views directory the first left.
	ColdStart struct {
		Seconds    float64 `json:"seconds_to_ready"`
		CPUSeconds float64 `json:"cpu_seconds"`
		RSSMiB     float64 `json:"rss_ready_mib"`
	} `json:"cold_start"`
	Queries opResult `json:"queries"`
	// QueryCPU is the server's CPU per query of the mix, in ms;
	// AsOfCPU the same for the as-of queries.
	QueryCPU  float64             `json:"server_cpu_ms_per_query"`
	AsOfCPU   float64             `json:"server_cpu_ms_per_as_of"`
	ByQuery   map[string]opResult `json:"by_query"`
	AsOf      map[string]opResult `json:"as_of"`
	PeakMiB   float64             `json:"peak_rss_mib"`
	ViewsMiB  float64             `json:"views_mib"`
	ViewsByte float64             `json:"views_bytes_per_event"`
	Machine   [2]machineLoad      `json:"machine"`
}

// runScaleBench is `talentledger bench scale`: it writes a province-scale
// log (or reuses the one in --data), then measures the read side on it
// through `talentledger serve` in a child process.
func runScaleBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("bench scale", stdout)
	var c scaleConfig
	fs.IntVar(&c.events, "events", 0, "events the log holds (required): written through the domain if --data has none yet")
	fs.StringVar(&c.data, "data", "", "directory for the log (DIR/store), the views (DIR/views) and the servers' files (required; reused by later runs)")
	fs.StringVar(&c.views, "views", "", "views directory of the measured server (default: DIR/views)")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients of the query mix")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long the query mix runs")
	fs.IntVar(&c.asOf, "as-of", 200, "as-of queries of each kind (trial balance at control level by date, by recording time and both, budget by date), one at a time")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&c.fold, "fold", true, "start once on an empty views directory first, to measure the fold (false: resume from the views an earlier run left)")
	fs.StringVar(&c.exe, "exe", "", "the talentledger binary to measure (default: this one), e.g. an earlier build to compare with")
	fs.StringVar(&c.pprofAddr, "pprof-addr", "", "serve net/http/pprof of this process (the generator) at this loopback address while the bench runs")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.pprofAddr != "" {
		stop, err := servePprof(c.pprofAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	if c.events <= 0 || c.data == "" {
		return errors.New("--events (positive) and --data are required")
	}
	if c.clients < 1 || c.duration <= 0 || c.asOf < 1 {
		return errors.New("--clients, --duration and --as-of must be positive")
	}
	if c.views == "" {
		c.views = filepath.Join(c.data, "views")
	}
	if c.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.exe = exe
	}
	// An earlier build may not take --views: it then folds the log at
	// every start, which is what it is measured doing.
	help, _ := exec.CommandContext(ctx, c.exe, "serve", "-h").CombinedOutput()
	c.views = map[bool]string{true: c.views, false: ""}[strings.Contains(string(help), "-views")]
	c.plain = strings.Contains(string(help), "-no-encryption")
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return err
	}
	var res scaleResults
	res.Config = map[string]any{"events": c.events, "clients": c.clients, "duration": c.duration.String(), "as_of": c.asOf, "exe": c.exe, "views": c.views,
		"gomaxprocs": runtime.GOMAXPROCS(0), "cpus": runtime.NumCPU(), "go": runtime.Version()}
	res.Machine[0] = readMachineLoad()
	storeDir := filepath.Join(c.data, "store")
	if err := scaleBuild(ctx, c, storeDir, &res, stdout); err != nil {
		return err
	}
	if err := scaleMix(ctx, storeDir, &res, stdout); err != nil {
		return err
	}
	res.StoreMiB = mib(dirSize(storeDir))

	// The first start folds the whole log into an empty views directory;
	// the second resumes from what the first left.
	witness := filepath.Join(c.data, "witness.jsonl")
	var srv *scaleServer
	var err error
	if c.fold {
		if c.views != "" {
			if err := os.RemoveAll(c.views); err != nil {
				return err
			}
		}
		os.Remove(witness)
		if err := forgetWitness(storeDir); err != nil {
			return err
		}
		srv, err = startScaleServer(ctx, c, storeDir, witness)
		if err != nil {
			return fmt.Errorf("first start: %w", err)
		}
		res.Fold.Seconds = srv.ready.Seconds()
		res.Fold.EventsPerSec = float64(res.Events) / res.Fold.Seconds
		res.Fold.CPUSeconds = srv.cpuReady
		res.Fold.CPUPerEvent = 1e6 * srv.cpuReady / float64(res.Events)
		srv.stop()
		fmt.Fprintf(stdout, "fold from an empty views directory: ready in %.2fs, %.0f events/s; server CPU %.1fs, %.1f µs/event\n",
			res.Fold.Seconds, res.Fold.EventsPerSec, res.Fold.CPUSeconds, res.Fold.CPUPerEvent)
	}

	srv, err = startScaleServer(ctx, c, storeDir, witness)
	if err != nil {
		return fmt.Errorf("second start: %w", err)
	}
	defer srv.stop()
	res.ColdStart.Seconds = srv.ready.Seconds()
	res.ColdStart.CPUSeconds = srv.cpuReady
	res.ColdStart.RSSMiB = mib(procStatus(srv.cmd.Process.Pid, "VmRSS"))
	fmt.Fprintf(stdout, "cold start from the checkpoint: ready in %.2fs, server CPU %.2fs, RSS %.0f MiB\n", res.ColdStart.Seconds,
		res.ColdStart.CPUSeconds, res.ColdStart.RSSMiB)

	cpu := procCPU(srv.cmd.Process.Pid)
	if err := srv.queryMix(ctx, c, &res, stdout); err != nil {
		return err
	}
	if n := res.Queries.Count; n > 0 {
		res.QueryCPU = 1e3 * (procCPU(srv.cmd.Process.Pid) - cpu) / float64(n)
		fmt.Fprintf(stdout, "  server CPU %.3f ms a query\n", res.QueryCPU)
	}
	cpu = procCPU(srv.cmd.Process.Pid)
	if err := srv.asOfQueries(ctx, c, &res, stdout); err != nil {
		return err
	}
	var asOfN uint64
	for _, o := range res.AsOf {
		asOfN += o.Count
	}
	if asOfN > 0 {
		res.AsOfCPU = 1e3 * (procCPU(srv.cmd.Process.Pid) - cpu) / float64(asOfN)
		fmt.Fprintf(stdout, "  server CPU %.0f ms an as-of query\n", res.AsOfCPU)
	}
	res.PeakMiB = mib(procStatus(srv.cmd.Process.Pid, "VmHWM"))
	srv.stop()
	if c.views != "" {
		res.ViewsMiB = mib(dirSize(c.views))
		res.ViewsByte = float64(dirSize(c.views)) / float64(res.Events)
	}
	res.Machine[1] = readMachineLoad()
	res.print(stdout)
	if c.jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// scaleBuild writes the log unless storeDir already holds it.
func scaleBuild(ctx context.Context, c scaleConfig, storeDir string, res *scaleResults, stdout io.Writer) error {
	store, err := pebble.Open(storeDir, pebble.WithLogger(quietLogger()))
	if err != nil {
		return err
	}
	defer store.Close()
	last, err := store.LastPosition(ctx)
	if err != nil {
		return err
	}
	// The history may end (at its last simulated day) a little short of
	// the events asked for: build.json says what it was asked for.
	marker := filepath.Join(c.data, "build.json")
	var built struct {
		Events int `json:"events_asked"`
	}
	complete := false
	if b, err := os.ReadFile(marker); err == nil && json.Unmarshal(b, &built) == nil && built.Events == c.events && last.Commit > 0 {
		complete = true
	}
	switch {
	case complete || last.Commit >= uint64(c.events):
		res.Build.Reused = true
		res.Events = last.Commit
		fmt.Fprintf(stdout, "reusing the %d events in %s\n", last.Commit, storeDir)
		return nil
	case last.Commit > 0:
		return fmt.Errorf("%s holds %d events, fewer than --events; use an empty directory", storeDir, last.Commit)
	}
	fmt.Fprintf(stdout, "writing %d events in %s through the domain, on a simulated clock from %s…\n", c.events, storeDir,
		domain.Today(scaleStart))
	start := time.Now()
	lastReport := start
	n, err := generateScale(ctx, store, uint64(c.events), func(acked uint64, day time.Time) {
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(stdout, "  … %d events, at %s, %.0f events/s\n", acked, domain.Today(day), float64(acked)/time.Since(start).Seconds())
		}
	})
	if err != nil {
		return err
	}
	res.Build.Seconds = time.Since(start).Seconds()
	res.Build.Commands = n
	last, err = store.LastPosition(ctx)
	if err != nil {
		return err
	}
	res.Events = last.Commit
	b, _ := json.Marshal(map[string]any{"events_asked": c.events, "events": res.Events, "commands": n, "seconds": res.Build.Seconds})
	if err := os.WriteFile(marker, b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d events (%d commands) in %.1fs: %.0f events/s\n", res.Events, n, res.Build.Seconds,
		float64(res.Events)/res.Build.Seconds)
	return nil
}

// scaleMix counts the log's events by type.
func scaleMix(ctx context.Context, storeDir string, res *scaleResults, stdout io.Writer) error {
	store, err := pebble.Open(storeDir, pebble.WithLogger(quietLogger()))
	if err != nil {
		return err
	}
	defer store.Close()
	counts := map[string]uint64{}
	var n uint64
	start := time.Now()
	it := store.ReadAll(ctx, eventstore.Start)
	for it.Next() {
		ev := it.Event()
		typ, _, _ := strings.Cut(ev.Type, ".")
		counts[typ]++
		n++
	}
	err = it.Err()
	it.Close()
	if err != nil {
		return err
	}
	res.Events = n
	res.Mix = map[string]float64{}
	types := make([]string, 0, len(counts))
	for t, k := range counts {
		types = append(types, t)
		res.Mix[t] = 100 * float64(k) / float64(n)
	}
	sort.Slice(types, func(i, j int) bool { return counts[types[i]] > counts[types[j]] })
	fmt.Fprintf(stdout, "read %d events in %.2fs; by type:", n, time.Since(start).Seconds())
	for _, t := range types {
		fmt.Fprintf(stdout, " %s %.1f%%", t, res.Mix[t])
	}
	fmt.Fprintln(stdout)
	return nil
}

// scaleServer is `talentledger serve` running in a child process.
type scaleServer struct {
	cmd   *exec.Cmd
	base  string
	token string
	ready time.Duration
	// cpuReady is the CPU the process had used when it became ready, in
	// seconds.
	cpuReady float64
	once     sync.Once
}

func startScaleServer(ctx context.Context, c scaleConfig, storeDir, witness string) (*scaleServer, error) {
	s := &scaleServer{token: ledgerhttp.NewToken()}
	pfile := filepath.Join(c.data, "principals.json")
	b, _ := json.Marshal(map[string]any{"principals": []ledgerhttp.Principal{
		{ID: "bench-auditor", Roles: []string{domain.RoleAuditor}, TokenSHA256: ledgerhttp.HashToken(s.token)}}})
	if err := os.WriteFile(pfile, b, 0o600); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(c.data, "audit-key.pem")
	if _, err := loadOrCreateAuditKey(keyFile); err != nil {
		return nil, err
	}
	args := []string{"serve", "--data", storeDir, "--principals", pfile, "--addr", "127.0.0.1:0",
		"--witness", witness, "--audit-key", keyFile, "--max-in-flight-per-principal", "-1", "--max-waiting-per-principal", "-1"}
	if c.views != "" {
		args = append(args, "--views", c.views)
	}
	if c.plain {
		// The history holds personal data in plain text (the generator
		// writes without a cipher), as a server without a key store
		// records it.
		args = append(args, "--no-encryption")
	}
	s.cmd = exec.CommandContext(ctx, c.exe, args...)
	s.cmd.Env = append(os.Environ(), "TALENTLEDGER_METRICS_ADDR=")
	logf, err := os.OpenFile(filepath.Join(c.data, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	addrc := make(chan string, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer logf.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			logf.Write(append(sc.Bytes(), '\n'))
			var l struct{ Msg, Addr string }
			if !sent && json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "serving" {
				addrc <- l.Addr
				sent = true
			}
		}
	}()
	select {
	case a := <-addrc:
		s.base = "http://" + a
	case <-ended:
		s.stop()
		return nil, fmt.Errorf("the server ended before serving (its log: %s)", filepath.Join(c.data, "serve.log"))
	case <-time.After(30 * time.Minute):
		s.stop()
		return nil, errors.New("the server never said where it serves")
	}
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 60*time.Minute {
			s.stop()
			return nil, errors.New("the server never became ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.ready = time.Since(start)
	s.cpuReady = procCPU(s.cmd.Process.Pid)
	return s, nil
}

func (s *scaleServer) stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_ = s.cmd.Wait()
	})
}

// get reads path and decodes its JSON answer into v (when not nil).
func (s *scaleServer) get(bc *benchConn, path string, v any) error {
	body, status, err := bc.do("GET", path, s.token, "", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, status, truncateBytes(body, 200))
	}
	if v != nil {
		return json.Unmarshal(body, v)
	}
	return nil
}

func truncateBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// scaleSample is what the query mix asks for: IDs read from the server.
type scaleSample struct {
	programs []string
	years    []int
	grants   []string
	talents  []string
	funds    []string
	lists    []string
}

func (s *scaleServer) sample() (*scaleSample, error) {
	bc := &benchConn{addr: strings.TrimPrefix(s.base, "http://")}
	defer bc.close()
	var smp scaleSample
	var progs struct {
		Programs []struct {
			ID      string `json:"id"`
			Budgets []struct {
				FiscalYear   int          `json:"fiscal_year"`
				Appropriated domain.Money `json:"appropriated"`
			} `json:"budgets"`
		} `json:"programs"`
	}
	if err := s.get(bc, "/v1/programs", &progs); err != nil {
		return nil, err
	}
	years := map[int]bool{}
	for _, p := range progs.Programs {
		smp.programs = append(smp.programs, p.ID)
		for _, b := range p.Budgets {
			// Later years hold forward commitments before they have a
			// budget of their own.
			if b.Appropriated.Sign() > 0 {
				years[b.FiscalYear] = true
			}
		}
	}
	for y := range years {
		smp.years = append(smp.years, y)
	}
	sort.Ints(smp.years)
	if len(smp.programs) == 0 || len(smp.years) == 0 {
		return nil, errors.New("the server lists no programs with budgets")
	}
	for i, p := range smp.programs {
		for _, st := range []string{"approved", "completed", "terminated"} {
			path := fmt.Sprintf("/v1/grants?program=%s&state=%s&limit=50", p, st)
			smp.lists = append(smp.lists, path)
			if i%4 != 0 {
				continue
			}
			var gl struct {
				Grants []struct {
					ID       string `json:"id"`
					TalentID string `json:"talent_id"`
				} `json:"grants"`
			}
			if err := s.get(bc, path, &gl); err != nil {
				return nil, err
			}
			for _, g := range gl.Grants {
				smp.grants = append(smp.grants, g.ID)
				smp.talents = append(smp.talents, g.TalentID)
			}
		}
	}
	var fl struct {
		Funds []struct {
			ID string `json:"id"`
		} `json:"funds"`
	}
	if err := s.get(bc, "/v1/funds", &fl); err != nil {
		return nil, err
	}
	for _, f := range fl.Funds {
		smp.funds = append(smp.funds, f.ID)
	}
	if len(smp.grants) == 0 || len(smp.funds) == 0 {
		return nil, errors.New("the server lists no grants or no funds")
	}
	return &smp, nil
}

// scaleQueryKinds are the query mix, in report order, each with its
// weight: a finance office's reads, grants and budgets most.
var scaleQueryKinds = []struct {
	name   string
	weight int
}{{"grant", 30}, {"grant_list", 15}, {"talent", 15}, {"budget", 20}, {"program", 5}, {"fund", 10}, {"fund_list", 3}, {"balances", 2}}

// queryMix runs the mix with c.clients clients for c.duration.
func (s *scaleServer) queryMix(ctx context.Context, c scaleConfig, res *scaleResults, stdout io.Writer) error {
	smp, err := s.sample()
	if err != nil {
		return err
	}
	stats := map[string]*opStats{}
	var total int
	for _, k := range scaleQueryKinds {
		stats[k.name] = &opStats{}
		total += k.weight
	}
	var firstErr atomic.Value
	qctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for id := range c.clients {
		wg.Go(func() {
			cs := &clientState{rng: uint64(id)*0x9E3779B97F4A7C15 + 1}
			bc := &benchConn{addr: strings.TrimPrefix(s.base, "http://")}
			defer bc.close()
			for qctx.Err() == nil {
				r := int(cs.next() % uint64(total))
				kind := ""
				for _, k := range scaleQueryKinds {
					if r < k.weight {
						kind = k.name
						break
					}
					r -= k.weight
				}
				pick := func(xs []string) string { return xs[cs.next()%uint64(len(xs))] }
				var path string
				switch kind {
				case "grant":
					path = "/v1/grants/" + pick(smp.grants)
				case "grant_list":
					path = pick(smp.lists)
				case "talent":
					path = "/v1/talents/" + pick(smp.talents)
				case "budget":
					path = fmt.Sprintf("/v1/programs/%s/budgets/%d", pick(smp.programs), smp.years[cs.next()%uint64(len(smp.years))])
				case "program":
					path = "/v1/programs/" + pick(smp.programs)
				case "fund":
					path = "/v1/funds/" + pick(smp.funds)
				case "fund_list":
					path = "/v1/funds"
				case "balances":
					path = "/v1/ledger/balances"
				}
				t := time.Now()
				if err := s.get(bc, path, nil); err != nil {
					if qctx.Err() == nil {
						stats[kind].errors.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				stats[kind].h.record(time.Since(t))
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var all histCounts
	var errs uint64
	res.ByQuery = map[string]opResult{}
	for _, k := range scaleQueryKinds {
		h := histCounts(stats[k.name].h.snapshot())
		all = all.add(h)
		errs += stats[k.name].errors.Load()
		res.ByQuery[k.name] = newOpResult(h, stats[k.name].errors.Load(), secs)
	}
	res.Queries = newOpResult(all, errs, secs)
	fmt.Fprintf(stdout, "query mix, %d clients, %s: %.0f queries/s, p50 %.2f ms, p99 %.2f ms, %d errors\n",
		c.clients, c.duration, res.Queries.PerSecond, res.Queries.P50, res.Queries.P99, errs)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(stdout, "  first error: %s\n", e)
	}
	return nil
}

// asOfQueries asks for the trial balance (at control level: the general
// ledger and the control accounts) and a budget as of past business
// dates and recording times, one at a time, c.asOf of each or for at most
// a minute each.
func (s *scaleServer) asOfQueries(ctx context.Context, c scaleConfig, res *scaleResults, stdout io.Writer) error {
	smp, err := s.sample()
	if err != nil {
		return err
	}
	// Answered from the as-of index, but a log the index cannot place
	// (an irregular business date) is folded whole: wait for it.
	client := &http.Client{Timeout: 10 * time.Minute}
	cs := &clientState{rng: 7}
	span := int(scaleEnd.Sub(scaleStart).Hours() / 24)
	res.AsOf = map[string]opResult{}
	for _, kind := range []string{"balances_as_of", "balances_recorded_as_of", "balances_both", "budget_as_of"} {
		var h hist
		start := time.Now()
		n, errs := 0, uint64(0)
		for ; n < c.asOf && time.Since(start) < time.Minute; n++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			day := scaleStart.AddDate(0, 0, int(cs.next()%uint64(span)))
			var path string
			switch kind {
			case "balances_as_of":
				path = "/v1/ledger/balances?as_of=" + domain.Today(day)
			case "balances_recorded_as_of":
				path = "/v1/ledger/balances?recorded_as_of=" + day.Add(15*time.Hour).UTC().Format(time.RFC3339)
			case "balances_both":
				// The books of a date as they were recorded a week later.
				path = "/v1/ledger/balances?as_of=" + domain.Today(day) + "&recorded_as_of=" +
					day.AddDate(0, 0, 7).UTC().Format(time.RFC3339)
			case "budget_as_of":
				p := smp.programs[cs.next()%uint64(len(smp.programs))]
				path = fmt.Sprintf("/v1/programs/%s/budgets/%d?as_of=%s", p, day.Year(), domain.Today(day))
			}
			t := time.Now()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.base+path, nil)
			req.Header.Set("Authorization", "Bearer "+s.token)
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("GET %s: %d", path, resp.StatusCode)
				}
			}
			if err != nil {
				// Counted, not fatal: a fold of the whole log may run
				// past the server's write timeout, which cuts it.
				errs++
				fmt.Fprintf(stdout, "  %s after %.1f s: %v\n", kind, time.Since(t).Seconds(), err)
				continue
			}
			h.record(time.Since(t))
		}
		r := newOpResult(h.snapshot(), errs, time.Since(start).Seconds())
		res.AsOf[kind] = r
		fmt.Fprintf(stdout, "%s: %d queries, %d failed, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", kind, n, errs, r.P50, r.P99, r.Max)
	}
	return nil
}

func (r *scaleResults) print(w io.Writer) {
	asOfP99 := 0.0
	for _, o := range r.AsOf {
		asOfP99 = max(asOfP99, o.P99)
	}
	fmt.Fprintf(w, "\n| figure | target at 10,000,000 | at %d events |\n|---|---|---|\n", r.Events)
	fmt.Fprintf(w, "| fold from an empty views directory | ≥ 500,000 events/s | %.0f events/s (%.1f s to ready; CPU %.1f µs/event) |\n",
		r.Fold.EventsPerSec, r.Fold.Seconds, r.Fold.CPUPerEvent)
	fmt.Fprintf(w, "| cold start from the checkpoint | < 5 s | %.2f s (CPU %.2f s) |\n", r.ColdStart.Seconds, r.ColdStart.CPUSeconds)
	fmt.Fprintf(w, "| peak RSS while serving | < 1 GiB | %.0f MiB |\n", r.PeakMiB)
	fmt.Fprintf(w, "| queries (the bench's mix) | ≥ 20,000/s, p99 < 5 ms | %.0f/s, p99 %.2f ms (server CPU %.3f ms a query) |\n",
		r.Queries.PerSecond, r.Queries.P99, r.QueryCPU)
	fmt.Fprintf(w, "| as-of trial balance and budget | p99 < 50 ms | p99 %.1f ms (server CPU %.0f ms a query) |\n", asOfP99, r.AsOfCPU)
	fmt.Fprintf(w, "| disk used by views, per event | stated | %.0f bytes (%.0f MiB; the log %.0f MiB) |\n", r.ViewsByte, r.ViewsMiB, r.StoreMiB)
	fmt.Fprintf(w, "machine: load %.2f -> %.2f, CPU pressure %.1f%% -> %.1f%%\n", r.Machine[0].LoadAvg1, r.Machine[1].LoadAvg1,
		r.Machine[0].CPUPressure, r.Machine[1].CPUPressure)
}
