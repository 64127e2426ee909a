package domain

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
)

// A sole writer folds the events it proposed instead of reading them back;
// its cached states must be exactly what a second service reads from the
// log, its hash chains intact, and its retries still write nothing.
func TestSoleWriterCacheMatchesTheLog(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	s := newServiceOver(st, WithSoleWriter())
	_, g := approvedHousing(t, s)
	payInstallment(t, s, g, 1, "2024-01-15")
	// A retried command answers with its first position and writes
	// nothing.
	m := on(clerk, "2025-01-15")
	m.CommandID = "prepare-2"
	first := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: m, GrantID: g, Installment: 2}))
	n := countEvents(t, st)
	again := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: m, GrantID: g, Installment: 2}))
	if again != first || countEvents(t, st) != n {
		t.Errorf("retry answered %+v after %+v and the log went from %d to %d events", again, first, n, countEvents(t, st))
	}

	fresh := newServiceOver(st)
	if got, want := grantState(t, s, g), grantState(t, fresh, g); !reflect.DeepEqual(got, want) {
		t.Errorf("cached grant differs from the log's:\n%+v\n%+v", got, want)
	}
	// Amounts by value: the budget's JSON writes each with two decimals.
	if got, want := budgetState(t, s, "housing", 2024), budgetState(t, fresh, "housing", 2024); jsonString(t, got) != jsonString(t, want) {
		t.Errorf("cached budget %+v, the log's %+v", got, want)
	}
	for stream, newAgg := range map[string]func() aggregate{streamGrant(g): newGrant, streamBudget("housing", 2024): newBudget} {
		var cached, loaded entry
		s.repo.view(ctx, stream, newAgg, func(e *entry) error { cached = *e; return nil })
		fresh.repo.view(ctx, stream, newAgg, func(e *entry) error { loaded = *e; return nil })
		if cached.version != loaded.version || cached.lastHash != loaded.lastHash || len(cached.ids) != len(loaded.ids) {
			t.Errorf("%s: cached version %d, hash %s, %d ids; the log's %d, %s, %d", stream,
				cached.version, cached.lastHash, len(cached.ids), loaded.version, loaded.lastHash, len(loaded.ids))
		}
	}
	rep, err := VerifyLog(ctx, st)
	if err != nil || !rep.OK {
		t.Errorf("VerifyLog: %+v, %v", rep, err)
	}
}

func TestSoleWriterLooksUpRecordedAnswers(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	s := newServiceOver(st, WithSoleWriter())
	id := IdempotencyCommandID("carl", "key-1")
	if rec, err := s.LookupIdempotency(ctx, id); rec != nil || err != nil {
		t.Fatalf("before recording: %+v, %v", rec, err)
	}
	want := IdempotencyRecorded{Key: id, RequestHash: "h1", Status: 201, Response: []byte(`{"id":"t1"}`)}
	if first, err := s.RecordIdempotency(ctx, clerk, id, want); err != nil || first == nil || first.RequestHash != "h1" {
		t.Fatalf("RecordIdempotency: %+v, %v", first, err)
	}
	// A second answer does not replace the first.
	if first, err := s.RecordIdempotency(ctx, clerk, id, IdempotencyRecorded{Key: id, RequestHash: "h2", Status: 200}); err != nil || first.RequestHash != "h1" {
		t.Fatalf("second RecordIdempotency: %+v, %v", first, err)
	}
	for _, svc := range []*Service{s, newServiceOver(st)} {
		rec, err := svc.LookupIdempotency(ctx, id)
		if err != nil || rec == nil || !reflect.DeepEqual(*rec, want) {
			t.Errorf("LookupIdempotency: %+v, %v; want %+v", rec, err, want)
		}
	}
	if n := countEvents(t, st, TypeIdempotencyRecorded); n != 1 {
		t.Errorf("%d answers recorded, want 1", n)
	}
}

// jsonString is v as JSON, for comparing values holding amounts.
func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
