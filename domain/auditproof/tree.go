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
// The hashes are kept by a NodeStore: in memory (NewTree), or on disk
// (NewTreeOn). It is not safe for concurrent use; its owner guards it.
type Tree struct {
	rng   *compact.Range
	nodes NodeStore
}

// NodeStore keeps the hashes of a tree's perfect subtrees. Each node is
// put once, the nodes of one level from left to right.
type NodeStore interface {
	// PutNode stores the hash of the perfect subtree of height level at
	// index (counted from the left at that level). hash is not retained.
	PutNode(level uint, index uint64, hash []byte)
	// Node returns the hash stored for the node, or an error when it is
	// not stored (or cannot be read).
	Node(level uint, index uint64) ([]byte, error)
}

// memNodes keeps the hashes in memory: levels[l] holds the hashes of the
// perfect subtrees of height l, left to right, 32 bytes each, in pages of
// pageNodes hashes, so that a tree of a million leaves grows by adding
// pages, never by copying tens of megabytes into a larger array.
type memNodes struct {
	levels []level
}

type level struct {
	pages [][]byte
	n     uint64 // hashes stored
}

const pageNodes = 4096

var factory = &compact.RangeFactory{Hash: HashChildren}

// NewTree returns an empty tree whose hashes are kept in memory.
func NewTree() *Tree { return &Tree{rng: factory.NewEmptyRange(0), nodes: &memNodes{}} }

// NewTreeOn returns the tree of size leaves whose hashes ns holds, to go
// on appending to: a tree resumed from disk. Errors are those of ns for a
// node the tree's right edge needs.
func NewTreeOn(ns NodeStore, size uint64) (*Tree, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := ns.Node(id.Level, id.Index)
		if err != nil {
			return nil, fmt.Errorf("auditproof: resume at %d leaves: %w", size, err)
		}
		hashes[i] = h
	}
	rng, err := factory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("auditproof: resume at %d leaves: %w", size, err)
	}
	return &Tree{rng: rng, nodes: ns}, nil
}

// Size returns the number of leaves.
func (t *Tree) Size() uint64 { return t.rng.End() }

// Append adds a leaf hash.
func (t *Tree) Append(leafHash []byte) {
	if err := t.rng.Append(leafHash, t.store); err != nil {
		panic(fmt.Sprintf("auditproof: append: %v", err)) // only on corrupted state
	}
}

func (t *Tree) store(id compact.NodeID, hash []byte) { t.nodes.PutNode(id.Level, id.Index, hash) }

func (t *Tree) node(id compact.NodeID) ([]byte, error) { return t.nodes.Node(id.Level, id.Index) }

func (m *memNodes) PutNode(lv uint, index uint64, hash []byte) {
	for uint(len(m.levels)) <= lv {
		m.levels = append(m.levels, level{})
	}
	l := &m.levels[lv]
	// Nodes of one level arrive left to right, each once.
	if l.n != index {
		return
	}
	if l.n%pageNodes == 0 {
		l.pages = append(l.pages, make([]byte, 0, pageNodes*32))
	}
	p := &l.pages[len(l.pages)-1]
	*p = append(*p, hash...)
	l.n++
}

func (m *memNodes) Node(lv uint, index uint64) ([]byte, error) {
	if lv >= uint(len(m.levels)) || index >= m.levels[lv].n {
		return nil, fmt.Errorf("auditproof: node %d/%d not stored", lv, index)
	}
	off := index % pageNodes * 32
	return m.levels[lv].pages[index/pageNodes][off : off+32], nil
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
