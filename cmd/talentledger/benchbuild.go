package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// buildResults is what bench --events prints and writes as JSON.
type buildResults struct {
	Config map[string]any `json:"config,omitempty"`
	Events uint64         `json:"events"`
	Build  struct {
		Seconds      float64 `json:"seconds"`
		EventsPerSec float64 `json:"events_per_s"`
		Commands     uint64  `json:"commands"`
		Reused       bool    `json:"reused"`
	} `json:"build"`
	Read struct {
		Seconds      float64 `json:"seconds"`
		EventsPerSec float64 `json:"events_per_s"`
	} `json:"read_all"`
	Replay struct {
		Seconds      float64 `json:"seconds"`
		EventsPerSec float64 `json:"events_per_s"`
		HeapMiB      float64 `json:"heap_live_mib"`
	} `json:"replay"`
	// ColdStartFull is the first start, whose self-check walks the whole
	// log; ColdStart a later one, resuming from the checkpoint the first
	// left beside its witnessed head.
	ColdStartFull coldStartResult `json:"cold_start_full_check"`
	ColdStart     coldStartResult `json:"cold_start"`
	StoreMiB      float64         `json:"store_mib"`
	Machine       [2]machineLoad  `json:"machine"`
}

// forgetWitness removes the integrity checkpoint of a reused data set, whose
// witness the bench starts afresh.
func forgetWitness(storeDir string) error {
	store, err := pebble.Open(storeDir, pebble.WithLogger(quietLogger()))
	if err != nil {
		return err
	}
	err = store.PutMeta(checkpointMeta, nil)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	return err
}

type coldStartResult struct {
	Seconds  float64 `json:"seconds_to_ready"`
	RSSMiB   float64 `json:"rss_mib"`
	PeakMiB  float64 `json:"rss_peak_mib"`
	QueryP50 float64 `json:"query_p50_ms"`
}

// builderPrograms is how many programs, so budget streams, the data set's
// grants spread over: approvals on one budget are serialized, one WAL sync
// each.
const builderPrograms = 32

// runBuildBench builds a data set of c.events events in dir (or reuses
// one), then measures reading the log, replaying it into every read model,
// and a cold start of `talentledger serve` on it in a new process.
func runBuildBench(ctx context.Context, c benchConfig, dir string, stdout io.Writer) error {
	var res buildResults
	storeDir := filepath.Join(dir, "store")
	logf, err := os.OpenFile(filepath.Join(dir, "build.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	log := newLogger(logf)

	store, err := pebble.Open(storeDir, pebble.WithLogger(log))
	if err != nil {
		return err
	}
	last, err := store.LastPosition(ctx)
	if err != nil {
		store.Close()
		return err
	}
	switch {
	case last.Commit >= uint64(c.events):
		res.Build.Reused = true
		fmt.Fprintf(stdout, "reusing the %d events in %s\n", last.Commit, storeDir)
	case last.Commit > 0:
		store.Close()
		return fmt.Errorf("%s holds %d events, fewer than --events; use an empty directory", storeDir, last.Commit)
	default:
		fmt.Fprintf(stdout, "building %d events in %s with %d writers through the domain service…\n", c.events, storeDir, c.writers)
		start := time.Now()
		n, err := buildEvents(ctx, store, log, c, stdout)
		if err != nil {
			store.Close()
			return err
		}
		res.Build.Seconds = time.Since(start).Seconds()
		res.Build.Commands = n
	}
	last, _ = store.LastPosition(ctx)
	res.Events = last.Commit
	if !res.Build.Reused {
		res.Build.EventsPerSec = float64(res.Events) / res.Build.Seconds
		fmt.Fprintf(stdout, "built %d events (%d commands) in %.1fs: %.0f events/s\n", res.Events, res.Build.Commands,
			res.Build.Seconds, res.Build.EventsPerSec)
	}
	if err := store.Close(); err != nil {
		return err
	}
	res.StoreMiB = mib(dirSize(storeDir))

	// Read and replay in this process, on a store opened afresh.
	res.Machine[0] = readMachineLoad()
	store, err = pebble.Open(storeDir, pebble.WithLogger(log))
	if err != nil {
		return err
	}
	start := time.Now()
	n := 0
	it := store.ReadAll(ctx, eventstore.Start)
	for it.Next() {
		n++
	}
	err = it.Err()
	it.Close()
	if err != nil {
		store.Close()
		return err
	}
	res.Read.Seconds = time.Since(start).Seconds()
	res.Read.EventsPerSec = float64(n) / res.Read.Seconds
	fmt.Fprintf(stdout, "read the log (%d events) in %.2fs: %.0f events/s\n", n, res.Read.Seconds, res.Read.EventsPerSec)

	runtime.GC()
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			store.Close()
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			store.Close()
			return err
		}
		defer f.Close()
	}
	start = time.Now()
	proj, err := projections.Replay(ctx, store, nil)
	if c.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		store.Close()
		return err
	}
	res.Replay.Seconds = time.Since(start).Seconds()
	res.Replay.EventsPerSec = float64(proj.Progress().Applied) / res.Replay.Seconds
	runtime.GC()
	res.Replay.HeapMiB = mib(heapLive())
	runtime.KeepAlive(proj)
	fmt.Fprintf(stdout, "replayed %d events into every read model in %.2fs: %.0f events/s; live heap with the models %.0f MiB\n",
		proj.Progress().Applied, res.Replay.Seconds, res.Replay.EventsPerSec, res.Replay.HeapMiB)
	proj = nil
	if err := store.Close(); err != nil {
		return err
	}
	runtime.GC()

	// A fresh witness: the first start checks the whole log and leaves a
	// checkpoint; the second resumes from it.
	witness := filepath.Join(dir, "witness.jsonl")
	os.Remove(witness)
	if err := forgetWitness(storeDir); err != nil {
		return err
	}
	if err := coldStart(ctx, dir, storeDir, witness, "with the full self-check", res.Events, res.StoreMiB, &res.ColdStartFull, stdout); err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	if err := coldStart(ctx, dir, storeDir, witness, "from the checkpoint", res.Events, res.StoreMiB, &res.ColdStart, stdout); err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	res.Machine[1] = readMachineLoad()
	fmt.Fprintf(stdout, "machine: load average %.2f -> %.2f; CPU pressure %.1f%% -> %.1f%%, I/O pressure %.1f%% -> %.1f%% (avg60, /proc/pressure)\n",
		res.Machine[0].LoadAvg1, res.Machine[1].LoadAvg1, res.Machine[0].CPUPressure, res.Machine[1].CPUPressure, res.Machine[0].IOPressure, res.Machine[1].IOPressure)
	if c.jsonOut != "" {
		res.Config = benchConfigJSON(c)
		res.Config["events"] = c.events
		res.Config["writers"] = c.writers
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// buildEvents writes grants' whole journeys through the domain service
// from many writers at once, until the log holds c.events events, and
// returns how many commands it ran.
func buildEvents(ctx context.Context, store eventstore.Store, log *slog.Logger, c benchConfig, stdout io.Writer) (uint64, error) {
	principals, _, err := benchPrincipals()
	if err != nil {
		return 0, err
	}
	a := newApp(store, principals, nil, log)
	// The demo's no-stacking deduction reads the talents' grants from the
	// read models: run them while the demo loads.
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() { defer close(pdone); a.runProjections(pctx) }()
	err = loadDemo(ctx, a.svc)
	var talents [][]string
	if err == nil {
		talents, err = benchSetup(ctx, a.svc, builderPrograms, 1)
	}
	pcancel()
	<-pdone
	if err != nil {
		return 0, err
	}

	var pos atomic.Uint64
	var commands atomic.Uint64
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, c.writers)
	var wg sync.WaitGroup
	for w := range c.writers {
		wg.Go(func() {
			b := &builder{svc: a.svc, program: benchProgram(w % builderPrograms), talents: talents[w%builderPrograms], w: w}
			for bctx.Err() == nil && pos.Load() < uint64(c.events) {
				p, n, err := b.journey(bctx)
				commands.Add(uint64(n))
				if err != nil {
					if bctx.Err() == nil {
						errc <- err
						cancel()
					}
					return
				}
				for {
					cur := pos.Load()
					if p <= cur || pos.CompareAndSwap(cur, p) {
						break
					}
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(stdout, "  … %d events\n", pos.Load())
			}
		}
	}()
	wg.Wait()
	close(done)
	close(errc)
	if err := <-errc; err != nil {
		return commands.Load(), err
	}
	return commands.Load(), ctx.Err()
}

// builder writes grants for one program.
type builder struct {
	svc     *domain.Service
	program string
	talents []string
	w, n    int
}

var (
	buildClerk     = domain.Actor{Principal: "bench-clerk-1", Role: domain.RoleClerk}
	buildReviewer  = domain.Actor{Principal: "bench-reviewer-1", Role: domain.RoleReviewer}
	buildApprover  = domain.Actor{Principal: "bench-approver-1", Role: domain.RoleApprover}
	buildTreasurer = domain.Actor{Principal: "bench-treasurer-1", Role: domain.RoleTreasurer}
)

// journey takes one grant from application to payment: 7 events, 9 when
// it runs a public notice (every other grant). It returns the position of
// its last event and the commands it ran.
func (b *builder) journey(ctx context.Context) (uint64, int, error) {
	b.n++
	meta := func(a domain.Actor, doc string) domain.CommandMeta {
		return domain.CommandMeta{Actor: a, DocumentRef: doc}
	}
	n := 0
	step := func(what string, f func() (domain.Result, error)) (domain.Result, error) {
		n++
		res, err := f()
		if err != nil {
			return res, fmt.Errorf("%s: %w", what, err)
		}
		return res, nil
	}
	g, err := step("apply", func() (domain.Result, error) {
		return b.svc.ApplyGrant(ctx, domain.ApplyGrant{Meta: meta(buildClerk, fmt.Sprintf("BENCH-APP-%d-%d", b.w, b.n)),
			TalentID: b.talents[b.n%len(b.talents)], ProgramID: b.program, AmountRequested: money("1000")})
	})
	if err != nil {
		return 0, n, err
	}
	gid := g.ID
	if _, err := step("review", func() (domain.Result, error) {
		return b.svc.ReviewGrant(ctx, domain.ReviewGrant{Meta: meta(buildReviewer, ""), GrantID: gid, Decision: "approve", Note: "documents complete"})
	}); err != nil {
		return 0, n, err
	}
	if b.n%2 == 0 {
		if _, err := step("notice", func() (domain.Result, error) {
			return b.svc.OpenNotice(ctx, domain.NoticeCommand{Meta: meta(buildReviewer, "BENCH-NOTICE"), GrantID: gid})
		}); err != nil {
			return 0, n, err
		}
		if _, err := step("close notice", func() (domain.Result, error) {
			return b.svc.CloseNotice(ctx, domain.NoticeCommand{Meta: meta(buildReviewer, ""), GrantID: gid})
		}); err != nil {
			return 0, n, err
		}
	}
	if _, err := step("approve", func() (domain.Result, error) {
		return b.svc.ApproveGrant(ctx, domain.ApproveGrant{Meta: meta(buildApprover, "BENCH-APR"), GrantID: gid})
	}); err != nil {
		return 0, n, err
	}
	p, err := step("prepare", func() (domain.Result, error) {
		return b.svc.PreparePayment(ctx, domain.PreparePayment{Meta: meta(buildClerk, ""), GrantID: gid, Installment: 1})
	})
	if err != nil {
		return 0, n, err
	}
	if _, err := step("approve payment", func() (domain.Result, error) {
		return b.svc.ApprovePayment(ctx, domain.PaymentCommand{Meta: meta(buildApprover, ""), PaymentID: p.ID})
	}); err != nil {
		return 0, n, err
	}
	r, err := step("release", func() (domain.Result, error) {
		return b.svc.ReleasePayment(ctx, domain.PaymentCommand{Meta: meta(buildTreasurer, ""), PaymentID: p.ID,
			BankReference: fmt.Sprintf("BENCH-BANK-%d-%d", b.w, b.n)})
	})
	if err != nil {
		return 0, n, err
	}
	return r.Position.Commit, n, nil
}

// coldStart runs `talentledger serve` on the data set in a new process and
// measures the time until /readyz answers 200, and its memory then.
func coldStart(ctx context.Context, dir, storeDir, witness, label string, events uint64, storeMiB float64, res *coldStartResult, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	token := ledgerhttp.NewToken()
	pfile := filepath.Join(dir, "principals.json")
	b, _ := json.Marshal(map[string]any{"principals": []ledgerhttp.Principal{
		{ID: "auditor", Roles: []string{domain.RoleAuditor}, TokenSHA256: ledgerhttp.HashToken(token)}}})
	if err := os.WriteFile(pfile, b, 0o600); err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "audit-key.pem")
	if _, err := loadOrCreateAuditKey(keyFile); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "serve", "--data", storeDir, "--principals", pfile, "--addr", "127.0.0.1:0",
		"--witness", witness, "--audit-key", keyFile)
	cmd.Env = append(os.Environ(), "TALENTLEDGER_METRICS_ADDR=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if !sent && json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "serving" {
				addrc <- l.Addr
				sent = true
			}
		}
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case <-time.After(5 * time.Minute):
		return errors.New("the server never said where it serves")
	}
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 10*time.Minute {
			return errors.New("the server never became ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.Seconds = time.Since(start).Seconds()
	pid := cmd.Process.Pid
	res.RSSMiB = mib(procStatus(pid, "VmRSS"))
	res.PeakMiB = mib(procStatus(pid, "VmHWM"))
	// A few queries, to see the server answers from the rebuilt models.
	var h hist
	for i := range 200 {
		path := fmt.Sprintf("/v1/programs/%s/budgets/%d", benchProgram(i%builderPrograms), benchFiscalYear())
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		t := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		h.record(time.Since(t))
	}
	res.QueryP50 = histCounts(h.snapshot()).quantile(0.5)
	fmt.Fprintf(stdout, "cold start of serve on %d events %s: ready in %.2fs; RSS %.0f MiB (peak %.0f MiB); budget query p50 %.2f ms; store on disk %.0f MiB\n",
		events, label, res.Seconds, res.RSSMiB, res.PeakMiB, res.QueryP50, storeMiB)
	return nil
}

func dirSize(dir string) uint64 {
	var n uint64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += uint64(info.Size())
		}
		return nil
	})
	return n
}
