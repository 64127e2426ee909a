package http_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// replica starts another API instance on e's store, as a second process
// of the build codec describes would be, with the same principals and
// clock. It is shut down, before e, when the test ends.
func (e *testEnv) replica(codec domain.Codec, log *slog.Logger) *testEnv {
	e.t.Helper()
	proj := projections.New(e.store, log, projections.WithCodec(codec))
	svc := domain.NewService(e.store, domain.WithLogger(log), domain.WithClock(e.clock.Now), domain.WithCodec(codec))
	var ps []ledgerhttp.Principal
	for _, p := range testPrincipals {
		ps = append(ps, ledgerhttp.Principal{ID: p.id, Roles: p.roles, TokenSHA256: ledgerhttp.HashToken(e.tokens[p.id])})
	}
	principals, err := ledgerhttp.NewPrincipals(ps)
	if err != nil {
		e.t.Fatal(err)
	}
	api := ledgerhttp.New(ledgerhttp.Config{Service: svc, Projector: proj, Principals: principals, Logger: log, MinPositionWait: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	r := &testEnv{t: e.t, dir: e.dir, store: e.store, svc: svc, proj: proj, api: api, tokens: e.tokens, ctx: ctx, cancel: cancel, clock: e.clock}
	r.srv = httptest.NewServer(api)
	r.runDone = make(chan struct{})
	go func() {
		defer close(r.runDone)
		if err := proj.Run(ctx); err != nil && ctx.Err() == nil {
			e.t.Errorf("replica's projector stopped: %v", err)
		}
	}()
	e.t.Cleanup(func() {
		r.srv.Close()
		cancel()
		<-r.runDone
	})
	return r
}

// Two replicas on one store during a rolling upgrade: the newer one writes
// GrantReviewed at version 2. The older one stops folding at that event
// with one ERROR, answers /readyz 503, refuses commands and keeps serving
// reads of what it folded; never a panic, never a skip. Upgraded, it
// resumes.
func TestRollingUpgrade(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	old := newTestServer(t, withLogger(log), withoutProjector())
	stopped := make(chan error, 1)
	old.runDone = make(chan struct{})
	go func() {
		defer close(old.runDone)
		stopped <- old.proj.Run(old.ctx)
	}()
	newer := domain.Codec{}.WithType(domain.TypeGrantReviewed, 2, func() domain.Event { return &domain.GrantReviewed{} },
		map[int]domain.Upcaster{1: func(b []byte) ([]byte, error) { return b, nil }})
	upgraded := old.replica(newer, log)

	old.setupProgram(quickProgram("bus", "5000.00"), "100000.00")
	talent := old.registerTalent("Zhou Min", "B")
	grant := old.apply(clerk1, talent, "bus", "5000.00", "2024-02-01")
	before := fetch[grantJSON](old.as(clerk1), "/v1/grants/"+grant)

	// The newer replica reviews the grant: GrantReviewed.v2 in the log.
	upgraded.review(grant, "2024-02-02")
	var at eventstore.Position
	for _, ev := range old.events() {
		if ev.Type == "GrantReviewed.v2" {
			at = ev.Position
		}
	}
	if at == eventstore.Start {
		t.Fatal("no GrantReviewed.v2 in the log")
	}
	pos := at.String()

	// The older replica stops at it.
	err := <-stopped
	want := "upgrade required: event GrantReviewed version 2 at position " + pos
	if !errors.Is(err, domain.ErrUpgradeRequired) || err.Error() != want {
		t.Fatalf("the older projector stopped with %v, want %q", err, want)
	}
	if n := strings.Count(string(logs.Bytes()), "level=ERROR msg=\""+want+"\""); n != 1 {
		t.Errorf("%d ERROR lines %q in the log:\n%s", n, want, string(logs.Bytes()))
	}
	if strings.Contains(string(logs.Bytes()), "panic") {
		t.Errorf("a panic in the log:\n%s", string(logs.Bytes()))
	}
	r := old.anonymous().get("/readyz")
	wantProblem(t, r, http.StatusServiceUnavailable, "unavailable")
	if !strings.Contains(string(r.body), want) {
		t.Errorf("/readyz does not say why: %s", r)
	}
	// Commands are refused, on every stream.
	r = old.as(clerk1).post("/v1/talents", map[string]any{"name": "Qian Li", "tier": "C", "employer": "E", "effective_date": "2024-02-03"})
	wantProblem(t, r, http.StatusServiceUnavailable, "unavailable")
	if !strings.Contains(string(r.body), "upgraded") {
		t.Errorf("the refusal does not say why: %s", r)
	}
	// Reads are served as of the event before.
	got := fetch[grantJSON](old.as(clerk1), "/v1/grants/"+grant)
	wantEqual(t, "the older replica's grant state", got.State, before.State)
	if p := old.proj.Position(); !p.Before(at) {
		t.Errorf("the older replica folded up to %s, not before %s", p, at)
	}
	// A point in time is for the record, so it waits for the log's head,
	// which the older replica never reaches: it says so at once, as the
	// commands' refusal does, not "retry" once its wait runs out.
	r = old.as(auditor).get("/v1/ledger/balances?as_of=2024-02-02")
	wantProblem(t, r, http.StatusServiceUnavailable, "unavailable")
	if !strings.Contains(string(r.body), "upgraded") {
		t.Errorf("the point-in-time refusal does not say why: %s", r)
	}
	// The newer replica is ready and sees the review.
	if r := upgraded.anonymous().get("/readyz"); r.status != http.StatusOK {
		t.Errorf("the newer replica: %s", r)
	}
	reviewed := fetch[grantJSON](upgraded.as(clerk1), "/v1/grants/"+grant)
	if reviewed.State == before.State {
		t.Errorf("the newer replica's grant is still %q", reviewed.State)
	}

	// The older replica is upgraded: a process of the newer build on the
	// same store. It catches up past the event and takes commands again.
	again := old.replica(newer, log)
	again.seen(old.lastPosition())
	// A read at the log's last position waits for the catch-up.
	wantEqual(t, "the upgraded replica's grant state", fetch[grantJSON](again.as(clerk1), "/v1/grants/"+grant).State, reviewed.State)
	if r := again.anonymous().get("/readyz"); r.status != http.StatusOK {
		t.Errorf("the upgraded replica: %s", r)
	}
	again.registerTalent("Qian Li", "C")
}
