package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestHistQuantilesAreWithinTheBucketPrecision(t *testing.T) {
	var h Hist
	// 1..10000 µs, each once.
	for us := 1; us <= 10000; us++ {
		h.Record(time.Duration(us) * time.Microsecond)
	}
	c := Counts(h.Snapshot())
	if got := c.Total(); got != 10000 {
		t.Fatalf("total %d, want 10000", got)
	}
	for _, q := range []float64{0.5, 0.95, 0.99, 0.999} {
		want := q * 10 // ms
		if got := c.Quantile(q); math.Abs(got-want) > want*0.035 {
			t.Errorf("quantile(%v) = %.3f ms, want %.3f ± 3.5%%", q, got, want)
		}
	}
	if got := c.Max(); math.Abs(got-10) > 0.35 {
		t.Errorf("max = %.3f ms, want 10", got)
	}
	var empty Hist
	if got := Counts(empty.Snapshot()).Quantile(0.99); got != 0 {
		t.Errorf("quantile of nothing = %v", got)
	}
	// Every bucket's value lies in the bucket it names.
	for us := uint64(0); us < 1<<30; us = us*9/8 + 1 {
		if i := histIndex(us); histIndex(uint64(histValue(i))) != i {
			t.Fatalf("%d µs: bucket %d has value %v, which falls in bucket %d", us, i, histValue(i), histIndex(uint64(histValue(i))))
		}
	}
}

func TestSoakVerdictComparesHalvesByMedian(t *testing.T) {
	win := func(cmdP99, qP99, heapMiB float64, events uint64) Window {
		return Window{CommandP99: cmdP99, QueryP99: qP99, HeapMiB: heapMiB, Events: events}
	}
	for _, c := range []struct {
		name            string
		ws              []Window
		latency, memory bool
	}{
		{"steady", []Window{win(10, 2, 100, 1e5), win(11, 2, 200, 2e5), win(9, 3, 300, 3e5), win(10, 2, 400, 4e5)}, true, true},
		{"one bad Window at the end", []Window{win(10, 2, 100, 1e5), win(10, 2, 200, 2e5), win(10, 2, 300, 3e5),
			win(10, 2, 400, 4e5), win(90, 40, 500, 5e5)}, true, true},
		{"latency creeping up", []Window{win(10, 2, 100, 1e5), win(12, 2, 200, 2e5), win(30, 9, 300, 3e5), win(40, 12, 400, 4e5)}, false, true},
		{"memory per event growing", []Window{win(10, 2, 100, 1e5), win(10, 2, 300, 2e5), win(10, 2, 600, 3e5), win(10, 2, 1000, 4e5)}, true, false},
	} {
		s := SoakVerdict(c.ws)
		if s.LatencyFlat != c.latency || s.MemoryFlat != c.memory {
			t.Errorf("%s: latency flat %v, memory flat %v; want %v, %v", c.name, s.LatencyFlat, s.MemoryFlat, c.latency, c.memory)
		}
	}
}
