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
// is nil), and returns the iterator's error. Events are decoded and hashed
// on a goroutine of their own while earlier ones are folded, so that a
// replay runs on two cores; live events go through as they come, without
// waiting for a batch to fill.
func (p *Projector) feed(it eventstore.Iterator, keep func(*eventstore.Event) bool) error {
	ch := make(chan prepared, pipelineDepth)
	go func() {
		defer close(ch)
		for it.Next() {
			ev := it.Event()
			if keep != nil && !keep(&ev) {
				continue
			}
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
	// The goroutine is done with it: ch is closed.
	return it.Err()
}
