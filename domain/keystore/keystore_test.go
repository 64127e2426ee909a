package keystore

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"talentledger/domain"
)

func masterKey(t *testing.T) (path string, key []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "master.key")
	if err := WriteMasterKey(path); err != nil {
		t.Fatal(err)
	}
	key, err := ReadMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, key
}

// grepDir reports the files under dir that contain b.
func grepDir(t *testing.T, dir string, b []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func TestKeysAreWrappedAndDestroyed(t *testing.T) {
	_, master := masterKey(t)
	dir := filepath.Join(t.TempDir(), "keys")
	s, err := Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	const id = "t00000000000000aa"
	_, k, err := s.DataKey(id, true)
	if err != nil {
		t.Fatal(err)
	}
	_, again, err := s.DataKey(id, true)
	if err != nil || !bytes.Equal(k, again) {
		t.Fatalf("a second DataKey made another key: %v", err)
	}
	if hits := grepDir(t, dir, k); len(hits) > 0 {
		t.Errorf("the data key is stored unwrapped in %v", hits)
	}
	if _, _, err := s.DataKey("t00000000000000bb", false); !errors.Is(err, domain.ErrNoKey) {
		t.Errorf("absent key: %v", err)
	}
	// Open in one place at a time; reopened with the same master key, the
	// key is there; with another, the store is refused.
	if _, err := Open(dir, master); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("a key store open already was opened again: %v", err)
	}
	s.Close()
	s, err = Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, got, err := s.DataKey(id, false); err != nil || !bytes.Equal(got, k) {
		t.Fatalf("after reopening: %v", err)
	}
	_, other := masterKey(t)
	if _, err := Open(dir, other); err == nil || !strings.Contains(err.Error(), "another master key") {
		t.Errorf("another master key: %v", err)
	}

	backup := filepath.Join(t.TempDir(), "backup")
	if err := s.Backup(backup); err != nil {
		t.Fatal(err)
	}
	keys, _, err := WrappedKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys[id]) != 1 {
		t.Fatal("WrappedKeys does not list the key")
	}
	wrapped := keys[id][0]
	if err := s.Destroy(id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.DataKey(id, true); !errors.Is(err, domain.ErrKeyDestroyed) {
		t.Errorf("a destroyed key is made again: %v", err)
	}
	if hits := grepDir(t, dir, wrapped); len(hits) > 0 {
		t.Errorf("the destroyed key is still in %v", hits)
	}
	if keys, dead, err := WrappedKeys(dir); err != nil || keys[id] != nil || !dead[id] {
		t.Errorf("after destruction WrappedKeys lists %v, destroyed %v (%v)", keys, dead, err)
	}
	// The backup taken before still holds it, until purged.
	if hits := grepDir(t, backup, wrapped); len(hits) == 0 {
		t.Fatal("the backup lacks the key it was taken with")
	}
	n, err := s.PurgeBackup(backup)
	if err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if hits := grepDir(t, backup, wrapped); len(hits) > 0 {
		t.Errorf("the purged backup still holds the key in %v", hits)
	}
	restored, err := Open(backup, master)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := restored.DataKey(id, true); !errors.Is(err, domain.ErrKeyDestroyed) {
		t.Errorf("a restored purged backup brings the key back: %v", err)
	}
	if _, err := s.PurgeBackup(t.TempDir()); err == nil {
		t.Error("purging a directory that is no key store backup succeeded")
	}
}

func TestConcurrentCreateAndDestroy(t *testing.T) {
	_, master := masterKey(t)
	s, err := Open(t.TempDir(), master)
	if err != nil {
		t.Fatal(err)
	}
	const id = "t00000000000000cc"
	var wg sync.WaitGroup
	keys := make([][]byte, 20)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, keys[i], _ = s.DataKey(id, true)
		}()
	}
	wg.Wait()
	for _, k := range keys {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("concurrent creations made different keys")
		}
	}
	for range 10 {
		wg.Add(2)
		go func() { defer wg.Done(); _ = s.Destroy(id) }()
		go func() { defer wg.Done(); _, _, _ = s.DataKey(id, true) }()
	}
	wg.Wait()
	if _, _, err := s.DataKey(id, true); !errors.Is(err, domain.ErrKeyDestroyed) {
		t.Errorf("after destroy: %v", err)
	}
}

func TestMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if err := os.WriteFile(p, []byte(strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMasterKey(p); err == nil {
		t.Error("a master key readable by others is accepted")
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMasterKey(p); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(p, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMasterKey(p); err == nil {
		t.Error("a short master key is accepted")
	}
	if err := WriteMasterKey(p); err == nil {
		t.Error("new-master-key overwrote a file")
	}
}

// TestTornRecordIsCutOff: a record a crash cut short was never
// acknowledged; the store opens without it and goes on appending.
func TestTornRecordIsCutOff(t *testing.T) {
	_, master := masterKey(t)
	dir := t.TempDir()
	s, err := Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	_, k, err := s.DataKey("t00000000000000dd", true)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, err := os.OpenFile(filepath.Join(dir, logFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := record(recordKey, "t00000000000000ee", bytes.Repeat([]byte{9}, 60))
	f.Write(torn[:len(torn)-7])
	f.Close()
	s, err = Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, got, err := s.DataKey("t00000000000000dd", false); err != nil || !bytes.Equal(got, k) {
		t.Fatalf("the key before the torn record: %v", err)
	}
	if _, _, err := s.DataKey("t00000000000000ee", false); !errors.Is(err, domain.ErrNoKey) {
		t.Errorf("the torn record's key: %v", err)
	}
	if _, _, err := s.DataKey("t00000000000000ff", true); err != nil {
		t.Fatal(err)
	}
	keys, _, _ := WrappedKeys(dir)
	delete(keys, "") // the pool's, being filled
	if len(keys) != 2 {
		t.Errorf("after a new key: %d talents' keys", len(keys))
	}
}

func TestRotateWrapsEveryKeyAgain(t *testing.T) {
	_, oldM := masterKey(t)
	_, newM := masterKey(t)
	dir := t.TempDir()
	s, err := Open(dir, oldM)
	if err != nil {
		t.Fatal(err)
	}
	_, k1, _ := s.DataKey("t0000000000000001", true)
	if _, _, err := s.DataKey("t0000000000000002", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy("t0000000000000002"); err != nil {
		t.Fatal(err)
	}
	before, _, _ := WrappedKeys(dir)
	s.Close()
	n, err := Rotate(dir, oldM, newM)
	if err != nil || n != 1 {
		t.Fatalf("rotate: %d %v", n, err)
	}
	if _, err := Open(dir, oldM); err == nil {
		t.Error("the old master key still opens the store")
	}
	s, err = Open(dir, newM)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, k, err := s.DataKey("t0000000000000001", false); err != nil || !bytes.Equal(k, k1) {
		t.Errorf("the data key changed or does not open: %v", err)
	}
	if _, _, err := s.DataKey("t0000000000000002", true); !errors.Is(err, domain.ErrKeyDestroyed) {
		t.Errorf("a tombstone was lost: %v", err)
	}
	if hits := grepDir(t, dir, before["t0000000000000001"][0]); len(hits) > 0 {
		t.Errorf("the key wrapped under the old master key is still in %v", hits)
	}
}

// TestInterruptedRotation: a rotation cut before its file was renamed in
// is undone at the next open; one cut after is completed.
func TestInterruptedRotation(t *testing.T) {
	_, oldM := masterKey(t)
	_, newM := masterKey(t)
	for _, renamed := range []bool{false, true} {
		dir := t.TempDir()
		s, err := Open(dir, oldM)
		if err != nil {
			t.Fatal(err)
		}
		_, k1, _ := s.DataKey("t0000000000000001", true)
		s.Close()
		// Rotate into a copy, then lay its files out as a crash would.
		cp := t.TempDir()
		for _, f := range []string{checkFile, logFile} {
			b, _ := os.ReadFile(filepath.Join(dir, f))
			os.WriteFile(filepath.Join(cp, f), b, 0o600)
		}
		if _, err := Rotate(cp, oldM, newM); err != nil {
			t.Fatal(err)
		}
		newCheck, _ := os.ReadFile(filepath.Join(cp, checkFile))
		newLog, _ := os.ReadFile(filepath.Join(cp, logFile))
		os.WriteFile(filepath.Join(dir, checkFile+rotating), newCheck, 0o600)
		want := oldM
		if renamed {
			os.WriteFile(filepath.Join(dir, logFile), newLog, 0o600)
			want = newM
		} else {
			os.WriteFile(filepath.Join(dir, logFile+rotating), newLog, 0o600)
		}
		s, err = Open(dir, want)
		if err != nil {
			t.Fatalf("renamed %v: %v", renamed, err)
		}
		if _, k, err := s.DataKey("t0000000000000001", false); err != nil || !bytes.Equal(k, k1) {
			t.Errorf("renamed %v: the key: %v", renamed, err)
		}
		s.Close()
	}
}
