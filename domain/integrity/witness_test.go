package integrity_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"talentledger/domain/integrity"
)

func writeHeads(t *testing.T, n int) (string, ed25519.PrivateKey) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "w.jsonl")
	ww, _, err := integrity.OpenWitness(path, key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		root := bytes.Repeat([]byte{byte(i)}, 32)
		if _, err := ww.Append(uint64(10*i), root, "p", time.Unix(int64(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	ww.Close()
	return path, key
}

func TestWitnessRoundTrip(t *testing.T) {
	path, key := writeHeads(t, 3)
	w, err := integrity.ReadWitness(path, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Heads) != 3 || w.Torn {
		t.Fatalf("read %d heads (torn %v), want 3", len(w.Heads), w.Torn)
	}
	if h, _ := w.Last(); h.TreeSize != 20 {
		t.Errorf("last head signs %d, want 20", h.TreeSize)
	}
	// Another key is refused.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := integrity.ReadWitness(path, other.Public().(ed25519.PublicKey)); !errors.Is(err, integrity.ErrDamaged) {
		t.Errorf("a witness checked with another key: %v", err)
	}
}

func TestWitnessDetectsEdits(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(lines [][]byte) [][]byte
		want string
	}{
		{"a line removed", func(l [][]byte) [][]byte { return append(l[:1:1], l[2:]...) }, "line 2: does not link"},
		{"two lines swapped", func(l [][]byte) [][]byte { l[0], l[1] = l[1], l[0]; return l }, "line 1: does not link"},
		{"a size changed", func(l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`"tree_size":10`), []byte(`"tree_size":11`), 1)
			return l
		}, "line 2: the head's signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, key := writeHeads(t, 3)
			b, _ := os.ReadFile(path)
			lines := c.edit(bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")))
			for i := range lines {
				lines[i] = bytes.TrimSuffix(lines[i], []byte("\n"))
			}
			os.WriteFile(path, append(bytes.Join(lines, []byte("\n")), '\n'), 0o644)
			_, err := integrity.ReadWitness(path, key.Public().(ed25519.PublicKey))
			if !errors.Is(err, integrity.ErrDamaged) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a problem saying %q", err, c.want)
			}
		})
	}
}

func TestWitnessTornLine(t *testing.T) {
	path, key := writeHeads(t, 2)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"tree_size":3`)
	f.Close()
	ww, w, err := integrity.OpenWitness(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Torn || len(w.Heads) != 2 {
		t.Fatalf("torn %v, %d heads; want a torn line after 2 heads", w.Torn, len(w.Heads))
	}
	if _, err := ww.Append(30, make([]byte, 32), "p", time.Unix(9, 0)); err != nil {
		t.Fatal(err)
	}
	ww.Close()
	w, err = integrity.ReadWitness(path, key.Public().(ed25519.PublicKey))
	if err != nil || len(w.Heads) != 3 || w.Torn {
		t.Fatalf("after appending past a torn line: %v, %+v", err, w)
	}
}
