package pebble

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"talentledger/eventstore"
)

// FuzzDecodeRecord decodes any bytes as a stored record: a damaged record
// is ErrCorrupt, never a panic; and a decoded record's stream and type are
// what recordHead, the filter's fast path, reads.
func FuzzDecodeRecord(f *testing.F) {
	rec, _, err := encodeRecord(nil, "grant-g1", &eventstore.EventData{ID: eventstore.NewEventID(), Type: "GrantApplied", Data: []byte(`{"a":1}`),
		Metadata: eventstore.Metadata{Principal: "p", Role: "clerk", RecordedAt: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), Hash: "h"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add(rec[:len(rec)-1])
	f.Add([]byte{recordFormat})
	f.Add(append(bytes.Repeat([]byte{recordFormat}, recFixedHeader), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var e eventstore.Event
		var in interner
		err := decodeRecord(rec, 7, &e, &in)
		stream, typ, herr := recordHead(rec)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeRecord: %v is not ErrCorrupt", err)
			}
			return
		}
		if herr != nil || string(stream) != e.Stream || string(typ) != e.Type {
			t.Fatalf("recordHead = %q %q %v; decodeRecord %q %q", stream, typ, herr, e.Stream, e.Type)
		}
		if e.Position.Commit != 7 {
			t.Fatalf("position %v", e.Position)
		}
	})
}

// FuzzRecordRoundTrip encodes any event and decodes it back unchanged.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("grant-g1", "GrantApplied", []byte(`{}`), "p", "clerk", "reason", "h", int64(1704164645), int64(6), 0, uint64(3))
	f.Add("", "", []byte(nil), "", "", "", "", int64(0), int64(0), 0, uint64(0))
	f.Add("s", "T", bytes.Repeat([]byte{0}, 300), "名", "角色", "理由\x00", "x", int64(-62135596800), int64(999999999), 8*3600+1800, uint64(1<<62))
	f.Fuzz(func(t *testing.T, stream, typ string, data []byte, principal, role, reason, hash string, sec, nsec int64, offset int, version uint64) {
		at := time.Time{}
		if sec != 0 || nsec != 0 {
			at = time.Unix(sec%(1<<40), nsec%1e9).In(time.FixedZone("", (offset%(14*3600))/60*60))
		}
		ev := eventstore.EventData{ID: eventstore.DeriveEventID(stream, typ), Type: typ, Data: data, Metadata: eventstore.Metadata{
			Principal: principal, Role: role, CorrelationID: reason + "c", CausationID: hash + "k", RecordedAt: at,
			EffectiveDate: "2024-01-02", Reason: reason, DocumentRef: principal + role, PrevHash: hash + "p", Hash: hash}}
		rec, dataOff, err := encodeRecord(nil, stream, &ev)
		if err != nil {
			return // a time the binary form cannot hold
		}
		setRecordVersion(rec, eventstore.Version(version))
		if !bytes.Equal(rec[dataOff:dataOff+len(data)], data) {
			t.Fatal("the data offset is wrong")
		}
		var got eventstore.Event
		var in interner
		if err := decodeRecord(rec, 9, &got, &in); err != nil {
			t.Fatalf("decode: %v", err)
		}
		md, gmd := ev.Metadata, got.Metadata
		if got.Stream != stream || got.Type != typ || !bytes.Equal(got.Data, data) || got.ID != ev.ID || got.Version != eventstore.Version(version) ||
			!gmd.RecordedAt.Equal(md.RecordedAt) || gmd.RecordedAt.IsZero() != md.RecordedAt.IsZero() {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, got)
		}
		gmd.RecordedAt, md.RecordedAt = time.Time{}, time.Time{}
		if gmd != md {
			t.Fatalf("round trip changed the metadata:\n%+v\n%+v", md, gmd)
		}
	})
}
