package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"talentledger/eventstore"
)

// Key layout. Every key starts with a one-byte prefix naming its table.
// Stream names never contain 0x00 (ValidateStreamName allows only ASCII
// letters, digits and "-_.:@"), so 0x00 ends a stream name inside a key and
// one stream's keys never interleave with another's.
const (
	// prefixLog + be64(position) → event record. The global log is the
	// primary copy of every event, so reading "all" is one sequential scan.
	prefixLog = 'l'
	// prefixStream + stream + 0x00 + be64(version) → uvarint(position)
	// [+ uvarint(count)]: one entry for each run of events that one batch
	// wrote to the stream at consecutive positions, versions version …
	// version+count-1 at positions position … position+count-1. A count
	// of 1 is left out, so a run of one event is what format 2 wrote for
	// every event.
	prefixStream = 's'
	// prefixID + stream + 0x00 + id → uvarint(position), the per-stream
	// event-ID index used to recognise retries. The version is in the
	// record; index entries stay small because every byte is synced.
	prefixID = 'i'
	// prefixMeta + name → store-wide facts such as the format version.
	prefixMeta = 'm'
)

// formatVersion is the on-disk format written by this package. Open refuses
// a directory written in another format rather than misreading it.
//
// Version 2 keeps version 1's layout; what changed is the hash chain stored
// in the records, which since version 2 covers the event ID (see
// domain.ChainHash). A version 1 directory would fail verification, so it
// is refused at open with a message saying so. No version 1 data exists in
// the field, so there is no migration.
//
// Version 3 writes one stream-index entry per run of consecutive events an
// append wrote, not one per event. A version 2 directory is a version 3
// directory whose runs all hold one event, so it is opened as it is and
// its marker raised to 3, which releases that read only version 2 refuse.
const formatVersion = 3

// FormatVersion is the on-disk layout of the data directories this
// package writes and reads.
const FormatVersion = formatVersion

var formatKey = []byte{prefixMeta, 'f', 'o', 'r', 'm', 'a', 't'}

// ErrCorrupt reports a record that cannot be decoded, or a log that is not
// the contiguous sequence the store wrote: evidence of damage or tampering.
var ErrCorrupt = errors.New("eventstore/pebble: corrupt record")

func logKey(dst []byte, pos uint64) []byte {
	dst = append(dst, prefixLog)
	return binary.BigEndian.AppendUint64(dst, pos)
}

func streamPrefix(dst []byte, stream string) []byte {
	dst = append(dst, prefixStream)
	dst = append(dst, stream...)
	return append(dst, 0)
}

func streamKey(dst []byte, stream string, v eventstore.Version) []byte {
	dst = streamPrefix(dst, stream)
	return binary.BigEndian.AppendUint64(dst, uint64(v))
}

// appendRun encodes a stream-index entry's value.
func appendRun(dst []byte, pos, count uint64) []byte {
	dst = binary.AppendUvarint(dst, pos)
	if count != 1 {
		dst = binary.AppendUvarint(dst, count)
	}
	return dst
}

// decodeRun decodes a stream-index entry's value: the position of the
// run's first event and how many events it holds.
func decodeRun(val []byte) (pos, count uint64, ok bool) {
	pos, n := binary.Uvarint(val)
	if n <= 0 || pos == 0 {
		return 0, 0, false
	}
	if n == len(val) {
		return pos, 1, true
	}
	count, m := binary.Uvarint(val[n:])
	if m <= 0 || n+m != len(val) || count < 2 {
		return 0, 0, false
	}
	return pos, count, true
}

func idKey(dst []byte, stream string, id eventstore.EventID) []byte {
	dst = append(dst, prefixID)
	dst = append(dst, stream...)
	dst = append(dst, 0)
	return append(dst, id[:]...)
}

// Event record layout (all lengths uvarint):
//
//	[0]      record format (1)
//	[1:9]    be64 stream version, patched in by the writer
//	[9:25]   event ID
//	stream, type, data,
//	principal, role, correlation ID, causation ID,
//	recorded-at (time.Time binary form, empty for the zero time),
//	effective date, reason, document reference, previous hash, hash
//
// The stream and type come first so a filtered scan can skip an event
// without decoding the rest. The global position is the key, not part of
// the value.
const (
	recordFormat   = 1
	recVersionOff  = 1
	recIDOff       = 9
	recFixedHeader = 25
)

// encodeRecord appends the record for e to dst with a zero version and
// returns the new slice and the offset of the data within the record.
func encodeRecord(dst []byte, stream string, e *eventstore.EventData) ([]byte, int, error) {
	start := len(dst)
	dst = append(dst, recordFormat, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = append(dst, e.ID[:]...)
	dst = appendString(dst, stream)
	dst = appendString(dst, e.Type)
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	dataOff := len(dst) - start
	dst = append(dst, e.Data...)
	m := &e.Metadata
	dst = appendString(dst, m.Principal)
	dst = appendString(dst, m.Role)
	dst = appendString(dst, m.CorrelationID)
	dst = appendString(dst, m.CausationID)
	if m.RecordedAt.IsZero() {
		dst = append(dst, 0)
	} else {
		// The binary form keeps the instant and the zone offset, which is
		// all a JSON round trip would keep too.
		lenAt := len(dst)
		dst = append(dst, 0)
		var err error
		dst, err = m.RecordedAt.AppendBinary(dst)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: recorded_at: %v", eventstore.ErrInvalidEvent, err)
		}
		n := len(dst) - lenAt - 1
		if n >= 0x80 {
			return nil, 0, fmt.Errorf("%w: recorded_at too long", eventstore.ErrInvalidEvent)
		}
		dst[lenAt] = byte(n)
	}
	dst = appendString(dst, m.EffectiveDate)
	dst = appendString(dst, m.Reason)
	dst = appendString(dst, m.DocumentRef)
	dst = appendString(dst, m.PrevHash)
	dst = appendString(dst, m.Hash)
	if m.Source != "" || m.CompletedBy != "" {
		dst = appendString(dst, m.Source)
		dst = appendString(dst, m.CompletedBy)
	}
	return dst, dataOff, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func setRecordVersion(rec []byte, v eventstore.Version) {
	binary.BigEndian.PutUint64(rec[recVersionOff:], uint64(v))
}

// recordReader walks a record's fields in order.
type recordReader struct {
	b   []byte
	err bool
}

func (r *recordReader) bytes() []byte {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || uint64(len(r.b)-k) < n {
		r.err = true
		r.b = nil
		return nil
	}
	v := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return v
}

// recordHead returns a record's stream and type without decoding the rest,
// for filtering. The slices alias rec.
func recordHead(rec []byte) (stream, typ []byte, err error) {
	if len(rec) < recFixedHeader || rec[0] != recordFormat {
		return nil, nil, ErrCorrupt
	}
	r := recordReader{b: rec[recFixedHeader:]}
	stream = r.bytes()
	typ = r.bytes()
	if r.err {
		return nil, nil, ErrCorrupt
	}
	return stream, typ, nil
}

// interner returns shared strings for byte slices that repeat across events
// (stream names, types, principals, roles), so decoding a long run of events
// does not allocate the same string again and again. It is bounded: when
// full it starts afresh.
type interner struct {
	m map[string]string
}

const internMax = 4096
const internMaxLen = eventstore.MaxStreamNameLen

func (in *interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > internMaxLen {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if in.m == nil || len(in.m) >= internMax {
		in.m = make(map[string]string, 256)
	}
	s := string(b)
	in.m[s] = s
	return s
}

// decodeRecord decodes rec, stored at pos, into e. Nothing in e aliases rec.
func decodeRecord(rec []byte, pos uint64, e *eventstore.Event, in *interner) error {
	if len(rec) < recFixedHeader || rec[0] != recordFormat {
		return ErrCorrupt
	}
	e.Version = eventstore.Version(binary.BigEndian.Uint64(rec[recVersionOff:]))
	copy(e.ID[:], rec[recIDOff:recFixedHeader])
	e.Position = eventstore.Position{Commit: pos, Prepare: pos}
	r := recordReader{b: rec[recFixedHeader:]}
	e.Stream = in.get(r.bytes())
	e.Type = in.get(r.bytes())
	if d := r.bytes(); d != nil {
		e.Data = append(make([]byte, 0, len(d)), d...)
	} else {
		e.Data = nil
	}
	m := &e.Metadata
	m.Principal = in.get(r.bytes())
	m.Role = in.get(r.bytes())
	m.CorrelationID = string(r.bytes())
	m.CausationID = string(r.bytes())
	if t := r.bytes(); len(t) > 0 {
		if err := m.RecordedAt.UnmarshalBinary(t); err != nil {
			return ErrCorrupt
		}
	} else {
		m.RecordedAt = time.Time{}
	}
	m.EffectiveDate = in.get(r.bytes())
	m.Reason = string(r.bytes())
	m.DocumentRef = string(r.bytes())
	m.PrevHash = string(r.bytes())
	m.Hash = string(r.bytes())
	m.Source, m.CompletedBy = "", ""
	if len(r.b) > 0 {
		m.Source = in.get(r.bytes())
		m.CompletedBy = in.get(r.bytes())
	}
	if r.err {
		return ErrCorrupt
	}
	return nil
}

// matchRaw is Filter.Match on a record's raw stream and type, so filtered
// scans skip events without decoding them.
func matchRaw(f *eventstore.Filter, stream, typ []byte) bool {
	if len(f.StreamPrefixes) > 0 {
		ok := false
		for _, p := range f.StreamPrefixes {
			if len(stream) >= len(p) && string(stream[:len(p)]) == p {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.EventTypes) > 0 {
		for _, t := range f.EventTypes {
			if string(typ) == t {
				return true
			}
		}
		return false
	}
	return true
}

func filterEmpty(f *eventstore.Filter) bool {
	return len(f.StreamPrefixes) == 0 && len(f.EventTypes) == 0
}
