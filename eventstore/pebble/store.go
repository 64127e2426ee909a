// Package pebble is the embedded, durable event store: eventstore.Store over
// a Pebble LSM in one data directory.
//
// # Writes
//
// One writer goroutine serialises appends. Concurrent appends are gathered
// into one Pebble batch and made durable with one WAL sync (group commit):
// each append's expected version is checked against its stream's head,
// including heads moved earlier in the same batch, so a wrong version fails
// only that append, never its batch-mates. One batch is synced at a time;
// while it is, the writer decides the appends that arrive into the next
// batch, and a second goroutine waits for the sync, then feeds live
// subscriptions and answers the appends. Append therefore returns only after
// its events are on disk. AppendMulti's parts are decided together, all or
// none, into one batch, so they share its sync and a crash keeps all or
// none of them. AppendMultiOrdered returns as soon as the writer has
// decided its append into a batch, and leaves the wait for the sync to
// its caller, who may decide its next append meanwhile.
//
// After a sync, the writer waits briefly for the callers it answered to come
// back before starting the next one, so that closed-loop writers share one
// sync instead of splitting into two groups that take turns (see gather);
// an ordered append counts as the callers it says it answers.
//
// Events are numbered 1, 2, 3, … in the global log, without gaps; a
// Position's Commit and Prepare are both that number.
//
// # Reads
//
// Readers see only events whose WAL sync has completed, never an event a
// crash could still take back, so a projection checkpoint can never point at
// an event that later disappears. Iterators read in chunks and hold no Pebble
// iterator between calls, so an iterator that is never closed pins nothing.
//
// # Subscriptions
//
// A subscription catches up from disk, then attaches to the live feed that
// the sync goroutine pushes after each durable batch. Each subscriber has a
// bounded buffer; when a slow subscriber's buffer would overflow it is
// detached and goes back to reading from disk after the last event it
// examined, then attaches again. Writers never wait for subscribers and
// memory never grows with a subscriber's lag.
//
// # Memory
//
// Nothing is kept per stream or per event beyond a bounded cache of stream
// heads; Pebble's memtables and block cache are bounded by their options.
package pebble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"talentledger/eventstore"
)

// Store is the embedded event store. It is safe for concurrent use.
type Store struct {
	db           *pebble.DB
	log          *slog.Logger
	maxEventSize int
	subBuffer    int
	obs          Observer

	// mu guards closed and the sends on reqs, so Close never closes reqs
	// under a sender.
	mu     sync.RWMutex
	closed bool
	reqs   chan *appendReq

	// commits carries applied batches from the writer to the syncer, one
	// at a time; synced tells the writer the syncer is done with one.
	commits    chan *commit
	synced     chan struct{}
	syncerDone chan struct{}
	// done is closed when Close has drained all appends; it ends
	// subscriptions with ErrClosed.
	done chan struct{}

	// durable is the last position whose batch is synced. Readers never
	// look past it.
	durable atomic.Uint64
	// lastAnswered is how many appends the last batch answered; the writer
	// expects about as many back.
	lastAnswered atomic.Int64
	// syncTime is a moving average of how long a batch takes to sync, in
	// nanoseconds.
	syncTime atomic.Int64
	// batched counts the appends in the batch being built.
	batched atomic.Int64
	// syncs counts batches synced, for benchmarks to report how many
	// appends share a sync.
	syncs atomic.Uint64
	// failed holds the error that stopped the writer, if any.
	failed atomic.Pointer[error]
	// damaged holds the first on-disk corruption Pebble reported, if any.
	damaged atomic.Pointer[error]

	// rmu lets reads run concurrently with each other but not with closing
	// the Pebble DB.
	rmu      sync.RWMutex
	dbClosed bool

	hub hub

	// Writer-goroutine state.
	w writerState

	closeOnce sync.Once
	closeErr  error
}

var _ eventstore.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	maxEventSize int
	logger       *slog.Logger
	cacheSize    int64
	memTableSize uint64
	subBuffer    int
	fs           vfs.FS // nil means the operating system's
	observer     Observer
	fatal        func(msg string)
}

// WithMaxEventSize sets the largest event accepted, counting its data and
// its JSON-encoded metadata. The default is eventstore.DefaultMaxEventSize.
func WithMaxEventSize(n int) Option { return func(c *config) { c.maxEventSize = n } }

// WithLogger routes Pebble's log messages to l: informational messages at
// debug level, errors at error level. By default they go to slog.Default.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithCacheSize sets the size in bytes of Pebble's block cache (default
// 64 MiB).
func WithCacheSize(n int64) Option { return func(c *config) { c.cacheSize = n } }

// WithMemTableSize sets the size in bytes of one Pebble memtable (default
// 32 MiB). At most four are held in memory at once.
func WithMemTableSize(n uint64) Option { return func(c *config) { c.memTableSize = n } }

// WithSubscriptionBuffer sets how many live events each subscription may
// hold undelivered before it falls back to reading from disk (default 4096).
func WithSubscriptionBuffer(n int) Option { return func(c *config) { c.subBuffer = n } }

// WithFatalHandler sets what happens when Pebble reports that it cannot go
// on safely (an invariant broken, a MANIFEST that cannot be written): f is
// called with Pebble's message after it is logged, and must not return.
// The default exits the process with status ExitStorageFault, so that an
// orchestrator sees a storage fault rather than a crash and does not loop.
// Corruption found while reading is not fatal: it is returned as ErrCorrupt.
func WithFatalHandler(f func(msg string)) Option { return func(c *config) { c.fatal = f } }

// ExitStorageFault is the process exit status the default fatal handler
// uses; talentledger exits with it too when its self-check fails.
const ExitStorageFault = 4

// withFS runs the store on another file system; tests use it to simulate
// power loss.
func withFS(fs vfs.FS) Option { return func(c *config) { c.fs = fs } }

// Limits of one group-commit batch. They bound the writer's memory and the
// latency a batch adds; under load a batch closes well before either.
const (
	maxBatchRequests = 1024
	maxBatchBytes    = 8 << 20
	queueLen         = 4096
)

// Open opens the store in dir, creating it if needed. Only one Store may
// have dir open at a time; Pebble's lock file enforces it across processes.
func Open(dir string, opts ...Option) (*Store, error) {
	cfg := config{
		maxEventSize: eventstore.DefaultMaxEventSize,
		logger:       slog.Default(),
		cacheSize:    64 << 20,
		memTableSize: 32 << 20,
		subBuffer:    4096,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxEventSize <= 0 || cfg.cacheSize <= 0 || cfg.memTableSize == 0 || cfg.subBuffer <= 0 {
		return nil, errors.New("eventstore/pebble: options must be positive")
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.fatal == nil {
		cfg.fatal = func(string) { os.Exit(ExitStorageFault) }
	}
	s := &Store{log: cfg.logger}

	cache := pebble.NewCache(cfg.cacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                cfg.memTableSize,
		MemTableStopWritesThreshold: 4,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{cfg.logger, cfg.fatal},
		// Corruption found by a read or a compaction is returned to the
		// reader as an error (ErrCorrupt), never a crash: the default
		// listener would call Fatalf.
		EventListener: &pebble.EventListener{
			DataCorruption: func(info pebble.DataCorruptionInfo) { s.noteDamage(info.String()) },
			BackgroundError: func(err error) {
				if pebble.IsCorruptionError(err) {
					s.noteDamage(err.Error())
					return
				}
				cfg.logger.Error("pebble background error", "err", err.Error(), "component", "pebble")
			},
		},
		// Two compactions may run at once when Pebble falls behind; the
		// log is append-only, so compaction debt stays small.
		CompactionConcurrencyRange: func() (int, int) { return 1, 2 },
		FS:                         cfg.fs,
	}
	// MinLZ on amd64 (Snappy elsewhere): the cheapest to decompress, which
	// is what reading the log mostly costs.
	popts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	for i := range popts.Levels {
		l := &popts.Levels[i]
		// Bloom filters make the point lookups of the writer (stream
		// heads, event-ID index) cheap when the key is absent.
		l.FilterPolicy = bloom.FilterPolicy(10)
		// Larger blocks suit the mostly sequential scans of the log.
		l.BlockSize = 32 << 10
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("%w: open %s: %w", ErrCorrupt, dir, err)
		}
		return nil, fmt.Errorf("eventstore/pebble: open %s: %w", dir, err)
	}
	s.db = db
	s.maxEventSize = cfg.maxEventSize
	s.subBuffer = cfg.subBuffer
	s.obs = cfg.observer
	s.reqs = make(chan *appendReq, queueLen)
	s.commits = make(chan *commit, 1)
	s.synced = make(chan struct{}, 1)
	s.syncerDone = make(chan struct{})
	s.done = make(chan struct{})
	last, err := s.init()
	if err != nil {
		db.Close()
		return nil, err
	}
	s.durable.Store(last)
	s.hub.published = last
	s.w.init(last + 1)
	go s.runWriter()
	go s.runSyncer()
	return s, nil
}

// init checks the format marker, writing it into a new store, and returns
// the last position in the log.
func (s *Store) init() (uint64, error) {
	v, closer, err := s.db.Get(formatKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		last, err := s.lastOnDisk()
		if err != nil {
			return 0, err
		}
		if last != 0 {
			return 0, errors.New("eventstore/pebble: data without a format marker")
		}
		if err := s.db.Set(formatKey, []byte{formatVersion}, pebble.Sync); err != nil {
			return 0, fmt.Errorf("eventstore/pebble: write format marker: %w", err)
		}
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("eventstore/pebble: read format marker: %w", err)
	}
	got := append([]byte(nil), v...)
	closer.Close()
	if len(got) == 1 && got[0] == 2 {
		// Format 2's index is format 3's with runs of one event.
		if err := s.db.Set(formatKey, []byte{formatVersion}, pebble.Sync); err != nil {
			return 0, fmt.Errorf("eventstore/pebble: raise format marker: %w", err)
		}
		got[0] = formatVersion
	}
	if len(got) != 1 || got[0] != formatVersion {
		return 0, formatError(got)
	}
	return s.lastOnDisk()
}

// ErrFormat reports a data directory written in an on-disk format this
// version does not read.
var ErrFormat = errors.New("eventstore/pebble: unsupported on-disk format")

func formatError(v []byte) error {
	if len(v) == 1 && v[0] == 1 {
		return fmt.Errorf("%w: the directory is in format 1, written by an earlier release whose hash chain "+
			"does not cover event IDs; this release reads formats 2 and %d and does not migrate format 1 "+
			"(no format 1 data exists in production): start from an empty directory", ErrFormat, formatVersion)
	}
	return fmt.Errorf("%w %x (this release reads formats 2 and %d)", ErrFormat, v, formatVersion)
}

func (s *Store) lastOnDisk() (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixLog},
		UpperBound: []byte{prefixLog + 1},
	})
	if err != nil {
		return 0, storeErr(err)
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != 9 {
		return 0, ErrCorrupt
	}
	return decodeUint64(k[1:]), nil
}

// Append implements eventstore.Store. It returns once the events are synced
// to disk.
//
// The context is honoured until the writer takes the append into a batch: a
// context done before then makes Append return its error with nothing
// written, even if the append was already queued. Once in a batch, the
// append completes and Append returns its outcome whatever the context.
//
// Errors: the eventstore.ErrInvalid family for bad input (checked first,
// with eventstore.ValidateAppend), *eventstore.WrongVersionError,
// eventstore.ErrClosed, the context's error, or, once a write to disk has
// failed, an error saying the store must be reopened.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if s.obs.Append == nil {
		return s.doAppend(ctx, stream, expected, events)
	}
	start := time.Now()
	res, err := s.doAppend(ctx, stream, expected, events)
	s.obs.Append(time.Since(start), err)
	return res, err
}

func (s *Store) doAppend(ctx context.Context, stream string, expected eventstore.Version, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, expected, events, s.maxEventSize); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	r, err := newAppendReq(ctx, stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := s.send(ctx, r); err != nil {
		return eventstore.AppendResult{}, err
	}
	// The writer always answers, and quickly: it waits for nothing but the
	// disk.
	<-r.done
	return r.res, r.err
}

// AppendMulti implements eventstore.MultiAppender: the parts are decided
// together by the writer, into one Pebble batch, so they are durable with
// one WAL sync and a crash keeps all or none of them. The context is
// honoured as by Append.
func (s *Store) AppendMulti(ctx context.Context, parts ...eventstore.AppendPart) ([]eventstore.AppendResult, error) {
	if s.obs.Append == nil {
		return s.doAppendMulti(ctx, parts)
	}
	start := time.Now()
	res, err := s.doAppendMulti(ctx, parts)
	s.obs.Append(time.Since(start), err)
	return res, err
}

var _ eventstore.OrderedAppender = (*Store)(nil)

// AppendMultiOrdered implements eventstore.OrderedAppender: it returns
// once the writer has decided the append into its next batch, while the
// batch before it may still be syncing; the append becomes durable with
// that batch's sync. The context is honoured as by Append.
func (s *Store) AppendMultiOrdered(ctx context.Context, callers int, parts ...eventstore.AppendPart) ([]eventstore.AppendResult, func() error, error) {
	start := time.Now()
	r, err := s.sendMulti(ctx, parts, max(callers, 1))
	if err != nil {
		if s.obs.Append != nil {
			s.obs.Append(time.Since(start), err)
		}
		return nil, nil, err
	}
	wait := func() error {
		<-r.done
		if s.obs.Append != nil {
			s.obs.Append(time.Since(start), r.err)
		}
		return r.err
	}
	select {
	case <-r.ordered:
	case <-r.done:
		if r.err != nil {
			return nil, nil, wait()
		}
	}
	// Not r.results(): the writer rewrites the parts' results if a sync
	// before this append's fails, while the caller reads these.
	return r.orderedRes, wait, nil
}

func (s *Store) doAppendMulti(ctx context.Context, parts []eventstore.AppendPart) ([]eventstore.AppendResult, error) {
	r, err := s.sendMulti(ctx, parts, 0)
	if err != nil {
		return nil, err
	}
	<-r.done
	if r.err != nil {
		return nil, r.err
	}
	return r.results(), nil
}

// sendMulti queues an AppendMulti for the writer. With callers, the
// callers an ordered append answers, the writer closes the request's
// ordered channel once it has decided it.
func (s *Store) sendMulti(ctx context.Context, parts []eventstore.AppendPart, callers int) (*appendReq, error) {
	if err := eventstore.ValidateAppendMulti(parts, s.maxEventSize); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &appendReq{ctx: ctx, parts: make([]*appendReq, len(parts)), done: make(chan struct{})}
	if callers > 0 {
		r.ordered, r.answers = make(chan struct{}), callers
	}
	for i := range parts {
		p := &parts[i]
		pr, err := newAppendReq(ctx, p.Stream, p.Expected, p.Events)
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", i, err)
		}
		r.parts[i] = pr
	}
	if err := s.send(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// results are the parts' results of a decided AppendMulti.
func (r *appendReq) results() []eventstore.AppendResult {
	out := make([]eventstore.AppendResult, len(r.parts))
	for i, p := range r.parts {
		out[i] = p.res
	}
	return out
}

// send queues r for the writer, unless the store is closed or ctx is done
// first.
func (s *Store) send(ctx context.Context, r *appendReq) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	select {
	case s.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LastPosition implements eventstore.Store. It reports the newest durable
// event. Errors: eventstore.ErrClosed, the context's error.
func (s *Store) LastPosition(ctx context.Context) (eventstore.Position, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Start, err
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return eventstore.Start, eventstore.ErrClosed
	}
	p := s.durable.Load()
	return eventstore.Position{Commit: p, Prepare: p}, nil
}

// Close implements eventstore.Store. Appends already queued complete; later
// calls fail with ErrClosed and subscriptions end with ErrClosed. Closing
// again returns nil.
func (s *Store) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		s.mu.Lock()
		s.closed = true
		close(s.reqs)
		s.mu.Unlock()
		<-s.syncerDone
		close(s.done)
		s.rmu.Lock()
		s.dbClosed = true
		s.rmu.Unlock()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("eventstore/pebble: close: %w", err)
		}
	})
	if !first {
		return nil
	}
	return s.closeErr
}

// pebbleLogger adapts slog to Pebble's logger. Pebble is chatty at info
// level about flushes and compactions, so those go to debug.
type pebbleLogger struct {
	l     *slog.Logger
	fatal func(msg string)
}

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble when it cannot continue safely (for example a
// failed MANIFEST write); it must not return. It logs one line and hands
// over to the fatal handler (see WithFatalHandler), never panics.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("storage fault: the event store stops", "component", "pebble", "fatal", true, "err", msg)
	p.fatal(msg)
	// The handler must not return; if it does, stop this goroutine rather
	// than let Pebble go on in a state it called unsafe.
	runtime.Goexit()
}

// noteDamage records the first corruption Pebble reports and logs each.
func (s *Store) noteDamage(msg string) {
	err := fmt.Errorf("%w: %s", ErrCorrupt, msg)
	if s.damaged.CompareAndSwap(nil, &err) && s.log != nil {
		s.log.Error("on-disk corruption in the event store", "component", "pebble", "err", msg)
	}
}

// Damaged returns the first on-disk corruption Pebble has reported since
// Open (an error wrapping ErrCorrupt), or nil.
func (s *Store) Damaged() error {
	if p := s.damaged.Load(); p != nil {
		return *p
	}
	return nil
}

// storeErr wraps an error from Pebble, marking corruption as ErrCorrupt.
func storeErr(err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}
