package auditproof

import (
	"bytes"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"

	"talentledger/eventstore"
)

// LeafHash and HashChildren avoid allocations; they must still be exactly
// RFC 6962's hashes of LeafData and of two children.
func TestHashesAreRFC6962(t *testing.T) {
	for _, e := range []eventstore.Event{
		{},
		{ID: eventstore.DeriveEventID("x"), Stream: "grant-g0123456789abcdef", Version: 7,
			Metadata: eventstore.Metadata{Hash: strings.Repeat("ab", 32)}},
		// Too long for the stack buffer.
		{ID: eventstore.DeriveEventID("y"), Stream: "s-" + strings.Repeat("x", 300), Version: 1 << 40,
			Metadata: eventstore.Metadata{Hash: strings.Repeat("cd", 32)}},
	} {
		if got, want := LeafHash(&e), rfc6962.DefaultHasher.HashLeaf(LeafData(&e)); !bytes.Equal(got, want) {
			t.Errorf("LeafHash of %q = %x, want %x", e.Stream, got, want)
		}
		if got, want := len(LeafData(&e)), leafDataLen(&e); got != want {
			t.Errorf("LeafData of %q is %d bytes, leafDataLen says %d", e.Stream, got, want)
		}
	}
	l, r := rfc6962.DefaultHasher.HashLeaf([]byte("l")), rfc6962.DefaultHasher.HashLeaf([]byte("r"))
	for _, c := range [][2][]byte{{l, r}, {r, l}, {l, []byte("short")}, {nil, nil}} {
		if got, want := HashChildren(c[0], c[1]), rfc6962.DefaultHasher.HashChildren(c[0], c[1]); !bytes.Equal(got, want) {
			t.Errorf("HashChildren(%x, %x) = %x, want %x", c[0], c[1], got, want)
		}
	}
}
