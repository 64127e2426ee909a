package viewstore

import (
	"sync"
	"time"
)

// Tracker follows a rebuild: the models folding the log from its start up
// to the position the log had when they began.
type Tracker struct {
	mu     sync.Mutex
	models []string
	start  time.Time
	from   uint64
	target uint64
	at     uint64
}

// NewTracker starts following the rebuild of models from position from
// (the commit part of a position) to target.
func NewTracker(models []string, from, target uint64, now time.Time) *Tracker {
	return &Tracker{models: append([]string(nil), models...), start: now, from: from, target: target, at: from}
}

// Update records that the models have folded up to position at.
func (t *Tracker) Update(at uint64) {
	t.mu.Lock()
	t.at = max(t.at, at)
	t.mu.Unlock()
}

// Progress reports the rebuild's progress at now.
func (t *Tracker) Progress(now time.Time) Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := Progress{Models: append([]string(nil), t.models...), Done: min(t.at, t.target) - min(t.from, t.target)}
	if t.target > t.from {
		p.Total = t.target - t.from
		p.Percent = 100 * float64(p.Done) / float64(p.Total)
	} else {
		p.Percent = 100
	}
	if secs := now.Sub(t.start).Seconds(); secs > 0 {
		p.EventsPerSec = float64(p.Done) / secs
		if p.EventsPerSec > 0 {
			p.ETASeconds = float64(p.Total-p.Done) / p.EventsPerSec
		}
	}
	return p
}
