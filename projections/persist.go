package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"talentledger/domain/auditproof"

	"talentledger/eventstore"
	"talentledger/projections/viewstore"
)

// Persistent is a model that keeps its state in a views store of its own
// (see viewstore), so that a start resumes from the store's checkpoint
// instead of folding the log again, and memory holds what the model
// caches rather than all it knows.
//
// The feed calls Open once, before the first batch, and Save between
// batches, never during one: Save writes what the batches applied since
// the last Save changed, and the feed commits it with the position of the
// last event they held. A model's state on disk is therefore always that
// of its checkpoint; a crash between two commits loses nothing but the
// folding since the last, which the feed does again.
type Persistent interface {
	Model
	// Schema is the version of the model's stored form. Changing how a
	// model stores or folds its state means raising it: the next start
	// rebuilds that model, alone, from the log.
	Schema() uint32
	// Open hands the model its store. The store is empty when the model
	// is new or must be rebuilt; otherwise the model loads from it what it
	// keeps in memory.
	Open(vs *viewstore.Model) error
	// Save writes the changes since the last Save to b.
	Save(b *viewstore.Batch) error
}

// committer is a Persistent model that keeps what it saved readable in
// memory until its batch is committed: between Save and the commit its
// store does not show the batch yet, and a query must not miss it.
// Committed is called once the batch Save wrote is committed.
type committer interface {
	Committed()
}

// testHookSaved, when set by a test, runs between a model's Save and the
// commit of its batch; an error it returns fails the commit, as a full
// disk would.
var testHookSaved func(model string) error

// views is a feed's views directory: the stores of its persistent models
// and where each resumes.
type views struct {
	dir    string
	stores []*viewstore.Model    // by model, nil for one kept in memory
	from   []eventstore.Position // by model: the checkpoint it resumes after
	fresh  []string              // models being rebuilt from the log
	track  *viewstore.Tracker    // the rebuild's progress, nil when none
	since  int                   // events applied since the last commit
	last   time.Time             // when the last commit was
	logged time.Time             // when progress was last logged
	// progress is the rebuild's progress as of the last batch, for
	// Rebuilding; nil when no model is being rebuilt.
	progress atomic.Pointer[viewstore.Progress]
	// head is the feed's own store: the last event committed, to check
	// at start that the views describe the log they are opened beside.
	head             *viewstore.Model
	prevPos, lastPos eventstore.Position
	lastLeaf         []byte
	// failed is the first commit that failed. No commit is tried after
	// it: a model whose batch was not stored may have let go of what the
	// batch held (its changes marked saved, its cache shrunk), and a later
	// commit would store a later checkpoint without them. Each store stays
	// at the last checkpoint it did store, and the next start folds the
	// log again from there.
	failed error
}

// feedViews names the feed's own store in the views directory; no model
// may take the name.
const feedViews = "feed"

// checkViews empties the views directory when its views do not describe
// the feed's log: the event they last folded is not in the log where they
// say, or differs (a data directory restored or replaced beside them).
// Every model is then rebuilt from the log.
func (f *Feed) checkViews(dir string) error {
	if f.store == nil {
		return nil
	}
	head, err := viewstore.Open(dir, feedViews, 1, f.log)
	if err != nil {
		return err
	}
	h, err := head.Get(headKey)
	head.Close()
	if err != nil || h == nil {
		return err
	}
	why := ""
	if len(h) != 64 {
		why = "its record of the last event is unreadable"
	} else {
		prev := eventstore.Position{Commit: binary.BigEndian.Uint64(h), Prepare: binary.BigEndian.Uint64(h[8:])}
		last := eventstore.Position{Commit: binary.BigEndian.Uint64(h[16:]), Prepare: binary.BigEndian.Uint64(h[24:])}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		it := f.store.ReadAll(ctx, prev)
		switch {
		case !it.Next():
			if err := it.Err(); err != nil {
				it.Close()
				return fmt.Errorf("projections: check the views against the log: %w", err)
			}
			why = fmt.Sprintf("the log ends before position %s, which they reflect", last)
		default:
			ev := it.Event()
			if ev.Position != last || !bytes.Equal(auditproof.LeafHash(&ev), h[32:]) {
				why = fmt.Sprintf("the event at position %s is not the one they folded", last)
			}
		}
		it.Close()
	}
	if why == "" {
		return nil
	}
	f.log.Warn("the views do not describe this log; every read model is rebuilt from it", "dir", dir, "why", why)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

var headKey = []byte("head")

// Limits of what is folded between two commits: enough that committing
// costs little beside folding while catching up, little enough that a
// crash costs a moment of folding again and that the models' unsaved
// changes stay small in memory.
const (
	commitEvents   = 50_000
	commitInterval = time.Second
	// progressEvery is how often a rebuild logs its progress.
	progressEvery = 5 * time.Second
)

// OpenViews opens the views directory dir for the feed's persistent
// models, which then resume from their checkpoints: the feed starts after
// the earliest, and hands each model only the events after its own. A
// model of another schema, or whose store is damaged, is rebuilt from the
// log; the feed reports the rebuild's progress (see Rebuilding) and logs
// it. Models that do not persist are folded from the log's start, so the
// feed starts there when any model is kept in memory only.
//
// Call it once, before Run. Errors are those of opening a store, or of a
// model loading from one.
func (f *Feed) OpenViews(dir string) error {
	f.fold.Lock()
	defer f.fold.Unlock()
	if f.views != nil {
		return errors.New("projections: views already open")
	}
	if err := f.checkViews(dir); err != nil {
		return err
	}
	head, err := viewstore.Open(dir, feedViews, 1, f.log)
	if err != nil {
		return err
	}
	v := &views{dir: dir, stores: make([]*viewstore.Model, len(f.models)), from: make([]eventstore.Position, len(f.models)),
		last: time.Now(), head: head}
	for _, m := range f.models {
		if m.Name() == feedViews {
			v.close()
			return fmt.Errorf("projections: a model may not be named %q", feedViews)
		}
	}
	// Each model opens its store and loads what it keeps in memory on a
	// goroutine of its own: the models share nothing, and a start from
	// the checkpoint is mostly this loading.
	errs := make([]error, len(f.models))
	var wg sync.WaitGroup
	for i, m := range f.models {
		p, ok := m.(Persistent)
		if !ok {
			continue
		}
		wg.Go(func() {
			vs, err := viewstore.Open(dir, m.Name(), p.Schema(), f.log)
			if err != nil {
				errs[i] = err
				return
			}
			v.stores[i] = vs
			if err := p.Open(vs); err != nil {
				errs[i] = fmt.Errorf("projections: open model %s: %w", m.Name(), err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		v.close()
		return err
	}
	start := eventstore.Position{}
	first := true
	for i, m := range f.models {
		vs := v.stores[i]
		if vs == nil {
			v.from[i] = eventstore.Start
			start, first = eventstore.Start, false
			continue
		}
		v.from[i] = vs.Checkpoint()
		if fresh, why := vs.Fresh(); fresh && why != "new" {
			f.log.Warn("a read model is rebuilt from the log", "model", m.Name(), "why", why)
		}
		if vs.Checkpoint() == eventstore.Start {
			v.fresh = append(v.fresh, m.Name())
		}
		if first || vs.Checkpoint().Before(start) {
			start, first = vs.Checkpoint(), false
		}
	}
	f.mu.Lock()
	f.pos = start
	f.views = v
	f.mu.Unlock()
	f.log.Info("read models resume from their views", "dir", dir, "position", start.String(), "rebuilding", v.fresh)
	return nil
}

// CloseViews commits what the persistent models folded since their last
// commit and closes their stores. The feed must not be running.
func (f *Feed) CloseViews() error {
	f.fold.Lock()
	defer f.fold.Unlock()
	if f.views == nil {
		return nil
	}
	err := f.commitViews()
	if cerr := f.views.close(); err == nil {
		err = cerr
	}
	f.mu.Lock()
	f.views = nil
	f.mu.Unlock()
	return err
}

func (v *views) close() error {
	errs := []error{v.head.Close()}
	for _, s := range v.stores {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// modelBatch returns the part of b model i has not folded yet, and whether
// there is any. f.fold is held.
func (f *Feed) modelBatch(i int, b Batch) (Batch, bool) {
	if f.views == nil {
		return b, true
	}
	from := f.views.from[i]
	if !from.Before(b.Last) {
		return Batch{}, false
	}
	if len(b.Changes) == 0 || from.Before(b.Changes[0].Event.Position) {
		return b, true
	}
	j := 0
	for j < len(b.Changes) && !from.Before(b.Changes[j].Event.Position) {
		j++
	}
	return Batch{Changes: b.Changes[j:], Last: b.Last}, true
}

// appliedViews notes that every model has folded up to last, n events,
// and commits the persistent models when enough has been folded since
// their last commit. f.fold is held.
func (f *Feed) appliedViews(changes []Change, readyAt eventstore.Position) error {
	v := f.views
	if v == nil {
		return nil
	}
	n := len(changes)
	last := changes[n-1].Event.Position
	if n > 1 {
		v.prevPos = changes[n-2].Event.Position
	} else {
		v.prevPos = v.lastPos
	}
	v.lastPos, v.lastLeaf = last, append(v.lastLeaf[:0], changes[n-1].Leaf...)
	v.since += n
	now := time.Now()
	if len(v.fresh) > 0 {
		if v.track == nil {
			v.track = viewstore.NewTracker(v.fresh, 0, readyAt.Commit, now)
		}
		v.track.Update(last.Commit)
		p := v.track.Progress(now)
		if !last.Before(readyAt) {
			f.log.Info("read models rebuilt from the log", "models", v.fresh, "events", p.Done,
				"events_per_s", int(p.EventsPerSec))
			v.fresh, v.track = nil, nil
			v.progress.Store(nil)
		} else {
			v.progress.Store(&p)
			if now.Sub(v.logged) >= progressEvery {
				v.logged = now
				f.log.Info("rebuilding read models from the log", "models", p.Models, "percent", fmt.Sprintf("%.1f", p.Percent),
					"events_per_s", int(p.EventsPerSec), "eta_s", int(p.ETASeconds))
			}
		}
	}
	every := commitEvents
	if f.commitEvery > 0 {
		every = f.commitEvery
	}
	// While catching up, by the count alone: a commit writes every
	// model, and the time between two is better spent folding.
	catchingUp := last.Before(readyAt)
	if v.since < every && (catchingUp || now.Sub(v.last) < commitInterval) {
		return nil
	}
	return f.commitViews()
}

// commitViews writes every persistent model's changes with the feed's
// position. f.fold is held.
func (f *Feed) commitViews() error {
	v := f.views
	if v == nil {
		return nil
	}
	if v.failed != nil {
		return v.failed
	}
	if v.since == 0 {
		return nil
	}
	f.mu.RLock()
	pos := f.pos
	f.mu.RUnlock()
	// Each model writes its own store: after many events, side by side
	// (see applyModels).
	errs := make([]error, len(f.models))
	var wg sync.WaitGroup
	for i := range f.models {
		vs := v.stores[i]
		if vs == nil || !v.from[i].Before(pos) {
			// Kept in memory, or already at pos (it resumed ahead of
			// the feed and has folded nothing since).
			continue
		}
		if v.since < parallelFrom {
			errs[i] = f.commitModel(i, pos)
		} else {
			wg.Go(func() { errs[i] = f.commitModel(i, pos) })
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			v.failed = fmt.Errorf("projections: a commit of the views failed; none is tried again until a restart: %w", err)
			return err
		}
	}
	// The head moves forward only: while a rebuilt model catches up with
	// the others, the event it names is still the last folded by all.
	if v.lastPos == pos && len(v.lastLeaf) == 32 && v.head.Checkpoint().Before(pos) {
		h := make([]byte, 0, 64)
		h = binary.BigEndian.AppendUint64(h, v.prevPos.Commit)
		h = binary.BigEndian.AppendUint64(h, v.prevPos.Prepare)
		h = binary.BigEndian.AppendUint64(h, pos.Commit)
		h = binary.BigEndian.AppendUint64(h, pos.Prepare)
		b := v.head.NewBatch()
		b.Set(headKey, append(h, v.lastLeaf...))
		if err := b.Commit(pos); err != nil {
			return err
		}
	}
	v.since, v.last = 0, time.Now()
	return nil
}

// commitModel writes model i's changes to its store with the position
// pos. f.fold is held.
func (f *Feed) commitModel(i int, pos eventstore.Position) error {
	v, m := f.views, f.models[i]
	b := v.stores[i].NewBatch()
	if err := m.(Persistent).Save(b); err != nil {
		b.Close()
		return fmt.Errorf("projections: save model %s: %w", m.Name(), err)
	}
	if testHookSaved != nil {
		if err := testHookSaved(m.Name()); err != nil {
			b.Close()
			return err
		}
	}
	if err := b.Commit(pos); err != nil {
		return err
	}
	if c, ok := m.(committer); ok {
		c.Committed()
	}
	v.from[i] = pos
	return nil
}

// Rebuilding reports the progress of the models being rebuilt from the
// log, or nil when none is.
func (f *Feed) Rebuilding() *viewstore.Progress {
	f.mu.RLock()
	v := f.views
	f.mu.RUnlock()
	if v == nil {
		return nil
	}
	return v.progress.Load()
}

// readyPosition returns the position the feed is ready at.
func (f *Feed) readyPosition() eventstore.Position {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.readyAt
}
