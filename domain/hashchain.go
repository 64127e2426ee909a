package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"time"

	"talentledger/eventstore"
)

// ChainHash computes an event's link in its stream's hash chain:
//
//	hash = SHA-256(prev_hash ‖ canonical bytes of the envelope)
//
// The canonical bytes are the stream, version, event ID, type, data and
// every metadata field but Hash and RequestHash (Source and CompletedBy
// only when either is set), each length-prefixed, in a fixed order, so that nothing (not a JSON
// encoder, not a backend) can change them. The event ID is covered because
// it is what makes a retry idempotent: an ID rewritten at rest would let a
// retried command append twice. prev is the hex hash of the stream's
// previous event, "" for the first.
//
// The chain is computed before the append, in the domain, so it is the same
// whatever backend stores the event.
func ChainHash(prev, stream string, version eventstore.Version, id eventstore.EventID, typ string, data []byte, m eventstore.Metadata) string {
	h := sha256.New()
	writeField(h, []byte(prev))
	writeField(h, []byte(stream))
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(version))
	h.Write(v[:])
	writeField(h, id[:])
	writeField(h, []byte(typ))
	writeField(h, data)
	for _, f := range []string{
		m.Principal, m.Role, m.CorrelationID, m.CausationID,
		canonicalTime(m.RecordedAt), m.EffectiveDate, m.Reason, m.DocumentRef, m.PrevHash,
	} {
		writeField(h, []byte(f))
	}
	// Fields added later join the canonical bytes only when set, so that
	// the hashes of events recorded without them stay what they were.
	if m.Source != "" || m.CompletedBy != "" {
		writeField(h, []byte(m.Source))
		writeField(h, []byte(m.CompletedBy))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// VerifyEventHash reports whether e's stored hash matches its content and
// the previous hash prev.
func VerifyEventHash(prev string, e *eventstore.Event) bool {
	return e.Metadata.PrevHash == prev &&
		e.Metadata.Hash == ChainHash(prev, e.Stream, e.Version, e.ID, e.Type, e.Data, e.Metadata)
}

func canonicalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func writeField(h hash.Hash, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	h.Write(n[:])
	h.Write(b)
}
