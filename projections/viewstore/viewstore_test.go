package viewstore_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/projections/viewstore"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustOpen(tb testing.TB, dir, name string, schema uint32) *viewstore.Model {
	tb.Helper()
	m, err := viewstore.Open(dir, name, schema, quiet())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func pos(n uint64) eventstore.Position { return eventstore.Position{Commit: n, Prepare: n} }

func TestCheckpointAndStateSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	m := mustOpen(t, dir, "grants", 1)
	if fresh, why := m.Fresh(); !fresh || why != "new" {
		t.Fatalf("a new model: Fresh() = %v, %q; want true, new", fresh, why)
	}
	b := m.NewBatch()
	b.Set([]byte("g1"), []byte("approved"))
	b.Set([]byte("g2"), []byte("applied"))
	if err := b.Commit(pos(7)); err != nil {
		t.Fatal(err)
	}
	b = m.NewBatch()
	b.Delete([]byte("g2"))
	if err := b.Commit(pos(9)); err != nil {
		t.Fatal(err)
	}
	m.Close()

	m = mustOpen(t, dir, "grants", 1)
	if fresh, _ := m.Fresh(); fresh {
		t.Fatal("reopened at the same schema: the model was emptied")
	}
	if got := m.Checkpoint(); got != pos(9) {
		t.Fatalf("checkpoint %s, want 9", got)
	}
	if v, _ := m.Get([]byte("g1")); string(v) != "approved" {
		t.Fatalf("g1 = %q", v)
	}
	if v, _ := m.Get([]byte("g2")); v != nil {
		t.Fatalf("g2 deleted at 9, reads %q", v)
	}
}

func TestSchemaChangeEmptiesTheModelAlone(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"grants", "budgets"} {
		m := mustOpen(t, dir, name, 1)
		b := m.NewBatch()
		b.Set([]byte("k"), []byte(name))
		if err := b.Commit(pos(5)); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	g := mustOpen(t, dir, "grants", 2)
	if fresh, why := g.Fresh(); !fresh || why != "schema 1 stored, 2 wanted" {
		t.Fatalf("Fresh() = %v, %q", fresh, why)
	}
	if g.Checkpoint() != eventstore.Start {
		t.Fatalf("a model of another schema resumes from %s, want the start", g.Checkpoint())
	}
	if v, _ := g.Get([]byte("k")); v != nil {
		t.Fatalf("a model of another schema kept %q", v)
	}
	b := mustOpen(t, dir, "budgets", 1)
	if v, _ := b.Get([]byte("k")); string(v) != "budgets" || b.Checkpoint() != pos(5) {
		t.Fatalf("the other model: %q at %s, want budgets at 5", v, b.Checkpoint())
	}
}

func TestCheckpointNeverMovesBack(t *testing.T) {
	m := mustOpen(t, t.TempDir(), "ledger", 1)
	b := m.NewBatch()
	b.Set([]byte("a"), []byte("1"))
	if err := b.Commit(pos(10)); err != nil {
		t.Fatal(err)
	}
	b = m.NewBatch()
	b.Set([]byte("a"), []byte("2"))
	if err := b.Commit(pos(9)); err == nil {
		t.Fatal("a batch behind the checkpoint was committed")
	}
	if v, _ := m.Get([]byte("a")); string(v) != "1" {
		t.Fatalf("a = %q after a refused batch, want 1", v)
	}
}

func TestScanRangeAndReverse(t *testing.T) {
	m := mustOpen(t, t.TempDir(), "asof", 1)
	b := m.NewBatch()
	for _, d := range []string{"2024-01-05", "2024-03-01", "2024-07-10", "2025-01-02"} {
		b.Set([]byte("d/"+d), []byte(d))
	}
	b.Set([]byte("e/x"), []byte("other"))
	if err := b.Commit(pos(1)); err != nil {
		t.Fatal(err)
	}
	// The last entry on or before 2024-06-30.
	var got string
	if err := m.ScanReverse([]byte("d/"), []byte("d/2024-06-30\xff"), func(_, v []byte) bool { got = string(v); return false }); err != nil {
		t.Fatal(err)
	}
	if got != "2024-03-01" {
		t.Fatalf("last on or before 2024-06-30: %q", got)
	}
	var n int
	if err := m.Scan([]byte("d/"), func(_, _ []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("scan of d/ saw %d keys, want 4", n)
	}
}

func TestTrackerProgress(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := viewstore.NewTracker([]string{"grants"}, 0, 1000, t0)
	tr.Update(250)
	p := tr.Progress(t0.Add(10 * time.Second))
	if p.Done != 250 || p.Total != 1000 || p.Percent != 25 || p.EventsPerSec != 25 || p.ETASeconds != 30 {
		t.Fatalf("progress %+v; want 250 of 1000, 25 %%, 25 events/s, 30 s left", p)
	}
}

// The crash child commits batches until it is killed: batch i sets the
// counter to i and adds keys i*width … i*width+width-1, with checkpoint i.
// Whenever it dies, the store must hold exactly the state of its
// checkpoint.
const (
	crashEnv   = "VIEWSTORE_CRASH_DIR"
	crashWidth = 50
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func crashChild(dir string) {
	m, err := viewstore.Open(dir, "crash", 1, quiet())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	val := make([]byte, 200)
	for i := m.Checkpoint().Commit + 1; ; i++ {
		b := m.NewBatch()
		var k [8]byte
		for j := range uint64(crashWidth) {
			binary.BigEndian.PutUint64(k[:], i*crashWidth+j)
			b.Set(append([]byte("k/"), k[:]...), val)
		}
		b.Set([]byte("counter"), []byte(strconv.FormatUint(i, 10)))
		if err := b.Commit(pos(i)); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if i%10 == 0 {
			fmt.Println("committed", i)
		}
	}
}

func TestSIGKILLMidBatchLeavesTheCheckpointsState(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it while it writes, after a varying number of batches.
		sc := bufio.NewScanner(out)
		for seen := 0; seen < 2+round*3 && sc.Scan(); {
			if sc.Text()[:5] == "error" {
				t.Fatal(sc.Text())
			}
			seen++
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()

		m, err := viewstore.Open(dir, "crash", 1, quiet())
		if err != nil {
			t.Fatal(err)
		}
		c := m.Checkpoint().Commit
		v, _ := m.Get([]byte("counter"))
		if string(v) != strconv.FormatUint(c, 10) {
			t.Fatalf("round %d: checkpoint %d, counter %q: the state is not the checkpoint's", round, c, v)
		}
		n := uint64(0)
		if err := m.Scan([]byte("k/"), func(_, _ []byte) bool { n++; return true }); err != nil {
			t.Fatal(err)
		}
		if n != c*crashWidth {
			t.Fatalf("round %d: checkpoint %d holds %d keys, want %d", round, c, n, c*crashWidth)
		}
		m.Close()
	}
}

// GetSorted finds what Get finds, key by key, whether the value is in the
// memtable or flushed, and nil for a key stored nowhere; the store's own
// keys (schema, checkpoint) are never a model's.
func TestGetSortedAgreesWithGet(t *testing.T) {
	m := mustOpen(t, t.TempDir(), "asof", 1)
	b := m.NewBatch()
	for i := 0; i < 200; i += 2 {
		b.Set(fmt.Appendf(nil, "k%03d", i), fmt.Appendf(nil, "v%d", i))
	}
	if err := b.Commit(pos(1)); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	b = m.NewBatch()
	b.Set([]byte("k101"), []byte("late"))
	if err := b.Commit(pos(2)); err != nil {
		t.Fatal(err)
	}
	keys := []string{"\x00c", "\x00s", "a", "k000", "k001", "k100", "k101", "k198", "k199", "z"}
	seen := 0
	err := m.GetSorted(keys, func(i int, v []byte) error {
		seen++
		want, err := m.Get([]byte(keys[i]))
		if err != nil {
			return err
		}
		if string(v) != string(want) || (v == nil) != (want == nil) {
			t.Errorf("%q: GetSorted %q, Get %q", keys[i], v, want)
		}
		return nil
	})
	if err != nil || seen != len(keys) {
		t.Fatalf("GetSorted: %v after %d of %d keys", err, seen, len(keys))
	}
	if v, _ := m.Get([]byte("k101")); string(v) != "late" {
		t.Fatalf("k101 = %q, want late", v)
	}
}
