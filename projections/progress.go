package projections

import (
	"time"

	"talentledger/eventstore"
)

// Progress is how far the read models have got through the log.
type Progress struct {
	// Position is the position of the last event applied.
	Position eventstore.Position
	// Applied counts the events applied since the Projector was made.
	Applied uint64
	// LastRecorded is when the last event applied was recorded, and
	// LastApplied when it was applied; both are zero before the first.
	LastRecorded time.Time
	LastApplied  time.Time
	// Ready is what Ready reports.
	Ready bool
}

// Progress reports how far the models have got, for monitoring: compared
// with the log's last position it gives the lag in events, and LastRecorded
// gives the lag in time while the models are behind.
func (p *Projector) Progress() Progress {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return Progress{Position: p.pos, Applied: p.applied, LastRecorded: p.lastRecorded,
		LastApplied: p.lastApplied, Ready: p.ready && p.err == nil && p.stopped == nil}
}
