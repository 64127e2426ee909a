package pebble

import "talentledger/eventstore"

// EncodeRecord returns the record this package stores for e as event
// version of stream: the value under the event's log key, byte for byte.
// A store never needs it; it is for tools and for the golden corpus of
// stored events, which holds records exactly as they are on disk.
func EncodeRecord(stream string, version eventstore.Version, e *eventstore.EventData) ([]byte, error) {
	rec, _, err := encodeRecord(nil, stream, e)
	if err != nil {
		return nil, err
	}
	setRecordVersion(rec, version)
	return rec, nil
}

// DecodeRecord decodes a record stored at log position pos as a store's
// readers would see it. It returns ErrCorrupt for a record this package
// cannot read.
func DecodeRecord(rec []byte, pos uint64) (eventstore.Event, error) {
	var e eventstore.Event
	err := decodeRecord(rec, pos, &e, &interner{})
	return e, err
}
