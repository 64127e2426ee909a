package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// witnessedDir is a data directory with its witness file and key: the demo
// data set, flushed into sorted tables, then a tail of tailEvents events
// that only the write-ahead log holds, all witnessed.
type witnessedDir struct {
	data, witness, keyFile string
	key                    ed25519.PrivateKey
	events                 uint64 // in the log, all witnessed
	tailFrom               uint64 // first position of the tail
}

const tailEvents = 40

func buildWitnessedDir(t *testing.T) witnessedDir {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	d := witnessedDir{data: filepath.Join(root, "data"), witness: filepath.Join(root, "heads.jsonl"), keyFile: filepath.Join(root, "key.pem")}
	var err error
	if d.key, err = writeAuditKey(d.keyFile); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := integrityConfig{witness: d.witness, headInterval: time.Hour}
	open := func() (*pebble.Store, *guard) {
		store, err := pebble.Open(d.data, pebble.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		g, err := newGuard(ctx, store, cfg, d.key, log)
		if err != nil {
			t.Fatal(err)
		}
		return store, g
	}
	store, g := open()
	if err := loadDemo(ctx, domain.NewService(store)); err != nil {
		t.Fatal(err)
	}
	g.shutdown()
	store.Close()
	// Into sorted tables, so that the tail alone is in the WAL.
	db := rawDB(t, d.data)
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Close()

	store, g = open()
	last, _ := store.LastPosition(ctx)
	d.tailFrom = last.Commit + 1
	prev := ""
	for v := range tailEvents {
		id := eventstore.DeriveEventID("damage", fmt.Sprint(v))
		md := eventstore.Metadata{Principal: "test", PrevHash: prev}
		data := []byte(fmt.Sprintf(`{"n":%d}`, v))
		md.Hash = domain.ChainHash(prev, "tail-1", eventstore.Version(v), id, "Noted", data, md)
		prev = md.Hash
		if _, err := store.Append(ctx, "tail-1", eventstore.Version(v)-1, eventstore.EventData{ID: id, Type: "Noted", Data: data, Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	g.shutdown()
	last, _ = store.LastPosition(ctx)
	d.events = last.Commit
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return d
}

// copyTree copies a directory (or a file) recursively.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, fi.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// clone copies the witnessed directory and its witness to a new place.
func (d witnessedDir) clone(t *testing.T) witnessedDir {
	t.Helper()
	root := t.TempDir()
	c := d
	c.data, c.witness = filepath.Join(root, "data"), filepath.Join(root, "heads.jsonl")
	copyTree(t, d.data, c.data)
	if _, err := os.Stat(d.witness); err == nil {
		copyTree(t, d.witness, c.witness)
	}
	return c
}

// newestFile returns the last file in dir whose name ends in suffix (Pebble
// numbers its files in order), or "" when there is none.
func newestFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return filepath.Join(dir, names[len(names)-1])
}

// largestFile returns the largest file in dir whose name ends in suffix.
func largestFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	best, size := "", int64(-1)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), suffix) && fi.Size() > size {
			best, size = filepath.Join(dir, e.Name()), fi.Size()
		}
	}
	if best == "" {
		t.Fatalf("no %s file in %s", suffix, dir)
	}
	return best
}

func rewriteFile(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDamageMatrix applies each damage to a copy of a witnessed data
// directory and checks what verify --data says and what serve does at
// start: verify exits 1 naming what is wrong (the first bad position when
// there is one), and serve refuses to serve, with exit status 4 and one
// ERROR line, never a panic.
func TestDamageMatrix(t *testing.T) {
	base := buildWitnessedDir(t)
	// The record of Elena Petrova's registration, inside the flushed part.
	// On a copy: opening a directory with Pebble replays its WAL into a
	// table, and the WAL cases need the tail in the WAL.
	db := rawDB(t, base.clone(t).data)
	elena, _ := findRecord(t, db, `"Elena Petrova"`)
	db.Close()
	mid := base.tailFrom - 7
	lost := fmt.Sprintf("signed %d", base.events)

	for _, c := range []struct {
		name   string
		damage func(t *testing.T, d witnessedDir)
		// want is in verify's output: the position, or what is wrong.
		want []string
	}{
		{"flip a byte in a record's value", func(t *testing.T, d witnessedDir) {
			db := rawDB(t, d.data)
			_, rec := findRecord(t, db, `"Elena Petrova"`)
			rec = bytes.Replace(rec, []byte("Elena"), []byte("Elenb"), 1)
			if err := db.Set(logKey(elena), rec, cpebble.Sync); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, []string{fmt.Sprintf("position %d ", elena), "hash does not match"}},
		{"delete the last 5 log records", func(t *testing.T, d witnessedDir) {
			db := rawDB(t, d.data)
			for p := d.events - 4; p <= d.events; p++ {
				if err := db.Delete(logKey(p), cpebble.Sync); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
		}, []string{lost, "lost or removed"}},
		{"delete one record mid-log", func(t *testing.T, d witnessedDir) {
			db := rawDB(t, d.data)
			if err := db.Delete(logKey(mid), cpebble.Sync); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, []string{fmt.Sprintf("position %d", mid), "removed"}},
		{"swap two records", func(t *testing.T, d witnessedDir) {
			db := rawDB(t, d.data)
			get := func(p uint64) []byte {
				v, closer, err := db.Get(logKey(p))
				if err != nil {
					t.Fatal(err)
				}
				defer closer.Close()
				return append([]byte(nil), v...)
			}
			a, b := get(elena), get(elena+1)
			db.Set(logKey(elena), b, cpebble.Sync)
			db.Set(logKey(elena+1), a, cpebble.Sync)
			db.Close()
		}, []string{fmt.Sprintf("position %d ", elena)}},
		{"truncate the WAL", func(t *testing.T, d witnessedDir) {
			rewriteFile(t, newestFile(t, d.data, ".log"), func(b []byte) []byte { return b[:len(b)-len(b)/8] })
		}, []string{lost, "lost or removed"}},
		{"halve the WAL", func(t *testing.T, d witnessedDir) {
			rewriteFile(t, newestFile(t, d.data, ".log"), func(b []byte) []byte { return b[:len(b)/2] })
		}, []string{lost, "lost or removed"}},
		{"zero the WAL", func(t *testing.T, d witnessedDir) {
			rewriteFile(t, newestFile(t, d.data, ".log"), func(b []byte) []byte { return make([]byte, len(b)) })
		}, []string{lost, "lost or removed"}},
		{"delete the WAL", func(t *testing.T, d witnessedDir) {
			if err := os.Remove(newestFile(t, d.data, ".log")); err != nil {
				t.Fatal(err)
			}
		}, []string{lost, "lost or removed"}},
		{"flip a byte in an .sst", func(t *testing.T, d witnessedDir) {
			rewriteFile(t, largestFile(t, d.data, ".sst"), func(b []byte) []byte { b[len(b)/3] ^= 0x20; return b })
		}, []string{"corrupt"}},
		{"delete the MANIFEST", func(t *testing.T, d witnessedDir) {
			m, _ := filepath.Glob(filepath.Join(d.data, "MANIFEST-*"))
			for _, f := range m {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}, []string{"cannot be opened"}},
		{"remove the witness", func(t *testing.T, d witnessedDir) {
			if err := os.Remove(d.witness); err != nil {
				t.Fatal(err)
			}
		}, []string{"witness", "removed"}},
		{"roll the witness back", func(t *testing.T, d witnessedDir) {
			rewriteFile(t, d.witness, func(b []byte) []byte {
				lines := bytes.SplitAfter(b, []byte("\n"))
				return bytes.Join(lines[:1], nil)
			})
		}, []string{"witness", "rolled back"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := base.clone(t)
			c.damage(t, d)
			// verify and serve each get their own copy: opening a store
			// replays its WAL.
			v := d.clone(t)
			code, out := runVerifyCmd(t, "--data", v.data, "--witness", v.witness,
				"--public-key", publicKeyString(d.key))
			if code != exitFailed {
				t.Fatalf("verify: exit %d, want %d; output:\n%s", code, exitFailed, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("verify's output does not say %q:\n%s", w, out)
				}
			}

			// Events lost from the end are found by a start that resumes
			// from the checkpoint too, not only by a full check.
			fulls := []bool{true}
			if slices.Contains(c.want, "lost or removed") {
				fulls = append(fulls, false)
			}
			for _, full := range fulls {
				s := d.clone(t)
				code, logs := runServeDamaged(t, s, full)
				if code != exitDamaged {
					t.Fatalf("serve (full check %t): exit %d, want %d; log:\n%s", full, code, exitDamaged, logs)
				}
				if strings.Count(logs, "storage self-check failed") != 1 || strings.Contains(logs, `"msg":"serving"`) || strings.Contains(logs, "panic") {
					t.Fatalf("serve should log one self-check ERROR line and never serve; log:\n%s", logs)
				}
				for _, w := range c.want {
					if !strings.Contains(logs, w) {
						t.Errorf("serve's ERROR line (full check %t) does not say %q:\n%s", full, w, logs)
					}
				}
			}
		})
	}
}

// runServeDamaged starts serve on d and returns its exit status and log.
// A server that starts serving is stopped after a bound and fails the
// test through its exit status. With full, serve re-verifies the whole log
// at start, so that damage anywhere in it is found before serving;
// without, it resumes from the witnessed checkpoint and samples older
// events.
func runServeDamaged(t *testing.T, d witnessedDir, full bool) (int, string) {
	t.Helper()
	principals := writePrincipals(t, t.TempDir(), map[string]string{"auditor": "tok-auditor"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var logs strings.Builder
	code := run(ctx, []string{"serve", "--no-encryption", "--data", d.data, "--principals", principals, "--addr", "127.0.0.1:0",
		"--witness", d.witness, "--audit-key", d.keyFile, "--scrub-rate", "0", fmt.Sprintf("--full-check=%t", full)}, io.Discard, &logs)
	return code, logs.String()
}

// TestWitnessedCleanStart checks the undamaged directory: verify exits 0
// with the witness, 3 without it, and serve starts.
func TestWitnessedClean(t *testing.T) {
	base := buildWitnessedDir(t)
	d := base.clone(t)
	code, out := runVerifyCmd(t, "--data", d.data, "--witness", d.witness, "--public-key", publicKeyString(d.key))
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("OK: %d events", d.events)) {
		t.Fatalf("verify of a clean directory: exit %d; %s", code, out)
	}

	// A never-witnessed directory: the chains verify, but nothing can
	// show truncation.
	plain := filepath.Join(t.TempDir(), "plain")
	copyDemo(t, plain)
	code, out = runVerifyCmd(t, "--data", plain)
	if code != exitNoWitness || !strings.Contains(out, "cannot be detected") {
		t.Fatalf("verify without witness or head: exit %d, want %d; %s", code, exitNoWitness, out)
	}

	// The witness inside the data directory is refused.
	var logs strings.Builder
	principals := writePrincipals(t, t.TempDir(), map[string]string{"auditor": "tok-auditor"})
	code = run(context.Background(), []string{"serve", "--no-encryption", "--data", d.data, "--principals", principals, "--addr", "127.0.0.1:0",
		"--witness", filepath.Join(d.data, "w.jsonl"), "--audit-key", d.keyFile}, io.Discard, &logs)
	if code != exitCantRun || !strings.Contains(logs.String(), "inside the data directory") {
		t.Fatalf("serve with the witness inside the data directory: exit %d; %s", code, logs.String())
	}
	// Neither --witness nor --no-witness.
	logs.Reset()
	code = run(context.Background(), []string{"serve", "--no-encryption", "--data", d.data, "--principals", principals}, io.Discard, &logs)
	if code != exitCantRun || !strings.Contains(logs.String(), "--no-witness") {
		t.Fatalf("serve without a witness: exit %d; %s", code, logs.String())
	}
}
