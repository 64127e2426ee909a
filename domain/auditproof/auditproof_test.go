package auditproof

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"

	"talentledger/eventstore"
)

// referenceRoot computes the RFC 6962 root of leaves directly from the
// definition (MTH), independently of Tree.
func referenceRoot(leaves [][]byte) []byte {
	switch n := len(leaves); n {
	case 0:
		return rfc6962.DefaultHasher.EmptyRoot()
	case 1:
		return leaves[0]
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		return rfc6962.DefaultHasher.HashChildren(referenceRoot(leaves[:k]), referenceRoot(leaves[k:]))
	}
}

func leafHashes(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = rfc6962.DefaultHasher.HashLeaf([]byte(fmt.Sprintf("leaf %d", i)))
	}
	return out
}

func TestTreeRootsAndProofs(t *testing.T) {
	const n = 37
	leaves := leafHashes(n)
	tree := NewTree()
	for _, l := range leaves {
		tree.Append(l)
	}
	if tree.Size() != n {
		t.Fatalf("Size = %d, want %d", tree.Size(), n)
	}
	for size := uint64(1); size <= n; size++ {
		root, err := tree.Root(size)
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceRoot(leaves[:size]); !bytes.Equal(root, want) {
			t.Fatalf("Root(%d) differs from the RFC 6962 definition", size)
		}
		head := TreeHead{TreeSize: size, RootHash: root}
		for i := uint64(0); i < size; i++ {
			p, err := tree.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(head, i, leaves[i], p); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", i, size, err)
			}
			if other := leaves[(i+1)%size]; size > 1 && VerifyInclusion(head, i, other, p) == nil {
				t.Fatalf("inclusion of a wrong leaf at %d in %d verified", i, size)
			}
		}
		for size1 := uint64(1); size1 <= size; size1++ {
			root1, _ := tree.Root(size1)
			p, err := tree.ConsistencyProof(size1, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(TreeHead{TreeSize: size1, RootHash: root1}, head, p); err != nil {
				t.Fatalf("consistency %d→%d: %v", size1, size, err)
			}
		}
	}
}

// TestRewrittenHistoryIsInconsistent: a head saved before a legitimate
// append stays consistent with the new head, but not with a log whose past
// was rewritten.
func TestRewrittenHistoryIsInconsistent(t *testing.T) {
	leaves := leafHashes(20)
	honest := NewTree()
	for _, l := range leaves[:12] {
		honest.Append(l)
	}
	savedRoot, _ := honest.Root(12)
	saved := TreeHead{TreeSize: 12, RootHash: savedRoot}
	for _, l := range leaves[12:] {
		honest.Append(l)
	}
	newRoot, _ := honest.Root(20)
	p, _ := honest.ConsistencyProof(12, 20)
	if err := VerifyConsistency(saved, TreeHead{TreeSize: 20, RootHash: newRoot}, p); err != nil {
		t.Fatalf("honest append: %v", err)
	}

	rewritten := NewTree()
	for i, l := range leaves {
		if i == 5 {
			l = rfc6962.DefaultHasher.HashLeaf([]byte("rewritten"))
		}
		rewritten.Append(l)
	}
	badRoot, _ := rewritten.Root(20)
	bp, _ := rewritten.ConsistencyProof(12, 20)
	if err := VerifyConsistency(saved, TreeHead{TreeSize: 20, RootHash: badRoot}, bp); !errors.Is(err, ErrBadProof) {
		t.Fatalf("rewritten history: err = %v, want ErrBadProof", err)
	}
	// Nor does the honest proof rescue the rewritten root.
	if err := VerifyConsistency(saved, TreeHead{TreeSize: 20, RootHash: badRoot}, p); err == nil {
		t.Fatal("a rewritten root verified with the honest proof")
	}
}

func TestTreeHeadSignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	root := sha256.Sum256([]byte("root"))
	head := Sign(priv, 42, root[:], time.Date(2026, 11, 27, 10, 0, 0, 123, time.UTC))
	if err := VerifyTreeHead(pub, head); err != nil {
		t.Fatalf("VerifyTreeHead: %v", err)
	}
	// The head survives a JSON round trip, as an auditor stores it.
	b, _ := json.Marshal(head)
	var back TreeHead
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := VerifyTreeHead(pub, back); err != nil {
		t.Fatalf("after JSON round trip: %v", err)
	}
	for name, mutate := range map[string]func(h *TreeHead){
		"size":      func(h *TreeHead) { h.TreeSize++ },
		"root":      func(h *TreeHead) { h.RootHash = append(HexBytes{}, h.RootHash...); h.RootHash[0] ^= 1 },
		"timestamp": func(h *TreeHead) { h.Timestamp = h.Timestamp.Add(time.Second) },
	} {
		h := back
		mutate(&h)
		if err := VerifyTreeHead(pub, h); !errors.Is(err, ErrBadSignature) {
			t.Errorf("changed %s: err = %v, want ErrBadSignature", name, err)
		}
	}
	otherPub, _, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{9}, 64)))
	if err := VerifyTreeHead(otherPub, head); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another key: err = %v, want ErrBadSignature", err)
	}
}

func TestLeafCommitsToEvent(t *testing.T) {
	e := eventstore.Event{Stream: "grant-1", Version: 3, ID: eventstore.DeriveEventID("x"), Metadata: eventstore.Metadata{Hash: "ab"}}
	base := LeafHash(&e)
	for name, mutate := range map[string]func(e *eventstore.Event){
		"stream":  func(e *eventstore.Event) { e.Stream = "grant-2" },
		"version": func(e *eventstore.Event) { e.Version = 4 },
		"id":      func(e *eventstore.Event) { e.ID = eventstore.DeriveEventID("y") },
		"hash":    func(e *eventstore.Event) { e.Metadata.Hash = "ac" },
	} {
		c := e
		mutate(&c)
		if bytes.Equal(LeafHash(&c), base) {
			t.Errorf("changing the %s does not change the leaf hash", name)
		}
	}
}
