package projections

import (
	"time"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
)

// prepared is an event made ready to fold: its payload decoded and its
// audit-tree leaf hashed. Both depend on the event alone, so they can be
// worked out on another goroutine than the folding, which must go in log
// order under the models' lock.
type prepared struct {
	ev      eventstore.Event
	payload domain.Event
	err     error
	leaf    []byte
}

func (pr *prepared) prepare(ev *eventstore.Event) {
	pr.ev = *ev
	pr.payload, pr.err = domain.DecodeEvent(ev.Type, ev.Data)
	pr.leaf = auditproof.LeafHash(ev)
}

// foldLocked folds a prepared event into the models, now being the time it
// is applied, and reports whether it was new. p.mu is held.
func (p *Projector) foldLocked(pr *prepared, now time.Time) bool {
	ev := &pr.ev
	if !p.pos.Before(ev.Position) {
		return false
	}
	// Every event is a leaf of the audit tree, whether or not a model
	// knows its type.
	p.appendLeaf(pr.leaf, ev.Position)
	if pr.err != nil {
		// A type from a newer version of the ledger: the log stays the
		// truth; the models just do not show it.
		p.log.Warn("projections: skipping undecodable event", "type", ev.Type, "position", ev.Position.String(), "err", pr.err)
	} else {
		p.apply(ev, pr.payload)
	}
	p.pos = ev.Position
	p.applied++
	p.lastApplied = now
	p.lastRecorded = ev.Metadata.RecordedAt
	if !p.ready && !p.pos.Before(p.readyAt) {
		p.ready = true
	}
	return true
}

// notifyLocked wakes the WaitFor callers. p.mu is held.
func (p *Projector) notifyLocked() {
	close(p.notify)
	p.notify = make(chan struct{})
}

// pipelineDepth is how many prepared events may wait to be folded, and
// foldBatch how many are folded under one hold of the lock: enough to
// spread the cost of the lock and of waking WaitFor callers while catching
// up, few enough that a query never waits long behind a batch.
const (
	pipelineDepth = 1024
	foldBatch     = 64
)

// feed folds the events of it, keeping those keep accepts (all when keep
// is nil), and returns the iterator's error. Events are read, decoded and
// hashed on goroutines of their own while earlier ones are folded, so that
// a replay uses every core; live events go through as they come, without
// waiting for a batch to fill.
func (p *Projector) feed(it eventstore.Iterator, keep func(*eventstore.Event) bool) error {
	// Three goroutines: one reads, one decodes and hashes, this one folds.
	// Reading the store costs about as much as decoding, so with both on
	// one goroutine it would be the slowest stage.
	read := make(chan eventstore.Event, pipelineDepth)
	go func() {
		defer close(read)
		for it.Next() {
			ev := it.Event()
			if keep == nil || keep(&ev) {
				read <- ev
			}
		}
	}()
	ch := make(chan prepared, pipelineDepth)
	go func() {
		defer close(ch)
		for ev := range read {
			var pr prepared
			pr.prepare(&ev)
			ch <- pr
		}
	}()
	batch := make([]prepared, 0, foldBatch)
	for pr := range ch {
		batch = append(batch[:0], pr)
	more:
		for len(batch) < foldBatch {
			select {
			case pr, ok := <-ch:
				if !ok {
					break more
				}
				batch = append(batch, pr)
			default:
				break more
			}
		}
		p.mu.Lock()
		now, moved := time.Now(), false
		for i := range batch {
			moved = p.foldLocked(&batch[i], now) || moved
		}
		if moved {
			p.notifyLocked()
		}
		p.mu.Unlock()
	}
	// The reader is done with it: read, then ch, was closed.
	return it.Err()
}
