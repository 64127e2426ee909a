package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// countingWriter counts the writes it gets.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *countingWriter) lines() (int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.buf.String(), "\n"), w.writes
}

// TestBufferedLogLosesNothingOnAStop: request lines go out many per
// write; a warning goes out at once with every line before it; closing
// writes the rest.
func TestBufferedLogLosesNothingOnAStop(t *testing.T) {
	w := &countingWriter{}
	log, b := newBufferedLogger(w)
	const n = 1000
	for i := range n {
		log.Info("request", "n", i)
	}
	log.Warn("something to see at once")
	lines, writes := w.lines()
	if lines != n+1 {
		t.Errorf("after a warning, %d lines are written, want all %d", lines, n+1)
	}
	if writes >= n/2 {
		t.Errorf("%d lines took %d writes", lines, writes)
	}
	log.Info("last request")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if lines, _ := w.lines(); lines != n+2 {
		t.Errorf("after Close, %d lines are written, want %d", lines, n+2)
	}
	log.Info("after the stop")
	if lines, _ := w.lines(); lines != n+3 {
		t.Errorf("a line logged after Close is not written at once (%d lines, want %d)", lines, n+3)
	}
}
