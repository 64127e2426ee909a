package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/domain/integrity"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
)

// startGuarded serves an app on store with guard g and returns its base URL.
func startGuarded(t *testing.T, store eventstore.Store, g *guard) string {
	t.Helper()
	ps, err := ledgerhttp.NewPrincipals([]ledgerhttp.Principal{
		{ID: "a", Roles: []string{domain.RoleAuditor}, TokenSHA256: ledgerhttp.HashToken("tok-auditor")},
		{ID: "c", Roles: []string{domain.RoleClerk}, TokenSHA256: ledgerhttp.HashToken("tok-clerk")},
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := newMetrics()
	a := newAppWith(store, ps, g.key, log, m, nil, g.configure)
	a.guard = g
	g.registerMetrics(m)
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, "127.0.0.1:0", func(ad net.Addr) { addr <- ad.String() }) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case ad := <-addr:
		return "http://" + ad
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return ""
}

func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestAllowDamaged starts on a damaged directory with --allow-damaged:
// reads are served and marked, writes refused, /readyz answers 503.
func TestAllowDamaged(t *testing.T) {
	d := buildWitnessedDir(t).clone(t)
	db := rawDB(t, d.data)
	pos, rec := findRecord(t, db, `"Elena Petrova"`)
	rec[len(rec)/2] ^= 1
	db.Set(logKey(pos), rec, nil)
	db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := pebble.Open(d.data, pebble.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	// The whole log is checked: from its checkpoint, a start would check
	// only a random sample of the events before it.
	g, err := newGuard(context.Background(), store, integrityConfig{witness: d.witness, headInterval: time.Hour, allowDamaged: true,
		fullCheck: true}, d.key, log)
	if err != nil {
		t.Fatal(err)
	}
	if g.damagedErr() == nil {
		t.Fatal("a damaged store passed its self-check")
	}
	base := startGuarded(t, store, g)
	resp, _ := get(t, base+"/readyz", "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Talentledger-Integrity") == "" {
		t.Errorf("/readyz: %s, marked %q; want 503, marked", resp.Status, resp.Header.Get("Talentledger-Integrity"))
	}
	resp, body := get(t, base+"/v1/audit/verify", "tok-auditor")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Talentledger-Integrity") == "" || !strings.Contains(body, `"read_only":true`) {
		t.Errorf("/v1/audit/verify: %s %s", resp.Status, body)
	}
	req, _ := http.NewRequest("POST", base+"/v1/talents", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer tok-clerk")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"unavailable"`) {
		t.Errorf("a command on a damaged ledger: %s %s; want 503 unavailable", resp.Status, b)
	}
}

// tamperingStore changes the data of the event at position at once on is
// set, as a disk rotting under a running server would.
type tamperingStore struct {
	eventstore.Store
	at uint64
	on atomic.Bool
}

func (s *tamperingStore) ReadAll(ctx context.Context, after eventstore.Position) eventstore.Iterator {
	return &tamperingIter{Iterator: s.Store.ReadAll(ctx, after), s: s}
}

type tamperingIter struct {
	eventstore.Iterator
	s *tamperingStore
}

func (it *tamperingIter) Event() eventstore.Event {
	e := it.Iterator.Event()
	if it.s.on.Load() && e.Position.Commit == it.s.at {
		e.Data = append([]byte(nil), e.Data...)
		e.Data[len(e.Data)/2] ^= 1
	}
	return e
}

// TestScrubTurnsReadOnly lets the scrub complete a pass, damages an event
// under it, and expects the next pass to find it and turn the server
// read-only.
func TestScrubTurnsReadOnly(t *testing.T) {
	d := buildWitnessedDir(t).clone(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ps, err := pebble.Open(d.data, pebble.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	store := &tamperingStore{Store: ps, at: 42}
	g, err := newGuard(context.Background(), store, integrityConfig{witness: d.witness, headInterval: time.Hour, scrubRate: 1 << 20}, d.key, log)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { g.runScrub(ctx) })
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, "a scrub pass", func() bool { return g.lastScrubDone.Load() != 0 })
	store.on.Store(true)
	waitFor(t, "the scrub to find the damage", func() bool { return g.damagedErr() != nil })
	if err := g.damagedErr(); !strings.Contains(err.Error(), "position 42 ") || g.scrubErrors.Load() != 1 {
		t.Errorf("scrub: %v, %d errors; want position 42 named, one error", err, g.scrubErrors.Load())
	}
	st, _ := json.Marshal(g.status())
	if !strings.Contains(string(st), `"read_only":true`) || !strings.Contains(string(st), `"passes_completed":1`) {
		t.Errorf("status: %s", st)
	}
}

// waitFor polls cond for up to a minute: a bound, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 6000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// TestWitnessURL posts each head to the remote witness.
func TestWitnessURL(t *testing.T) {
	var mu sync.Mutex
	var got []integrity.Head
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h integrity.Head
		if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&h) != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, h)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	d := buildWitnessedDir(t).clone(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := pebble.Open(d.data, pebble.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	g, err := newGuard(context.Background(), store, integrityConfig{witness: d.witness, witnessURL: srv.URL, headInterval: time.Hour}, d.key, log)
	if err != nil {
		t.Fatal(err)
	}
	appendChainedEvent(t, store)
	if err := g.signHead(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.close()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].TreeSize != d.events+1 {
		t.Fatalf("remote witness got %+v; want one head of %d events", got, d.events+1)
	}
	if err := auditproof.VerifyTreeHead(d.key.Public().(ed25519.PublicKey), got[0].TreeHead); err != nil {
		t.Error(err)
	}
}

func appendChainedEvent(t *testing.T, s eventstore.Store) {
	t.Helper()
	id := eventstore.NewEventID()
	data := []byte(`{}`)
	md := eventstore.Metadata{Principal: "test"}
	md.Hash = domain.ChainHash("", "extra-1", 0, id, "Noted", data, md)
	if _, err := s.Append(context.Background(), "extra-1", eventstore.NoStream, eventstore.EventData{ID: id, Type: "Noted", Data: data, Metadata: md}); err != nil {
		t.Fatal(err)
	}
}
