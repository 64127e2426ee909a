package http_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore/memstore"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// recordingObserver keeps what the server reports.
type recordingObserver struct {
	mu       sync.Mutex
	requests []observedRequest
	replays  []string
}

type observedRequest struct {
	route  string
	status int
}

func (o *recordingObserver) Request(route string, status int, elapsed time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if elapsed < 0 {
		route += " (negative duration)"
	}
	o.requests = append(o.requests, observedRequest{route, status})
}

func (o *recordingObserver) IdempotentReplay(route string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.replays = append(o.replays, route)
}

func (o *recordingObserver) last() observedRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requests[len(o.requests)-1]
}

func TestObserverSeesRouteTemplatesStatusesAndReplays(t *testing.T) {
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	proj := projections.New(store, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	token := ledgerhttp.NewToken()
	principals, err := ledgerhttp.NewPrincipals([]ledgerhttp.Principal{
		{ID: "clerk", Roles: []string{domain.RoleClerk}, TokenSHA256: ledgerhttp.HashToken(token)}})
	if err != nil {
		t.Fatal(err)
	}
	obs := &recordingObserver{}
	svc := domain.NewService(store, domain.WithLogger(log))
	srv := httptest.NewServer(ledgerhttp.New(ledgerhttp.Config{Service: svc, Projector: proj, Principals: principals,
		Logger: log, Observer: obs}))
	t.Cleanup(srv.Close)

	send := func(method, path, key, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	for _, c := range []struct {
		method, path string
		want         observedRequest
	}{
		{"GET", "/v1/grants/g0123456789abcdef", observedRequest{"GET /v1/grants/{id}", http.StatusNotFound}},
		{"GET", "/v1/talents/t0123456789abcdef", observedRequest{"GET /v1/talents/{id}", http.StatusNotFound}},
		{"GET", "/no/such/path/t0123456789abcdef", observedRequest{"unmatched", http.StatusNotFound}},
		{"GET", "/healthz", observedRequest{"GET /healthz", http.StatusOK}},
	} {
		send(c.method, c.path, "", "")
		if got := obs.last(); got != c.want {
			t.Errorf("%s %s: observed %+v, want %+v", c.method, c.path, got, c.want)
		}
	}

	body := `{"name":"Ada Lovelace","tier":"B","employer":"Pinghu Optics"}`
	for i, wantReplays := range []int{0, 1, 2} {
		resp := send("POST", "/v1/talents", "talent-ada", body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("attempt %d: status %d", i, resp.StatusCode)
		}
		obs.mu.Lock()
		replays := append([]string(nil), obs.replays...)
		obs.mu.Unlock()
		if len(replays) != wantReplays {
			t.Fatalf("after attempt %d: %d replays observed, want %d", i, len(replays), wantReplays)
		}
		for _, r := range replays {
			if r != "POST /v1/talents" {
				t.Errorf("replay observed on route %q", r)
			}
		}
		if got, want := obs.last(), (observedRequest{"POST /v1/talents", http.StatusCreated}); got != want {
			t.Errorf("attempt %d: observed %+v, want %+v", i, got, want)
		}
	}
}
