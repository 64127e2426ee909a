package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cpebble "github.com/cockroachdb/pebble/v2"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// demoDir writes the demo data set into a new data directory, saves a
// signed tree head of it, and returns both paths and the public key.
func demoDir(t *testing.T) (dir, headPath string, pub ed25519.PublicKey) {
	t.Helper()
	dir = t.TempDir()
	copyDemo(t, dir)
	store, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	headPath = filepath.Join(t.TempDir(), "head.json")
	saveHead(t, store, key, headPath)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, headPath, pub
}

// saveHead signs the tree over the store's whole log, computed here from the
// log, and writes it as an auditor would.
func saveHead(t *testing.T, store eventstore.Store, key ed25519.PrivateKey, path string) {
	t.Helper()
	tree := auditproof.NewTree()
	it := store.ReadAll(context.Background(), eventstore.Start)
	for it.Next() {
		ev := it.Event()
		tree.Append(auditproof.LeafHash(&ev))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it.Close()
	root, _ := tree.Root(tree.Size())
	b, _ := json.Marshal(savedHead{TreeHead: auditproof.Sign(key, tree.Size(), root, timeNow())})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func runVerifyCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"verify"}, args...), &out, &errb)
	return code, out.String() + errb.String()
}

// rawDB opens the data directory with Pebble itself, bypassing the store.
func rawDB(t *testing.T, dir string) *cpebble.DB {
	t.Helper()
	db, err := cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func logKey(pos uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{'l'}, pos)
}

// findRecord returns the position of the first log record containing s.
func findRecord(t *testing.T, db *cpebble.DB, s string) (uint64, []byte) {
	t.Helper()
	iter, err := db.NewIter(&cpebble.IterOptions{LowerBound: []byte{'l'}, UpperBound: []byte{'m'}})
	if err != nil {
		t.Fatal(err)
	}
	defer iter.Close()
	for iter.First(); iter.Valid(); iter.Next() {
		if bytes.Contains(iter.Value(), []byte(s)) {
			return binary.BigEndian.Uint64(iter.Key()[1:]), append([]byte(nil), iter.Value()...)
		}
	}
	t.Fatalf("no record contains %q", s)
	return 0, nil
}

func pub64(p ed25519.PublicKey) string { return base64Std(p) }

func TestVerifyCleanLog(t *testing.T) {
	dir, head, pub := demoDir(t)
	code, out := runVerifyCmd(t, "--data", dir, "--head", head, "--public-key", pub64(pub))
	if code != exitOK || !strings.Contains(out, "OK:") {
		t.Fatalf("clean log: exit %d, output %s", code, out)
	}
}

func TestVerifyDetectsChangedByte(t *testing.T) {
	dir, _, _ := demoDir(t)
	db := rawDB(t, dir)
	pos, rec := findRecord(t, db, `"amount_requested":"600000.00"`)
	i := bytes.Index(rec, []byte(`"600000.00"`))
	rec[i+1] = '7' // 600000.00 → 700000.00, same length, still valid JSON
	if err := db.Set(logKey(pos), rec, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, out := runVerifyCmd(t, "--data", dir)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; output %s", code, exitFailed, out)
	}
	if want := "position " + itoa(pos); !strings.Contains(out, want) || !strings.Contains(out, "stream grant-") || !strings.Contains(out, "version 0") {
		t.Fatalf("output does not name the changed event (grant stream, version 0, %s): %s", want, out)
	}
}

func TestVerifyDetectsDeletedEvent(t *testing.T) {
	dir, head, pub := demoDir(t)
	db := rawDB(t, dir)
	// Elena Petrova's registration: her stream goes on with her departure.
	pos, _ := findRecord(t, db, `"Elena Petrova"`)
	if err := db.Delete(logKey(pos), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, out := runVerifyCmd(t, "--data", dir, "--head", head, "--public-key", pub64(pub))
	if code != exitFailed || !strings.Contains(out, "removed") {
		t.Fatalf("exit %d, output %s; want exit 1 naming removed events", code, out)
	}
}

func TestVerifyDetectsSwappedEvents(t *testing.T) {
	for _, c := range []struct {
		name          string
		first, second string
	}{
		// A payment's release and the approval just before it, in one
		// grant's stream: the chain breaks.
		{"same stream", "", `"bank_reference":"ZJRCB-2024-01-15`},
		// Two talents' registrations, in streams no chain links: only the
		// signed Merkle root can tell.
		{"different streams", `"Elena Petrova"`, `"Hans Becker"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, head, pub := demoDir(t)
			db := rawDB(t, dir)
			p2, r2 := findRecord(t, db, c.second)
			p1 := p2 - 1
			if c.first != "" {
				p1, _ = findRecord(t, db, c.first)
			}
			v, closer, err := db.Get(logKey(p1))
			if err != nil {
				t.Fatal(err)
			}
			r1 := append([]byte(nil), v...)
			closer.Close()
			if err := db.Set(logKey(p1), r2, cpebble.Sync); err != nil {
				t.Fatal(err)
			}
			if err := db.Set(logKey(p2), r1, cpebble.Sync); err != nil {
				t.Fatal(err)
			}
			db.Close()
			code, out := runVerifyCmd(t, "--data", dir, "--head", head, "--public-key", pub64(pub))
			if code != exitFailed {
				t.Fatalf("exit %d, want %d; output %s", code, exitFailed, out)
			}
			// The indexes catch it first, at the first swapped position;
			// without them, the signed root would.
			if c.first != "" && !strings.Contains(out, "do not match the tree head") && !strings.Contains(out, fmt.Sprintf("position %d ", p1)) {
				t.Fatalf("a swap across streams should be caught at position %d: %s", p1, out)
			}
		})
	}
}

// TestVerifyOldHeadAfterAppend: a head saved before a legitimate append is
// still consistent afterwards; a forged head (another root) is not.
func TestVerifyOldHeadAfterAppend(t *testing.T) {
	dir, head, pub := demoDir(t)
	store, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc := domain.NewService(store)
	if _, err := svc.RegisterTalent(context.Background(), domain.RegisterTalent{
		Meta: domain.CommandMeta{Actor: domain.Actor{Principal: "clerk-1", Role: domain.RoleClerk}},
		Name: "Later Arrival", Tier: "C", Employer: "Pinghu Precision Optics Co."}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	if code, out := runVerifyCmd(t, "--data", dir, "--head", head, "--public-key", pub64(pub)); code != exitOK {
		t.Fatalf("old head after an append: exit %d, output %s", code, out)
	}
	// A head with a changed signature or from another key fails.
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	var h savedHead
	b, _ := os.ReadFile(head)
	json.Unmarshal(b, &h)
	forged := auditproof.Sign(otherKey, h.TreeSize, h.RootHash, h.Timestamp)
	forgedPath := filepath.Join(t.TempDir(), "forged.json")
	fb, _ := json.Marshal(savedHead{TreeHead: forged})
	os.WriteFile(forgedPath, fb, 0o644)
	if code, out := runVerifyCmd(t, "--data", dir, "--head", forgedPath, "--public-key", pub64(pub)); code != exitFailed {
		t.Fatalf("head signed by another key: exit %d, output %s", code, out)
	}
}

func TestVerifyCannotRun(t *testing.T) {
	if code, _ := runVerifyCmd(t, "--data", filepath.Join(t.TempDir(), "missing")); code != exitCantRun {
		t.Fatalf("missing directory: exit %d, want %d", code, exitCantRun)
	}
	if code, _ := runVerifyCmd(t); code != exitCantRun {
		t.Fatalf("no arguments: exit %d, want %d", code, exitCantRun)
	}
}
