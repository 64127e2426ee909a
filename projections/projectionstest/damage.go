package projectionstest

import (
	"io"
	"log/slog"
	"testing"

	"talentledger/projections/viewstore"
)

// DamageRecords overwrites every record of a model's views store in dir
// whose key starts with prefix with bytes that do not decode, as a disk
// fault would, keeping the store's checkpoint, and returns how many it
// damaged. The store must be closed.
func DamageRecords(t testing.TB, dir, model string, schema uint32, prefix string) int {
	t.Helper()
	vs, err := viewstore.Open(dir, model, schema, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	var keys [][]byte
	if err := vs.Scan([]byte(prefix), func(k, _ []byte) bool { keys = append(keys, append([]byte(nil), k...)); return true }); err != nil {
		t.Fatal(err)
	}
	b := vs.NewBatch()
	for _, k := range keys {
		b.Set(k, []byte{0xee, 0x01})
	}
	if err := b.Commit(vs.Checkpoint()); err != nil {
		t.Fatal(err)
	}
	return len(keys)
}
