package integrity_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"talentledger/domain"
	"talentledger/domain/integrity"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// appendChained appends n events to each of streams, chained as the domain
// chains them.
func appendChained(t testing.TB, s eventstore.Store, streams []string, n int, prev map[string]string, next map[string]eventstore.Version) {
	t.Helper()
	for i := range n {
		for _, st := range streams {
			v := next[st]
			id := eventstore.DeriveEventID(st, fmt.Sprint(v))
			data := []byte(fmt.Sprintf(`{"i":%d}`, i))
			md := eventstore.Metadata{PrevHash: prev[st]}
			md.Hash = domain.ChainHash(prev[st], st, v, id, "Noted", data, md)
			if _, err := s.Append(context.Background(), st, v-1, eventstore.EventData{ID: id, Type: "Noted", Data: data, Metadata: md}); err != nil {
				t.Fatal(err)
			}
			prev[st], next[st] = md.Hash, v+1
		}
	}
}

func TestResumeFromCheckpoint(t *testing.T) {
	ctx := context.Background()
	s, err := pebble.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	streams := []string{"a-1", "b-2", "c-3"}
	prev, next := map[string]string{}, map[string]eventstore.Version{}
	appendChained(t, s, streams, 50, prev, next)

	c := integrity.NewChecker(s)
	if err := c.Extend(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	cp := c.Checkpoint()
	appendChained(t, s, streams[1:], 7, prev, next)

	full := integrity.NewChecker(s)
	if err := full.Extend(ctx, 0); err != nil {
		t.Fatal(err)
	}
	r, err := integrity.Resume(s, cp)
	if err != nil {
		t.Fatal(err)
	}
	expect := integrity.Expect{Size: full.Size(), Root: full.Root(), Name: "the full walk"}
	if err := r.Extend(ctx, 0, expect); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, expect); err != nil {
		t.Fatal(err)
	}
	if r.Size() != 164 || !bytes.Equal(r.Root(), full.Root()) {
		t.Fatalf("resumed: %d events, root %x; full walk: %d, %x", r.Size(), r.Root(), full.Size(), full.Root())
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	if err := r.Sample(ctx, 100, func(k uint64) uint64 { return rnd.Uint64N(k) }); err != nil {
		t.Fatal(err)
	}

	// A checkpoint whose hashes do not make its root is refused.
	cp.Root[0] ^= 1
	if _, err := integrity.Resume(s, cp); err == nil {
		t.Error("Resume accepted a checkpoint whose root does not match its hashes")
	}
	// A head the log falls short of is a problem.
	if err := full.Finish(ctx, integrity.Expect{Size: full.Size() + 3, Name: "a later head"}); err == nil {
		t.Error("a log shorter than a witnessed head passed")
	}
}

// BenchmarkChecker measures what the self-check and the scrub pay for each
// event: reading it, its hash, its index entries and its Merkle leaf.
func BenchmarkChecker(b *testing.B) {
	ctx := context.Background()
	s, err := pebble.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	streams := make([]string, 100)
	for i := range streams {
		streams[i] = fmt.Sprintf("grant-%d", i)
	}
	appendChained(b, s, streams, 200, map[string]string{}, map[string]eventstore.Version{})
	b.ResetTimer()
	for b.Loop() {
		c := integrity.NewChecker(s)
		if err := c.Extend(ctx, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20000/1000, "µs/event")
}
