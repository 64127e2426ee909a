package projections

import (
	"fmt"
	"sort"
	"sync"

	"talentledger/domain/auditproof"
	"talentledger/eventstore"
)

// Audit is the Merkle tree over the global log, leaf i being the i-th
// event, and each leaf's log position.
type Audit struct {
	mu        sync.RWMutex
	tree      *auditproof.Tree
	positions []eventstore.Position
}

// NewAudit returns an empty audit tree.
func NewAudit() *Audit { return &Audit{tree: auditproof.NewTree()} }

// Name implements Model.
func (m *Audit) Name() string { return "audit" }

// Apply implements Model: every event is a leaf of the tree.
func (m *Audit) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Changes {
		c := &b.Changes[i]
		m.tree.Append(c.Leaf)
		m.positions = append(m.positions, c.Event.Position)
	}
}

// TreeSize returns the number of events in the Merkle tree.
func (m *Audit) TreeSize() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.tree.Size()
}

// TreeRoot returns the root of the tree of the first size events, and the
// position of the last of them.
func (m *Audit) TreeRoot(size uint64) ([]byte, eventstore.Position, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	root, err := m.tree.Root(size)
	if err != nil {
		return nil, eventstore.Start, err
	}
	pos := eventstore.Start
	if size > 0 {
		pos = m.positions[size-1]
	}
	return root, pos, nil
}

// InclusionProof returns the leaf index of the event at position pos and
// the proof that it is in the tree of size.
func (m *Audit) InclusionProof(pos eventstore.Position, size uint64) (uint64, []auditproof.HexBytes, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ps := m.positions
	i := sort.Search(len(ps), func(i int) bool { return !ps[i].Before(pos) })
	if i == len(ps) || ps[i] != pos {
		return 0, nil, fmt.Errorf("%w: no event at position %s", ErrNoSuchLeaf, pos)
	}
	if uint64(i) >= size {
		return 0, nil, fmt.Errorf("%w: the event at position %s is leaf %d, outside a tree of %d", ErrNoSuchLeaf, pos, i, size)
	}
	proof, err := m.tree.InclusionProof(uint64(i), size)
	return uint64(i), proof, err
}

// ConsistencyProof returns the proof that the tree of size2 extends the
// tree of size1.
func (m *Audit) ConsistencyProof(size1, size2 uint64) ([]auditproof.HexBytes, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if size1 > size2 || size2 > m.tree.Size() {
		return nil, fmt.Errorf("%w: sizes %d and %d", ErrNoSuchLeaf, size1, size2)
	}
	return m.tree.ConsistencyProof(size1, size2)
}

// ErrNoSuchLeaf reports a position or tree size the tree does not hold.
var ErrNoSuchLeaf = fmt.Errorf("projections: not in the audit tree")

// LeafPosition returns the log position of leaf index i.
func (m *Audit) LeafPosition(i uint64) (eventstore.Position, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if i >= uint64(len(m.positions)) {
		return eventstore.Start, false
	}
	return m.positions[i], true
}

var _ Model = (*Audit)(nil)
