package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// A server logs one line per request. Written one write(2) each, the
// lines cost a system call per request on the cores that serve them; a
// logBuffer gathers them and writes many at once.
//
// What it holds is written at least every logFlushEvery, when it reaches
// logFlushAt bytes, at once after a line at WARN or above (so that a
// warning or an error, and every line before it, is out before anything
// that may follow it, a crash included), and when it is closed. A clean
// stop therefore loses no line, and a crash at most the last
// logFlushEvery of INFO lines.
type logBuffer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	// closed: lines are written at once.
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

const (
	logFlushEvery = 100 * time.Millisecond
	logFlushAt    = 64 << 10
)

func newLogBuffer(w io.Writer) *logBuffer {
	b := &logBuffer{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

func (b *logBuffer) run() {
	defer close(b.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write buffers p, one whole log line.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if b.closed || len(b.buf) >= logFlushAt {
		return len(p), b.flushLocked()
	}
	return len(p), nil
}

// Flush writes what is buffered.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *logBuffer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	if cap(b.buf) > 4*logFlushAt {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

// Close stops the periodic flush and writes what is buffered. Lines
// logged after Close are written at once.
func (b *logBuffer) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
		<-b.done
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}

// newBufferedLogger returns a JSON logger writing through a logBuffer on
// w, and the buffer, to Close when the server stops.
func newBufferedLogger(w io.Writer) (*slog.Logger, *logBuffer) {
	b := newLogBuffer(w)
	h := slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo})
	return slog.New(flushingHandler{h, b}), b
}

// flushingHandler flushes its buffer after every record at WARN or above.
type flushingHandler struct {
	slog.Handler
	b *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.b.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(as), h.b}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.b}
}
