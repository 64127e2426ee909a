package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/domain/keystore"
	"talentledger/eventstore"
	"talentledger/eventstore/esdb"
	"talentledger/eventstore/esdb/esdbtest"
	ledgerhttp "talentledger/http"
)

// process is a command of the binary run in the background.
type process struct {
	log  *syncBuffer
	stop func() int
}

// start runs args until stop, which returns the exit code.
func start(t *testing.T, args ...string) process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, io.Discard, log) }()
	var once sync.Once
	code := 0
	stop := func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return process{log: log, stop: stop}
}

// startReplica runs serve on EventStoreDB with args, ready to answer.
func startReplica(t *testing.T, store, principals string, args ...string) (apiClient, process) {
	t.Helper()
	dir := t.TempDir()
	p := start(t, append([]string{"serve", "--store", store, "--principals", principals, "--addr", "127.0.0.1:0",
		"--views", filepath.Join(dir, "views"), "--no-witness"}, args...)...)
	base := "http://" + logAddr(t, p.log, "serving")
	waitReady(t, base, 20*time.Second, p.log.String)
	return apiClient{t: t, base: base}, p
}

// waitReady waits until the server at base answers /readyz 200, failing
// the test with what log returns if it does not within the time given.
func waitReady(t *testing.T, base string, within time.Duration, log func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server at %s is not ready after %s; log:\n%s", base, within, log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logEvents returns the events on the server, in order.
func logEvents(t *testing.T, srv *esdbtest.Server) []eventstore.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := esdb.New(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var out []eventstore.Event
	it := store.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	for it.Next() {
		out = append(out, it.Event())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplicasShareAKeyService runs a key service and two replicas on one
// EventStoreDB that take their keys from it: what one registers the other
// reads, masked by role as ever; concurrent registrations of the same
// talents on both bind one key each; an erasure carried out on one shows
// erased on the other, and leaves no key of the talent in the service's
// directory; with the service down a registration is refused 503 and
// appends nothing; a bad token keeps a server from starting; and a server
// whose own key store lacks the log's keys warns at start.
func TestReplicasShareAKeyService(t *testing.T) {
	dir := t.TempDir()
	master, token, keys := filepath.Join(dir, "master.key"), filepath.Join(dir, "token"), filepath.Join(dir, "keys")
	if code, msg := runCmd(t, "keystore", "new-master-key", master); code != exitOK {
		t.Fatal(msg)
	}
	if code, msg := runCmd(t, "keystore", "new-token", token); code != exitOK {
		t.Fatal(msg)
	}
	// No key service without TLS (but on loopback, said so) or a token.
	for _, args := range [][]string{
		{"--keys", keys, "--master-key", master, "--listen", "127.0.0.1:0"},
		{"--keys", keys, "--master-key", master, "--listen", "127.0.0.1:0", "--insecure-loopback"},
		{"--keys", keys, "--master-key", master, "--token", token, "--listen", "0.0.0.0:0", "--insecure-loopback"},
	} {
		if code, msg := runCmd(t, append([]string{"keystore", "serve"}, args...)...); code != exitCantRun || strings.Count(strings.TrimSpace(msg), "\n") > 0 {
			t.Errorf("keystore serve %v: exit %d %q, want 2 with one line", args, code, msg)
		}
	}
	ks := start(t, "keystore", "serve", "--keys", keys, "--master-key", master, "--token", token, "--listen", "127.0.0.1:0", "--insecure-loopback")
	ksURL := "http://" + logAddr(t, ks.log, "key service serving")

	srv := esdbtest.New(t)
	tokens := map[string]string{}
	for _, id := range []string{"clerk", "approver", "auditor"} {
		tokens[id] = ledgerhttp.NewToken()
	}
	principals := writePrincipals(t, dir, tokens)
	viaService := []string{"--key-service", ksURL, "--key-service-token", token}

	// Misuse is one line and exit 2.
	for _, extra := range [][]string{{"--master-key", master}, {"--no-encryption"}, {"--keystore", keys}, {}} {
		args := append([]string{"serve", "--store", srv.URL(), "--principals", principals, "--no-witness", "--key-service", ksURL}, extra...)
		if code, msg := runCmd(t, args...); code != exitCantRun || strings.Count(strings.TrimSpace(msg), "\n") > 0 {
			t.Errorf("serve --key-service with %v: exit %d %q, want 2 with one line", extra, code, msg)
		}
	}
	// A bad token: the service refuses it, and a server does not start.
	bad := filepath.Join(dir, "bad-token")
	if err := os.WriteFile(bad, []byte(strings.Repeat("b", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(ksURL+"/v1/keys/bind", "application/json", strings.NewReader(`{"talent_id":"t00000000000000aa"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a request without a token: %d, want 401", resp.StatusCode)
	}
	if code, msg := runCmd(t, "serve", "--store", srv.URL(), "--principals", principals, "--no-witness", "--addr", "127.0.0.1:0",
		"--key-service", ksURL, "--key-service-token", bad); code != exitCantRun || !strings.Contains(msg, "token") {
		t.Errorf("serve with a bad token: exit %d %q", code, msg)
	}

	a, _ := startReplica(t, srv.URL(), principals, viaService...)
	b, _ := startReplica(t, srv.URL(), principals, viaService...)
	a.tokens, b.tokens = tokens, tokens

	// A registers; B reads, each role as it may.
	reg := a.must(201, "clerk", "POST", "/v1/talents", map[string]any{"name": secretName, "tier": "C", "employer": "平湖精密机械",
		"id_number": secretID, "bank_account": secretAccount})
	id, pos := reg["id"].(string), fmt.Sprint(reg["position"])
	for _, tc := range []struct{ who, id string }{{"clerk", secretID}, {"auditor", domain.Mask(secretID)}} {
		var v map[string]any
		_ = json.Unmarshal(b.get(tc.who, "/v1/talents/"+id+"?min_position="+pos), &v)
		if v["name"] != secretName || v["id_number"] != tc.id {
			t.Errorf("the other replica shows the %s name %v, ID number %v; want %s, %s", tc.who, v["name"], v["id_number"], secretName, tc.id)
		}
	}

	// 50 registrations of 25 talents (each command on both replicas at
	// once) bind one key per talent.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			c := []apiClient{a, b}[i%2]
			body, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("Talent %d", i/2), "tier": "B", "employer": "Pinghu Optics"})
			req, _ := http.NewRequest("POST", c.base+"/v1/talents", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tokens["clerk"])
			req.Header.Set("Idempotency-Key", fmt.Sprintf("reg-%d", i/2))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
				t.Errorf("registration %d: %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	created := map[string]int{}
	for _, ev := range logEvents(t, srv) {
		if name, _, _ := domain.ParseEventType(ev.Type); name == domain.TypeTalentKeyCreated {
			var k keystore.KeyRef
			if err := json.Unmarshal(ev.Data, &k); err != nil {
				t.Fatal(err)
			}
			created[k.TalentID]++
		}
	}
	wrapped, _, err := keystore.WrappedKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 26 {
		t.Errorf("%d talents have a key in the log, want 26", len(created))
	}
	for talent, n := range created {
		if n != 1 || len(wrapped[talent]) != 1 {
			t.Errorf("talent %s: %d keys named in the log, %d bound in the key service; want 1 and 1", talent, n, len(wrapped[talent]))
		}
	}
	secretKey := wrapped[id][0]

	// Erased through A: B shows it erased, the service holds no key.
	a.must(201, "clerk", "POST", "/v1/talents/"+id+"/erasure", map[string]any{"reason": "asked by the person", "document_ref": "DEL-1"})
	out := a.must(200, "approver", "POST", "/v1/talents/"+id+"/erasure/approve", map[string]any{})
	if out["erased"] != true {
		t.Fatalf("the erasure was not carried out: %v", out)
	}
	var v map[string]any
	_ = json.Unmarshal(b.get("clerk", "/v1/talents/"+id+"?min_position="+fmt.Sprint(out["position"])), &v)
	if v["name"] != domain.Erased || v["id_number"] != domain.Erased {
		t.Errorf("after the erasure the other replica shows name %v, ID number %v; want %s", v["name"], v["id_number"], domain.Erased)
	}
	if wrapped, dead, err := keystore.WrappedKeys(keys); err != nil || wrapped[id] != nil || !dead[id] {
		t.Errorf("after the erasure the key service holds the talent's key %v, destroyed %v (%v)", wrapped[id] != nil, dead[id], err)
	}
	if hits := grepTree(t, []string{string(secretKey), secretName, secretID, secretAccount}, keys); len(hits) > 0 {
		t.Errorf("the key service's directory after the erasure: %s", strings.Join(hits, "; "))
	}

	// A server with a key store of its own warns that it lacks the log's
	// keys: how many, and no personal data.
	_, own := startReplica(t, srv.URL(), principals, "--master-key", master, "--keystore", filepath.Join(dir, "own.keys"))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(own.log.String(), `"missing":25`) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning of 25 missing keys; log:\n%s", own.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(own.log.String(), secretName) || strings.Contains(own.log.String(), "Talent 1") {
		t.Error("the warning carries personal data")
	}
	own.stop()

	// The service down: a registration is refused 503, nothing appended;
	// a page of a talent still answers.
	if code := ks.stop(); code != exitOK {
		t.Fatalf("the key service exited %d; log:\n%s", code, ks.log.String())
	}
	before := len(logEvents(t, srv))
	code, body := a.do("clerk", "POST", "/v1/talents", map[string]any{"name": "Nobody", "tier": "B", "employer": "X"})
	var p struct{ Code string }
	if _ = json.Unmarshal(body, &p); code != http.StatusServiceUnavailable || p.Code != domain.EUNAVAILABLE {
		t.Errorf("a registration with the key service down: %d %s, want 503 unavailable", code, body)
	}
	if after := len(logEvents(t, srv)); after != before {
		t.Errorf("%d events appended with the key service down", after-before)
	}
	if code, body := b.do("auditor", "GET", "/v1/talents", nil); code != http.StatusOK {
		t.Errorf("the talents' list with the key service down: %d %s", code, body)
	}
}

// TestKeyServiceTokenFileReadableByOthersIsRefused: the token opens every
// data key at the key service, as the master key does; like the master
// key's, a token file others may read is refused, by the key service and
// by a server alike (both read it through readToken).
func TestKeyServiceTokenFileReadableByOthersIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(strings.Repeat("c", 64)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a token file of mode 0644 was read: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := readToken(path); err != nil || tok != strings.Repeat("c", 64) {
		t.Errorf("a token file of mode 0600: %q %v", tok, err)
	}
}
