package domain

import (
	"context"

	"talentledger/eventstore"
)

// VerifyReport is the result of checking every stream's hash chain.
type VerifyReport struct {
	OK      bool   `json:"ok"`
	Events  int    `json:"events"`
	Streams int    `json:"streams"`
	Head    string `json:"head"`
	// FirstMismatch names the first event whose hash does not match.
	FirstMismatch *Mismatch `json:"first_mismatch,omitempty"`
}

// Mismatch locates an event that fails verification.
type Mismatch struct {
	Stream   string `json:"stream"`
	Version  int64  `json:"version"`
	Position string `json:"position"`
	Problem  string `json:"problem"`
}

// VerifyLog walks the global log and checks each stream's hash chain and
// version sequence.
func VerifyLog(ctx context.Context, store eventstore.Store) (VerifyReport, error) {
	type head struct {
		hash    string
		version eventstore.Version
	}
	heads := map[string]head{}
	rep := VerifyReport{OK: true}
	it := store.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	var last eventstore.Position
	for it.Next() {
		ev := it.Event()
		rep.Events++
		h, seen := heads[ev.Stream]
		if !seen {
			h = head{version: eventstore.NoStream}
		}
		problem := ""
		switch {
		case ev.Version != h.version+1:
			problem = "version out of sequence"
		case !VerifyEventHash(h.hash, &ev):
			problem = "hash does not match the event's content or its predecessor"
		case !last.Before(ev.Position):
			problem = "position out of order"
		}
		if problem != "" && rep.OK {
			rep.OK = false
			rep.FirstMismatch = &Mismatch{Stream: ev.Stream, Version: int64(ev.Version), Position: ev.Position.String(), Problem: problem}
		}
		heads[ev.Stream] = head{hash: ev.Metadata.Hash, version: ev.Version}
		last = ev.Position
	}
	if err := it.Err(); err != nil {
		return rep, err
	}
	rep.Streams = len(heads)
	rep.Head = last.String()
	return rep, nil
}
