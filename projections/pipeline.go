package projections

import (
	"errors"
	"fmt"
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

func (pr *prepared) prepare(ev *eventstore.Event, c domain.Codec) {
	pr.ev = *ev
	pr.payload, pr.err = c.Decode(ev.Type, ev.Data)
	pr.leaf = auditproof.LeafHash(ev)
}

// foldLocked folds a prepared event into the models, now being the time it
// is applied, and reports whether it was new. p.mu is held.
//
// An event that cannot be decoded stops the folding for good, before it:
// the models keep answering as of the event before, and the projector is
// not ready. An event of a type or version newer than this build (another
// replica was upgraded first) is one clear ERROR, "upgrade required: event
// X version N at position P"; skipping it would misstate every model that
// event touches.
func (p *Projector) foldLocked(pr *prepared, now time.Time) bool {
	ev := &pr.ev
	if p.stopped != nil || !p.pos.Before(ev.Position) {
		return false
	}
	if pr.err != nil {
		if errors.Is(pr.err, domain.ErrUpgradeRequired) {
			p.stopped = fmt.Errorf("%w at position %s", pr.err, ev.Position)
		} else {
			p.stopped = fmt.Errorf("projections: event %s of %s at position %s cannot be read: %w", ev.Type, ev.Stream, ev.Position, pr.err)
		}
		p.log.Error(p.stopped.Error(), "type", ev.Type, "stream", ev.Stream, "version", int64(ev.Version),
			"position", ev.Position.String(), "folded_up_to", p.pos.String())
		p.notifyLocked()
		return false
	}
	// Every event is a leaf of the audit tree.
	p.appendLeaf(pr.leaf, ev.Position)
	p.apply(ev, pr.payload)
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
// is nil), and returns the iterator's error, or the error that stopped the
// folding (see foldLocked). Events are read, decoded and hashed on
// goroutines of their own while earlier ones are folded, so that a replay
// uses every core; live events go through as they come, without waiting
// for a batch to fill. live says it is a subscription, which feed closes to
// stop its reader when the folding stops.
func (p *Projector) feed(it eventstore.Iterator, keep func(*eventstore.Event) bool, live bool) error {
	// Three goroutines: one reads, one decodes and hashes, this one folds.
	// Reading the store costs about as much as decoding, so with both on
	// one goroutine it would be the slowest stage.
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	read := make(chan eventstore.Event, pipelineDepth)
	go func() {
		defer close(readerDone)
		defer close(read)
		for it.Next() {
			ev := it.Event()
			if keep == nil || keep(&ev) {
				select {
				case read <- ev:
				case <-stop:
					return
				}
			}
		}
	}()
	ch := make(chan prepared, pipelineDepth)
	codec := p.codec
	go func() {
		defer close(ch)
		for ev := range read {
			var pr prepared
			pr.prepare(&ev, codec)
			select {
			case ch <- pr:
			case <-stop:
				return
			}
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
		stopped := p.stopped
		p.mu.Unlock()
		if stopped != nil {
			// Stop the reader and the decoder, and wait for the reader
			// to be done with it before the caller closes it.
			close(stop)
			if live {
				it.Close()
			}
			for range ch {
			}
			<-readerDone
			return stopped
		}
	}
	// The reader is done with it: read, then ch, was closed.
	return it.Err()
}
