package projections_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
)

func TestProgressFollowsAppliedEvents(t *testing.T) {
	p := projections.New(memstore.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if got := p.Progress(); got.Applied != 0 || got.Position != eventstore.Start || !got.LastRecorded.IsZero() || !got.LastApplied.IsZero() {
		t.Fatalf("fresh projector: progress %+v", got)
	}
	recorded := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, typ := range []string{domain.TypeTalentRegistered, domain.TypeTalentDeparted} {
		pos := eventstore.Position{Commit: uint64(10 + i), Prepare: uint64(10 + i)}
		before := time.Now()
		err := p.Apply(&eventstore.Event{ID: eventstore.NewEventID(), Stream: "talent-t1", Version: eventstore.Version(i),
			Position: pos, Type: typ, Data: []byte(`{"talent_id":"t1","name":"A","tier":"B","employer":"E"}`),
			Metadata: eventstore.Metadata{RecordedAt: recorded.Add(time.Duration(i) * time.Minute)}})
		if err != nil {
			t.Fatal(err)
		}
		got := p.Progress()
		if got.Position != pos || got.Applied != uint64(i+1) {
			t.Errorf("after event %d: position %s, applied %d; want %s, %d", i, got.Position, got.Applied, pos, i+1)
		}
		if want := recorded.Add(time.Duration(i) * time.Minute); !got.LastRecorded.Equal(want) {
			t.Errorf("after event %d: last recorded %v, want %v", i, got.LastRecorded, want)
		}
		if got.LastApplied.Before(before) {
			t.Errorf("after event %d: last applied %v, before the event was applied (%v)", i, got.LastApplied, before)
		}
	}
	// An overlap replayed is ignored and moves nothing.
	before := p.Progress()
	if err := p.Apply(&eventstore.Event{Position: eventstore.Position{Commit: 10, Prepare: 10}, Type: domain.TypeTalentRegistered,
		Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if got := p.Progress(); got != before {
		t.Errorf("replayed overlap changed progress from %+v to %+v", before, got)
	}
}
