package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"talentledger/eventstore"
)

// A stored event its stream's state cannot take is refused with
// ErrOutOfContext when the stream is loaded; no event, alone at the head
// of its stream, panics the command that loads it.
func TestFoldRefusesEventsOutOfContext(t *testing.T) {
	c := Codec{}
	for _, s := range sampleList() {
		typ := s.event.EventType()
		t.Run(typ, func(t *testing.T) {
			err := foldAlone(t, c, s)
			if err != nil && !errors.Is(err, ErrOutOfContext) {
				t.Fatalf("folding a lone %s: %v, want nil or ErrOutOfContext", typ, err)
			}
		})
	}
	// The known case: a payment's approval whose payment was never
	// prepared, on a grant never applied for.
	lone := sample{"grant-g1", &PaymentApproved{GrantID: "g1", PaymentID: "p1"}}
	if err := foldAlone(t, c, lone); !errors.Is(err, ErrOutOfContext) {
		t.Fatalf("a lone PaymentApproved folded with %v, want ErrOutOfContext", err)
	}
}

// foldAlone folds s's event as the first of its stream, as a command
// loading the stream would, and reports a panic as a test failure.
func foldAlone(t *testing.T, c Codec, s sample) (err error) {
	t.Helper()
	data, err := json.Marshal(s.event)
	if err != nil {
		t.Fatal(err)
	}
	ev := eventstore.Event{Stream: s.stream, Type: c.StoredType(s.event), Data: data, Version: 0,
		Position: eventstore.Position{Commit: 1, Prepare: 1}}
	e := &entry{stream: s.stream, agg: aggregateOf(s.stream), version: eventstore.NoStream, ids: map[eventstore.EventID]eventstore.Position{}}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panicked: %v", r)
			t.Errorf("folding a lone %s %v", s.event.EventType(), err)
		}
	}()
	return e.fold(&ev, c)
}
