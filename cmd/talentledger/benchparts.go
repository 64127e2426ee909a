package main

import (
	"sync/atomic"
	"time"

	"talentledger/cmd/internal/loadgen"
)

// The load generator lives in internal/loadgen; these are its pieces under
// the names the bench commands of this package use.

type machineLoad = loadgen.MachineLoad

func readMachineLoad() machineLoad            { return loadgen.ReadMachineLoad() }
func procStatus(pid int, field string) uint64 { return loadgen.ProcStatus(pid, field) }
func procCPU(pid int) float64                 { return loadgen.ProcCPU(pid) }
func heapLive() uint64                        { return loadgen.HeapLive() }
func rss() uint64                             { return loadgen.RSS() }
func mib(b uint64) float64                    { return loadgen.MiB(b) }

// hist records latencies (loadgen.Hist).
type hist struct{ loadgen.Hist }

func (h *hist) record(d time.Duration) { h.Record(d) }
func (h *hist) snapshot() histCounts   { return histCounts(h.Snapshot()) }

// histCounts is a snapshot of a hist (loadgen.Counts).
type histCounts []uint64

func (c histCounts) sub(o histCounts) histCounts {
	return histCounts(loadgen.Counts(c).Sub(loadgen.Counts(o)))
}
func (c histCounts) add(o histCounts) histCounts {
	return histCounts(loadgen.Counts(c).Add(loadgen.Counts(o)))
}
func (c histCounts) total() uint64              { return loadgen.Counts(c).Total() }
func (c histCounts) quantile(q float64) float64 { return loadgen.Counts(c).Quantile(q) }
func (c histCounts) max() float64               { return loadgen.Counts(c).Max() }

// benchConn is one keep-alive connection to the server (loadgen.Conn).
type benchConn struct {
	addr string
	c    *loadgen.Conn
}

func (b *benchConn) do(method, path, token, key string, body []byte) ([]byte, int, error) {
	if b.c == nil {
		b.c = &loadgen.Conn{Addr: b.addr}
	}
	return b.c.Do(method, path, token, key, body)
}

func (b *benchConn) close() {
	if b.c != nil {
		b.c.Close()
	}
}

// opResult is one kind of operation's figures (loadgen.OpResult).
type opResult = loadgen.OpResult

func newOpResult(c histCounts, errs uint64, secs float64) opResult {
	return loadgen.NewOpResult(loadgen.Counts(c), errs, secs)
}

// opStats is one kind of operation's tally.
type opStats struct {
	h      hist
	errors atomic.Uint64
}

// clientState is one simulated client's random choices: a small xorshift
// generator of its own, with no lock.
type clientState struct{ rng uint64 }

func (s *clientState) next() uint64 {
	s.rng ^= s.rng << 13
	s.rng ^= s.rng >> 7
	s.rng ^= s.rng << 17
	return s.rng
}
