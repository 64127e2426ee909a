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
	"crypto/sha256"
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
	return appendLeafData(make([]byte, 0, leafDataLen(e)), e)
}

const leafTag = "talentledger leaf v1"

func leafDataLen(e *eventstore.Event) int {
	return 4 + len(leafTag) + 4 + len(e.Stream) + 8 + 4 + len(e.ID) + 4 + len(e.Metadata.Hash)
}

func appendLeafData(b []byte, e *eventstore.Event) []byte {
	field := func(b []byte, p string) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		return append(b, p...)
	}
	b = field(b, leafTag)
	b = field(b, e.Stream)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Version))
	b = field(b, string(e.ID[:]))
	return field(b, e.Metadata.Hash)
}

// LeafHash returns the RFC 6962 leaf hash of an event: SHA-256 of a zero
// byte and the leaf data. Every event's leaf is hashed on each replay, so
// the bytes are laid out on the stack when they fit.
func LeafHash(e *eventstore.Event) []byte {
	var stack [256]byte
	b := stack[:0]
	if n := 1 + leafDataLen(e); n > len(stack) {
		b = make([]byte, 0, n)
	}
	b = append(b, rfc6962.RFC6962LeafHashPrefix)
	sum := sha256.Sum256(appendLeafData(b, e))
	return sum[:]
}

// HashChildren returns the RFC 6962 hash of an interior node.
func HashChildren(left, right []byte) []byte {
	if len(left) != sha256.Size || len(right) != sha256.Size {
		return rfc6962.DefaultHasher.HashChildren(left, right)
	}
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], left)
	copy(b[1+sha256.Size:], right)
	sum := sha256.Sum256(b[:])
	return sum[:]
}

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
