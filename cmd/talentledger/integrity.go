package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"talentledger/domain"
	"talentledger/domain/integrity"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
)

// exitError ends a command with a given exit status. When logged is true
// the reason was already logged and run prints nothing more.
type exitError struct {
	code   int
	err    error
	logged bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitDamaged is the exit status of a server that found its store damaged
// at start (or Pebble's fatal fault): distinct, so that an orchestrator
// does not restart it in a loop.
const exitDamaged = pebble.ExitStorageFault

// checkpointMeta is the store meta key of the integrity checkpoint: the
// Merkle tree's compact range at the last head written to the witness.
const checkpointMeta = "integrity-checkpoint"

// sampleSize is how many events older than the checkpoint a start
// re-verifies at random; a log no longer than it is verified whole.
const sampleSize = 2000

// integrityConfig is the integrity flags of serve and demo.
type integrityConfig struct {
	// data is the data directory of the embedded store, set by validate.
	data         string
	witness      string
	noWitness    bool
	witnessURL   string
	headInterval time.Duration
	allowDamaged bool
	scrubRate    int
	// fullCheck re-verifies the whole log at every start.
	fullCheck bool
}

func (c *integrityConfig) register(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	IntVar(*int, string, int, string)
}) {
	fs.StringVar(&c.witness, "witness", "", "witness file of signed tree heads, outside the data directory (on another disk in production)")
	fs.BoolVar(&c.noWitness, "no-witness", false, "run without a witness file: truncation and reordering of the log then go undetected")
	fs.StringVar(&c.witnessURL, "witness-url", "", "also POST each signed head to this URL (an auditor's witness service)")
	fs.DurationVar(&c.headInterval, "head-interval", 10*time.Second, "how often a tree head is signed and witnessed when the log has grown")
	fs.BoolVar(&c.allowDamaged, "allow-damaged", false, "start read-only on a store that fails its self-check, for investigation")
	fs.IntVar(&c.scrubRate, "scrub-rate", 2000, "events per second the background scrub re-verifies (0: no scrub)")
	fs.BoolVar(&c.fullCheck, "full-check", false, "re-verify the whole log at start, instead of from the witnessed checkpoint with a random sample of older events")
}

// guard keeps the ledger honest while it runs: it verified the log at
// start, signs heads only over what it has verified, appends them to the
// witness, scrubs the log in the background, and turns the server
// read-only when anything fails.
type guard struct {
	store   eventstore.Store
	pstore  *pebble.Store // nil on EventStoreDB
	log     *slog.Logger
	key     ed25519.PrivateKey
	cfg     integrityConfig
	witness *integrity.WitnessWriter // nil without a witness
	client  *http.Client
	// opened is what the witness file held at open, until start checks
	// the store against it; openErr is the damage found in it, if any.
	opened  *integrity.Witness
	openErr error

	// mu guards checker.
	mu      sync.Mutex
	checker *integrity.Checker

	damaged atomic.Pointer[error]
	// started is set once start has run: damage is logged from then on.
	started atomic.Bool

	scrubMu       sync.Mutex
	scrubStatus   scrubStatus
	scrubErrors   atomic.Uint64
	lastScrubDone atomic.Int64
	headsSigned   atomic.Uint64
}

// scrubStatus is the scrub's section of GET /v1/audit/verify.
type scrubStatus struct {
	Rate          int        `json:"rate_events_per_second"`
	Passes        uint64     `json:"passes_completed"`
	LastCompleted *time.Time `json:"last_completed,omitempty"`
	LastSize      uint64     `json:"last_verified_events"`
	Progress      uint64     `json:"current_pass_events"`
	Errors        uint64     `json:"errors"`
	Problem       string     `json:"problem,omitempty"`
}

// checkWitnessPath refuses a witness file inside the data directory: the
// witness exists to survive what happens to the store.
func checkWitnessPath(witness, data string) error {
	w, err := filepath.Abs(witness)
	if err != nil {
		return err
	}
	d, err := filepath.Abs(data)
	if err != nil {
		return err
	}
	if rd, err := filepath.EvalSymlinks(d); err == nil {
		d = rd
	}
	if rw, err := filepath.EvalSymlinks(filepath.Dir(w)); err == nil {
		w = filepath.Join(rw, filepath.Base(w))
	}
	if rel, err := filepath.Rel(d, w); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return usagef("--witness %s is inside the data directory %s: keep it elsewhere, on another disk in production", witness, data)
	}
	return nil
}

// validate checks the flags before anything is opened.
func (c *integrityConfig) validate(data string, embedded bool, key ed25519.PrivateKey) error {
	if embedded {
		c.data = data
	}
	switch {
	case c.witness != "" && c.noWitness:
		return usagef("--witness and --no-witness exclude each other")
	case c.witness == "" && !c.noWitness:
		return usagef("--witness PATH is required (a file outside the data directory), or --no-witness to run without one")
	case c.witness != "" && key == nil:
		return usagef("--witness needs --audit-key: heads are signed")
	case c.witnessURL != "" && c.witness == "":
		return usagef("--witness-url needs --witness")
	case c.headInterval <= 0:
		return usagef("--head-interval must be positive")
	case c.scrubRate < 0:
		return usagef("--scrub-rate must not be negative")
	}
	if c.witness != "" && embedded {
		return checkWitnessPath(c.witness, data)
	}
	return nil
}

// newGuard checks the store at start (openGuard, then start). Damage makes
// it log one ERROR line and return an exitError with exitDamaged, unless
// allowDamaged, when the guard starts read-only.
func newGuard(ctx context.Context, store eventstore.Store, cfg integrityConfig, key ed25519.PrivateKey, log *slog.Logger) (*guard, error) {
	g, err := openGuard(store, cfg, key, log)
	if err != nil {
		return nil, err
	}
	if err := g.start(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// openGuard opens the witness file; the store is checked by start.
func openGuard(store eventstore.Store, cfg integrityConfig, key ed25519.PrivateKey, log *slog.Logger) (*guard, error) {
	g := &guard{store: store, log: log, key: key, cfg: cfg, client: &http.Client{Timeout: 5 * time.Second}}
	g.pstore, _ = store.(*pebble.Store)
	g.checker = integrity.NewChecker(store)
	if cfg.noWitness {
		log.Warn("no witness file (--no-witness): events removed from the end of the log, lost with its write-ahead log or reordered cannot be detected")
	}
	if cfg.witness == "" {
		return g, nil
	}
	ww, w, err := integrity.OpenWitness(cfg.witness, key)
	if err != nil {
		var p *integrity.Problem
		if !errors.As(err, &p) {
			return nil, fmt.Errorf("witness: %w", err)
		}
		g.openErr = err
		return g, nil
	}
	if w.Torn {
		log.Warn("the witness file ended in an incomplete line (a crash while appending); it was cut off", "witness", cfg.witness)
	}
	g.witness, g.opened = ww, w
	return g, nil
}

// start runs the self-check and witnesses a head over the verified log.
// On damage it closes the guard and returns the exitError, unless
// allowDamaged, when the guard is read-only from then on.
func (g *guard) start(ctx context.Context) error {
	began := time.Now()
	err := g.openErr
	if err == nil {
		err = g.selfCheck(ctx, g.opened)
	}
	g.opened = nil
	defer g.started.Store(true)
	if err == nil {
		// The read models may have met damage while the check ran.
		err = g.damagedErr()
	}
	if err != nil {
		if !errors.Is(err, integrity.ErrDamaged) && !errors.Is(err, pebble.ErrCorrupt) {
			g.close()
			return err
		}
		if !g.cfg.allowDamaged {
			g.close()
			return g.fail(err)
		}
		g.started.Store(true)
		g.damaged.Store(nil)
		g.setDamaged(err)
		return nil
	}
	g.log.Info("self-check passed", "events", g.checker.Size(), "took", time.Since(began).Round(time.Millisecond).String(),
		"witnessed", g.cfg.witness != "")
	if err := g.signHead(ctx); err != nil {
		g.close()
		return err
	}
	return nil
}

// fail logs the one ERROR line of a failed self-check and returns the
// error that ends the process with exitDamaged.
func (g *guard) fail(err error) error {
	attrs := []any{"err", err.Error()}
	var p *integrity.Problem
	if errors.As(err, &p) && p.Stream != "" {
		attrs = append(attrs, "position", p.Position, "stream", p.Stream, "version", p.Version)
	}
	g.log.Error("storage self-check failed: not serving (use --allow-damaged to start read-only)", attrs...)
	return &exitError{code: exitDamaged, err: err, logged: true}
}

// selfCheck verifies the store: from the checkpoint when the witness
// vouches for it (plus a random sample of older events), else the whole
// log; then that it reaches the newest witnessed head.
func (g *guard) selfCheck(ctx context.Context, wit *integrity.Witness) error {
	expects := wit.Expect(g.cfg.witness)
	var cp *integrity.Checkpoint
	if g.pstore != nil {
		b, err := g.pstore.Meta(checkpointMeta)
		if err != nil {
			return damageOrErr(err)
		}
		if len(b) > 0 {
			cp = new(integrity.Checkpoint)
			if err := json.Unmarshal(b, cp); err != nil {
				return &integrity.Problem{What: "the store's integrity checkpoint is unreadable: " + err.Error()}
			}
		}
	}
	last, ok := wit.Last()
	if cp != nil && g.cfg.witness != "" && (!ok || last.TreeSize < cp.Size) {
		return &integrity.Problem{What: fmt.Sprintf("the store was witnessed at %d events, but the witness %s %s: "+
			"the witness file was rolled back, replaced or removed", cp.Size, g.cfg.witness, describeWitness(wit))}
	}
	g.checker = integrity.NewChecker(g.store)
	if cp != nil && ok && last.TreeSize == cp.Size && bytes.Equal(last.RootHash, cp.Root) && cp.Size > sampleSize && !g.cfg.fullCheck {
		c, err := integrity.Resume(g.store, *cp)
		if err != nil {
			return &integrity.Problem{What: err.Error()}
		}
		if err := c.CheckHeld(ctx, expects...); err != nil {
			return err
		}
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
		if err := c.Sample(ctx, sampleSize, func(k uint64) uint64 { return r.Uint64N(k) }); err != nil {
			return err
		}
		g.checker = c
	}
	if err := g.checker.Extend(ctx, 0, expects...); err != nil {
		return err
	}
	return g.checker.Finish(ctx, expects...)
}

func describeWitness(w *integrity.Witness) string {
	if h, ok := w.Last(); ok {
		return fmt.Sprintf("holds heads up to %d events only", h.TreeSize)
	}
	return "holds no head"
}

// damageOrErr turns the store's corruption errors into a Problem.
func damageOrErr(err error) error {
	if errors.Is(err, pebble.ErrCorrupt) {
		return &integrity.Problem{What: err.Error(), Err: err}
	}
	return err
}

// signHead verifies what was appended since the last head, then signs a
// head over it and witnesses it, when the log has grown. A head is never
// signed over events the guard has not verified.
func (g *guard) signHead(ctx context.Context) error {
	if g.pstore != nil {
		// Corruption Pebble met on its own, in a compaction say.
		if err := g.pstore.Damaged(); err != nil {
			g.setDamaged(err)
		}
	}
	if g.witness == nil || g.damagedErr() != nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checker.Extend(ctx, 0); err != nil {
		if errors.Is(err, integrity.ErrDamaged) {
			g.setDamaged(err)
		}
		return err
	}
	if last, ok := g.witness.Last(); ok && last.TreeSize == g.checker.Size() && bytes.Equal(last.RootHash, g.checker.Root()) {
		return nil
	}
	h, err := g.witness.Append(g.checker.Size(), g.checker.Root(), g.checker.Position().String(), timeNow())
	if err != nil {
		return err
	}
	g.headsSigned.Add(1)
	if g.pstore != nil {
		b, _ := json.Marshal(g.checker.Checkpoint())
		if err := g.pstore.PutMeta(checkpointMeta, b); err != nil {
			return err
		}
	}
	if g.cfg.witnessURL != "" {
		g.post(ctx, h)
	}
	return nil
}

// post sends a head to the remote witness; a failure is logged, never
// fatal: the file is the witness of record.
func (g *guard) post(ctx context.Context, h integrity.Head) {
	b, _ := json.Marshal(h)
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), "POST", g.cfg.witnessURL, bytes.NewReader(b))
	if err != nil {
		g.log.Warn("remote witness", "err", err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		g.log.Warn("remote witness did not take the head", "url", g.cfg.witnessURL, "err", err.Error())
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		g.log.Warn("remote witness refused the head", "url", g.cfg.witnessURL, "status", resp.StatusCode)
	}
}

// runHeads signs and witnesses a head every interval until ctx is done.
func (g *guard) runHeads(ctx context.Context) {
	t := time.NewTicker(g.cfg.headInterval)
	defer t.Stop()
	// Without a witness the ticks still look for corruption Pebble met.
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := g.signHead(ctx); err != nil && ctx.Err() == nil {
				g.log.Error("could not sign and witness a tree head", "err", err.Error())
			}
		}
	}
}

// runScrub re-verifies the whole log, over and over, at the configured
// rate, comparing it with the newest witnessed head.
func (g *guard) runScrub(ctx context.Context) {
	rate := g.cfg.scrubRate
	if rate <= 0 {
		return
	}
	g.scrubMu.Lock()
	g.scrubStatus.Rate = rate
	g.scrubMu.Unlock()
	// Events are checked in slices of rate/20, each followed by the rest
	// of its 50 ms: smooth, and cheap to pace.
	slice := max(1, rate/20)
	for ctx.Err() == nil {
		c := integrity.NewChecker(g.store)
		var expects []integrity.Expect
		if g.witness != nil {
			g.mu.Lock()
			if h, ok := g.witness.Last(); ok {
				expects = []integrity.Expect{{Size: h.TreeSize, Root: h.RootHash, Name: "the newest witnessed head"}}
			}
			g.mu.Unlock()
		}
		n, sliceStart := 0, time.Now()
		c.Pace = func(ctx context.Context) error {
			n++
			if n%slice != 0 {
				return nil
			}
			g.scrubMu.Lock()
			g.scrubStatus.Progress = c.Size()
			g.scrubMu.Unlock()
			wait := time.Duration(slice)*time.Second/time.Duration(rate) - time.Since(sliceStart)
			if wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
			sliceStart = time.Now()
			return nil
		}
		err := c.Extend(ctx, 0, expects...)
		if err == nil {
			err = c.CheckIndexDigest(ctx)
		}
		if err == nil {
			for _, e := range expects {
				if e.Size > c.Size() {
					err = &integrity.Problem{What: fmt.Sprintf("the log holds %d events but %s signed %d", c.Size(), e.Name, e.Size)}
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		g.scrubMu.Lock()
		if err != nil {
			g.scrubErrors.Add(1)
			g.scrubStatus.Errors = g.scrubErrors.Load()
			g.scrubStatus.Problem = err.Error()
		} else {
			g.scrubStatus.Passes++
			g.scrubStatus.LastCompleted = &now
			g.scrubStatus.LastSize = c.Size()
			g.lastScrubDone.Store(now.Unix())
		}
		g.scrubMu.Unlock()
		if err != nil {
			g.log.Error("scrub found the log damaged: the server is now read-only", "err", err.Error())
			g.setDamaged(err)
			return
		}
		// An empty or tiny log would spin; a pass starts at most once a
		// second.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// status is the integrity section of GET /v1/audit/verify.
func (g *guard) status() any {
	g.scrubMu.Lock()
	scrub := g.scrubStatus
	g.scrubMu.Unlock()
	st := map[string]any{"read_only": g.damagedErr() != nil, "scrub": scrub, "witness": g.cfg.witness != ""}
	if err := g.damagedErr(); err != nil {
		st["damage"] = err.Error()
	}
	if g.witness != nil {
		g.mu.Lock()
		if h, ok := g.witness.Last(); ok {
			st["witnessed_tree_size"] = h.TreeSize
			st["witnessed_at"] = h.Timestamp
		}
		g.mu.Unlock()
	}
	return st
}

// setDamaged turns the server read-only, for good. Before the self-check
// has passed, the damage is only recorded: the self-check reports it.
func (g *guard) setDamaged(err error) {
	if g.damaged.CompareAndSwap(nil, &err) && g.started.Load() {
		g.log.Error("the event store is damaged: serving read-only; writes are refused and /readyz answers 503", "err", err.Error())
	}
}

func (g *guard) damagedErr() error {
	if g == nil {
		return nil
	}
	if p := g.damaged.Load(); p != nil {
		return *p
	}
	return nil
}

// wrap marks every answer of a damaged server and refuses its writes.
func (g *guard) wrap(api *ledgerhttp.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := g.damagedErr()
		if err == nil {
			api.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Talentledger-Integrity", "damaged; read-only")
		if r.URL.Path == "/readyz" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			api.Error(w, r, &domain.Error{Code: ledgerhttp.EUNAVAILABLE,
				Message: "the event store failed its integrity check; the ledger is read-only until it is restored"})
			return
		}
		api.ServeHTTP(w, r)
	})
}

// registerMetrics adds the integrity metrics to m:
//
//	talentledger_scrub_last_complete_timestamp_seconds  when the last full scrub pass ended
//	talentledger_scrub_errors_total                     scrub passes that found damage
//	talentledger_integrity_damaged                      1 once the server is read-only for damage
//	talentledger_witness_heads_total                    heads signed and witnessed since start
func (g *guard) registerMetrics(m *metrics) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "talentledger_scrub_last_complete_timestamp_seconds",
			Help: "Unix time the last complete scrub pass over the log ended (0: none yet)."},
			func() float64 { return float64(g.lastScrubDone.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "talentledger_scrub_errors_total",
			Help: "Scrub passes that found the log damaged."},
			func() float64 { return float64(g.scrubErrors.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "talentledger_integrity_damaged",
			Help: "1 once the server found its store damaged and serves read-only."},
			func() float64 {
				if g.damagedErr() != nil {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "talentledger_witness_heads_total",
			Help: "Tree heads signed and appended to the witness since start."},
			func() float64 { return float64(g.headsSigned.Load()) }),
	)
}

// shutdown signs the last head, once the API has stopped taking commands.
func (g *guard) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.signHead(ctx); err != nil {
		g.log.Error("could not witness the final tree head", "err", err.Error())
	}
	g.close()
}

func (g *guard) close() {
	if g.witness != nil {
		g.witness.Close()
	}
}

// defaultWitness is where demo keeps its witness: beside the data
// directory, never inside it.
func defaultWitness(data string) string {
	return filepath.Clean(data) + ".witness.jsonl"
}

// configure shows the guard's status in GET /v1/audit/verify.
func (g *guard) configure(c *ledgerhttp.Config) {
	c.Integrity = g.status
	c.VerifiedSize = g.verifiedSize
}

// verifiedSize verifies what was appended since the last check and returns
// how many events are verified, so the API signs heads over those only.
func (g *guard) verifiedSize() (uint64, error) {
	if err := g.damagedErr(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checker.Extend(ctx, 0); err != nil {
		if errors.Is(err, integrity.ErrDamaged) {
			g.setDamaged(err)
		}
		return 0, err
	}
	return g.checker.Size(), nil
}
