package pebble_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// MustOpen opens a store in dir (a fresh temporary directory when empty)
// and closes it when the test ends.
func MustOpen(tb testing.TB, dir string, opts ...pebble.Option) *pebble.Store {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	s, err := pebble.Open(dir, opts...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func newEvent(typ string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:   eventstore.NewEventID(),
		Type: typ,
		Data: []byte(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

func events(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = newEvent("Thing", i)
	}
	return evs
}

func mustAppend(tb testing.TB, s eventstore.Store, stream string, exp eventstore.Version, evs ...eventstore.EventData) eventstore.AppendResult {
	tb.Helper()
	res, err := s.Append(context.Background(), stream, exp, evs...)
	if err != nil {
		tb.Fatalf("Append(%s, %s): %v", stream, exp, err)
	}
	return res
}

func readAll(tb testing.TB, it eventstore.Iterator) ([]eventstore.Event, error) {
	tb.Helper()
	defer it.Close()
	var out []eventstore.Event
	for it.Next() {
		out = append(out, it.Event())
	}
	return out, it.Err()
}

func mustRead(tb testing.TB, it eventstore.Iterator) []eventstore.Event {
	tb.Helper()
	evs, err := readAll(tb, it)
	if err != nil {
		tb.Fatalf("iterator: %v", err)
	}
	return evs
}

func TestAppendAndReadBack(t *testing.T) {
	s := MustOpen(t, "")
	ctx := context.Background()
	at := time.Date(2024, 3, 1, 9, 30, 0, 123456789, time.FixedZone("CST", 8*3600))
	in := []eventstore.EventData{
		{
			ID:   eventstore.NewEventID(),
			Type: "GrantApplied",
			Data: []byte(`{"amount":"600000.00"}`),
			Metadata: eventstore.Metadata{
				Principal: "clerk-1", Role: "clerk", CorrelationID: "corr", CausationID: "cause",
				RecordedAt: at, EffectiveDate: "2024-02-29", Reason: "why", DocumentRef: "doc-7",
				PrevHash: "00ff", Hash: "ff00",
			},
		},
		newEvent("GrantReviewed", 2),
	}
	res := mustAppend(t, s, "grant-1", eventstore.NoStream, in...)
	if want := (eventstore.AppendResult{Version: 1, Position: eventstore.Position{Commit: 2, Prepare: 2}}); res != want {
		t.Fatalf("result = %+v, want %+v", res, want)
	}
	got := mustRead(t, s.ReadStream(ctx, "grant-1", 0))
	if len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	for i, e := range got {
		if e.ID != in[i].ID || e.Type != in[i].Type || string(e.Data) != string(in[i].Data) ||
			e.Stream != "grant-1" || e.Version != eventstore.Version(i) || e.Position.Commit != uint64(i+1) || e.Position.Prepare != uint64(i+1) {
			t.Errorf("event %d = %+v, want %+v at version %d", i, e, in[i], i)
		}
	}
	gm, wm := got[0].Metadata, in[0].Metadata
	if !gm.RecordedAt.Equal(wm.RecordedAt) {
		t.Errorf("recorded at = %v, want %v", gm.RecordedAt, wm.RecordedAt)
	}
	if _, off := gm.RecordedAt.Zone(); off != 8*3600 {
		t.Errorf("recorded at zone offset = %d, want %d", off, 8*3600)
	}
	gm.RecordedAt, wm.RecordedAt = time.Time{}, time.Time{}
	if gm != wm {
		t.Errorf("metadata = %+v, want %+v", gm, wm)
	}
	if !got[1].Metadata.RecordedAt.IsZero() {
		t.Errorf("zero recorded at read back as %v", got[1].Metadata.RecordedAt)
	}

	all := mustRead(t, s.ReadAll(ctx, eventstore.Start))
	if len(all) != 2 || all[0].ID != in[0].ID || all[1].ID != in[1].ID {
		t.Fatalf("ReadAll = %v", all)
	}
	after := mustRead(t, s.ReadAll(ctx, all[0].Position))
	if len(after) != 1 || after[0].ID != in[1].ID {
		t.Fatalf("ReadAll after 1 = %v, want only the second event", after)
	}
	from1 := mustRead(t, s.ReadStream(ctx, "grant-1", 1))
	if len(from1) != 1 || from1[0].ID != in[1].ID {
		t.Fatalf("ReadStream from 1 = %v", from1)
	}
	past := mustRead(t, s.ReadStream(ctx, "grant-1", 5))
	if len(past) != 0 {
		t.Fatalf("ReadStream past the end = %v, want nothing", past)
	}
	last, err := s.LastPosition(ctx)
	if err != nil || last != (eventstore.Position{Commit: 2, Prepare: 2}) {
		t.Fatalf("LastPosition = %v, %v; want 2", last, err)
	}
}

func TestReadMissingStream(t *testing.T) {
	s := MustOpen(t, "")
	mustAppend(t, s, "other", eventstore.NoStream, events(1)...)
	for _, from := range []eventstore.Version{0, 3} {
		_, err := readAll(t, s.ReadStream(context.Background(), "missing", from))
		if !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Errorf("ReadStream(missing, %d) error = %v, want ErrStreamNotFound", from, err)
		}
	}
}

func TestLongStreamAndLog(t *testing.T) {
	// More events than one read chunk, in several streams, so reads cross
	// chunk boundaries.
	s := MustOpen(t, "")
	const n = 1300
	v := map[string]eventstore.Version{"a": eventstore.NoStream, "b": eventstore.NoStream}
	for i := 0; i < n; i++ {
		st := "a"
		if i%3 == 0 {
			st = "b"
		}
		v[st] = mustAppend(t, s, st, v[st], newEvent("T", i)).Version
	}
	all := mustRead(t, s.ReadAll(context.Background(), eventstore.Start))
	if len(all) != n {
		t.Fatalf("ReadAll read %d, want %d", len(all), n)
	}
	for i, e := range all {
		if e.Position.Commit != uint64(i+1) {
			t.Fatalf("event %d at position %v", i, e.Position)
		}
	}
	a := mustRead(t, s.ReadStream(context.Background(), "a", 0))
	if int64(len(a)) != int64(v["a"])+1 {
		t.Fatalf("stream a has %d events, head %d", len(a), v["a"])
	}
	for i, e := range a {
		if e.Version != eventstore.Version(i) || e.Stream != "a" {
			t.Fatalf("stream a event %d = %v/%v", i, e.Stream, e.Version)
		}
	}
}

func TestExpectedVersion(t *testing.T) {
	s := MustOpen(t, "")
	ctx := context.Background()
	wrong := func(name string, stream string, exp eventstore.Version, wantActual eventstore.Version) {
		t.Helper()
		_, err := s.Append(ctx, stream, exp, events(1)...)
		var wv *eventstore.WrongVersionError
		if !errors.As(err, &wv) || !errors.Is(err, eventstore.ErrWrongVersion) {
			t.Fatalf("%s: error = %v, want *WrongVersionError", name, err)
		}
		if wv.Stream != stream || wv.Expected != exp || wv.Actual != wantActual {
			t.Fatalf("%s: %+v, want stream %s expected %s actual %s", name, wv, stream, exp, wantActual)
		}
	}
	wrong("exists on missing", "s1", eventstore.StreamExists, eventstore.NoStream)
	wrong("exact on missing", "s1", 0, eventstore.NoStream)
	mustAppend(t, s, "s1", eventstore.NoStream, events(2)...)
	wrong("no stream on existing", "s1", eventstore.NoStream, 1)
	wrong("stale", "s1", 0, 1)
	wrong("future", "s1", 5, 1)
	if res := mustAppend(t, s, "s1", 1, events(1)...); res.Version != 2 {
		t.Fatalf("exact append version = %d, want 2", res.Version)
	}
	if res := mustAppend(t, s, "s1", eventstore.StreamExists, events(1)...); res.Version != 3 {
		t.Fatalf("stream-exists append version = %d, want 3", res.Version)
	}
	if res := mustAppend(t, s, "s1", eventstore.Any, events(1)...); res.Version != 4 {
		t.Fatalf("any append version = %d, want 4", res.Version)
	}
	if res := mustAppend(t, s, "s2", eventstore.Any, events(1)...); res.Version != 0 {
		t.Fatalf("any on new stream version = %d, want 0", res.Version)
	}
	last, _ := s.LastPosition(ctx)
	if last.Commit != 6 {
		t.Fatalf("LastPosition = %v, want 6 (failed appends must write nothing)", last)
	}
}

func TestIdempotentRetry(t *testing.T) {
	s := MustOpen(t, "")
	ctx := context.Background()
	mustAppend(t, s, "x", eventstore.NoStream, events(2)...)

	first := events(3)
	orig := mustAppend(t, s, "x", 1, first...)
	mustAppend(t, s, "x", orig.Version, events(1)...) // the stream moves on

	cases := []struct {
		name string
		exp  eventstore.Version
		evs  []eventstore.EventData
	}{
		{"exact", 1, first},
		{"any", eventstore.Any, first},
		{"stream exists", eventstore.StreamExists, first},
	}
	for _, c := range cases {
		before, _ := s.LastPosition(ctx)
		res, err := s.Append(ctx, "x", c.exp, c.evs...)
		if err != nil || res != orig {
			t.Errorf("%s retry = %+v, %v; want %+v", c.name, res, err, orig)
		}
		after, _ := s.LastPosition(ctx)
		if after != before {
			t.Errorf("%s retry wrote: position %v → %v", c.name, before, after)
		}
	}

	// NoStream retry of the stream's first append.
	y := events(2)
	origY := mustAppend(t, s, "y", eventstore.NoStream, y...)
	mustAppend(t, s, "y", origY.Version, events(1)...)
	if res, err := s.Append(ctx, "y", eventstore.NoStream, y...); err != nil || res != origY {
		t.Errorf("no-stream retry = %+v, %v; want %+v", res, err, origY)
	}
	// A prefix of the original append is a retry too, answered with the
	// prefix's own result.
	if res, err := s.Append(ctx, "y", eventstore.NoStream, y[0]); err != nil || res.Version != 0 || res.Position.Commit != origY.Position.Commit-1 {
		t.Errorf("prefix retry = %+v, %v; want version 0", res, err)
	}

	partial := []struct {
		name string
		exp  eventstore.Version
		evs  []eventstore.EventData
	}{
		{"exact, extra event", 1, append(slices.Clone(first), newEvent("T", 9))},
		{"exact, other order", 1, []eventstore.EventData{first[1], first[0], first[2]}},
		{"exact, wrong version", 2, first},
		{"any, extra event", eventstore.Any, append(slices.Clone(first), newEvent("T", 9))},
		{"any, new then old", eventstore.Any, []eventstore.EventData{newEvent("T", 9), first[0]}},
		{"any, other order", eventstore.Any, []eventstore.EventData{first[1], first[0]}},
		{"no stream, not the first", eventstore.NoStream, first},
	}
	for _, c := range partial {
		before, _ := s.LastPosition(ctx)
		_, err := s.Append(ctx, "x", c.exp, c.evs...)
		if !errors.Is(err, eventstore.ErrWrongVersion) {
			t.Errorf("%s: error = %v, want ErrWrongVersion", c.name, err)
		}
		after, _ := s.LastPosition(ctx)
		if after != before {
			t.Errorf("%s wrote: position %v → %v", c.name, before, after)
		}
	}
}

func TestConcurrentIdenticalRetries(t *testing.T) {
	// The same append sent many times at once mostly lands in one batch:
	// exactly one copy is written and every sender gets the same result.
	s := MustOpen(t, "")
	ctx := context.Background()
	for _, exp := range []eventstore.Version{eventstore.NoStream, eventstore.Any} {
		stream := fmt.Sprintf("retry-%d", -exp)
		evs := events(3)
		const senders = 32
		results := make([]eventstore.AppendResult, senders)
		errs := make([]error, senders)
		var wg sync.WaitGroup
		for i := range senders {
			wg.Go(func() { results[i], errs[i] = s.Append(ctx, stream, exp, evs...) })
		}
		wg.Wait()
		for i := range senders {
			if errs[i] != nil || results[i] != results[0] {
				t.Fatalf("%s: sender %d got %+v, %v; sender 0 got %+v", exp, i, results[i], errs[i], results[0])
			}
		}
		got := mustRead(t, s.ReadStream(ctx, stream, 0))
		if len(got) != 3 {
			t.Fatalf("%s: stream holds %d events, want 3", exp, len(got))
		}
	}
}

func TestOneWinnerPerVersion(t *testing.T) {
	// Many appenders race for the same version of one stream while others
	// write their own streams: exactly one wins, and the losers' failures
	// never affect their batch-mates.
	s := MustOpen(t, "")
	ctx := context.Background()
	mustAppend(t, s, "hot", eventstore.NoStream, events(1)...)
	const racers = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range racers {
		wg.Go(func() {
			_, err := s.Append(ctx, "hot", 0, events(1)...)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, eventstore.ErrWrongVersion):
				conflicts++
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		})
		wg.Go(func() {
			if _, err := s.Append(ctx, fmt.Sprintf("own-%d", i), eventstore.NoStream, events(2)...); err != nil {
				t.Errorf("own stream %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != racers-1 {
		t.Fatalf("wins = %d, conflicts = %d; want 1 and %d", wins, conflicts, racers-1)
	}
	all := mustRead(t, s.ReadAll(ctx, eventstore.Start))
	if want := 1 + 1 + 2*racers; len(all) != want {
		t.Fatalf("log holds %d events, want %d", len(all), want)
	}
	for i, e := range all {
		if e.Position.Commit != uint64(i+1) {
			t.Fatalf("event %d at position %v", i, e.Position)
		}
	}
}

func TestInvalidInputWritesNothing(t *testing.T) {
	s := MustOpen(t, "", pebble.WithMaxEventSize(100))
	ctx := context.Background()
	id := eventstore.NewEventID()
	cases := []struct {
		name   string
		stream string
		exp    eventstore.Version
		evs    []eventstore.EventData
		want   error
	}{
		{"empty stream", "", eventstore.Any, events(1), eventstore.ErrInvalidStream},
		{"bad stream", "$all", eventstore.Any, events(1), eventstore.ErrInvalidStream},
		{"bad version", "s", -3, events(1), eventstore.ErrInvalid},
		{"no events", "s", eventstore.Any, nil, eventstore.ErrNoEvents},
		{"zero id", "s", eventstore.Any, []eventstore.EventData{{Type: "T", Data: []byte(`{}`)}}, eventstore.ErrInvalidEvent},
		{"no type", "s", eventstore.Any, []eventstore.EventData{{ID: id, Data: []byte(`{}`)}}, eventstore.ErrInvalidEvent},
		{"not json", "s", eventstore.Any, []eventstore.EventData{{ID: id, Type: "T", Data: []byte(`{`)}}, eventstore.ErrInvalidEvent},
		{"duplicate id", "s", eventstore.Any, []eventstore.EventData{{ID: id, Type: "T", Data: []byte(`1`)}, {ID: id, Type: "T", Data: []byte(`2`)}}, eventstore.ErrDuplicateEventID},
		{"too large", "s", eventstore.Any, []eventstore.EventData{{ID: id, Type: "T", Data: []byte(`"` + string(make([]byte, 0)) + fmt.Sprintf("%0200d", 0) + `"`)}}, eventstore.ErrEventTooLarge},
	}
	for _, c := range cases {
		_, err := s.Append(ctx, c.stream, c.exp, c.evs...)
		if !errors.Is(err, c.want) || !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: error = %v, want %v", c.name, err, c.want)
		}
	}
	if last, _ := s.LastPosition(ctx); last != eventstore.Start {
		t.Fatalf("LastPosition = %v after only invalid appends, want Start", last)
	}
}

func TestCancelledContextWritesNothing(t *testing.T) {
	s := MustOpen(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, "s", eventstore.Any, events(1)...); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append error = %v, want context.Canceled", err)
	}
	if last, _ := s.LastPosition(context.Background()); last != eventstore.Start {
		t.Fatalf("LastPosition = %v, want Start", last)
	}
	if _, err := s.LastPosition(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("LastPosition error = %v, want context.Canceled", err)
	}
	mustAppend(t, s, "s", eventstore.NoStream, events(3)...)
	for name, it := range map[string]eventstore.Iterator{
		"ReadAll":    s.ReadAll(ctx, eventstore.Start),
		"ReadStream": s.ReadStream(ctx, "s", 0),
		"Subscribe":  s.Subscribe(ctx, eventstore.Start, eventstore.Filter{}),
	} {
		if evs, err := readAll(t, it); !errors.Is(err, context.Canceled) || len(evs) != 0 {
			t.Errorf("%s with a cancelled context: %d events, error %v; want none and context.Canceled", name, len(evs), err)
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids := map[eventstore.EventID]bool{}
	v := eventstore.NoStream
	for i := 0; i < 10; i++ {
		e := newEvent("T", i)
		ids[e.ID] = true
		v = mustAppend(t, s, "s", v, e).Version
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = MustOpen(t, dir)
	if last, _ := s.LastPosition(ctx); last.Commit != 10 {
		t.Fatalf("LastPosition after reopen = %v, want 10", last)
	}
	for _, e := range mustRead(t, s.ReadAll(ctx, eventstore.Start)) {
		delete(ids, e.ID)
	}
	if len(ids) != 0 {
		t.Fatalf("%d events lost across reopen", len(ids))
	}
	if _, err := s.Append(ctx, "s", v-1, events(1)...); !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("stale append after reopen: %v, want ErrWrongVersion", err)
	}
	if res := mustAppend(t, s, "s", v, events(1)...); res.Position.Commit != 11 || res.Version != v+1 {
		t.Fatalf("append after reopen = %+v, want version %d at 11", res, v+1)
	}
}

func TestClose(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustAppend(t, s, "s", eventstore.NoStream, events(1)...)
	sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	if !sub.Next() {
		t.Fatalf("subscription ended early: %v", sub.Err())
	}

	// Appends racing with Close either complete or fail with ErrClosed.
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[eventstore.EventID]bool{}
	for i := range 8 {
		wg.Go(func() {
			v := eventstore.NoStream
			for {
				e := newEvent("T", 0)
				res, err := s.Append(ctx, fmt.Sprintf("w-%d", i), v, e)
				if errors.Is(err, eventstore.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("append during close: %v", err)
					return
				}
				mu.Lock()
				acked[e.ID] = true
				mu.Unlock()
				v = res.Version
			}
		})
	}
	subDone := make(chan error)
	go func() {
		for sub.Next() {
		}
		subDone <- sub.Err()
	}()
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if err := <-subDone; !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("subscription error after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := s.Append(ctx, "s", eventstore.Any, events(1)...); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := s.LastPosition(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("LastPosition after Close = %v, want ErrClosed", err)
	}
	for name, it := range map[string]eventstore.Iterator{
		"ReadAll":    s.ReadAll(ctx, eventstore.Start),
		"ReadStream": s.ReadStream(ctx, "s", 0),
		"Subscribe":  s.Subscribe(ctx, eventstore.Start, eventstore.Filter{}),
	} {
		if _, err := readAll(t, it); !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}

	s2 := MustOpen(t, dir)
	for _, e := range mustRead(t, s2.ReadAll(ctx, eventstore.Start)) {
		delete(acked, e.ID)
	}
	if len(acked) != 0 {
		t.Fatalf("%d acknowledged events missing after Close and reopen", len(acked))
	}
}

func TestOpenRefusesOlderFormat(t *testing.T) {
	dir := t.TempDir()
	db, err := cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("mformat"), []byte{1}, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = pebble.Open(dir)
	if !errors.Is(err, pebble.ErrFormat) || !strings.Contains(err.Error(), "format 1") || !strings.Contains(err.Error(), "event IDs") {
		t.Fatalf("Open of a format 1 directory = %v; want ErrFormat saying why", err)
	}
}
