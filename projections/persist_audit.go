package projections

import (
	"encoding/binary"
	"fmt"
	"sort"

	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	"talentledger/projections/viewstore"
)

// The audit tree on disk: its nodes by level in blocks of auditBlock
// hashes under "n/<level><block>", the leaves' positions in blocks under
// "p/<block>", and the number of leaves under "size". Memory holds only
// the blocks not yet full and those filled since the last Save, and each
// position block's first position, to find a leaf by its position.
const (
	auditSchema = 1
	auditBlock  = 128
	posBlock    = 256
)

type auditDisk struct {
	vs *viewstore.Model
	// open holds, by level, the hashes of the block being filled; full
	// holds blocks filled since the last Save, by key.
	open [][]byte
	full map[string][]byte
	// posOpen is the position block being filled, posFull those filled
	// since the last Save; firsts is every block's first position.
	posOpen []eventstore.Position
	posFull map[uint64][]eventstore.Position
	firsts  []eventstore.Position
	size    uint64 // leaves whose positions are recorded
	err     error
}

func auditNodeKey(level uint, block uint64) []byte {
	k := make([]byte, 11)
	copy(k, "n/")
	k[2] = byte(level)
	binary.BigEndian.PutUint64(k[3:], block)
	return k
}

func auditPosKey(block uint64) []byte {
	k := make([]byte, 10)
	copy(k, "p/")
	binary.BigEndian.PutUint64(k[2:], block)
	return k
}

var auditSizeKey = []byte("size")

// PutNode implements auditproof.NodeStore.
func (d *auditDisk) PutNode(level uint, index uint64, hash []byte) {
	for uint(len(d.open)) <= level {
		d.open = append(d.open, nil)
	}
	if index%auditBlock == 0 {
		d.open[level] = make([]byte, 0, auditBlock*32)
	}
	d.open[level] = append(d.open[level], hash...)
	if len(d.open[level]) == auditBlock*32 {
		d.full[string(auditNodeKey(level, index/auditBlock))] = d.open[level]
		d.open[level] = nil
	}
}

// Node implements auditproof.NodeStore.
func (d *auditDisk) Node(level uint, index uint64) ([]byte, error) {
	block, off := index/auditBlock, index%auditBlock*32
	key := auditNodeKey(level, block)
	b := d.full[string(key)]
	if b == nil && level < uint(len(d.open)) && block == (d.size>>level)/auditBlock {
		// The block being filled: d.size is the tree's size, whose
		// level holds size>>level nodes.
		b = d.open[level]
	}
	if b == nil {
		v, err := d.vs.Get(key)
		if err != nil {
			return nil, err
		}
		b = v
	}
	if uint64(len(b)) < off+32 {
		return nil, fmt.Errorf("audit node %d/%d not stored", level, index)
	}
	return b[off : off+32], nil
}

func (d *auditDisk) addPosition(p eventstore.Position) {
	if d.size%posBlock == 0 {
		d.posOpen = make([]eventstore.Position, 0, posBlock)
		d.firsts = append(d.firsts, p)
	}
	d.posOpen = append(d.posOpen, p)
	d.size++
	if len(d.posOpen) == posBlock {
		d.posFull[(d.size-1)/posBlock] = d.posOpen
		d.posOpen = nil
	}
}

// positions returns block n of positions.
func (d *auditDisk) positions(n uint64) ([]eventstore.Position, error) {
	if ps := d.posFull[n]; ps != nil {
		return ps, nil
	}
	if n == d.size/posBlock && d.size%posBlock != 0 {
		return d.posOpen, nil
	}
	return d.diskPositions(n)
}

func (d *auditDisk) diskPositions(n uint64) ([]eventstore.Position, error) {
	v, err := d.vs.Get(auditPosKey(n))
	if err != nil {
		return nil, err
	}
	if v == nil || len(v)%16 != 0 {
		return nil, fmt.Errorf("audit positions block %d unreadable", n)
	}
	ps := make([]eventstore.Position, len(v)/16)
	for i := range ps {
		ps[i] = eventstore.Position{Commit: binary.BigEndian.Uint64(v[i*16:]), Prepare: binary.BigEndian.Uint64(v[i*16+8:])}
	}
	return ps, nil
}

func (d *auditDisk) position(i uint64) (eventstore.Position, bool) {
	ps, err := d.positions(i / posBlock)
	if err != nil || i%posBlock >= uint64(len(ps)) {
		return eventstore.Start, false
	}
	return ps[i%posBlock], true
}

func (d *auditDisk) leafAt(pos eventstore.Position, size uint64) (uint64, bool) {
	n := sort.Search(len(d.firsts), func(i int) bool { return pos.Before(d.firsts[i]) }) - 1
	if n < 0 {
		return 0, false
	}
	ps, err := d.positions(uint64(n))
	if err != nil {
		return 0, false
	}
	j := sort.Search(len(ps), func(i int) bool { return !ps[i].Before(pos) })
	if j == len(ps) || ps[j] != pos {
		return 0, false
	}
	i := uint64(n)*posBlock + uint64(j)
	return i, i < size
}

func encodePositions(ps []eventstore.Position) []byte {
	b := make([]byte, 16*len(ps))
	for i, p := range ps {
		binary.BigEndian.PutUint64(b[i*16:], p.Commit)
		binary.BigEndian.PutUint64(b[i*16+8:], p.Prepare)
	}
	return b
}

// Schema implements Persistent.
func (m *Audit) Schema() uint32 { return auditSchema }

// Open implements Persistent: the tree resumes at its stored size.
func (m *Audit) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &auditDisk{vs: vs, full: map[string][]byte{}, posFull: map[uint64][]eventstore.Position{}}
	v, err := vs.Get(auditSizeKey)
	if err != nil {
		return err
	}
	var size uint64
	if v != nil {
		size = binary.BigEndian.Uint64(v)
	}
	// The blocks being filled at the checkpoint were saved as they stood.
	if size%posBlock != 0 {
		ps, err := d.diskPositions(size / posBlock)
		if err != nil {
			return err
		}
		d.posOpen = append(make([]eventstore.Position, 0, posBlock), ps...)
	}
	if err := vs.Scan([]byte("p/"), func(_, v []byte) bool {
		d.firsts = append(d.firsts, eventstore.Position{Commit: binary.BigEndian.Uint64(v), Prepare: binary.BigEndian.Uint64(v[8:])})
		return true
	}); err != nil {
		return err
	}
	d.size = size
	tree, err := auditproof.NewTreeOn(d, size)
	if err != nil {
		return err
	}
	// Reload the nodes of every level's open block, to go on filling it.
	for level := uint(0); level < 64; level++ {
		n := size >> level
		if n == 0 {
			break
		}
		if n%auditBlock == 0 {
			continue
		}
		b, err := vs.Get(auditNodeKey(level, n/auditBlock))
		if err != nil {
			return err
		}
		for uint(len(d.open)) <= level {
			d.open = append(d.open, nil)
		}
		d.open[level] = append(make([]byte, 0, auditBlock*32), b...)
	}
	m.tree, m.positions, m.disk = tree, nil, d
	return nil
}

// Save implements Persistent.
func (m *Audit) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.disk
	for k, v := range d.full {
		b.Set([]byte(k), v)
	}
	clear(d.full)
	for level, v := range d.open {
		if len(v) > 0 {
			n := m.tree.Size() >> level
			b.Set(auditNodeKey(uint(level), n/auditBlock), v)
		}
	}
	for n, ps := range d.posFull {
		b.Set(auditPosKey(n), encodePositions(ps))
	}
	clear(d.posFull)
	if len(d.posOpen) > 0 {
		b.Set(auditPosKey(d.size/posBlock), encodePositions(d.posOpen))
	}
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], m.tree.Size())
	b.Set(auditSizeKey, s[:])
	return nil
}

var _ Persistent = (*Audit)(nil)
