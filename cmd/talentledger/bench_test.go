package main

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHistQuantilesAreWithinTheBucketPrecision(t *testing.T) {
	var h hist
	// 1..10000 µs, each once.
	for us := 1; us <= 10000; us++ {
		h.record(time.Duration(us) * time.Microsecond)
	}
	c := histCounts(h.snapshot())
	if got := c.total(); got != 10000 {
		t.Fatalf("total %d, want 10000", got)
	}
	for _, q := range []float64{0.5, 0.95, 0.99, 0.999} {
		want := q * 10 // ms
		if got := c.quantile(q); math.Abs(got-want) > want*0.035 {
			t.Errorf("quantile(%v) = %.3f ms, want %.3f ± 3.5%%", q, got, want)
		}
	}
	if got := c.max(); math.Abs(got-10) > 0.35 {
		t.Errorf("max = %.3f ms, want 10", got)
	}
	var empty hist
	if got := histCounts(empty.snapshot()).quantile(0.99); got != 0 {
		t.Errorf("quantile of nothing = %v", got)
	}
	// Every bucket's value lies in the bucket it names.
	for us := uint64(0); us < 1<<30; us = us*9/8 + 1 {
		if i := histIndex(us); histIndex(uint64(histValue(i))) != i {
			t.Fatalf("%d µs: bucket %d has value %v, which falls in bucket %d", us, i, histValue(i), histIndex(uint64(histValue(i))))
		}
	}
}

func TestBenchDrivesTheMixWithoutErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "bench.json")
	code := run(context.Background(), []string{"bench", "--duration", "1500ms", "--clients", "6", "--programs", "2",
		"--quiet", "--json", out, "--data", filepath.Join(dir, "data")}, io.Discard, io.Discard)
	if code != exitOK {
		t.Fatalf("bench exited with %d", code)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res benchResults
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Commands.Count == 0 || res.Queries.Count == 0 || res.Commands.Errors != 0 || res.Queries.Errors != 0 {
		t.Errorf("commands %+v, queries %+v: want some of each and no errors", res.Commands, res.Queries)
	}
	for _, k := range []string{"apply", "review", "approve", "budget", "grant", "fund"} {
		if res.Ops[k].Count == 0 {
			t.Errorf("no %s operation ran", k)
		}
	}
	// The server-side figures come from the metrics registry.
	if res.Server.Appends == 0 || res.Server.Batches == 0 || res.Server.EventsPerBatch < 1 {
		t.Errorf("server figures %+v: want appends and batches", res.Server)
	}
	// Every command sent an Idempotency-Key: each wrote its events and a
	// recorded answer.
	if res.EventsWritten < res.Commands.Count*2 {
		t.Errorf("%d events written by %d commands with Idempotency-Keys; want at least two each", res.EventsWritten, res.Commands.Count)
	}
}

func TestSoakVerdictComparesHalvesByMedian(t *testing.T) {
	win := func(cmdP99, qP99, heapMiB float64, events uint64) window {
		return window{CommandP99: cmdP99, QueryP99: qP99, HeapMiB: heapMiB, Events: events}
	}
	for _, c := range []struct {
		name            string
		ws              []window
		latency, memory bool
	}{
		{"steady", []window{win(10, 2, 100, 1e5), win(11, 2, 200, 2e5), win(9, 3, 300, 3e5), win(10, 2, 400, 4e5)}, true, true},
		{"one bad window at the end", []window{win(10, 2, 100, 1e5), win(10, 2, 200, 2e5), win(10, 2, 300, 3e5),
			win(10, 2, 400, 4e5), win(90, 40, 500, 5e5)}, true, true},
		{"latency creeping up", []window{win(10, 2, 100, 1e5), win(12, 2, 200, 2e5), win(30, 9, 300, 3e5), win(40, 12, 400, 4e5)}, false, true},
		{"memory per event growing", []window{win(10, 2, 100, 1e5), win(10, 2, 300, 2e5), win(10, 2, 600, 3e5), win(10, 2, 1000, 4e5)}, true, false},
	} {
		s := soakVerdict(c.ws)
		if s.LatencyFlat != c.latency || s.MemoryFlat != c.memory {
			t.Errorf("%s: latency flat %v, memory flat %v; want %v, %v", c.name, s.LatencyFlat, s.MemoryFlat, c.latency, c.memory)
		}
	}
}
