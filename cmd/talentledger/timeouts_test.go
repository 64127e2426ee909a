package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore/memstore"
	ledgerhttp "talentledger/http"
)

// TestServerTimeoutsFire runs the server with one timeout short and the
// others long, and shows that timeout ending a connection that would
// otherwise stay open. Only that it fires is checked, never when.
func TestServerTimeoutsFire(t *testing.T) {
	const short, long = 200 * time.Millisecond, time.Minute
	token := ledgerhttp.NewToken()
	for _, c := range []struct {
		name     string
		timeouts serverTimeouts
		// send writes to the connection, reading what it needs to.
		send func(t *testing.T, c net.Conn, r *bufio.Reader)
		// want is the status line the timeout answers with; "" when it
		// closes the connection without an answer.
		want string
	}{
		{"read header", serverTimeouts{readHeader: short, read: long, write: long, idle: long}, func(t *testing.T, c net.Conn, r *bufio.Reader) {
			write(t, c, "GET /healthz HTTP/1.1\r\nHost: ledger\r\n") // the headers never end
		}, ""},
		{"read", serverTimeouts{readHeader: long, read: short, write: long, idle: long}, func(t *testing.T, c net.Conn, r *bufio.Reader) {
			write(t, c, "POST /v1/talents HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer "+token+
				"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\": ") // the body never ends
		}, "408"},
		{"write", serverTimeouts{readHeader: long, read: long, write: short, idle: long}, func(t *testing.T, c net.Conn, r *bufio.Reader) {
			// The answer, a 504 after a 1 s wait for a position never
			// reached, comes after the write deadline.
			write(t, c, "GET /v1/programs?min_position=999999 HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer "+token+"\r\n\r\n")
		}, ""},
		{"idle", serverTimeouts{readHeader: long, read: long, write: long, idle: short}, func(t *testing.T, c net.Conn, r *bufio.Reader) {
			write(t, c, "GET /healthz HTTP/1.1\r\nHost: ledger\r\n\r\n")
			res, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || res.Close {
				t.Fatalf("first request on the connection: %d, close %v", res.StatusCode, res.Close)
			}
			// Then nothing: the connection is idle.
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := serveWithTimeouts(t, token, c.timeouts)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			c.send(t, conn, r)
			// Without the timeout the server would wait for the client
			// for a minute or more; the guard only keeps a broken test
			// from hanging.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			line, err := r.ReadString('\n')
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the %s timeout never fired", c.name)
			}
			switch {
			case c.want == "" && line != "":
				t.Errorf("the %s timeout: answered %q, want the connection closed", c.name, line)
			case c.want != "" && !strings.Contains(line, " "+c.want+" "):
				t.Errorf("the %s timeout: answered %q (%v), want %s", c.name, line, err, c.want)
			}
		})
	}
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// serveWithTimeouts runs the API with the timeouts, no minimum body rate
// (so only the server's read timeout cuts a body) and a 1 s wait for
// ?min_position, and returns its address. It stops when the test ends.
func serveWithTimeouts(t *testing.T, token string, timeouts serverTimeouts) string {
	t.Helper()
	ps, err := ledgerhttp.NewPrincipals([]ledgerhttp.Principal{{ID: "clerk", Roles: []string{domain.RoleClerk}, TokenSHA256: ledgerhttp.HashToken(token)}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := newAppWith(memstore.New(), ps, nil, log, newMetrics(), func(c *ledgerhttp.Config) {
		c.MinBodyRate, c.ReadTimeout, c.MinPositionWait = -1, timeouts.read, time.Second
	})
	a.timeouts = timeouts
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, "127.0.0.1:0", func(addr net.Addr) { addrc <- addr.String() }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return ""
}

func TestLimitFlagsRefuseZero(t *testing.T) {
	dir := t.TempDir()
	principals := writePrincipals(t, dir, map[string]string{"clerk": ledgerhttp.NewToken()})
	for _, args := range [][]string{
		{"--max-in-flight-per-principal", "0"}, {"--max-waiting-per-principal", "0"}, {"--max-uploads-per-principal", "0"},
		{"--min-body-rate", "0"}, {"--read-header-timeout", "0s"}, {"--read-timeout", "0s"}, {"--write-timeout", "0s"}, {"--idle-timeout", "0s"},
	} {
		wantOneLine(t, append([]string{"serve", "--data", dir + "/data", "--principals", principals, "--addr", "127.0.0.1:0"}, args...), args[0])
	}
}
