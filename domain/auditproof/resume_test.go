package auditproof_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"talentledger/domain/auditproof"
)

// mapNodes is a NodeStore in a map, standing for one on disk.
type mapNodes map[[2]uint64][]byte

func (m mapNodes) PutNode(level uint, index uint64, hash []byte) {
	m[[2]uint64{uint64(level), index}] = bytes.Clone(hash)
}

func (m mapNodes) Node(level uint, index uint64) ([]byte, error) {
	if h, ok := m[[2]uint64{uint64(level), index}]; ok {
		return h, nil
	}
	return nil, fmt.Errorf("node %d/%d not stored", level, index)
}

var _ auditproof.NodeStore = mapNodes{}

func leaf(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint("leaf", i)))
	return h[:]
}

// A tree resumed from its stored nodes at any size goes on exactly as the
// tree that never stopped: same roots, same proofs, at every size.
func TestTreeResumedFromItsNodesGoesOnAsOne(t *testing.T) {
	const total = 300
	whole := auditproof.NewTree()
	for i := range total {
		whole.Append(leaf(i))
	}
	for _, stop := range []uint64{0, 1, 2, 7, 64, 129, 255} {
		nodes := mapNodes{}
		first, err := auditproof.NewTreeOn(nodes, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range stop {
			first.Append(leaf(int(i)))
		}
		resumed, err := auditproof.NewTreeOn(nodes, stop)
		if err != nil {
			t.Fatalf("resume at %d: %v", stop, err)
		}
		for i := stop; i < total; i++ {
			resumed.Append(leaf(int(i)))
		}
		for _, size := range []uint64{1, stop, stop + 1, total / 2, total} {
			if size == 0 || size > total {
				continue
			}
			a, _ := whole.Root(size)
			b, err := resumed.Root(size)
			if err != nil || !bytes.Equal(a, b) {
				t.Fatalf("resumed at %d: root of %d differs (%v)", stop, size, err)
			}
			pa, _ := whole.InclusionProof(size-1, total)
			pb, err := resumed.InclusionProof(size-1, total)
			if err != nil || fmt.Sprint(pa) != fmt.Sprint(pb) {
				t.Fatalf("resumed at %d: inclusion proof of leaf %d differs (%v)", stop, size-1, err)
			}
			ca, _ := whole.ConsistencyProof(size, total)
			cb, err := resumed.ConsistencyProof(size, total)
			if err != nil || fmt.Sprint(ca) != fmt.Sprint(cb) {
				t.Fatalf("resumed at %d: consistency proof %d→%d differs (%v)", stop, size, total, err)
			}
		}
	}
}

func TestTreeResumeNeedsItsRightEdge(t *testing.T) {
	if _, err := auditproof.NewTreeOn(mapNodes{}, 5); err == nil {
		t.Fatal("resumed at 5 leaves from a store holding none")
	}
}
