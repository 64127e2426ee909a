package auditproof

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
)

// fuzzTree returns a tree of n leaves, leaf i hashing the 8 bytes of i.
func fuzzTree(t *testing.T, n uint64) (*Tree, [][]byte) {
	t.Helper()
	tree := NewTree()
	leaves := make([][]byte, n)
	for i := range leaves {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		leaves[i] = rfc6962.DefaultHasher.HashLeaf(b[:])
		tree.Append(leaves[i])
	}
	return tree, leaves
}

// chunks cuts b into hashes: 32 bytes each, but the last may be short, and
// a length byte in front lets the fuzzer try odd sizes too.
func chunks(b []byte) []HexBytes {
	var out []HexBytes
	for len(b) > 0 {
		n := 32
		if b[0] < 8 {
			n = int(b[0]) * 5 // 0, 5, …, 35 bytes
			b = b[1:]
		}
		n = min(n, len(b))
		out = append(out, HexBytes(b[:n]))
		b = b[n:]
		if len(out) > 70 {
			break
		}
	}
	return out
}

// FuzzVerifyInclusion: the true proof of a true leaf verifies; a leaf that
// is not the one at its index never does, with the true proof or with any
// proof the fuzzer makes up; nothing panics, whatever the sizes.
func FuzzVerifyInclusion(f *testing.F) {
	f.Add(uint16(7), uint16(3), []byte("leaf"), []byte{}, uint64(7), uint64(3))
	f.Add(uint16(1), uint16(0), []byte{}, bytes.Repeat([]byte{1}, 64), uint64(1), uint64(0))
	f.Add(uint16(64), uint16(63), []byte{0}, bytes.Repeat([]byte{0xff}, 200), uint64(1<<63), uint64(1<<62))
	f.Add(uint16(33), uint16(32), []byte("x"), []byte{3, 1, 2, 3, 4, 5}, uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, size, index uint16, leaf, proofBytes []byte, rawSize, rawIndex uint64) {
		n := uint64(size)%64 + 1
		i := uint64(index) % n
		tree, leaves := fuzzTree(t, n)
		root, err := tree.Root(n)
		if err != nil {
			t.Fatal(err)
		}
		head := TreeHead{TreeSize: n, RootHash: root}
		p, err := tree.InclusionProof(i, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(head, i, leaves[i], p); err != nil {
			t.Fatalf("the true proof of leaf %d of %d fails: %v", i, n, err)
		}
		wrong := rfc6962.DefaultHasher.HashLeaf(leaf)
		forged := chunks(proofBytes)
		if !bytes.Equal(wrong, leaves[i]) {
			if VerifyInclusion(head, i, wrong, p) == nil {
				t.Fatalf("a wrong leaf verifies as leaf %d of %d with the true proof", i, n)
			}
			if VerifyInclusion(head, i, wrong, forged) == nil {
				t.Fatalf("a wrong leaf verifies as leaf %d of %d with a made-up proof", i, n)
			}
		}
		if VerifyInclusion(head, i, leaves[i], forged) == nil && !sameProof(forged, p) {
			t.Fatalf("a made-up proof %x verifies leaf %d of %d", forged, i, n)
		}
		// Any sizes, any root: an answer, never a panic.
		_ = VerifyInclusion(TreeHead{TreeSize: rawSize, RootHash: HexBytes(proofBytes)}, rawIndex, leaf, forged)
	})
}

// FuzzVerifyConsistency: the true proof between two sizes verifies; a head
// whose root is not the true root never does; nothing panics.
func FuzzVerifyConsistency(f *testing.F) {
	f.Add(uint16(3), uint16(7), []byte{}, []byte("root"), uint64(3), uint64(7))
	f.Add(uint16(0), uint16(1), bytes.Repeat([]byte{7}, 96), []byte{}, uint64(0), uint64(1<<40))
	f.Add(uint16(63), uint16(63), []byte{2, 9, 9}, bytes.Repeat([]byte{0}, 32), uint64(9), uint64(2))
	f.Fuzz(func(t *testing.T, size1, size2 uint16, proofBytes, fakeRoot []byte, raw1, raw2 uint64) {
		n2 := uint64(size2)%64 + 1
		n1 := uint64(size1)%n2 + 1
		tree, _ := fuzzTree(t, n2)
		r1, _ := tree.Root(n1)
		r2, _ := tree.Root(n2)
		older, newer := TreeHead{TreeSize: n1, RootHash: r1}, TreeHead{TreeSize: n2, RootHash: r2}
		p, err := tree.ConsistencyProof(n1, n2)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(older, newer, p); err != nil {
			t.Fatalf("the true proof from %d to %d fails: %v", n1, n2, err)
		}
		forged := chunks(proofBytes)
		if !bytes.Equal(fakeRoot, r1) && VerifyConsistency(TreeHead{TreeSize: n1, RootHash: fakeRoot}, newer, forged) == nil {
			t.Fatalf("a rewritten tree of %d verifies as extended by the tree of %d", n1, n2)
		}
		if !bytes.Equal(fakeRoot, r1) && VerifyConsistency(TreeHead{TreeSize: n1, RootHash: fakeRoot}, newer, p) == nil {
			t.Fatalf("a rewritten tree of %d verifies with the true proof", n1)
		}
		if !bytes.Equal(fakeRoot, r2) && VerifyConsistency(older, TreeHead{TreeSize: n2, RootHash: fakeRoot}, forged) == nil {
			t.Fatalf("a tree of %d that is not the true one verifies as extending %d", n2, n1)
		}
		_ = VerifyConsistency(TreeHead{TreeSize: raw1, RootHash: fakeRoot}, TreeHead{TreeSize: raw2, RootHash: HexBytes(proofBytes)}, forged)
	})
}

// FuzzVerifyTreeHead: a head verifies under its key exactly as signed; any
// change of its size, root, time or signature fails.
func FuzzVerifyTreeHead(f *testing.F) {
	f.Add(uint64(5), []byte("root"), int64(1700000000), uint64(6), []byte("other"), int64(1), []byte{})
	f.Add(uint64(0), []byte{}, int64(0), uint64(0), []byte{}, int64(0), bytes.Repeat([]byte{1}, 64))
	f.Fuzz(func(t *testing.T, size uint64, root []byte, unix int64, size2 uint64, root2 []byte, shift int64, sig []byte) {
		key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize))
		pub := key.Public().(ed25519.PublicKey)
		ts := time.Unix(unix%(1<<40), 0)
		h := Sign(key, size, root, ts)
		if err := VerifyTreeHead(pub, h); err != nil {
			t.Fatalf("a signed head fails: %v", err)
		}
		changed := h
		changed.TreeSize, changed.RootHash, changed.Timestamp = size2, root2, ts.Add(time.Duration(shift))
		if (size2 != size || !bytes.Equal(root2, root) || shift != 0) && VerifyTreeHead(pub, changed) == nil {
			t.Fatalf("a changed head verifies: %+v", changed)
		}
		forged := h
		forged.Signature = sig
		if !bytes.Equal(sig, h.Signature) && VerifyTreeHead(pub, forged) == nil {
			t.Fatal("a made-up signature verifies")
		}
		other := sha256.Sum256(sig)
		_ = VerifyTreeHead(ed25519.PublicKey(other[:len(sig)%33]), forged)
	})
}

func sameProof(a, b []HexBytes) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
