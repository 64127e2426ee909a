// Package viewstore keeps one read model's state on disk: a Pebble
// instance of its own, in a directory of its own under the views
// directory, with the log position its state reflects (its checkpoint) and
// the version of its stored form (its schema).
//
// A model writes its changes in batches, each committed together with the
// position of the last event it folded: Pebble applies a batch whole or
// not at all, so after a crash at any moment the state on disk is that of
// some checkpoint, never ahead of it nor between two. A model whose stored
// schema differs from the one its code writes, or whose files are damaged,
// is opened empty, to be rebuilt from the log.
//
// Views are derived from the log and can always be rebuilt, so batches are
// written without a sync of their own: a crash of the process loses
// nothing the kernel has, and a power loss at most rewinds a model to an
// earlier checkpoint, from where it folds again.
package viewstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"talentledger/eventstore"
)

// Keys: the model's own keys are stored behind prefixData, so that they
// never meet the store's own (the schema and the checkpoint).
const (
	prefixMeta = 0x00
	prefixData = 0x01
)

var (
	keySchema     = []byte{prefixMeta, 's'}
	keyCheckpoint = []byte{prefixMeta, 'c'}
)

// ErrClosed is returned by a Model used after Close.
var ErrClosed = errors.New("viewstore: closed")

// Model is one read model's store. It is safe for concurrent use: reads
// see the last committed batch, or a batch being committed whole.
type Model struct {
	name   string
	dir    string
	schema uint32
	db     *pebble.DB
	pos    eventstore.Position
	// fresh is set when the model was opened empty: new, of another
	// schema, or damaged. It must then be folded from the log's start.
	fresh bool
	// why says why it was opened empty, for the log.
	why string
}

// validName is what a model's name may be: it is a directory name.
var validName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// Open opens the store of the model name, of schema version schema, in
// dir/name, creating it if needed. A store of another schema, or one
// Pebble finds damaged, is emptied (see Fresh); log says so.
func Open(dir, name string, schema uint32, log *slog.Logger) (*Model, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("viewstore: invalid model name %q", name)
	}
	if log == nil {
		log = slog.Default()
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("viewstore: %w", err)
	}
	m := &Model{name: name, dir: path, schema: schema}
	db, err := openDB(path, name, log)
	if err != nil {
		if !pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("viewstore: open %s: %w", path, err)
		}
		// Damaged beyond opening: the model is derived, so start it
		// afresh rather than serve it or refuse to start.
		log.Error("views of a model are damaged; rebuilding them from the log", "model", name, "err", err.Error())
		if err := os.RemoveAll(path); err != nil {
			return nil, fmt.Errorf("viewstore: %w", err)
		}
		if db, err = openDB(path, name, log); err != nil {
			return nil, fmt.Errorf("viewstore: open %s: %w", path, err)
		}
		m.why = "damaged"
	}
	m.db = db
	if err := m.load(); err != nil {
		db.Close()
		return nil, err
	}
	return m, nil
}

// cacheSize is the block cache every views store of the process shares:
// one model's lookups (the work model reading grants back) may use what
// the others leave, where a cache of its own each (Pebble's default, 8 MiB
// a store) would leave most of it idle. Fourteen stores had up to
// 112 MiB between them.
const cacheSize = 128 << 20

// shared holds the process's views cache, made at the first open and
// never released (each store takes a reference of its own).
var shared = sync.OnceValue(func() *pebble.Options { return &pebble.Options{Cache: pebble.NewCache(cacheSize)} })

func openDB(path, name string, log *slog.Logger) (*pebble.DB, error) {
	opts := &pebble.Options{
		// An error of Pebble's background work (a flush or compaction
		// that could not write) is logged, not dropped with the chatter;
		// corruption it finds goes to Fatalf (the default).
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				log.Error("views store: background error", "model", name, "err", err.Error())
			},
		},
		Cache:              shared().Cache,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             quietLogger{},
		// A rebuild commits batches of several MiB. A batch of half the
		// memtable's size or more is flushed as a table of its own,
		// sorted apart, so with smaller memtables a rebuild spent much of
		// its time flushing and compacting small tables. Pebble starts a
		// memtable at 256 KiB and doubles it only as writes come, so a
		// model that writes little keeps small ones.
		MemTableSize: 32 << 20,
	}
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	for i := range opts.Levels {
		// Models read records back by key (a grant's head, a talent's
		// name, a stored sum). Without filters such a Get reads and
		// decompresses a data block in every level above the bottom
		// whose tables span the key; with them, mostly only in the
		// level that holds it (Pebble does not consult the bottom
		// level's filters on a Get, nor any on a seek: the records read
		// through an iterator, a grant's installments and payments, do
		// not gain). Tables written before keep none and are read as
		// before.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return pebble.Open(path, opts)
}

// load reads the schema and the checkpoint, emptying a store of another
// schema.
func (m *Model) load() error {
	v, err := m.getRaw(keySchema)
	if err != nil {
		return err
	}
	if v != nil && len(v) == 4 && binary.BigEndian.Uint32(v) == m.schema {
		c, err := m.getRaw(keyCheckpoint)
		if err != nil {
			return err
		}
		if c != nil {
			pos, ok := decodePosition(c)
			if !ok {
				return m.reset("checkpoint unreadable")
			}
			m.pos = pos
			return nil
		}
		return m.reset("no checkpoint")
	}
	switch {
	case m.why != "":
		return m.reset(m.why)
	case v == nil:
		return m.reset("new")
	default:
		return m.reset(fmt.Sprintf("schema %d stored, %d wanted", binary.BigEndian.Uint32(v), m.schema))
	}
}

// reset empties the store and records the schema and an empty checkpoint.
func (m *Model) reset(why string) error {
	b := m.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte{prefixData}, []byte{prefixData + 1}, nil); err != nil {
		return err
	}
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], m.schema)
	if err := b.Set(keySchema, s[:], nil); err != nil {
		return err
	}
	if err := b.Set(keyCheckpoint, encodePosition(eventstore.Start), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("viewstore: reset %s: %w", m.name, err)
	}
	m.pos, m.fresh, m.why = eventstore.Start, true, why
	return nil
}

// Name returns the model's name.
func (m *Model) Name() string { return m.name }

// Schema returns the schema version the model was opened with.
func (m *Model) Schema() uint32 { return m.schema }

// Checkpoint returns the position of the last event the stored state
// reflects; Start for an empty model.
func (m *Model) Checkpoint() eventstore.Position { return m.pos }

// Fresh reports whether the model was opened empty, and why: "new", a
// schema change, or damage.
func (m *Model) Fresh() (bool, string) { return m.fresh, m.why }

// Get returns a copy of the value of key, or nil when there is none.
func (m *Model) Get(key []byte) ([]byte, error) {
	return m.getRaw(dataKey(nil, key))
}

func (m *Model) getRaw(k []byte) ([]byte, error) {
	if m.db == nil {
		return nil, ErrClosed
	}
	v, closer, err := m.db.Get(k)
	return got(m.name, v, closer, err)
}

// got copies a value Pebble found: nil when there was none.
func got(name string, v []byte, closer io.Closer, err error) ([]byte, error) {
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("viewstore: %s: %w", name, err)
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, nil
}

// Scan calls f with each key starting with prefix and its value, in key
// order, until f returns false. Key and value are valid only during the
// call.
func (m *Model) Scan(prefix []byte, f func(key, value []byte) bool) error {
	return m.ScanRange(prefix, prefixEnd(prefix), f)
}

// ScanRange is Scan over the keys from lo (inclusive) to hi (exclusive;
// nil for no bound).
func (m *Model) ScanRange(lo, hi []byte, f func(key, value []byte) bool) error {
	if m.db == nil {
		return ErrClosed
	}
	opts := &pebble.IterOptions{LowerBound: dataKey(nil, lo)}
	if hi != nil {
		opts.UpperBound = dataKey(nil, hi)
	} else {
		opts.UpperBound = []byte{prefixData + 1}
	}
	it, err := m.db.NewIter(opts)
	return forward(m.name, it, err, f)
}

// forward calls f with the keys of it in order until f returns false, and
// closes it; err is that of opening it.
func forward(name string, it *pebble.Iterator, err error, f func(key, value []byte) bool) error {
	if err != nil {
		return fmt.Errorf("viewstore: %s: %w", name, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if !f(it.Key()[1:], it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return fmt.Errorf("viewstore: %s: %w", name, err)
	}
	return it.Close()
}

// ScanReverse calls f with the keys from hi (exclusive) down to lo
// (inclusive), in descending order, until f returns false: the last key
// at or before a point, as an as-of query wants.
func (m *Model) ScanReverse(lo, hi []byte, f func(key, value []byte) bool) error {
	if m.db == nil {
		return ErrClosed
	}
	it, err := m.db.NewIter(&pebble.IterOptions{LowerBound: dataKey(nil, lo), UpperBound: dataKey(nil, hi)})
	if err != nil {
		return fmt.Errorf("viewstore: %s: %w", m.name, err)
	}
	for ok := it.Last(); ok; ok = it.Prev() {
		if !f(it.Key()[1:], it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return fmt.Errorf("viewstore: %s: %w", m.name, err)
	}
	return it.Close()
}

// GetSorted calls f with each of keys, which must be in ascending order,
// and its value, nil when there is none; the value is valid only during
// the call; an error f returns ends it and is returned as it is. It reads
// them through one iterator, each seek starting where
// the last ended, which costs much less than a Get each when there are
// many.
func (m *Model) GetSorted(keys []string, f func(i int, value []byte) error) error {
	if m.db == nil {
		return ErrClosed
	}
	it, err := m.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixData}, UpperBound: []byte{prefixData + 1}})
	if err != nil {
		return fmt.Errorf("viewstore: %s: %w", m.name, err)
	}
	var k []byte
	for i, key := range keys {
		k = append(append(k[:0], prefixData), key...)
		var v []byte
		found := it.SeekGE(k)
		if !found {
			// A seek that found nothing may have failed to read: the
			// next seek would clear the error and the key would look
			// absent.
			if err = it.Error(); err != nil {
				break
			}
		}
		if found && bytes.Equal(it.Key(), k) {
			if v, err = it.ValueAndErr(); err != nil {
				break
			}
		}
		if ferr := f(i, v); ferr != nil {
			it.Close()
			return ferr
		}
	}
	if err == nil {
		err = it.Error()
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("viewstore: %s: %w", m.name, err)
	}
	return nil
}

// prefixEnd returns the first key after every key starting with prefix,
// or nil when there is none.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Batch collects a model's changes until they are committed with the
// position they reflect.
type Batch struct {
	m *Model
	b *pebble.Batch
}

// NewBatch starts a batch.
func (m *Model) NewBatch() *Batch { return &Batch{m: m, b: m.db.NewBatch()} }

// Set sets key to value. Both are copied.
func (b *Batch) Set(key, value []byte) {
	// A batch's Set fails only once the batch is committed or closed,
	// which Commit and Close rule out.
	_ = b.b.Set(dataKey(nil, key), value, nil)
}

// Delete removes key.
func (b *Batch) Delete(key []byte) { _ = b.b.Delete(dataKey(nil, key), nil) }

// Len returns the batch's size in bytes.
func (b *Batch) Len() int { return b.b.Len() }

// Empty reports whether the batch holds no change.
func (b *Batch) Empty() bool { return b.b.Empty() }

// Commit writes the batch and the checkpoint pos atomically, then closes
// the batch. pos must not lie before the model's checkpoint.
func (b *Batch) Commit(pos eventstore.Position) error {
	defer b.Close()
	m := b.m
	if m.db == nil {
		return ErrClosed
	}
	if pos.Before(m.pos) {
		return fmt.Errorf("viewstore: %s: checkpoint %s before %s", m.name, pos, m.pos)
	}
	_ = b.b.Set(keyCheckpoint, encodePosition(pos), nil)
	if err := b.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("viewstore: %s: commit at %s: %w", m.name, pos, err)
	}
	m.pos = pos
	return nil
}

// Close drops the batch if it was not committed.
func (b *Batch) Close() {
	if b.b != nil {
		b.b.Close()
		b.b = nil
	}
}

// Flush makes every committed batch durable.
func (m *Model) Flush() error {
	if m.db == nil {
		return ErrClosed
	}
	return m.db.Flush()
}

// Size returns the bytes the model's files take on disk.
func (m *Model) Size() uint64 {
	var n uint64
	_ = filepath.Walk(m.dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += uint64(info.Size())
		}
		return nil
	})
	return n
}

// Close closes the store; committed batches are on disk.
func (m *Model) Close() error {
	if m.db == nil {
		return nil
	}
	err := m.db.Close()
	m.db = nil
	return err
}

func dataKey(dst, key []byte) []byte {
	dst = append(dst[:0], prefixData)
	return append(dst, key...)
}

func encodePosition(p eventstore.Position) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, p.Commit)
	binary.BigEndian.PutUint64(b[8:], p.Prepare)
	return b
}

func decodePosition(b []byte) (eventstore.Position, bool) {
	if len(b) != 16 {
		return eventstore.Start, false
	}
	return eventstore.Position{Commit: binary.BigEndian.Uint64(b), Prepare: binary.BigEndian.Uint64(b[8:])}, true
}

// quietLogger drops Pebble's chatter; errors come back as errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	// Pebble calls Fatalf only when it cannot go on safely; a view can
	// be rebuilt, but the process must not go on writing it.
	fmt.Fprintf(os.Stderr, "viewstore: fatal: "+format+"\n", args...)
	os.Exit(70)
}

// Progress is how far a rebuild from the log has got.
type Progress struct {
	// Models names the models being rebuilt.
	Models []string `json:"models"`
	// Done and Total count the log's positions folded and to fold.
	Done  uint64 `json:"done"`
	Total uint64 `json:"total"`
	// Percent is Done ÷ Total, EventsPerSec the rate so far and
	// ETASeconds the time left at that rate.
	Percent      float64 `json:"percent"`
	EventsPerSec float64 `json:"events_per_s"`
	ETASeconds   float64 `json:"eta_s"`
}

// Snapshot is a model's store as it stood when the snapshot was taken:
// every read through it sees the same committed batches, whatever is
// committed meanwhile.
type Snapshot struct {
	name string
	s    *pebble.Snapshot
}

// NewSnapshot takes a snapshot of the store. Close it when done.
func (m *Model) NewSnapshot() (*Snapshot, error) {
	if m.db == nil {
		return nil, ErrClosed
	}
	return &Snapshot{name: m.name, s: m.db.NewSnapshot()}, nil
}

// Get returns the value of key, or nil when there is none.
func (s *Snapshot) Get(key []byte) ([]byte, error) {
	v, closer, err := s.s.Get(dataKey(nil, key))
	return got(s.name, v, closer, err)
}

// ScanRange calls f with the keys from lo (inclusive) to hi (exclusive)
// and their values, in key order, until f returns false. Key and value
// are valid only during the call.
func (s *Snapshot) ScanRange(lo, hi []byte, f func(key, value []byte) bool) error {
	it, err := s.s.NewIter(&pebble.IterOptions{LowerBound: dataKey(nil, lo), UpperBound: dataKey(nil, hi)})
	return forward(s.name, it, err, f)
}

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.s.Close() }
