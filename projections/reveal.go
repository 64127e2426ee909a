package projections

import (
	"bytes"
	"encoding/csv"
	"io"

	"talentledger/domain"
)

// Personal fields reach the read side sealed (see domain.Cipher): the read
// models, their views on disk, the trails and the registers all carry the
// sealed form. They are opened on the way out only, by a RevealWriter.

var sealedMarker = []byte(domain.SealedMarker)

// maxSealed bounds a sealed value's length: a longer run without its end
// in sight is passed through untouched.
const maxSealed = 16 * domain.MaxTextLen

// sealedByte reports whether b may appear in a sealed value after its
// marker (the prefix, a talent ID, a field name, base64url).
func sealedByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == ':'
}

// RevealWriter rewrites every sealed value written through it with what
// Reveal returns for it (already escaped for the output's format). It
// holds back only an unfinished sealed value, or the start of a marker,
// between writes, so a streamed answer stays streamed; Close writes what
// it holds.
type RevealWriter struct {
	W       io.Writer
	Reveal  func(dst []byte, sealed string) []byte
	pending []byte
	out     []byte
}

// Write implements io.Writer.
func (w *RevealWriter) Write(p []byte) (int, error) {
	if len(w.pending) == 0 && bytes.IndexByte(p, sealedMarker[0]) < 0 {
		return w.W.Write(p)
	}
	w.pending = append(w.pending, p...)
	if err := w.drain(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Settle writes what of the held-back bytes is settled.
func (w *RevealWriter) Settle() error { return w.drain(false) }

// Close writes everything held back.
func (w *RevealWriter) Close() error {
	if len(w.pending) == 0 {
		return nil
	}
	return w.drain(true)
}

func (w *RevealWriter) drain(end bool) error {
	w.out = w.out[:0]
	buf := w.pending
	for {
		i := bytes.Index(buf, sealedMarker)
		if i < 0 {
			keep := 0
			if !end {
				// A marker may be cut between two writes.
				for k := min(len(sealedMarker)-1, len(buf)); k > 0; k-- {
					if bytes.HasPrefix(sealedMarker, buf[len(buf)-k:]) {
						keep = k
						break
					}
				}
			}
			w.out = append(w.out, buf[:len(buf)-keep]...)
			buf = buf[len(buf)-keep:]
			break
		}
		j := i + len(sealedMarker)
		for j < len(buf) && sealedByte(buf[j]) {
			j++
		}
		w.out = append(w.out, buf[:i]...)
		if j == len(buf) && !end && j-i < maxSealed {
			buf = buf[i:]
			break
		}
		w.out = w.Reveal(w.out, string(buf[i:j]))
		buf = buf[j:]
	}
	w.pending = append(w.pending[:0], buf...)
	if len(w.out) == 0 {
		return nil
	}
	_, err := w.W.Write(w.out)
	return err
}

// AppendCSVField appends plain as one field of a CSV register: guarded
// against formulas (Text) and quoted as the CSV writer would.
func AppendCSVField(dst []byte, plain string) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write([]string{Text(plain)})
	cw.Flush()
	return append(dst, bytes.TrimRight(b.Bytes(), "\r\n")...)
}
