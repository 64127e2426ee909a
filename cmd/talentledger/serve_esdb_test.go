package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"talentledger/eventstore/esdb/esdbtest"
	ledgerhttp "talentledger/http"
)

// TestServeOnEventStoreDB runs the real serve command with an esdb:// URL
// pointing at the in-process test server, given as a flag and as the
// environment variable: the API gets ready, answers an authenticated query
// and a command, reads its own write back, and serve returns cleanly once
// its context is cancelled. The command's events are on the server, and
// the embedded store's data directory was never created.
func TestServeOnEventStoreDB(t *testing.T) {
	for _, how := range []string{"flag", "environment"} {
		t.Run(how, func(t *testing.T) {
			srv := esdbtest.New(t)
			dir := t.TempDir()
			clerk, auditor := ledgerhttp.NewToken(), ledgerhttp.NewToken()
			principals := writePrincipals(t, dir, map[string]string{"clerk": clerk, "auditor": auditor})
			data := filepath.Join(dir, "data")
			args := []string{"serve", "--no-encryption", "--principals", principals, "--addr", "127.0.0.1:0", "--data", data, "--no-witness"}
			if how == "flag" {
				// A replica on EventStoreDB keeps its views beside it.
				args = append(args, "--store", srv.URL(), "--views", filepath.Join(dir, "replica.views"))
			} else {
				t.Setenv("TALENTLEDGER_STORE", srv.URL())
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var log syncBuffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, args, io.Discard, &log) }()
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					cancel()
					<-done
				}
			})
			api := "http://" + logAddr(t, &log, "serving")

			send := func(method, path, token, body string) (int, []byte) {
				t.Helper()
				req, err := http.NewRequest(method, api+path, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				return resp.StatusCode, b
			}

			// Ready once the read models have caught up with the server's log.
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, _ := send("GET", "/readyz", "", "")
				if code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz answered %d for 10 s; log:\n%s", code, log.String())
				}
				time.Sleep(10 * time.Millisecond)
			}

			if code, b := send("GET", "/v1/ledger/balances", "", ""); code != http.StatusUnauthorized {
				t.Errorf("GET /v1/ledger/balances without a token: %d %s, want 401", code, b)
			}
			code, b := send("GET", "/v1/ledger/balances", auditor, "")
			var tb struct {
				Total string `json:"total"`
			}
			if code != http.StatusOK || json.Unmarshal(b, &tb) != nil || tb.Total != "0.00" {
				t.Errorf("GET /v1/ledger/balances as auditor: %d %s, want 200 with total 0.00", code, b)
			}

			code, b = send("POST", "/v1/talents", clerk,
				`{"name":"Lin Qiao","permit_category":"A","tier":"B","employer":"Pinghu Precision Optics Co."}`)
			var a struct{ ID, Position string }
			if code != http.StatusCreated || json.Unmarshal(b, &a) != nil || a.ID == "" || a.Position == "" {
				t.Fatalf("POST /v1/talents as clerk: %d %s, want 201 with id and position", code, b)
			}
			code, b = send("GET", "/v1/talents/"+a.ID+"?min_position="+a.Position, clerk, "")
			var talent struct{ ID, Name string }
			if code != http.StatusOK || json.Unmarshal(b, &talent) != nil || talent.ID != a.ID || talent.Name != "Lin Qiao" {
				t.Errorf("GET /v1/talents/%s: %d %s, want the talent just registered", a.ID, code, b)
			}

			cancel()
			select {
			case code := <-done:
				stopped = true
				if code != exitOK {
					t.Fatalf("serve exited with %d; log:\n%s", code, log.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("serve did not return after its context was cancelled; log:\n%s", log.String())
			}
			if !strings.Contains(log.String(), `"msg":"shutting down"`) {
				t.Errorf("no shutdown in the log:\n%s", log.String())
			}

			// The talent was written to the server, not to an embedded store.
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("serve on EventStoreDB touched the data directory %s: %v", data, err)
			}
			if n := talentEvents(t, srv, a.ID); n != 1 {
				t.Errorf("%d events of talent %s on the server, want 1", n, a.ID)
			}
		})
	}
}

// talentEvents counts the events on srv in the talent's stream.
func talentEvents(t *testing.T, srv *esdbtest.Server, id string) int {
	t.Helper()
	n := 0
	for _, ev := range logEvents(t, srv) {
		if ev.Stream == "talent-"+id {
			n++
		}
	}
	return n
}
