package pebble

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"talentledger/eventstore"
)

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2024, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", 8*3600+30*60))
	cases := []eventstore.EventData{
		{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{}`)},
		{
			ID: eventstore.NewEventID(), Type: "GrantApproved", Data: []byte(`{"amount": "1.00", "名": "值"}`),
			Metadata: eventstore.Metadata{
				Principal: "p", Role: "approver", CorrelationID: "c", CausationID: "k",
				RecordedAt: at, EffectiveDate: "2024-12-31", Reason: "理由", DocumentRef: "d",
				PrevHash: "00", Hash: "11",
			},
		},
		{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`1`), Metadata: eventstore.Metadata{RecordedAt: at.UTC()}},
	}
	var in interner
	for i, want := range cases {
		rec, dataOff, err := encodeRecord(nil, "grant-9", &want)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(rec[dataOff : dataOff+len(want.Data)]); got != string(want.Data) {
			t.Fatalf("case %d: data offset points at %q", i, got)
		}
		setRecordVersion(rec, 42)
		var got eventstore.Event
		if err := decodeRecord(rec, 7, &got, &in); err != nil {
			t.Fatalf("case %d: decode: %v", i, err)
		}
		if got.ID != want.ID || got.Type != want.Type || string(got.Data) != string(want.Data) ||
			got.Stream != "grant-9" || got.Version != 42 || got.Position != (eventstore.Position{Commit: 7, Prepare: 7}) {
			t.Errorf("case %d: got %+v", i, got)
		}
		gm, wm := got.Metadata, want.Metadata
		if !gm.RecordedAt.Equal(wm.RecordedAt) || gm.RecordedAt.IsZero() != wm.RecordedAt.IsZero() {
			t.Errorf("case %d: recorded at %v, want %v", i, gm.RecordedAt, wm.RecordedAt)
		}
		_, gotOff := gm.RecordedAt.Zone()
		_, wantOff := wm.RecordedAt.Zone()
		if gotOff != wantOff {
			t.Errorf("case %d: zone offset %d, want %d", i, gotOff, wantOff)
		}
		gm.RecordedAt, wm.RecordedAt = time.Time{}, time.Time{}
		if gm != wm {
			t.Errorf("case %d: metadata %+v, want %+v", i, gm, wm)
		}
		// Decoding copies: changing the record afterwards changes nothing.
		for j := range rec {
			rec[j] = 0xff
		}
		if string(got.Data) != string(want.Data) {
			t.Errorf("case %d: decoded data aliases the record", i)
		}
	}
}

func TestDecodeCorruptRecord(t *testing.T) {
	e := eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: []byte(`{"a":1}`),
		Metadata: eventstore.Metadata{Hash: "abc"}}
	rec, _, err := encodeRecord(nil, "s", &e)
	if err != nil {
		t.Fatal(err)
	}
	var in interner
	for n := 0; n < len(rec); n++ {
		var got eventstore.Event
		if err := decodeRecord(rec[:n], 1, &got, &in); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("record cut to %d of %d bytes: error %v, want ErrCorrupt", n, len(rec), err)
		}
	}
	bad := append([]byte(nil), rec...)
	bad[0] = 9
	var got eventstore.Event
	if err := decodeRecord(bad, 1, &got, &in); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown record format: error %v, want ErrCorrupt", err)
	}
}

func TestMatchRawAgreesWithFilter(t *testing.T) {
	filters := []eventstore.Filter{
		{},
		{StreamPrefixes: []string{"grant-"}},
		{StreamPrefixes: []string{"grant-", "fund-"}},
		{EventTypes: []string{"GrantApproved"}},
		{StreamPrefixes: []string{"budget-"}, EventTypes: []string{"GrantApproved", "BudgetAppropriated"}},
		{StreamPrefixes: []string{""}},
	}
	events := []eventstore.Event{
		{Stream: "grant-1", Type: "GrantApproved"},
		{Stream: "grant", Type: "GrantApplied"},
		{Stream: "fund-9", Type: "GrantApproved"},
		{Stream: "budget-housing-2024", Type: "BudgetAppropriated"},
		{Stream: "g", Type: "X"},
	}
	for i := range filters {
		for j := range events {
			f, e := &filters[i], &events[j]
			if got, want := matchRaw(f, []byte(e.Stream), []byte(e.Type)), f.Match(e); got != want {
				t.Errorf("filter %+v on %s/%s: matchRaw %v, Match %v", *f, e.Stream, e.Type, got, want)
			}
		}
	}
}

func TestHeadCacheIsBounded(t *testing.T) {
	c := headCache{max: 100}
	for i := range 10_000 {
		c.put(fmt.Sprint("s-", i), eventstore.Version(i))
		if n := len(c.cur) + len(c.old); n > 2*c.max {
			t.Fatalf("cache holds %d entries, bound %d", n, 2*c.max)
		}
	}
	// Recent entries survive; a hit in the old generation is promoted.
	if v, ok := c.get("s-9999"); !ok || v != 9999 {
		t.Fatalf("newest entry: %v, %v", v, ok)
	}
	if _, ok := c.get("s-0"); ok {
		t.Fatal("oldest entry still cached")
	}
}

func TestInternerIsBounded(t *testing.T) {
	var in interner
	for i := range 3 * internMax {
		b := []byte(fmt.Sprint("stream-", i))
		if got := in.get(b); got != string(b) {
			t.Fatalf("get(%s) = %s", b, got)
		}
		if len(in.m) > internMax {
			t.Fatalf("interner holds %d strings, bound %d", len(in.m), internMax)
		}
	}
}
