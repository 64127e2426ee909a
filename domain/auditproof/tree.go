package auditproof

import (
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Tree is an append-only RFC 6962 Merkle tree that keeps every perfect
// subtree's hash (about 2 × 32 bytes a leaf), so that it can answer the
// root of any earlier size and inclusion and consistency proofs for it.
// It is not safe for concurrent use; the ledger guards it with its read
// models' lock.
type Tree struct {
	rng *compact.Range
	// levels[l] holds the hashes of the perfect subtrees of height l, left
	// to right, 32 bytes each, in pages of pageNodes hashes: a tree of a
	// million leaves grows by adding pages, never by copying tens of
	// megabytes into a larger array.
	levels []level
}

type level struct {
	pages [][]byte
	n     uint64 // hashes stored
}

const pageNodes = 4096

var factory = &compact.RangeFactory{Hash: HashChildren}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{rng: factory.NewEmptyRange(0)} }

// Size returns the number of leaves.
func (t *Tree) Size() uint64 { return t.rng.End() }

// Append adds a leaf hash.
func (t *Tree) Append(leafHash []byte) {
	if err := t.rng.Append(leafHash, t.store); err != nil {
		panic(fmt.Sprintf("auditproof: append: %v", err)) // only on corrupted state
	}
}

func (t *Tree) store(id compact.NodeID, hash []byte) {
	for uint(len(t.levels)) <= id.Level {
		t.levels = append(t.levels, level{})
	}
	l := &t.levels[id.Level]
	// Nodes of one level arrive left to right, each once.
	if l.n != id.Index {
		return
	}
	if l.n%pageNodes == 0 {
		l.pages = append(l.pages, make([]byte, 0, pageNodes*32))
	}
	p := &l.pages[len(l.pages)-1]
	*p = append(*p, hash...)
	l.n++
}

func (t *Tree) node(id compact.NodeID) ([]byte, error) {
	if id.Level >= uint(len(t.levels)) || id.Index >= t.levels[id.Level].n {
		return nil, fmt.Errorf("auditproof: node %d/%d not stored", id.Level, id.Index)
	}
	off := id.Index % pageNodes * 32
	return t.levels[id.Level].pages[id.Index/pageNodes][off : off+32], nil
}

// Root returns the root hash of the first size leaves.
func (t *Tree) Root(size uint64) ([]byte, error) {
	if size > t.Size() {
		return nil, fmt.Errorf("auditproof: tree has %d leaves, not %d", t.Size(), size)
	}
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	var root []byte
	for i := len(ids) - 1; i >= 0; i-- {
		h, err := t.node(ids[i])
		if err != nil {
			return nil, err
		}
		if root == nil {
			root = h
		} else {
			root = rfc6962.DefaultHasher.HashChildren(h, root)
		}
	}
	return root, nil
}

// InclusionProof returns the proof that leaf index is in the tree of size.
func (t *Tree) InclusionProof(index, size uint64) ([]HexBytes, error) {
	if size > t.Size() {
		return nil, fmt.Errorf("auditproof: tree has %d leaves, not %d", t.Size(), size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return t.rehash(nodes)
}

// ConsistencyProof returns the proof that the tree of size2 extends the
// tree of size1.
func (t *Tree) ConsistencyProof(size1, size2 uint64) ([]HexBytes, error) {
	if size2 > t.Size() {
		return nil, fmt.Errorf("auditproof: tree has %d leaves, not %d", t.Size(), size2)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return t.rehash(nodes)
}

func (t *Tree) rehash(nodes proof.Nodes) ([]HexBytes, error) {
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := t.node(id)
		if err != nil {
			return nil, err
		}
		hashes[i] = append([]byte(nil), h...)
	}
	out, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, err
	}
	p := make([]HexBytes, len(out))
	for i := range out {
		p[i] = out[i]
	}
	return p, nil
}
