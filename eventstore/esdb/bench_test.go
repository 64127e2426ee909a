package esdb_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"talentledger/eventstore"
	"talentledger/eventstore/esdb/esdbtest"
)

// BenchmarkAppend appends one event per call to its own stream at an
// exact version, over loopback to the test server: the cost of the
// adapter and the client, not of a real server's disk.
func BenchmarkAppend(b *testing.B) {
	srv := esdbtest.New(b)
	s := MustOpen(b, srv)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(ctx, "bench-1", eventstore.Version(i)-1, event("Recorded", i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel appends from many goroutines at once, each to
// its own stream, so the client pool grows to the concurrency.
func BenchmarkAppendParallel(b *testing.B) {
	srv := esdbtest.New(b)
	s := MustOpen(b, srv)
	ctx := context.Background()
	var streams atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprintf("bench-%d", streams.Add(1))
		for i := 0; pb.Next(); i++ {
			if _, err := s.Append(ctx, stream, eventstore.Version(i)-1, event("Recorded", i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReadAll reads the global log, per event.
func BenchmarkReadAll(b *testing.B) {
	srv := esdbtest.New(b)
	s := MustOpen(b, srv)
	ctx := context.Background()
	const n = 2000
	for i := 0; i < n; i += 100 {
		if _, err := s.Append(ctx, "bench-1", eventstore.Version(i)-1, events("Recorded", i, 100)...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	read := 0
	for b.Loop() {
		it := s.ReadAll(ctx, eventstore.Start)
		for it.Next() {
			read++
		}
		if err := it.Err(); err != nil {
			b.Fatal(err)
		}
		it.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(read), "ns/event")
}
