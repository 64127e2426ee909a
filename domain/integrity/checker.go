// Package integrity lets the ledger check itself: it walks the global log,
// recomputing every stream's hash chain and the Merkle tree over the log,
// and compares the tree with the heads kept in a witness file outside the
// store. The server runs it at start, before it signs a head and in a
// background scrub; `talentledger verify --data` runs the same walk.
//
// It finds what the hash chains alone cannot: events removed from the end
// of the log or lost with a write-ahead log (the tree is smaller than a
// witnessed head), events reordered or swapped (the tree's root differs),
// and index entries that point at the wrong record (through the store's own
// IndexChecker).
package integrity

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
)

// ErrDamaged is wrapped by every Problem: the log is not what was written.
var ErrDamaged = errors.New("integrity: the log is damaged")

// Problem is the first thing found wrong with the log, located as closely as
// it can be.
type Problem struct {
	// Position is the log position of the first bad event, or 0 when the
	// problem is not one event's (a witnessed head the log falls short of).
	Position uint64 `json:"position,omitempty"`
	Stream   string `json:"stream,omitempty"`
	Version  int64  `json:"version"`
	EventID  string `json:"event_id,omitempty"`
	// What says what is wrong, in words an operator can act on.
	What string `json:"what"`
	// Err is the underlying error, when the store reported one.
	Err error `json:"-"`
}

func (p *Problem) Error() string {
	if p.Position == 0 && p.Stream == "" {
		return p.What
	}
	s := fmt.Sprintf("position %d", p.Position)
	if p.Stream != "" {
		s += fmt.Sprintf(" (stream %s version %d", p.Stream, p.Version)
		if p.EventID != "" {
			s += " event " + p.EventID
		}
		s += ")"
	}
	return s + ": " + p.What
}

// Is makes every Problem match ErrDamaged.
func (p *Problem) Is(target error) bool { return target == ErrDamaged }

// Unwrap returns the store's error, if any.
func (p *Problem) Unwrap() error { return p.Err }

// IndexChecker is what a backend with its own indexes offers to check them
// against the log (the embedded store does; EventStoreDB keeps its own).
type IndexChecker interface {
	// CheckIndexEntry returns an error when an index does not point at e.
	CheckIndexEntry(e *eventstore.Event) error
	// CheckIndexTotals returns an error when the indexes hold entries for
	// anything but the log's first last events.
	CheckIndexTotals(ctx context.Context, last uint64) error
}

// IndexDigester is what a backend offers to check its indexes with one
// sequential scan instead of point reads: an order-independent digest
// of index entries (see the embedded store's IndexDigest).
type IndexDigester interface {
	// AddIndexDigest adds to d what e's index entries should contribute.
	AddIndexDigest(d *[5]uint64, e *eventstore.Event)
	// IndexDigest returns the digest of the index entries pointing at
	// positions up to last.
	IndexDigest(ctx context.Context, last uint64) ([5]uint64, error)
}

// Expect is a tree head the log must extend: the root of its first Size
// events must be Root.
type Expect struct {
	Size uint64
	Root []byte
	// Name says where the head came from, for messages.
	Name string
}

type streamHead struct {
	hash    string
	version eventstore.Version
}

var rangeFactory = &compact.RangeFactory{Hash: auditproof.HashChildren}

// Checker walks the log and keeps what it verified: the number of events,
// the Merkle tree's compact range (a few hashes) and each stream's last
// hash. It is not safe for concurrent use.
type Checker struct {
	store eventstore.Store
	// Contiguous requires positions 1, 2, 3, … (the embedded store).
	contiguous bool
	index      IndexChecker
	size       uint64
	last       eventstore.Position
	rng        *compact.Range
	heads      map[string]streamHead
	// resumed is true when heads may lack streams verified before a
	// checkpoint; their predecessors are then read from the store.
	resumed bool
	// Pace, when set, is called after every event checked; the scrub
	// uses it to bound its rate.
	Pace func(ctx context.Context) error
	// digester, when set, replaces the per-event index look-ups of a walk
	// from the start by a digest compared at the end (CheckIndexDigest).
	digester IndexDigester
	digest   [5]uint64
}

// NewChecker returns a checker at the start of store's log. When the store
// is the embedded one (it has indexes to check), it also requires the log's
// positions to be contiguous.
func NewChecker(store eventstore.Store) *Checker {
	c := &Checker{store: store, rng: rangeFactory.NewEmptyRange(0), heads: map[string]streamHead{}}
	if ic, ok := store.(IndexChecker); ok {
		c.index = ic
		c.contiguous = true
	}
	c.digester, _ = store.(IndexDigester)
	return c
}

// Size returns how many events have been verified.
func (c *Checker) Size() uint64 { return c.size }

// Position returns the position of the last event verified.
func (c *Checker) Position() eventstore.Position { return c.last }

// Root returns the Merkle root of the events verified.
func (c *Checker) Root() []byte {
	if c.size == 0 {
		return emptyRoot()
	}
	r, err := c.rng.GetRootHash(nil)
	if err != nil {
		return nil
	}
	return r
}

// Streams returns how many streams have been seen since the checker
// started (or resumed).
func (c *Checker) Streams() int { return len(c.heads) }

// Extend verifies the events after those already verified, up to the end
// of the log, or up to upto events in all when upto is not zero. Each
// expected head whose size it passes is compared with the tree. It returns
// a *Problem for damage, or another error when it could not read.
func (c *Checker) Extend(ctx context.Context, upto uint64, expects ...Expect) error {
	if err := c.checkExpects(ctx, expects); err != nil {
		return err
	}
	it := c.store.ReadAll(ctx, c.last)
	defer it.Close()
	for (upto == 0 || c.size < upto) && it.Next() {
		ev := it.Event()
		if err := c.check(ctx, &ev); err != nil {
			return err
		}
		if err := c.checkExpects(ctx, expects); err != nil {
			return err
		}
		if c.Pace != nil {
			if err := c.Pace(ctx); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return &Problem{Position: c.last.Commit + 1, What: "the log cannot be read after the last good event: " + err.Error(), Err: err}
	}
	return nil
}

// Finish checks, once the whole log is verified, that it reaches every
// expected head and, for a store with indexes, that the indexes hold
// nothing else.
func (c *Checker) Finish(ctx context.Context, expects ...Expect) error {
	for _, e := range expects {
		if e.Size > c.size {
			return &Problem{What: fmt.Sprintf("the log holds %d events but %s signed %d: %d acknowledged events were lost or removed",
				c.size, e.Name, e.Size, e.Size-c.size)}
		}
	}
	if c.index != nil {
		if err := c.index.CheckIndexTotals(ctx, c.last.Commit); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return &Problem{What: err.Error(), Err: err}
		}
	}
	return c.CheckIndexDigest(ctx)
}

// locate walks the log again up to the checker's size, looking every
// index entry up, to name the first event found wrong; it returns nil when
// it finds none (or when the checker looks entries up already).
func (c *Checker) locate(ctx context.Context) error {
	if c.digester == nil || c.resumed || c.index == nil {
		return nil
	}
	slow := NewChecker(c.store)
	slow.digester = nil
	return slow.Extend(ctx, c.size)
}

// CheckIndexDigest compares, after a walk from the start, the digest of the
// index entries the events should have with the indexes' own. On a
// mismatch it walks the log again looking every entry up, to name the
// first event whose entries are wrong.
func (c *Checker) CheckIndexDigest(ctx context.Context) error {
	if c.digester == nil || c.resumed {
		return nil
	}
	got, err := c.digester.IndexDigest(ctx, c.last.Commit)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return &Problem{What: "the indexes cannot be read: " + err.Error(), Err: err}
	}
	if got == c.digest {
		return nil
	}
	if err := c.locate(ctx); err != nil {
		return err
	}
	return &Problem{What: fmt.Sprintf("the indexes hold %d entries for the first %d events, which should have %d, and differ from them", got[0], c.size, c.digest[0])}
}

func (c *Checker) checkExpects(ctx context.Context, expects []Expect) error {
	for _, e := range expects {
		if e.Size != c.size {
			continue
		}
		if root := c.Root(); string(root) != string(e.Root) {
			if err := c.locate(ctx); err != nil {
				return err
			}
			return &Problem{Position: c.last.Commit, What: fmt.Sprintf(
				"the first %d events do not match %s: the log was changed, reordered or replaced at or before this position", e.Size, e.Name)}
		}
	}
	return nil
}

func (c *Checker) check(ctx context.Context, ev *eventstore.Event) error {
	p := func(what string) error {
		return &Problem{Position: ev.Position.Commit, Stream: ev.Stream, Version: int64(ev.Version), EventID: ev.ID.String(), What: what}
	}
	switch {
	case c.contiguous && ev.Position.Commit != c.last.Commit+1:
		return p(fmt.Sprintf("the log jumps from position %d; events were removed", c.last.Commit))
	case !c.last.Before(ev.Position):
		return p("position out of order")
	}
	h, seen := c.heads[ev.Stream]
	if !seen {
		h = streamHead{version: eventstore.NoStream}
		if c.resumed && ev.Version > 0 {
			prev, err := c.predecessor(ctx, ev)
			if err != nil {
				return err
			}
			h = prev
		}
	}
	switch {
	case ev.Version != h.version+1:
		return p(fmt.Sprintf("expected version %d of the stream; events were removed or reordered", h.version+1))
	case ev.Metadata.PrevHash != h.hash:
		return p("prev_hash does not match the stream's previous event")
	case !domain.VerifyEventHash(h.hash, ev):
		return p(fmt.Sprintf("the hash does not match the event's content (%s)", ev.Type))
	}
	if c.digester != nil && !c.resumed {
		c.digester.AddIndexDigest(&c.digest, ev)
	} else if c.index != nil {
		if err := c.index.CheckIndexEntry(ev); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return &Problem{Position: ev.Position.Commit, Stream: ev.Stream, Version: int64(ev.Version), EventID: ev.ID.String(), What: err.Error(), Err: err}
		}
	}
	c.heads[ev.Stream] = streamHead{hash: ev.Metadata.Hash, version: ev.Version}
	if err := c.rng.Append(auditproof.LeafHash(ev), nil); err != nil {
		return err
	}
	c.size++
	c.last = ev.Position
	return nil
}

// predecessor reads the stream's event before ev, verified before a
// checkpoint, and returns it as the stream's head.
func (c *Checker) predecessor(ctx context.Context, ev *eventstore.Event) (streamHead, error) {
	it := c.store.ReadStream(ctx, ev.Stream, ev.Version-1)
	defer it.Close()
	if !it.Next() {
		err := it.Err()
		return streamHead{}, &Problem{Position: ev.Position.Commit, Stream: ev.Stream, Version: int64(ev.Version), EventID: ev.ID.String(),
			What: fmt.Sprintf("the stream's version %d cannot be read: %v", ev.Version-1, err), Err: err}
	}
	prev := it.Event()
	return streamHead{hash: prev.Metadata.Hash, version: prev.Version}, nil
}

func emptyRoot() []byte {
	r, _ := rangeFactory.NewEmptyRange(0).GetRootHash(nil)
	if r == nil {
		// RFC 6962: the root of an empty tree is the hash of nothing.
		sum := sha256.Sum256(nil)
		return sum[:]
	}
	return r
}

// Checkpoint is what a checker needs to resume where it stopped without
// walking the log again: the size, the last position, and the Merkle
// tree's compact range. The server stores one in the store beside each
// head it witnesses; it is trusted only when its root is that of a head in
// the witness file.
type Checkpoint struct {
	Size     uint64                `json:"size"`
	Position uint64                `json:"position"`
	Root     auditproof.HexBytes   `json:"root"`
	Hashes   []auditproof.HexBytes `json:"hashes"`
}

// Checkpoint returns the checker's checkpoint.
func (c *Checker) Checkpoint() Checkpoint {
	cp := Checkpoint{Size: c.size, Position: c.last.Commit, Root: c.Root()}
	for _, h := range c.rng.Hashes() {
		cp.Hashes = append(cp.Hashes, append(auditproof.HexBytes(nil), h...))
	}
	return cp
}

// Resume returns a checker that continues after cp, for the embedded store
// (whose positions are the leaf numbers). The streams' heads are not in
// the checkpoint: the first event of each stream met after it is chained
// to its predecessor read from the store. It fails when the checkpoint's
// hashes do not make its root.
func Resume(store eventstore.Store, cp Checkpoint) (*Checker, error) {
	c := NewChecker(store)
	if !c.contiguous || cp.Size != cp.Position {
		return nil, errors.New("integrity: a checkpoint resumes only on the embedded store")
	}
	hashes := make([][]byte, len(cp.Hashes))
	for i, h := range cp.Hashes {
		hashes[i] = h
	}
	rng, err := rangeFactory.NewRange(0, cp.Size, hashes)
	if err != nil {
		return nil, fmt.Errorf("integrity: checkpoint: %w", err)
	}
	c.rng, c.size, c.resumed = rng, cp.Size, true
	c.last = eventstore.Position{Commit: cp.Position, Prepare: cp.Position}
	if string(c.Root()) != string(cp.Root) {
		return nil, errors.New("integrity: checkpoint: the hashes do not make its root")
	}
	return c, nil
}

// CheckHeld checks, for a checker resumed from a checkpoint, that the log
// still holds the checkpoint's last event: records removed from the end of
// the log are told as lost events against the newest expected head (or the
// checkpoint), rather than found by chance among sampled events.
func (c *Checker) CheckHeld(ctx context.Context, expects ...Expect) error {
	if !c.resumed || c.size == 0 {
		return nil
	}
	if ok, err := c.holds(ctx, c.size); ok || err != nil {
		return err
	}
	// The log is a prefix of positions 1..n: find n.
	lo, hi := uint64(0), c.size
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := c.holds(ctx, mid)
		if err != nil {
			return err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	name, size := "the store's integrity checkpoint", c.size
	for _, e := range expects {
		if e.Size >= size {
			name, size = e.Name, e.Size
		}
	}
	return &Problem{Position: lo + 1, What: fmt.Sprintf("the log holds %d events but %s signed %d: %d acknowledged events were lost or removed",
		lo, name, size, size-lo)}
}

// holds reports whether the embedded store's log has an event at pos.
func (c *Checker) holds(ctx context.Context, pos uint64) (bool, error) {
	it := c.store.ReadAll(ctx, eventstore.Position{Commit: pos - 1, Prepare: pos - 1})
	defer it.Close()
	if it.Next() {
		return it.Event().Position.Commit == pos, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return false, nil
}

// Sample re-verifies n events picked at random among those before the
// checker's current size (the embedded store only): each one's hash, its
// link to its predecessor and its index entries. pick returns a number in
// [0, k).
func (c *Checker) Sample(ctx context.Context, n int, pick func(k uint64) uint64) error {
	if !c.contiguous || c.size == 0 {
		return nil
	}
	for range n {
		pos := 1 + pick(c.size)
		it := c.store.ReadAll(ctx, eventstore.Position{Commit: pos - 1, Prepare: pos - 1})
		ok := it.Next()
		ev := it.Event()
		err := it.Err()
		it.Close()
		if !ok || ev.Position.Commit != pos {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err == nil {
				return &Problem{Position: pos, What: "the event is missing from the log", Err: err}
			}
			return &Problem{Position: pos, What: fmt.Sprintf("the event cannot be read: %v", err), Err: err}
		}
		prev := streamHead{version: eventstore.NoStream}
		if ev.Version > 0 {
			var perr error
			if prev, perr = c.predecessor(ctx, &ev); perr != nil {
				return perr
			}
		}
		p := &Problem{Position: pos, Stream: ev.Stream, Version: int64(ev.Version), EventID: ev.ID.String()}
		switch {
		case ev.Version != prev.version+1:
			p.What = "the stream's versions are out of sequence"
		case !domain.VerifyEventHash(prev.hash, &ev):
			p.What = fmt.Sprintf("the hash does not match the event's content or its predecessor (%s)", ev.Type)
		}
		if p.What == "" && c.index != nil {
			if err := c.index.CheckIndexEntry(&ev); err != nil {
				p.What, p.Err = err.Error(), err
			}
		}
		if p.What != "" {
			return p
		}
	}
	return nil
}
