package integrity

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenWitnessReadsTheTail opens a witness larger than the part the
// server reads at start, and appends after its last line.
func TestOpenWitnessReadsTheTail(t *testing.T) {
	defer func(n int64) { tailBytes = n }(tailBytes)
	tailBytes = 8 << 10
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "w.jsonl")
	ww, _, err := OpenWitness(path, key)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for fi, _ := os.Stat(path); fi.Size() < tailBytes+tailBytes/4; fi, _ = os.Stat(path) {
		n++
		if _, err := ww.Append(uint64(n), make([]byte, 32), "p", time.Unix(int64(n), 0)); err != nil {
			t.Fatal(err)
		}
	}
	ww.Close()
	ww, w, err := OpenWitness(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := w.Last(); h.TreeSize != uint64(n) || len(w.Heads) > n {
		t.Fatalf("tail: last head %d of %d heads; want %d", h.TreeSize, len(w.Heads), n)
	}
	if _, err := ww.Append(uint64(n+1), make([]byte, 32), "p", time.Unix(int64(n+1), 0)); err != nil {
		t.Fatal(err)
	}
	ww.Close()
	all, err := ReadWitness(path, key.Public().(ed25519.PublicKey))
	if err != nil || len(all.Heads) != n+1 {
		t.Fatalf("whole file after appending past the tail: %v, %d heads, want %d", err, len(all.Heads), n+1)
	}
}
