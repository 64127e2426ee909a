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
