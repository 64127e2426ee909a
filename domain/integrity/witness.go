package integrity

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"talentledger/domain/auditproof"
)

// A witness file is a record, kept outside the data directory, of the tree
// heads the server signed: one JSON object a line, appended and fsynced,
// never rewritten. Each line is a Head: a signed tree head (the same JSON
// as GET /v1/audit/tree-head answers, so a line saved alone is a valid
// `verify --head` file) and a link to the line before it:
//
//	{"tree_size":…,"root_hash":"…","timestamp":"…","signature":"…",
//	 "public_key":"…","position":"…","prev":"<SHA-256 of the previous line, hex>",
//	 "link_signature":"…"}
//
// link_signature is an Ed25519 signature over LinkMessage(prev, head), so a
// line cannot be moved, and the chain of lines cannot be spliced, without
// the key. A witness file proves that the log held at least what its last
// head signs; it cannot by itself show that its own newest lines were cut
// off, which is why the store records the last head it was witnessed at.

// Head is one line of a witness file.
type Head struct {
	auditproof.TreeHead
	Position string `json:"position"`
	// Prev is the SHA-256 of the previous line's bytes (without its
	// newline), empty on the first line.
	Prev          auditproof.HexBytes `json:"prev,omitempty"`
	LinkSignature []byte              `json:"link_signature"`
}

// LinkMessage returns the bytes a witness line's link signature covers.
func LinkMessage(prev []byte, h auditproof.TreeHead) []byte {
	var b bytes.Buffer
	b.WriteString("talentledger witness v1\n")
	b.WriteString(hex.EncodeToString(prev))
	b.WriteByte('\n')
	b.Write(auditproof.SignedMessage(h.TreeSize, h.RootHash, h.Timestamp))
	return b.Bytes()
}

// ErrNoWitness reports a witness file that does not exist.
var ErrNoWitness = errors.New("integrity: no witness file")

// Witness is what a witness file says, once checked.
type Witness struct {
	Heads []Head
	// Torn is true when the file ends in an incomplete line (a crash while
	// appending); that line is ignored.
	Torn bool
	// lastLine is the SHA-256 of the last complete line.
	lastLine []byte
	// size is the length of the complete lines, where the next is written.
	size int64
}

// Last returns the newest head, and false when there is none.
func (w *Witness) Last() (Head, bool) {
	if w == nil || len(w.Heads) == 0 {
		return Head{}, false
	}
	return w.Heads[len(w.Heads)-1], true
}

// Expect returns the newest head as a head the log must extend.
func (w *Witness) Expect(path string) []Expect {
	h, ok := w.Last()
	if !ok {
		return nil
	}
	return []Expect{{Size: h.TreeSize, Root: h.RootHash, Name: fmt.Sprintf("the witness head of %s (%s)", h.Timestamp.Format(time.RFC3339), path)}}
}

// ReadWitness reads and checks a witness file: every line parses, is signed
// by pub (when pub is nil, by the key the first line carries) and links to
// the line before it, and tree sizes never shrink. A failed check is a
// *Problem naming the line.
func ReadWitness(path string, pub ed25519.PublicKey) (*Witness, error) {
	return readWitness(path, pub, 0)
}

// tailBytes is how much of a witness file the server reads and checks at
// start: a few thousand heads, enough to append after the newest and to
// check the store against it, and a start that does not slow down as the
// file grows over the years. verify reads the file whole.
var tailBytes int64 = 1 << 20

// readWitness reads the witness file from byte offset from on (the first,
// partial line skipped, and the first whole line's link taken as given).
func readWitness(path string, pub ed25519.PublicKey, from int64) (*Witness, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoWitness, path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := &Witness{size: from}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	if from > 0 {
		skipped, err := r.ReadBytes('\n')
		if err != nil {
			// Not even one whole line in the tail: read it all.
			return readWitness(path, pub, 0)
		}
		w.size += int64(len(skipped))
	}
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				w.Torn = true
			}
			break
		}
		if err != nil {
			return nil, err
		}
		line = line[:len(line)-1]
		where := fmt.Sprintf("line %d", n)
		if from > 0 {
			where = fmt.Sprintf("the line at byte %d", w.size)
		}
		bad := func(what string) error {
			return &Problem{What: fmt.Sprintf("witness %s %s: %s", path, where, what)}
		}
		var h Head
		if err := json.Unmarshal(line, &h); err != nil {
			return nil, bad("not a witness head: " + err.Error())
		}
		if pub == nil {
			pub = h.PublicKey
		}
		if err := auditproof.VerifyTreeHead(pub, h.TreeHead); err != nil {
			return nil, bad("the head's signature does not verify")
		}
		if from > 0 && n == 1 {
			w.lastLine = h.Prev
		}
		if string(h.Prev) != string(w.lastLine) {
			return nil, bad("does not link to the line before it: lines were removed, reordered or inserted")
		}
		if !ed25519.Verify(pub, LinkMessage(h.Prev, h.TreeHead), h.LinkSignature) {
			return nil, bad("the link signature does not verify")
		}
		if last, ok := w.Last(); ok && h.TreeSize < last.TreeSize {
			return nil, bad(fmt.Sprintf("signs %d events after a head of %d", h.TreeSize, last.TreeSize))
		}
		sum := sha256.Sum256(line)
		w.lastLine = sum[:]
		w.size += int64(len(line)) + 1
		w.Heads = append(w.Heads, h)
	}
	return w, nil
}

// WitnessWriter appends heads to a witness file. It is not safe for
// concurrent use.
type WitnessWriter struct {
	f    *os.File
	key  ed25519.PrivateKey
	prev []byte
	last Head
	has  bool
}

// OpenWitness opens the witness file at path for appending, creating it
// as needed, and checks its last MiB (tailBytes): the returned Witness
// holds the heads found there. A torn last line is cut off first. Heads
// are signed with key, which must be the key the file's heads were signed
// with.
func OpenWitness(path string, key ed25519.PrivateKey) (*WitnessWriter, *Witness, error) {
	pub := key.Public().(ed25519.PublicKey)
	var from int64
	if fi, err := os.Stat(path); err == nil && fi.Size() > tailBytes {
		from = fi.Size() - tailBytes
	}
	w, err := readWitness(path, pub, from)
	if errors.Is(err, ErrNoWitness) {
		w, err = &Witness{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	if w.Torn {
		if err := f.Truncate(w.size); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	if _, err := f.Seek(w.size, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	ww := &WitnessWriter{f: f, key: key, prev: w.lastLine}
	ww.last, ww.has = w.Last()
	return ww, w, nil
}

// Append signs a head for the tree of size with root, whose last event is
// at position pos, and appends it durably. It returns the head written.
func (ww *WitnessWriter) Append(size uint64, root []byte, pos string, now time.Time) (Head, error) {
	h := Head{TreeHead: auditproof.Sign(ww.key, size, root, now), Position: pos, Prev: ww.prev}
	h.LinkSignature = ed25519.Sign(ww.key, LinkMessage(h.Prev, h.TreeHead))
	line, err := json.Marshal(h)
	if err != nil {
		return Head{}, err
	}
	if _, err := ww.f.Write(append(line, '\n')); err != nil {
		return Head{}, fmt.Errorf("witness: %w", err)
	}
	if err := ww.f.Sync(); err != nil {
		return Head{}, fmt.Errorf("witness: %w", err)
	}
	sum := sha256.Sum256(line)
	ww.prev = sum[:]
	ww.last, ww.has = h, true
	return h, nil
}

// Last returns the newest head in the file.
func (ww *WitnessWriter) Last() (Head, bool) { return ww.last, ww.has }

// Close closes the file.
func (ww *WitnessWriter) Close() error { return ww.f.Close() }
