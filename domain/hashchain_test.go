package domain

import (
	"bytes"
	"context"
	"testing"
	"time"

	"talentledger/eventstore"
)

// verifyChains checks every stream's hash chain in the store's global log
// and returns how many events it checked.
func verifyChains(t testing.TB, st eventstore.Store) int {
	t.Helper()
	last := map[string]string{}
	next := map[string]eventstore.Version{}
	events := readAll(t, st)
	for i := range events {
		e := &events[i]
		if e.Version != next[e.Stream] {
			t.Errorf("%s: event at version %d, want %d", e.Stream, e.Version, next[e.Stream])
		}
		if !VerifyEventHash(last[e.Stream], e) {
			t.Errorf("%s@%d (%s): hash chain broken: prev %q, stored prev %q", e.Stream, e.Version, e.Type, last[e.Stream], e.Metadata.PrevHash)
		}
		last[e.Stream] = e.Metadata.Hash
		next[e.Stream] = e.Version + 1
	}
	return len(events)
}

func TestHashChain(t *testing.T) {
	s := newTestService(t)
	clawbackJourney(t, s)
	if n := verifyChains(t, s.Store()); n < 15 {
		t.Fatalf("checked only %d events", n)
	}

	events := readAll(t, s.Store())
	prevOf := func(i int) string {
		for j := i - 1; j >= 0; j-- {
			if events[j].Stream == events[i].Stream {
				return events[j].Metadata.Hash
			}
		}
		return ""
	}
	// Pick an event deep in a stream: the grant's GrantApproved.
	idx := -1
	for i, e := range events {
		if typeName(e.Type) == TypeGrantApproved {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatal("no GrantApproved in the log")
	}
	orig := events[idx]
	prev := prevOf(idx)
	if !VerifyEventHash(prev, &orig) {
		t.Fatal("the untouched event does not verify")
	}
	if VerifyEventHash("", &orig) {
		t.Error("verifies against the wrong previous hash")
	}

	tamper := func(name string, f func(e *eventstore.Event)) {
		t.Helper()
		e := orig
		e.Data = bytes.Clone(orig.Data)
		f(&e)
		if VerifyEventHash(prev, &e) {
			t.Errorf("tampering with %s is not detected", name)
		}
	}
	// Change one byte of the data: "600000.00" becomes "700000.00".
	tamper("one byte of data", func(e *eventstore.Event) {
		i := bytes.Index(e.Data, []byte(`"600000.00"`))
		if i < 0 {
			t.Fatalf("no award in %s", e.Data)
		}
		e.Data[i+1] = '7'
	})
	tamper("the last byte of data", func(e *eventstore.Event) { e.Data[len(e.Data)-2] ^= 1 })
	tamper("the type", func(e *eventstore.Event) { e.Type = TypeGrantRejected })
	tamper("the stream", func(e *eventstore.Event) { e.Stream += "x" })
	tamper("the version", func(e *eventstore.Event) { e.Version++ })
	tamper("the event ID", func(e *eventstore.Event) { e.ID[0] ^= 1 })
	tamper("the principal", func(e *eventstore.Event) { e.Metadata.Principal = "mallory" })
	tamper("the role", func(e *eventstore.Event) { e.Metadata.Role = RoleAdmin })
	tamper("the recorded time", func(e *eventstore.Event) { e.Metadata.RecordedAt = e.Metadata.RecordedAt.Add(time.Microsecond) })
	tamper("the effective date", func(e *eventstore.Event) { e.Metadata.EffectiveDate = "2024-01-16" })
	tamper("the reason", func(e *eventstore.Event) { e.Metadata.Reason = "because" })
	tamper("the document", func(e *eventstore.Event) { e.Metadata.DocumentRef = "DOC-X" })
	tamper("the correlation id", func(e *eventstore.Event) { e.Metadata.CorrelationID = "c" })
	tamper("the causation id", func(e *eventstore.Event) { e.Metadata.CausationID = "c" })
	tamper("the stored hash", func(e *eventstore.Event) {
		e.Metadata.Hash = ChainHash("", e.Stream, e.Version, e.ID, e.Type, e.Data, e.Metadata)
	})

	// Rewriting an event and recomputing its own hash still breaks the next
	// event's link.
	e := orig
	e.Data = bytes.Replace(bytes.Clone(orig.Data), []byte(`"600000.00"`), []byte(`"700000.00"`), 1)
	e.Metadata.Hash = ChainHash(prev, e.Stream, e.Version, e.ID, e.Type, e.Data, e.Metadata)
	if !VerifyEventHash(prev, &e) {
		t.Fatal("a consistently rehashed event should verify on its own")
	}
	for j := idx + 1; j < len(events); j++ {
		if events[j].Stream == orig.Stream {
			if VerifyEventHash(e.Metadata.Hash, &events[j]) {
				t.Error("the event after a rewritten one still verifies")
			}
			break
		}
	}
}

func TestChainHashCanonicalTime(t *testing.T) {
	// The same instant in another zone hashes the same: the hash is over
	// UTC, so a backend that returns times in local time does not break it.
	md := eventstore.Metadata{Principal: "p", RecordedAt: time.Date(2024, 1, 15, 8, 0, 0, 123000, time.UTC)}
	h1 := ChainHash("", "grant-g1", 0, eventstore.EventID{}, TypeGrantApplied, []byte(`{}`), md)
	md.RecordedAt = md.RecordedAt.In(CityTime)
	if h2 := ChainHash("", "grant-g1", 0, eventstore.EventID{}, TypeGrantApplied, []byte(`{}`), md); h1 != h2 {
		t.Errorf("hash depends on the time zone: %s vs %s", h1, h2)
	}
	// Length prefixes keep fields apart.
	a := ChainHash("", "s", 0, eventstore.EventID{}, "ab", []byte(`"c"`), eventstore.Metadata{})
	b := ChainHash("", "s", 0, eventstore.EventID{}, "a", []byte(`b"c"`), eventstore.Metadata{})
	if a == b {
		t.Error("fields run into each other")
	}
}

func TestVerifyLog(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	_, gid := clawbackJourney(t, s)
	events := readAll(t, s.Store())
	streams := map[string]bool{}
	for _, e := range events {
		streams[e.Stream] = true
	}
	rep, err := VerifyLog(ctx, s.Store())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.FirstMismatch != nil || rep.Events != len(events) || rep.Streams != len(streams) ||
		rep.Head != events[len(events)-1].Position.String() {
		t.Fatalf("VerifyLog = %+v; want OK over %d events in %d streams", rep, len(events), len(streams))
	}

	// An event written behind the domain's back, linked to the right
	// predecessor but hashed over other content, is found.
	stream := StreamGrant(gid)
	var last eventstore.Event
	for _, e := range events {
		if e.Stream == stream {
			last = e
		}
	}
	data := []byte(`{"grant_id":"` + gid + `","reason":"forged"}`)
	md := eventstore.Metadata{Principal: "mallory", Role: RoleApprover, PrevHash: last.Metadata.Hash}
	md.Hash = ChainHash(last.Metadata.Hash, stream, last.Version+1, eventstore.EventID{}, TypeGrantRejected, []byte(`{}`), md)
	if _, err := s.Store().Append(ctx, stream, last.Version, eventstore.EventData{
		ID: eventstore.NewEventID(), Type: TypeGrantRejected, Data: data, Metadata: md,
	}); err != nil {
		t.Fatal(err)
	}
	rep, err = VerifyLog(ctx, s.Store())
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.FirstMismatch == nil || rep.FirstMismatch.Stream != stream || rep.FirstMismatch.Version != int64(last.Version)+1 {
		t.Errorf("VerifyLog after a forged event = %+v (%+v)", rep, rep.FirstMismatch)
	}
}
