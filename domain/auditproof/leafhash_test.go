package auditproof

import (
	"bytes"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"

	"talentledger/eventstore"
)

// LeafHash and HashChildren avoid allocations; they must still be exactly
// RFC 6962's hashes of LeafData and of two children.
func TestHashesAreRFC6962(t *testing.T) {
	for _, e := range []eventstore.Event{
		{},
		{ID: eventstore.DeriveEventID("x"), Stream: "grant-g0123456789abcdef", Version: 7,
			Metadata: eventstore.Metadata{Hash: strings.Repeat("ab", 32)}},
		// Too long for the stack buffer.
		{ID: eventstore.DeriveEventID("y"), Stream: "s-" + strings.Repeat("x", 300), Version: 1 << 40,
			Metadata: eventstore.Metadata{Hash: strings.Repeat("cd", 32)}},
	} {
		if got, want := LeafHash(&e), rfc6962.DefaultHasher.HashLeaf(LeafData(&e)); !bytes.Equal(got, want) {
			t.Errorf("LeafHash of %q = %x, want %x", e.Stream, got, want)
		}
		if got, want := len(LeafData(&e)), leafDataLen(&e); got != want {
			t.Errorf("LeafData of %q is %d bytes, leafDataLen says %d", e.Stream, got, want)
		}
	}
	l, r := rfc6962.DefaultHasher.HashLeaf([]byte("l")), rfc6962.DefaultHasher.HashLeaf([]byte("r"))
	for _, c := range [][2][]byte{{l, r}, {r, l}, {l, []byte("short")}, {nil, nil}} {
		if got, want := HashChildren(c[0], c[1]), rfc6962.DefaultHasher.HashChildren(c[0], c[1]); !bytes.Equal(got, want) {
			t.Errorf("HashChildren(%x, %x) = %x, want %x", c[0], c[1], got, want)
		}
	}
}

// The tree keeps its hashes in pages; roots and proofs must be right across
// page boundaries.
func TestTreeAcrossPages(t *testing.T) {
	const n = 2*pageNodes + 37
	leaves := make([][]byte, n)
	tree := NewTree()
	for i := range leaves {
		leaves[i] = rfc6962.DefaultHasher.HashLeaf([]byte{byte(i), byte(i >> 8)})
		tree.Append(leaves[i])
	}
	for _, size := range []uint64{pageNodes - 1, pageNodes, pageNodes + 1, 2 * pageNodes, n} {
		root, err := tree.Root(size)
		if err != nil || !bytes.Equal(root, referenceRoot(leaves[:size])) {
			t.Fatalf("Root(%d) = %x, %v; differs from the RFC 6962 definition", size, root, err)
		}
		head := TreeHead{TreeSize: size, RootHash: root}
		for _, i := range []uint64{0, pageNodes - 1, pageNodes, size - 1} {
			if i >= size {
				continue
			}
			p, err := tree.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(head, i, leaves[i], p); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", i, size, err)
			}
		}
		p, err := tree.ConsistencyProof(pageNodes/2, size)
		if err != nil {
			t.Fatal(err)
		}
		older, _ := tree.Root(pageNodes / 2)
		if err := VerifyConsistency(TreeHead{TreeSize: pageNodes / 2, RootHash: older}, head, p); err != nil {
			t.Fatalf("consistency of %d with %d: %v", pageNodes/2, size, err)
		}
	}
}
