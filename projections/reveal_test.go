package projections_test

import (
	"bytes"
	"strings"
	"testing"

	"talentledger/domain"
	"talentledger/projections"
)

// A sealed value is rewritten wherever the writes that carry it are cut:
// the output is the same for every split of the input.
func TestRevealWriterAcrossWrites(t *testing.T) {
	sealed := domain.SealedMarker + "pd1:t0123456789abcdef:name:AbC-_09"
	in := []byte(`{"a":"` + sealed + `","b":"x` + "\xef\xb7" + `y","c":"` + sealed + `"}` + "\xef")
	reveal := func(dst []byte, v string) []byte {
		if v != sealed {
			t.Errorf("revealed %q", v)
		}
		return append(dst, "NAME"...)
	}
	want := strings.ReplaceAll(string(in), sealed, "NAME")
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			var out bytes.Buffer
			w := &projections.RevealWriter{W: &out, Reveal: reveal}
			for _, part := range [][]byte{in[:i], in[i:j], in[j:]} {
				if _, err := w.Write(part); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != want {
				t.Fatalf("split at %d, %d: %q, want %q", i, j, out.String(), want)
			}
		}
	}
}
