package projections

import (
	"fmt"
	"sort"

	"talentledger/domain/auditproof"
	"talentledger/eventstore"
)

// auditModels holds the Merkle tree over the global log, leaf i being the
// i-th event, and each leaf's log position.
type auditModels struct {
	tree      *auditproof.Tree
	positions []eventstore.Position
}

// appendLeaf adds the leaf hash of the event at pos to the tree. p.mu is
// held.
func (p *Projector) appendLeaf(leaf []byte, pos eventstore.Position) {
	p.audit.tree.Append(leaf)
	p.audit.positions = append(p.audit.positions, pos)
}

// TreeSize returns the number of events in the Merkle tree.
func (p *Projector) TreeSize() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.audit.tree.Size()
}

// TreeRoot returns the root of the tree of the first size events, and the
// position of the last of them.
func (p *Projector) TreeRoot(size uint64) ([]byte, eventstore.Position, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	root, err := p.audit.tree.Root(size)
	if err != nil {
		return nil, eventstore.Start, err
	}
	pos := eventstore.Start
	if size > 0 {
		pos = p.audit.positions[size-1]
	}
	return root, pos, nil
}

// InclusionProof returns the leaf index of the event at position pos and
// the proof that it is in the tree of size.
func (p *Projector) InclusionProof(pos eventstore.Position, size uint64) (uint64, []auditproof.HexBytes, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	ps := p.audit.positions
	i := sort.Search(len(ps), func(i int) bool { return !ps[i].Before(pos) })
	if i == len(ps) || ps[i] != pos {
		return 0, nil, fmt.Errorf("%w: no event at position %s", ErrNoSuchLeaf, pos)
	}
	if uint64(i) >= size {
		return 0, nil, fmt.Errorf("%w: the event at position %s is leaf %d, outside a tree of %d", ErrNoSuchLeaf, pos, i, size)
	}
	proof, err := p.audit.tree.InclusionProof(uint64(i), size)
	return uint64(i), proof, err
}

// ConsistencyProof returns the proof that the tree of size2 extends the
// tree of size1.
func (p *Projector) ConsistencyProof(size1, size2 uint64) ([]auditproof.HexBytes, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if size1 > size2 || size2 > p.audit.tree.Size() {
		return nil, fmt.Errorf("%w: sizes %d and %d", ErrNoSuchLeaf, size1, size2)
	}
	return p.audit.tree.ConsistencyProof(size1, size2)
}

// ErrNoSuchLeaf reports a position or tree size the tree does not hold.
var ErrNoSuchLeaf = fmt.Errorf("projections: not in the audit tree")

// LeafPosition returns the log position of leaf index i.
func (p *Projector) LeafPosition(i uint64) (eventstore.Position, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if i >= uint64(len(p.audit.positions)) {
		return eventstore.Start, false
	}
	return p.audit.positions[i], true
}
