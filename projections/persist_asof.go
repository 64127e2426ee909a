package projections

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"talentledger/projections/viewstore"
)

// The as-of index on disk: its sums, metas, events and forward points
// under the keys asofindex.go describes, each value a list of int64
// (a count, then each zigzag varint); the counters' names under "c" and
// the ID (4 bytes); the program definitions as JSON under "p" and the
// position (16 bytes); the generation of the last Save under "g"; "i"
// when a business date was irregular. Memory holds the names, the
// definitions, and what was folded since the last commit.
const asofSchema = 2

// Schema implements Persistent.
func (m *AsOfIndex) Schema() uint32 { return asofSchema }

// Open implements Persistent.
func (m *AsOfIndex) Open(vs *viewstore.Model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bad error
	err := vs.Scan([]byte("c"), func(k, v []byte) bool {
		if len(k) != 5 || binary.BigEndian.Uint32(k[1:]) != uint32(len(m.names)) {
			bad = errors.New("asof: counter names out of order")
			return false
		}
		m.ids[string(v)] = uint32(len(m.names))
		m.names = append(m.names, string(v))
		return true
	})
	if err == nil {
		err = vs.Scan([]byte("p"), func(_, v []byte) bool {
			var d programDef
			if err := json.Unmarshal(v, &d); err != nil {
				bad = fmt.Errorf("asof: program definition: %w", err)
				return false
			}
			m.defs = append(m.defs, d)
			return true
		})
	}
	if err == nil {
		err = bad
	}
	if err != nil {
		return err
	}
	g, err := vs.Get([]byte("g"))
	if err != nil {
		return err
	}
	if len(g) == 8 {
		m.gen = binary.BigEndian.Uint64(g)
	}
	i, err := vs.Get([]byte("i"))
	if err != nil {
		return err
	}
	m.irregular = i != nil
	m.saved, m.savedDefs = len(m.names), len(m.defs)
	m.vs = vs
	// The greatest bucket of each class of keys.
	m.high = map[string]string{}
	for _, c := range keyClasses() {
		err := vs.ScanReverse([]byte(c), append([]byte(c), 0xff), func(k, _ []byte) bool {
			if _, b, ok := keyClass(string(k)); ok {
				m.high[c] = b
			}
			return false
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// keyClasses lists the classes of keys ordered by a bucket first (a
// recording or business date, or a part of one).
func keyClasses() []string {
	var cs []string
	for _, fam := range []byte{famAccount, famBudget, famSubsidiary} {
		for _, l := range "123" {
			cs = append(cs, string([]byte{'e', fam, byte(l)}))
		}
		for _, l := range "1234" {
			cs = append(cs, string([]byte{'r', fam, byte(l)}))
		}
		cs = append(cs, string([]byte{'x', fam}))
	}
	for _, l := range "123" {
		cs = append(cs, "f"+string(l))
	}
	for _, l := range "1234" {
		cs = append(cs, "s"+string(l))
	}
	return append(cs, "y")
}

// keyClass returns a key's class and bucket; ok is false for a key of no
// class.
func keyClass(k string) (class, bucket string, ok bool) {
	switch {
	case len(k) >= 8 && (k[0] == 'e' || k[0] == 'r'):
		return k[:3], k[3 : len(k)-5], true
	case len(k) >= 12 && k[0] == 'x':
		return k[:2], k[2:12], true
	case len(k) >= 11 && k[0] == 'y':
		return k[:1], k[1:11], true
	case len(k) >= 2 && (k[0] == 'f' || k[0] == 's'):
		return k[:2], k[2:], true
	}
	return "", "", false
}

// Save implements Persistent: it adds what was folded since the last Save
// to what the store holds.
func (m *AsOfIndex) Save(b *viewstore.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	for id := m.saved; id < len(m.names); id++ {
		b.Set(binary.BigEndian.AppendUint32([]byte("c"), uint32(id)), []byte(m.names[id]))
	}
	for _, d := range m.defs[m.savedDefs:] {
		v, err := json.Marshal(d)
		if err != nil {
			return err
		}
		k := binary.BigEndian.AppendUint64([]byte("p"), d.Pos.Commit)
		b.Set(binary.BigEndian.AppendUint64(k, d.Pos.Prepare), v)
	}
	high := map[string]string{}
	// The keys whose stored figures are added to, read in key order
	// through one iterator.
	var reads []string
	for k, v := range m.pending.vals {
		// A key in a bucket after every one stored is new: time moves
		// on, so most of the hours, days and events are.
		c, bucket, ok := keyClass(k)
		if ok && bucket > high[c] {
			high[c] = bucket
		}
		if k[0] != 'v' && !(ok && bucket > m.high[c]) {
			reads = append(reads, k)
			continue
		}
		b.Set([]byte(k), encodeInts(v))
	}
	sort.Strings(reads)
	err := m.vs.GetSorted(reads, func(i int, old []byte) error {
		prev, err := decodeInts(old)
		if err != nil {
			return fmt.Errorf("asof: %w", err)
		}
		k := reads[i]
		b.Set([]byte(k), encodeInts(mergeInts(k[0], prev, m.pending.vals[k], &m.tally)))
		return nil
	})
	if err != nil {
		return err
	}
	if m.err != nil {
		return m.err
	}
	m.gen++
	b.Set([]byte("g"), binary.BigEndian.AppendUint64(nil, m.gen))
	if m.irregular {
		b.Set([]byte("i"), []byte{1})
	}
	m.saved, m.savedDefs = len(m.names), len(m.defs)
	for c, b := range high {
		m.high[c] = max(m.high[c], b)
	}
	m.committing, m.committingGen = m.pending, m.gen
	m.pending = newOverlaySized(len(m.pending.vals))
	return nil
}

func encodeInts(v []int64) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 1+len(v)*3), uint64(len(v)))
	for _, x := range v {
		b = binary.AppendVarint(b, x)
	}
	return b
}

func decodeInts(b []byte) ([]int64, error) {
	if b == nil {
		return nil, nil
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errors.New("stored figures unreadable")
	}
	b = b[k:]
	out := make([]int64, n)
	for i := range out {
		x, k := binary.Varint(b)
		if k <= 0 {
			return nil, errors.New("stored figures unreadable")
		}
		out[i], b = x, b[k:]
	}
	if len(b) != 0 {
		return nil, errors.New("stored figures unreadable")
	}
	return out, nil
}

var _ Persistent = (*AsOfIndex)(nil)
