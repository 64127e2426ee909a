package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"talentledger/cmd/internal/loadgen"
	"talentledger/eventstore"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logAddr waits for the JSON log line with msg and returns its addr.
func logAddr(t *testing.T, log *syncBuffer, msg string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(log.String(), "\n") {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
				return l.Addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q log line; log:\n%s", msg, log.String())
	return ""
}

func writePrincipals(t *testing.T, dir string, ps map[string]string) string {
	t.Helper()
	var f struct {
		Principals []ledgerhttp.Principal `json:"principals"`
	}
	for id, tok := range ps {
		role := strings.TrimRight(id, "0123456789")
		f.Principals = append(f.Principals, ledgerhttp.Principal{ID: id, Roles: []string{role}, TokenSHA256: ledgerhttp.HashToken(tok)})
	}
	b, _ := json.Marshal(f)
	path := filepath.Join(dir, "principals.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeExportsMetricsOnItsOwnAddress(t *testing.T) {
	dir := t.TempDir()
	clerk := ledgerhttp.NewToken()
	principals := writePrincipals(t, dir, map[string]string{"clerk": clerk})
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--no-encryption", "--data", filepath.Join(dir, "data"), "--principals", principals,
			"--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--no-witness"}, io.Discard, &log)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited with %d; log:\n%s", code, log.String())
		}
	})
	api := "http://" + logAddr(t, &log, "serving")
	metricsURL := "http://" + logAddr(t, &log, "serving metrics") + "/metrics"

	send := func(method, path, key, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+clerk)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	body := `{"name":"Ada Lovelace","tier":"B","employer":"Pinghu Optics"}`
	for range 3 {
		if code := send("POST", "/v1/talents", "k1", body); code != http.StatusCreated {
			t.Fatalf("register: %d", code)
		}
	}
	if code := send("GET", "/v1/talents/t0123456789abcdef", "", ""); code != http.StatusNotFound {
		t.Fatalf("unknown talent: %d", code)
	}
	// The API does not serve the metrics, and the metrics listener nothing
	// else.
	if code := send("GET", "/metrics", "", ""); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the API address: %d", code)
	}
	if resp, err := http.Get(strings.TrimSuffix(metricsURL, "/metrics") + "/v1/programs"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/programs on the metrics address: %d", resp.StatusCode)
	}

	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f := families[name]
		if f == nil {
			t.Fatalf("no metric %s", name)
		}
	next:
		for _, m := range f.Metric {
			for k, v := range labels {
				if loadgen.LabelValue(m, k) != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"talentledger_http_requests_total", map[string]string{"route": "POST /v1/talents", "status": "201"}, 3},
		{"talentledger_http_requests_total", map[string]string{"route": "GET /v1/talents/{id}", "status": "404"}, 1},
		{"talentledger_http_requests_total", map[string]string{"route": "unmatched", "status": "404"}, 1},
		{"talentledger_http_request_duration_seconds", map[string]string{"route": "POST /v1/talents"}, 3},
		{"talentledger_idempotent_replays_total", map[string]string{"route": "POST /v1/talents"}, 2},
		// The talent, in one append: its event carries the answer.
		{"talentledger_store_append_duration_seconds", map[string]string{"result": "ok"}, 1},
		{"talentledger_projection_resubscribes_total", nil, 0},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value("talentledger_store_batch_events", nil); got < 1 || got > 2 {
		t.Errorf("%v group-commit batches observed for two appends", got)
	}
	for _, name := range []string{"talentledger_projection_lag_events", "talentledger_projection_lag_seconds",
		"talentledger_projection_ready", "talentledger_projection_events_applied_total", "go_goroutines", "process_resident_memory_bytes"} {
		value(name, nil)
	}
	for _, m := range families["talentledger_http_requests_total"].Metric {
		if r := loadgen.LabelValue(m, "route"); strings.Contains(r, "t0123456789abcdef") {
			t.Errorf("a raw path became a route label: %q", r)
		}
	}
}

func TestLagCountsPositionsAndTimeOnlyWhileBehind(t *testing.T) {
	now := time.Date(2024, 3, 1, 9, 0, 10, 0, time.UTC)
	pos := func(n uint64) eventstore.Position { return eventstore.Position{Commit: n, Prepare: n} }
	for _, c := range []struct {
		name        string
		p           projections.Progress
		last        eventstore.Position
		wantBehind  uint64
		wantSeconds float64
	}{
		{"caught up", projections.Progress{Position: pos(7), LastRecorded: now.Add(-time.Hour)}, pos(7), 0, 0},
		{"behind", projections.Progress{Position: pos(7), LastRecorded: now.Add(-3 * time.Second)}, pos(10), 3, 3},
		{"nothing applied yet", projections.Progress{}, pos(5), 5, 0},
		{"recorded in the future", projections.Progress{Position: pos(1), LastRecorded: now.Add(time.Second)}, pos(2), 1, 0},
	} {
		behind, seconds := lag(c.p, c.last, now)
		if behind != c.wantBehind || seconds != c.wantSeconds {
			t.Errorf("%s: lag %d events, %v s; want %d, %v", c.name, behind, seconds, c.wantBehind, c.wantSeconds)
		}
	}
}
