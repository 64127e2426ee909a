package esdb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/esdb"
	"talentledger/eventstore/esdb/esdbtest"
)

// MustOpen connects a store to srv and closes it when the test ends.
func MustOpen(tb testing.TB, srv *esdbtest.Server, opts ...esdb.Option) *esdb.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]esdb.Option{esdb.WithResubscribeBackoff(10*time.Millisecond, 200*time.Millisecond)}, opts...)
	s, err := esdb.New(ctx, srv.URL(), opts...)
	if err != nil {
		tb.Fatalf("esdb.New(%s): %v", srv.URL(), err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, eventstore.ErrClosed) {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func event(typ string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:   eventstore.NewEventID(),
		Type: typ,
		Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

func events(typ string, first, count int) []eventstore.EventData {
	out := make([]eventstore.EventData, count)
	for i := range out {
		out[i] = event(typ, first+i)
	}
	return out
}

func collect(t *testing.T, it eventstore.Iterator) []eventstore.Event {
	t.Helper()
	defer it.Close()
	var out []eventstore.Event
	for it.Next() {
		out = append(out, it.Event())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	return out
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected eventstore.Version, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(testContext(t), stream, expected, evs...)
	if err != nil {
		t.Fatalf("Append(%s, %s): %v", stream, expected, err)
	}
	return res
}

func TestAppendAndRead(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)

	want := events("GrantApplied", 0, 3)
	want[1].Metadata = eventstore.Metadata{Principal: "clerk-li", Role: "clerk", RecordedAt: time.Date(2024, 3, 15, 9, 30, 0, 0, time.UTC), Hash: "ab"}
	res := mustAppend(t, s, "grant-1", eventstore.NoStream, want...)
	if res.Version != 2 {
		t.Errorf("Version = %s; want 2", res.Version)
	}

	got := collect(t, s.ReadStream(ctx, "grant-1", 0))
	if len(got) != 3 {
		t.Fatalf("read %d events; want 3", len(got))
	}
	for i, e := range got {
		if e.ID != want[i].ID || e.Type != want[i].Type || string(e.Data) != string(want[i].Data) ||
			e.Version != eventstore.Version(i) || e.Stream != "grant-1" {
			t.Errorf("event %d = %+v; want %+v", i, e, want[i])
		}
		if i > 0 && !got[i-1].Position.Before(e.Position) {
			t.Errorf("positions not increasing: %s then %s", got[i-1].Position, e.Position)
		}
	}
	if m := got[1].Metadata; m.Principal != "clerk-li" || m.Hash != "ab" || !m.RecordedAt.Equal(want[1].Metadata.RecordedAt) {
		t.Errorf("metadata = %+v; want %+v", m, want[1].Metadata)
	}
	if res.Position != got[2].Position {
		t.Errorf("AppendResult.Position = %s; the last event is at %s", res.Position, got[2].Position)
	}
}

// TestTransactionPositions reads events written in an explicit
// transaction, as old logs hold them: they share a commit position after
// their own prepare positions, and the store keeps both halves, orders by
// them and resumes from inside the transaction.
func TestTransactionPositions(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)
	before := mustAppend(t, s, "fund-1", eventstore.NoStream, event("FundEstablished", 0))
	if err := srv.AppendTransaction("fund-2", "CommitmentMade", "CommitmentMade", "CapitalPaidIn"); err != nil {
		t.Fatal(err)
	}
	after := mustAppend(t, s, "fund-3", eventstore.NoStream, event("FundEstablished", 1))

	all := collect(t, s.ReadAll(ctx, before.Position))
	if len(all) != 4 || all[3].Position != after.Position {
		t.Fatalf("ReadAll = %v; want the transaction's three events and the last append", all)
	}
	tx := all[:3]
	for i, e := range tx {
		if e.Stream != "fund-2" || e.Version != eventstore.Version(i) {
			t.Fatalf("event %d is %s/%s; want fund-2/%d", i, e.Stream, e.Version, i)
		}
		if e.Position.Commit != tx[0].Position.Commit || e.Position.Prepare >= e.Position.Commit {
			t.Errorf("event %d at %s: want the shared commit %d after its prepare", i, e.Position, tx[0].Position.Commit)
		}
		if i > 0 && !tx[i-1].Position.Before(e.Position) {
			t.Errorf("positions %s then %s", tx[i-1].Position, e.Position)
		}
	}
	stream := collect(t, s.ReadStream(ctx, "fund-2", 0))
	for i := range stream {
		if stream[i].Position != tx[i].Position {
			t.Errorf("fund-2/%d: stream read at %s, $all at %s", i, stream[i].Position, tx[i].Position)
		}
	}

	// From inside the transaction: reading, subscribing, and subscribing
	// across a restart.
	if got := collect(t, s.ReadAll(ctx, tx[0].Position)); len(got) != 3 || got[0].ID != tx[1].ID {
		t.Errorf("ReadAll(after %s) = %v; want the transaction's last two events and the last append", tx[0].Position, got)
	}
	from := s.Subscribe(ctx, tx[1].Position, eventstore.Filter{})
	defer from.Close()
	if !from.Next() || from.Event().ID != tx[2].ID {
		t.Errorf("Subscribe(after %s): %+v, %v; want %s", tx[1].Position, from.Event(), from.Err(), tx[2].ID)
	}
	sub := s.Subscribe(ctx, tx[0].Position, eventstore.Filter{})
	defer sub.Close()
	if !sub.Next() || sub.Event().ID != tx[1].ID {
		t.Fatalf("subscription: %+v, %v; want %s", sub.Event(), sub.Err(), tx[1].ID)
	}
	restart(t, srv, 20*time.Millisecond)
	for _, want := range []eventstore.Event{tx[2], all[3]} {
		if !sub.Next() || sub.Event().ID != want.ID {
			t.Fatalf("subscription: %+v, %v; want %s", sub.Event(), sub.Err(), want.ID)
		}
	}
}

func TestWrongVersionReportsActual(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)
	mustAppend(t, s, "budget-housing-2024", eventstore.NoStream, events("BudgetAppropriated", 0, 2)...)

	for _, c := range []struct {
		stream   string
		expected eventstore.Version
		actual   eventstore.Version
	}{
		{"budget-housing-2024", eventstore.NoStream, 1},
		{"budget-housing-2024", 0, 1},
		{"budget-housing-2024", 5, 1},
		{"budget-missing", 0, eventstore.NoStream},
		{"budget-missing", eventstore.StreamExists, eventstore.NoStream},
	} {
		_, err := s.Append(ctx, c.stream, c.expected, event("BudgetReserved", 9))
		var wv *eventstore.WrongVersionError
		if !errors.Is(err, eventstore.ErrWrongVersion) || !errors.As(err, &wv) {
			t.Fatalf("Append(%s, %s) error %v; want a *WrongVersionError", c.stream, c.expected, err)
		}
		if wv.Stream != c.stream || wv.Expected != c.expected || wv.Actual != c.actual {
			t.Errorf("Append(%s, %s): %+v; want actual %s", c.stream, c.expected, wv, c.actual)
		}
	}
}

func TestIdempotentRetryReturnsOriginal(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	batch := events("PaymentPrepared", 0, 2)
	first := mustAppend(t, s, "payment-1", eventstore.NoStream, batch...)
	mustAppend(t, s, "payment-1", 1, event("PaymentApproved", 2))

	// The test server, like some EventStoreDB versions, answers a retry
	// without a position; the store finds it.
	for _, expected := range []eventstore.Version{eventstore.NoStream, eventstore.Any} {
		retry := mustAppend(t, s, "payment-1", expected, batch...)
		if retry != first {
			t.Errorf("retry with %s = %+v; want the original %+v", expected, retry, first)
		}
	}
	if n := len(collect(t, s.ReadStream(testContext(t), "payment-1", 0))); n != 3 {
		t.Errorf("stream holds %d events; want 3", n)
	}
}

func TestReadMissingStream(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	it := s.ReadStream(testContext(t), "grant-none", 0)
	if it.Next() {
		t.Fatalf("Next = true on a missing stream")
	}
	if err := it.Err(); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("Err = %v; want ErrStreamNotFound", err)
	}
}

// TestGlobalLogLeavesOutSystemEvents checks that system events, which the
// test server writes at start-up, after each stream's creation and on
// demand, never reach ReadAll, Subscribe or LastPosition.
func TestGlobalLogLeavesOutSystemEvents(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)

	a := mustAppend(t, s, "grant-1", eventstore.NoStream, event("GrantApplied", 0))
	if err := srv.AppendSystemEvent("$settings", "$settings", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	b := mustAppend(t, s, "grant-2", eventstore.NoStream, event("GrantApplied", 1))
	if err := srv.AppendSystemEvent("$stats-x", "$statsCollected", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// A user stream with a system type is a system event too.
	if err := srv.AppendSystemEvent("$$grant-2", "$metadata", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if total := srv.EventCount(); total < 6 {
		t.Fatalf("server holds %d events; want the system events too", total)
	}

	all := collect(t, s.ReadAll(ctx, eventstore.Start))
	if len(all) != 2 || all[0].Position != a.Position || all[1].Position != b.Position {
		t.Fatalf("ReadAll = %v; want the two user events at %s and %s", all, a.Position, b.Position)
	}
	if got := collect(t, s.ReadAll(ctx, a.Position)); len(got) != 1 || got[0].Position != b.Position {
		t.Errorf("ReadAll(after %s) = %v; want the one event at %s", a.Position, got, b.Position)
	}
	last, err := s.LastPosition(ctx)
	if err != nil || last != b.Position {
		t.Errorf("LastPosition = %s, %v; want %s", last, err, b.Position)
	}

	sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	defer sub.Close()
	for i, want := range []eventstore.Position{a.Position, b.Position} {
		if !sub.Next() {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		if got := sub.Event(); got.Position != want {
			t.Errorf("subscription event %d at %s (%s/%s); want %s", i, got.Position, got.Stream, got.Type, want)
		}
	}
}

func TestSubscribeFilters(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)
	mustAppend(t, s, "grant-1", eventstore.NoStream, event("GrantApplied", 0), event("GrantReviewed", 1))
	mustAppend(t, s, "fund-1", eventstore.NoStream, event("FundEstablished", 2), event("GrantApplied", 3))
	mustAppend(t, s, "grant-2", eventstore.NoStream, event("GrantApplied", 4))

	// Each case ends with a marker that matches its filter, appended once
	// the earlier events are delivered: it must come next, so nothing
	// else matched.
	for _, c := range []struct {
		name   string
		filter eventstore.Filter
		want   []string // stream/n
		marker [2]string
	}{
		{"all", eventstore.Filter{}, []string{"grant-1/0", "grant-1/1", "fund-1/2", "fund-1/3", "grant-2/4"},
			[2]string{"marker-1", "Marker"}},
		{"prefix", eventstore.Filter{StreamPrefixes: []string{"grant-"}}, []string{"grant-1/0", "grant-1/1", "grant-2/4"},
			[2]string{"grant-marker", "Marker"}},
		{"type", eventstore.Filter{EventTypes: []string{"GrantApplied", "FundClosed"}}, []string{"grant-1/0", "fund-1/3", "grant-2/4"},
			[2]string{"marker-2", "FundClosed"}},
		{"both", eventstore.Filter{StreamPrefixes: []string{"fund-"}, EventTypes: []string{"GrantApplied"}}, []string{"fund-1/3"},
			[2]string{"fund-marker", "GrantApplied"}},
		{"regexp characters", eventstore.Filter{EventTypes: []string{"Grant.*"}}, nil,
			[2]string{"marker-3", "Grant.*"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub := s.Subscribe(ctx, eventstore.Start, c.filter)
			defer sub.Close()
			var got []string
			for range c.want {
				if !sub.Next() {
					t.Fatalf("subscription ended: %v", sub.Err())
				}
				e := sub.Event()
				var d struct{ N int }
				if err := json.Unmarshal(e.Data, &d); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s/%d", e.Stream, d.N))
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("delivered %v; want %v", got, c.want)
			}
			marker := event(c.marker[1], 99)
			mustAppend(t, s, c.marker[0], eventstore.NoStream, marker)
			if !sub.Next() {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			if e := sub.Event(); e.ID != marker.ID {
				t.Errorf("after the expected events came %s/%s %s; want the marker", e.Stream, e.Type, e.Data)
			}
		})
	}
}

func TestClose(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv)
	ctx := testContext(t)
	mustAppend(t, s, "grant-1", eventstore.NoStream, event("GrantApplied", 0))
	sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	if !sub.Next() {
		t.Fatalf("subscription: %v", sub.Err())
	}
	ended := make(chan error, 1)
	go func() {
		sub.Next()
		ended <- sub.Err()
	}()

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("subscription Err after the store closed = %v; want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("the subscription did not end when the store closed")
	}
	if _, err := s.Append(ctx, "grant-1", 0, event("GrantReviewed", 1)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append after Close: %v; want ErrClosed", err)
	}
	if _, err := s.LastPosition(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("LastPosition after Close: %v; want ErrClosed", err)
	}
	it := s.ReadAll(ctx, eventstore.Start)
	if it.Next() || !errors.Is(it.Err(), eventstore.ErrClosed) {
		t.Errorf("ReadAll after Close: %v; want ErrClosed", it.Err())
	}
	if err := s.Close(); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("second Close: %v; want ErrClosed", err)
	}
}

func TestBadInputIsRefusedBeforeTheNetwork(t *testing.T) {
	srv := esdbtest.New(t)
	s := MustOpen(t, srv, esdb.WithMaxEventSize(1000), esdb.WithMaxAppendSize(1500))
	before := srv.EventCount()
	big := event("DocumentAttached", 0)
	big.Data = json.RawMessage(`"` + strings.Repeat("x", 1000) + `"`)
	half := func() eventstore.EventData {
		e := event("DocumentAttached", 0)
		e.Data = json.RawMessage(`"` + strings.Repeat("x", 800) + `"`)
		return e
	}
	for _, c := range []struct {
		name   string
		stream string
		events []eventstore.EventData
		want   error
	}{
		{"system stream", "$all", []eventstore.EventData{event("X", 0)}, eventstore.ErrInvalidStream},
		{"no events", "grant-1", nil, eventstore.ErrNoEvents},
		{"system type", "grant-1", []eventstore.EventData{event("$metadata", 0)}, eventstore.ErrInvalidEvent},
		{"event too large", "grant-1", []eventstore.EventData{big}, eventstore.ErrEventTooLarge},
		{"append too large", "grant-1", []eventstore.EventData{half(), half()}, eventstore.ErrEventTooLarge},
	} {
		_, err := s.Append(testContext(t), c.stream, eventstore.Any, c.events...)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
	}
	if after := srv.EventCount(); after != before {
		t.Errorf("the server holds %d events, %d before; bad input reached it", after, before)
	}
}

func TestNewFailsFast(t *testing.T) {
	srv := esdbtest.New(t)
	url := srv.URL()
	srv.Stop()
	ctx := testContext(t)
	if _, err := esdb.New(ctx, url); !errors.Is(err, esdb.ErrUnavailable) {
		t.Errorf("New with no server: %v; want ErrUnavailable", err)
	}
	for _, bad := range []string{"http://127.0.0.1:2113", "esdb://", "esdb://admin:s3cret@host:notaport"} {
		_, err := esdb.New(ctx, bad)
		if !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("New(%q): %v; want ErrInvalid", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q): the error %q shows the password", bad, err)
		}
	}
}
