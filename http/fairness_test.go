package http

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
)

// fairServer is an API on loopback over an in-memory store whose read
// models are running, with two clerks: a flooder and a bystander.
func fairServer(t *testing.T, cfg Config) (s *Server, srv *httptest.Server, flooder, bystander string) {
	t.Helper()
	st := memstore.New()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	proj := projections.New(st, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(ctx) }()
	flooder, bystander = NewToken(), NewToken()
	ps, err := NewPrincipals([]Principal{
		{ID: "flooder", Roles: []string{domain.RoleClerk}, TokenSHA256: HashToken(flooder)},
		{ID: "bystander", Roles: []string{domain.RoleClerk}, TokenSHA256: HashToken(bystander)},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Service, cfg.Projector, cfg.Principals, cfg.Logger = domain.NewService(st), proj, ps, log
	s = New(cfg)
	srv = httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); cancel(); <-done; st.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for !proj.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the read models never became ready")
		}
		time.Sleep(time.Millisecond)
	}
	return s, srv, flooder, bystander
}

// rawRequest writes a request on a new connection and reports the status
// line of the answer, or "closed", on the channel. The caller closes the
// connection.
func rawRequest(t *testing.T, addr, req string, status chan<- string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	go func() {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			line = "closed"
		}
		status <- strings.TrimSpace(line)
	}()
	return c
}

// settle waits until want answers have come, each a 503, and cond holds.
func settle(t *testing.T, status <-chan string, want int, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for got := 0; got < want || !cond(); {
		select {
		case line := <-status:
			got++
			if !strings.Contains(line, " 503 ") {
				t.Fatalf("a request beyond the flooder's share: %q, want 503", line)
			}
			if got > want {
				t.Fatalf("more than %d requests refused", want)
			}
		case <-deadline:
			t.Fatalf("%d of %d refusals after 10 s", got, want)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestOnePrincipalCannotStarveOthers floods the server, at its global
// limit, with one principal's queries waiting for a position never
// reached and commands whose bodies never arrive, as the attack did with
// an auditor's token. The flooder keeps only its shares; everyone else is
// served, and /healthz and /readyz answer 200.
func TestOnePrincipalCannotStarveOthers(t *testing.T) {
	const global = 8
	s, srv, flooder, bystander := fairServer(t, Config{MaxInFlight: global, MaxInFlightPerPrincipal: 3,
		MaxWaitingPerPrincipal: 2, MaxUploadsPerPrincipal: 2, MinBodyRate: -1, MinPositionWait: time.Minute})
	addr := srv.Listener.Addr().String()
	status := make(chan string, 2*global)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range global {
		conns = append(conns, rawRequest(t, addr, "GET /v1/programs?min_position=999999999 HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer "+flooder+"\r\n\r\n", status))
	}
	settle(t, status, global-2, func() bool { return s.shares.held("flooder", placeWaiting) == 2 })
	for range global {
		conns = append(conns, rawRequest(t, addr, "POST /v1/talents HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer "+flooder+
			"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"na", status))
	}
	settle(t, status, global-2, func() bool { return s.shares.held("flooder", placeUpload) == 2 })

	client := srv.Client()
	for i := range 10 {
		for _, rq := range []struct {
			method, path, body string
			want               int
		}{
			{"GET", "/healthz", "", http.StatusOK},
			{"GET", "/readyz", "", http.StatusOK},
			{"GET", "/v1/programs", "", http.StatusOK},
			{"GET", "/v1/programs?min_position=0", "", http.StatusOK},
			{"POST", "/v1/talents", `{"name": "Lars Nilsson", "tier": "A", "employer": "X"}`, http.StatusCreated},
		} {
			req, err := http.NewRequest(rq.method, srv.URL+rq.path, strings.NewReader(rq.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+bystander)
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != rq.want {
				t.Fatalf("round %d: %s %s during the flood: %d %s", i, rq.method, rq.path, res.StatusCode, b)
			}
		}
	}
	select {
	case line := <-status:
		t.Errorf("a flooding request held by the server ended: %q", line)
	default:
	}
}

// TestSlowBodyIsCut: a body that stops arriving is cut with 408 once it
// falls behind the minimum rate, and its places are given back.
func TestSlowBodyIsCut(t *testing.T) {
	s, srv, flooder, _ := fairServer(t, Config{MinBodyRate: 1000})
	s.bodyGrace = 50 * time.Millisecond
	status := make(chan string, 1)
	c := rawRequest(t, srv.Listener.Addr().String(), "POST /v1/talents HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer "+flooder+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\": ", status)
	defer c.Close()
	select {
	case line := <-status:
		if !strings.Contains(line, " 408 ") {
			t.Fatalf("a stalled body: %q, want 408", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled body was not cut")
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.shares.held("flooder", placeUpload) != 0 || s.shares.held("flooder", placeInFlight) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled request's places were not given back")
		}
		time.Sleep(time.Millisecond)
	}
}
