package http_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore/memstore"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// bareServer is an API over an empty in-memory store with one clerk, for
// tests of the transport: no projector runs.
func bareServer(t *testing.T, cfg ledgerhttp.Config) (*ledgerhttp.Server, string) {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	token := ledgerhttp.NewToken()
	ps, err := ledgerhttp.NewPrincipals([]ledgerhttp.Principal{{ID: "clerk", Roles: []string{domain.RoleClerk}, TokenSHA256: ledgerhttp.HashToken(token)}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Service, cfg.Projector, cfg.Principals, cfg.Logger = domain.NewService(st), projections.New(st, log), ps, log
	return ledgerhttp.New(cfg), token
}

func serve(h http.Handler, method, path string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestCORSIsOffUnlessConfigured(t *testing.T) {
	preflight := map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization, content-type"}
	off, _ := bareServer(t, ledgerhttp.Config{})
	for _, method := range []string{"OPTIONS", "GET"} {
		rec := serve(off, method, "/v1/programs", preflight)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("%s without CORS configured: Access-Control-Allow-Origin %q", method, got)
		}
		if method == "OPTIONS" && rec.Code < 400 {
			t.Errorf("preflight without CORS configured answered %d", rec.Code)
		}
	}

	on, token := bareServer(t, ledgerhttp.Config{CORSOrigins: []string{"https://app.example", "https://other.example/"}})
	rec := serve(on, "OPTIONS", "/v1/programs", preflight)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("preflight from an allowed origin: %d, want 204", rec.Code)
	}
	h := rec.Header()
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  "https://app.example",
		"Access-Control-Allow-Methods": "GET, POST",
		"Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key, X-Request-ID, X-Correlation-ID",
		"X-Content-Type-Options":       "nosniff",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("preflight %s = %q, want %q", k, got, want)
		}
	}
	if h.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials allowed: tokens go in the Authorization header, never cookies")
	}
	rec = serve(on, "GET", "/v1/programs", map[string]string{"Origin": "https://other.example", "Authorization": "Bearer " + token})
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://other.example" {
		t.Errorf("GET from an allowed origin: Access-Control-Allow-Origin %q", got)
	}
	// The preflight is answered before authentication, the request itself
	// is not.
	rec = serve(on, "GET", "/v1/programs", map[string]string{"Origin": "https://app.example"})
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("GET without a token from an allowed origin: %d %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	for _, origin := range []string{"https://evil.example", "https://app.example.evil", "null", "http://app.example"} {
		pf := map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST"}
		rec := serve(on, "OPTIONS", "/v1/programs", pf)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" || rec.Code == http.StatusNoContent {
			t.Errorf("preflight from %s: %d, Access-Control-Allow-Origin %q", origin, rec.Code, got)
		}
	}
}

// TestInFlightCap fills the server's one place with a command whose body
// never arrives, then checks that the next request is refused with 503 at
// once, that liveness and readiness are still answered as before, and that
// the place is freed afterwards.
func TestInFlightCap(t *testing.T) {
	api, token := bareServer(t, ledgerhttp.Config{MaxInFlight: 1, MinPositionWait: time.Minute})
	ready := serve(api, "GET", "/readyz", nil).Code
	var body *io.PipeWriter
	done := make(chan int)
	upload := func() {
		var pr *io.PipeReader
		pr, body = io.Pipe()
		req := httptest.NewRequest("POST", "/v1/talents", pr)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		go func() {
			api.ServeHTTP(rec, req)
			done <- rec.Code
		}()
	}
	upload()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := serve(api, "GET", "/openapi.json", nil)
		if rec.Code == http.StatusServiceUnavailable {
			if rec.Header().Get("Retry-After") == "" || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("503 without Retry-After or problem+json: %v", rec.Header())
			}
			break
		}
		if rec.Code != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("GET /openapi.json: %d while the server's one place should be taken", rec.Code)
		}
		select {
		case code := <-done:
			// This probe held the place when the upload came.
			if code != http.StatusServiceUnavailable {
				t.Fatalf("the upload ended with %d", code)
			}
			upload()
		case <-time.After(time.Millisecond):
		}
	}
	if rec := serve(api, "GET", "/healthz", nil); rec.Code != http.StatusOK {
		t.Errorf("healthz at the cap: %d", rec.Code)
	}
	if rec := serve(api, "GET", "/readyz", nil); rec.Code != ready {
		t.Errorf("readyz at the cap: %d, before %d", rec.Code, ready)
	}
	body.CloseWithError(io.ErrUnexpectedEOF)
	<-done
	if rec := serve(api, "GET", "/openapi.json", nil); rec.Code != http.StatusOK {
		t.Errorf("after the request ended: %d", rec.Code)
	}
}

// TestFileShadowsLogPrincipal: when the principals file names an ID that a
// principal of the log has too (the file edited afterwards), only the
// file's token is that principal: one ID is never two people.
func TestFileShadowsLogPrincipal(t *testing.T) {
	st := memstore.New()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	proj := projections.New(st, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	svc := domain.NewService(st)
	var tokens []string
	for _, id := range []string{"li", "wang"} {
		tok, _, last := enrollVia(t, svc, id, domain.RoleClerk)
		if err := proj.WaitFor(ctx, last, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	fileToken := ledgerhttp.NewToken()
	ps, err := ledgerhttp.NewPrincipals([]ledgerhttp.Principal{{ID: "li", Roles: []string{domain.RoleAuditor}, TokenSHA256: ledgerhttp.HashToken(fileToken)}})
	if err != nil {
		t.Fatal(err)
	}
	api := ledgerhttp.New(ledgerhttp.Config{Service: svc, Projector: proj, Principals: ps, Logger: log})
	for _, c := range []struct {
		token string
		want  int
	}{{tokens[0], http.StatusUnauthorized}, {tokens[1], http.StatusOK}, {fileToken, http.StatusOK}} {
		if rec := serve(api, "GET", "/v1/programs", map[string]string{"Authorization": "Bearer " + c.token}); rec.Code != c.want {
			t.Errorf("GET /v1/programs: %d, want %d", rec.Code, c.want)
		}
	}
}
