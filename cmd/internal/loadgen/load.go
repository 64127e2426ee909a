// Package loadgen drives a talentledger server over HTTP as its users do
// and measures it: a hand-written HTTP/1.1 client that costs the shared
// machine little, log-linear latency histograms, the server's own figures
// from its Prometheus registry, and what else the machine was doing, from
// /proc. It is a client of the ledger, not part of it: it knows the API's
// paths and roles and nothing of the server's inside. `talentledger bench`
// starts a server and runs it.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"talentledger/domain"
)

// Config is what a run of the load does.
type Config struct {
	Duration time.Duration
	// Clients is how many simulated users run at once, each on its own
	// keep-alive connection.
	Clients int
	// ReadRatio is the share of operations that are queries.
	ReadRatio float64
	// Rate is the operations a second of all clients together; 0 for as
	// fast as they go.
	Rate float64
	// Idempotency sends an Idempotency-Key with every command.
	Idempotency bool
	// Soak, when set, runs this long (instead of Duration) in windows of
	// Window, and judges whether latency and memory stay flat.
	Soak, Window time.Duration
	// Quiet prints no progress line a second.
	Quiet bool
	// CPUProfile, when set, is the file for a CPU profile of the run.
	CPUProfile string
}

// Target is the server under load, as a client knows it, and what the
// process it runs in tells of it.
type Target struct {
	// Base is the server's URL, "http://host:port".
	Base string
	// Tokens holds bearer tokens by role; each client uses one of each.
	Tokens map[string][]string
	// Programs are the subsidy programs the clients apply to (client i to
	// program i mod len), Talents the talents registered for each, and
	// FiscalYear the year of their budgets.
	Programs   []string
	Talents    [][]string
	FiscalYear int
	// LastPosition returns the commit position of the log's last event,
	// and Lag how far the read models are behind it (events and seconds);
	// either may be nil.
	LastPosition func() uint64
	Lag          func(last uint64, now time.Time) (events uint64, seconds float64)
	// Metrics is the server's registry, when it runs in this process.
	Metrics prometheus.Gatherer
}

func (t *Target) progress(now time.Time) (last, lagEvents uint64, lagSeconds float64) {
	if t.LastPosition != nil {
		last = t.LastPosition()
	}
	if t.Lag != nil {
		lagEvents, lagSeconds = t.Lag(last, now)
	}
	return last, lagEvents, lagSeconds
}

// Run drives the load on t for c.Duration (or c.Soak), prints a table per
// operation to stdout and returns the figures.
func Run(ctx context.Context, c Config, t *Target, stdout io.Writer) (*Results, error) {
	if len(t.Programs) == 0 || len(t.Talents) < len(t.Programs) {
		return nil, errors.New("loadgen: the target names no programs, or no talents for each")
	}
	l := &loadRun{cfg: c, target: t, stats: map[string]*opStats{}, errCodes: map[string]int{}, errEx: map[string]string{}}
	for _, k := range append(append([]string{}, commandKinds...), queryKinds...) {
		l.stats[k] = &opStats{}
	}
	var err error
	if l.funds, err = benchFunds(l); err != nil {
		return nil, err
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	duration := c.Duration
	if c.Soak > 0 {
		duration = c.Soak
	}
	runCtx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	if c.Rate > 0 {
		l.tokens = pace(runCtx, c.Rate, c.Clients)
	}
	startPos, _, _ := t.progress(time.Now())
	rssStart := RSS()
	loadStart := ReadMachineLoad()
	l.start = time.Now()
	var wg sync.WaitGroup
	for i := range c.Clients {
		wg.Go(func() { l.client(runCtx, i) })
	}
	mon := l.monitor(runCtx, stdout)
	wg.Wait()
	elapsed := time.Since(l.start)
	if c.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	windows := <-mon
	endPos, _, _ := t.progress(time.Now())
	res := l.results(elapsed, windows)
	res.EventsWritten = endPos - startPos
	res.Machine = [2]MachineLoad{loadStart, ReadMachineLoad()}
	res.Memory.RSSStartMiB = MiB(rssStart)
	res.Memory.RSSEndMiB = MiB(RSS())
	res.Memory.HeapLiveEndMiB = MiB(HeapLive())
	res.Server = ServerFigures(t.Metrics)
	res.Server.MaxLagEvents, res.Server.MaxLagSeconds = maxLag(windows)
	if c.Soak > 0 {
		res.Soak = SoakVerdict(windows)
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
	return res, nil
}

// Operation kinds, in report order.
var (
	commandKinds = []string{"apply", "review", "notice_open", "notice_close", "approve", "payment_prepare", "payment_approve", "payment_release"}
	queryKinds   = []string{"budget", "grant", "grant_list", "talent", "fund_list", "fund"}
)

// opStats is one operation kind's tally.
type opStats struct {
	h      Hist
	errors atomic.Uint64
}

// loadRun is one run of the load: its clients' shared state and tallies.
type loadRun struct {
	cfg    Config
	target *Target
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
	conn := &Conn{Addr: strings.TrimPrefix(l.target.Base, "http://")}
	defer conn.Close()
	body, status, err := conn.Do("GET", "/v1/funds", l.target.Tokens[domain.RoleAuditor][0], "", nil)
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

// clientState is where one client is in its grant's journey.
type clientState struct {
	conn    *Conn
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
	s := &clientState{id: id, program: l.target.Programs[id%len(l.target.Programs)], rng: uint64(id)*0x9E3779B97F4A7C15 + 1,
		conn: &Conn{Addr: strings.TrimPrefix(l.target.Base, "http://")}}
	defer s.conn.Close()
	s.talents = l.target.Talents[id%len(l.target.Programs)]
	for ctx.Err() == nil {
		if l.tokens != nil {
			select {
			case <-ctx.Done():
				return
			case <-l.tokens:
			}
		}
		if s.chance(l.cfg.ReadRatio) {
			l.query(s)
		} else {
			l.command(s)
		}
	}
}

func (l *loadRun) token(role string, s *clientState) string {
	ts := l.target.Tokens[role]
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
	if l.cfg.Idempotency {
		key = fmt.Sprintf("bench-%d-%d-%d", l.start.UnixNano(), s.id, s.seq)
	}
	start := time.Now()
	b, status, err := s.conn.Do("POST", path, l.token(role, s), key, []byte(body))
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
	st.h.Record(d)
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
		kind, path = "budget", fmt.Sprintf("/v1/programs/%s/budgets/%d", s.program, l.target.FiscalYear)
	case r < 50:
		g := l.recentGrant(int(s.next() % 4096))
		if g == "" {
			kind, path = "budget", fmt.Sprintf("/v1/programs/%s/budgets/%d", s.program, l.target.FiscalYear)
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
	b, status, err := s.conn.Do("GET", path, l.token(domain.RoleAuditor, s), "", nil)
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
	l.stats[kind].h.Record(d)
}

func (l *loadRun) class(kinds []string) (Counts, uint64) {
	var c Counts
	var errs uint64
	for _, k := range kinds {
		c = c.Add(l.stats[k].h.Snapshot())
		errs += l.stats[k].errors.Load()
	}
	return c, errs
}

// monitor prints a progress line every second and returns, when ctx is
// done, one Window per second (per --Window when soaking).
func (l *loadRun) monitor(ctx context.Context, stdout io.Writer) <-chan []Window {
	out := make(chan []Window, 1)
	go func() {
		var wins []Window
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
			last, lagE, lagS := l.target.progress(now)
			maxLagE, maxLagS = max(maxLagE, lagE), max(maxLagS, lagS)
			dc, dq := c.Sub(prevC), q.Sub(prevQ)
			if !l.cfg.Quiet {
				fmt.Fprintf(stdout, "%6.1fs  commands %6.0f/s p99 %6.1fms  queries %6.0f/s p99 %6.1fms  errors %d  lag %d events  rss %.0f MiB\n",
					now.Sub(l.start).Seconds(), float64(dc.Total()), dc.Quantile(0.99), float64(dq.Total()), dq.Quantile(0.99),
					ce+qe-prevCE-prevQE, lagE, MiB(RSS()))
			}
			prevC, prevQ, prevCE, prevQE = c, q, ce, qe
			span := l.cfg.Window
			if l.cfg.Soak == 0 {
				span = time.Second
			}
			if now.Sub(winStart) >= span-50*time.Millisecond || final {
				secs := now.Sub(winStart).Seconds()
				wc, wq := c.Sub(winC), q.Sub(winQ)
				wins = append(wins, Window{At: now.Sub(l.start).Seconds(), Commands: float64(wc.Total()) / secs,
					Queries: float64(wq.Total()) / secs, Errors: ce + qe - winE,
					CommandP50: wc.Quantile(0.5), CommandP99: wc.Quantile(0.99), QueryP50: wq.Quantile(0.5), QueryP99: wq.Quantile(0.99),
					RSSMiB: MiB(RSS()), HeapMiB: MiB(HeapLive()), Events: last, LagEvents: maxLagE, LagSeconds: maxLagS})
				winC, winQ, winE, winStart = c, q, ce+qe, now
				maxLagE, maxLagS = 0, 0
			}
		}
		for {
			select {
			case <-ctx.Done():
				if l.cfg.Soak > 0 && time.Since(winStart) > l.cfg.Window/2 {
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
