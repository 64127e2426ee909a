// Package auditproof lets anyone check, without trusting the ledger's
// server, that an event is in the ledger's log and that the log was only
// ever appended to. It depends on nothing of the ledger but the event
// envelope, so an auditor's own program can import it alone.
//
// The ledger keeps an RFC 6962 Merkle tree over its global log: leaf i is
// the i-th event (LeafData), in log order. It signs tree heads with
// Ed25519. With this package an auditor:
//
//   - checks a signed tree head against the ledger's public key
//     (VerifyTreeHead);
//   - checks that an event is leaf i of the tree a head commits to
//     (VerifyInclusion, with the proof from
//     GET /v1/audit/proofs/inclusion);
//   - checks that a later head extends an earlier one, so that nothing
//     recorded before was changed, removed or reordered
//     (VerifyConsistency, with the proof from
//     GET /v1/audit/proofs/consistency).
//
// A tree head's signature covers exactly the bytes SignedMessage returns:
//
//	talentledger tree head v1
//	<tree size in decimal>
//	<root hash in lower-case hex>
//	<timestamp, RFC 3339 with nanoseconds, UTC>
package auditproof

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"talentledger/eventstore"
)

// TreeHead is a signed commitment to the first TreeSize events of the log.
type TreeHead struct {
	TreeSize  uint64    `json:"tree_size"`
	RootHash  HexBytes  `json:"root_hash"`
	Timestamp time.Time `json:"timestamp"`
	Signature []byte    `json:"signature"`
	// PublicKey is the key the ledger says it signed with. Trust the key
	// you obtained out of band, not this field.
	PublicKey ed25519.PublicKey `json:"public_key,omitempty"`
}

// HexBytes marshals as lower-case hex in JSON.
type HexBytes []byte

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("auditproof: bad hex: %w", err)
	}
	*h = v
	return nil
}

// Errors returned by the checks.
var (
	ErrBadSignature = errors.New("auditproof: tree head signature does not verify")
	ErrBadProof     = errors.New("auditproof: proof does not verify")
)

// SignedMessage returns the bytes a tree head's signature covers.
func SignedMessage(size uint64, root []byte, ts time.Time) []byte {
	var b bytes.Buffer
	b.WriteString("talentledger tree head v1\n")
	b.WriteString(strconv.FormatUint(size, 10))
	b.WriteByte('\n')
	b.WriteString(hex.EncodeToString(root))
	b.WriteByte('\n')
	b.WriteString(ts.UTC().Format(time.RFC3339Nano))
	b.WriteByte('\n')
	return b.Bytes()
}

// Sign returns a tree head for size and root, signed now with key.
func Sign(key ed25519.PrivateKey, size uint64, root []byte, now time.Time) TreeHead {
	ts := now.UTC().Truncate(time.Nanosecond)
	return TreeHead{
		TreeSize:  size,
		RootHash:  append(HexBytes(nil), root...),
		Timestamp: ts,
		Signature: ed25519.Sign(key, SignedMessage(size, root, ts)),
		PublicKey: key.Public().(ed25519.PublicKey),
	}
}

// VerifyTreeHead checks a head's signature with the public key pub.
func VerifyTreeHead(pub ed25519.PublicKey, h TreeHead) error {
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, SignedMessage(h.TreeSize, h.RootHash, h.Timestamp), h.Signature) {
		return ErrBadSignature
	}
	return nil
}

// LeafData returns the bytes of an event's leaf: a version tag, then the
// stream, the version, the event ID and the event's hash-chain hash, each
// length-prefixed. The chain hash covers the event's type, data and
// metadata and its predecessor in the stream, so the leaf commits to all of
// it.
func LeafData(e *eventstore.Event) []byte {
	var b bytes.Buffer
	field := func(p []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		b.Write(n[:])
		b.Write(p)
	}
	field([]byte("talentledger leaf v1"))
	field([]byte(e.Stream))
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(e.Version))
	b.Write(v[:])
	field(e.ID[:])
	field([]byte(e.Metadata.Hash))
	return b.Bytes()
}

// LeafHash returns the RFC 6962 leaf hash of an event.
func LeafHash(e *eventstore.Event) []byte { return rfc6962.DefaultHasher.HashLeaf(LeafData(e)) }

// HashChildren returns the RFC 6962 hash of an interior node.
func HashChildren(left, right []byte) []byte { return rfc6962.DefaultHasher.HashChildren(left, right) }

// VerifyInclusion checks that leafHash is leaf index of the tree head
// commits to, given the inclusion proof.
func VerifyInclusion(head TreeHead, index uint64, leafHash []byte, p []HexBytes) error {
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, head.TreeSize, leafHash, raw(p), head.RootHash); err != nil {
		return fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of newer extends the tree of
// older: the first older.TreeSize leaves are unchanged.
func VerifyConsistency(older, newer TreeHead, p []HexBytes) error {
	if older.TreeSize > newer.TreeSize {
		return fmt.Errorf("%w: older head has %d leaves, newer %d", ErrBadProof, older.TreeSize, newer.TreeSize)
	}
	if older.TreeSize == 0 {
		return nil
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.TreeSize, newer.TreeSize, raw(p), older.RootHash, newer.RootHash); err != nil {
		return fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	return nil
}

func raw(p []HexBytes) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i]
	}
	return out
}
