package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore/memstore"
)

// fillPool fills the pool and waits until it is synced.
func fillPool(s *Store) {
	s.mu.Lock()
	s.kickLocked()
	s.mu.Unlock()
	s.refill.Wait()
}

func TestKeyVersions(t *testing.T) {
	_, master := masterKey(t)
	_, newMaster := masterKey(t)
	dir := t.TempDir()
	s, err := Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "t00000000000000a1", "t00000000000000b1"
	k1, key1, err := s.BindKey(a, false)
	if err != nil {
		t.Fatal(err)
	}
	if again, _, err := s.BindKey(a, false); err != nil || again != k1 {
		t.Fatalf("a registration tried again got another key: %s %v", again, err)
	}
	k2, key2, err := s.BindKey(a, true)
	if err != nil || k2 == k1 || bytes.Equal(key1, key2) {
		t.Fatalf("rotation: %s %v", k2, err)
	}
	if id, k, err := s.DataKey(a, false); err != nil || id != k2 || !bytes.Equal(k, key2) {
		t.Fatalf("the newest key is %s (%v), want %s", id, err, k2)
	}
	if _, err := s.Key(b, k1); !errors.Is(err, domain.ErrNoKey) {
		t.Errorf("another talent's key: %v", err)
	}
	s.Close()
	// Both versions, in order, under the new master key too.
	if _, err := Rotate(dir, master, newMaster); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, newMaster)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Versions(a); len(got) != 2 || got[0] != k1 || got[1] != k2 {
		t.Fatalf("versions after reopening: %v", got)
	}
	for id, want := range map[string][]byte{k1: key1, k2: key2} {
		if k, err := s.Key(a, id); err != nil || !bytes.Equal(k, want) {
			t.Errorf("key %s after reopening: %v", id, err)
		}
	}
	wrapped, _, _ := WrappedKeys(dir)
	if len(wrapped[a]) != 2 {
		t.Fatalf("WrappedKeys lists %d versions", len(wrapped[a]))
	}
	if err := s.Destroy(a); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{k1, k2} {
		if _, err := s.Key(a, id); !errors.Is(err, domain.ErrKeyDestroyed) {
			t.Errorf("key %s after destruction: %v", id, err)
		}
	}
	for _, w := range wrapped[a] {
		if hits := grepDir(t, dir, w); len(hits) > 0 {
			t.Errorf("a destroyed version is still in %v", hits)
		}
	}
	if _, _, err := s.BindKey(a, true); !errors.Is(err, domain.ErrKeyDestroyed) {
		t.Errorf("a key made after destruction: %v", err)
	}
}

// TestPoolCloseDestroysUnusedKeys: the keys never handed out are
// destroyed at Close; none is left to be handed out by a later process.
func TestPoolCloseDestroysUnusedKeys(t *testing.T) {
	_, master := masterKey(t)
	dir := t.TempDir()
	s, err := Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	fillPool(s)
	pooled, _, _ := WrappedKeys(dir)
	if len(pooled[""]) != PoolSize {
		t.Fatalf("%d keys pooled, want %d", len(pooled[""]), PoolSize)
	}
	if _, _, err := s.BindKey("t00000000000000c1", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	left, _, _ := WrappedKeys(dir)
	if len(left[""]) != 0 || len(left["t00000000000000c1"]) != 1 {
		t.Fatalf("after Close: %d unbound keys, %d bound", len(left[""]), len(left["t00000000000000c1"]))
	}
	hits := 0
	for _, w := range pooled[""] {
		hits += len(grepDir(t, dir, w))
	}
	if hits != 1 { // the key bound to the talent
		t.Errorf("%d pooled keys are still in the file, want 1", hits)
	}
}

// TestCrashLosingABinding: a registration is acknowledged (its event,
// naming the key, is in the log) and a crash loses the key store's
// binding, which is not synced on the command's path. The key, synced
// when it was pooled, is still there: it is an orphan no other talent is
// ever given, and the log binds it again.
func TestCrashLosingABinding(t *testing.T) {
	_, master := masterKey(t)
	dir := t.TempDir()
	ks, err := Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	fillPool(ks)
	ks.mu.Lock()
	end := ks.end
	ks.mu.Unlock()
	ctx := context.Background()
	log := memstore.New()
	svc := domain.NewService(log, domain.WithCipher(domain.NewCipher(ks)))
	clerk := domain.CommandMeta{Actor: domain.Actor{Principal: "wang.li", Role: domain.RoleClerk}}
	reg, err := svc.RegisterTalent(ctx, domain.RegisterTalent{Meta: clerk, Name: "欧阳震华", Tier: "B", Employer: "平湖精密机械", IDNumber: "330482199001011234"})
	if err != nil {
		t.Fatal(err)
	}
	keyID, _, _ := ks.DataKey(reg.ID, false)
	// The crash: the store's file as it was before the binding.
	crashed := t.TempDir()
	check, _ := os.ReadFile(filepath.Join(dir, checkFile))
	keys, _ := os.ReadFile(filepath.Join(dir, logFile))
	os.WriteFile(filepath.Join(crashed, checkFile), check, 0o600)
	os.WriteFile(filepath.Join(crashed, logFile), keys[:end], 0o600)

	ks2, err := Open(crashed, master)
	if err != nil {
		t.Fatal(err)
	}
	defer ks2.Close()
	c2 := domain.NewCipher(ks2)
	if orphans := ks2.Orphans(); len(orphans) != PoolSize {
		t.Fatalf("%d orphans, want the whole pool (%d)", len(orphans), PoolSize)
	}
	// The orphans are never handed out again.
	for i := range PoolSize + 4 {
		id, _, err := ks2.BindKey(fmt.Sprintf("t%016x", 0xf000+i), false)
		if err != nil {
			t.Fatal(err)
		}
		if id == keyID {
			t.Fatal("the registration's key was given to another talent")
		}
	}
	n, err := domain.RecoverKeyBindings(ctx, log, c2, false)
	if err != nil || n != 1 {
		t.Fatalf("recovered %d bindings: %v", n, err)
	}
	if orphans := ks2.Orphans(); len(orphans) != PoolSize-1 {
		t.Fatalf("%d orphans kept without sole, want %d", len(orphans), PoolSize-1)
	}
	if id, _, err := ks2.DataKey(reg.ID, false); err != nil || id != keyID {
		t.Fatalf("after recovery the talent's key is %s (%v), want %s", id, err, keyID)
	}
	var name string
	it := log.ReadStream(ctx, "talent-"+reg.ID, 0)
	for it.Next() {
		if e := it.Event(); e.Type == domain.TypeTalentRegistered {
			var r domain.TalentRegistered
			if err := json.Unmarshal(e.Data, &r); err != nil {
				t.Fatal(err)
			}
			name = r.Name
		}
	}
	it.Close()
	if got, _, hidden := c2.Open(name); got != "欧阳震华" || hidden {
		t.Errorf("after recovery the name reads %q", got)
	}
	if err := ks2.BindOrphan("t00000000000000d9", keyID); err == nil {
		t.Error("a bound key was bound to a second talent")
	}
	// Again, as the log's sole writer: nothing left to bind, and the
	// orphans the log names nowhere are destroyed.
	if n, err := domain.RecoverKeyBindings(ctx, log, c2, true); err != nil || n != 0 {
		t.Errorf("a second recovery bound %d: %v", n, err)
	}
	if orphans := ks2.Orphans(); len(orphans) != 0 {
		t.Errorf("%d orphans left", len(orphans))
	}
	if _, err := ks2.Key(reg.ID, keyID); err != nil {
		t.Errorf("the talent's key went with the orphans: %v", err)
	}
}

// TestPurgeBackupRemovesKeysPooledAtTheBackup: a backup taken while keys
// wait in the pool holds them unbound; a key later given to a talent who
// is erased is removed from the backup by its ID.
func TestPurgeBackupRemovesKeysPooledAtTheBackup(t *testing.T) {
	_, master := masterKey(t)
	dir := t.TempDir()
	s, err := Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillPool(s)
	backup := filepath.Join(t.TempDir(), "backup")
	if err := BackupDir(dir, backup, master); err != nil {
		t.Fatal(err)
	}
	const c = "t00000000000000e1"
	if _, _, err := s.BindKey(c, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	wrapped, _, _ := WrappedKeys(dir)
	w := wrapped[c][0]
	if hits := grepDir(t, backup, w); len(hits) != 1 {
		t.Fatalf("the backup does not hold the pooled key: %v", hits)
	}
	if err := s.Destroy(c); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeBackup(backup)
	if err != nil || n != 1 {
		t.Fatalf("purge removed %d: %v", n, err)
	}
	if hits := grepDir(t, backup, w); len(hits) > 0 {
		t.Errorf("the purged backup still holds the key in %v", hits)
	}
}

// TestDestroyNamedOrphan: an erasure destroys the keys the talent's
// stream names, among them one whose binding a crash lost.
func TestDestroyNamedOrphan(t *testing.T) {
	_, master := masterKey(t)
	dir := t.TempDir()
	s, err := Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillPool(s)
	s.mu.Lock()
	end := s.end
	s.mu.Unlock()
	const a = "t00000000000000f1"
	id, _, err := s.BindKey(a, false)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	wrapped := bytes.Clone(s.keys[id].wrapped)
	s.mu.Unlock()
	crashed := t.TempDir()
	check, _ := os.ReadFile(filepath.Join(dir, checkFile))
	keys, _ := os.ReadFile(filepath.Join(dir, logFile))
	os.WriteFile(filepath.Join(crashed, checkFile), check, 0o600)
	os.WriteFile(filepath.Join(crashed, logFile), keys[:end], 0o600)
	c, err := Open(crashed, master)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Destroy(a, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Key(a, id); !errors.Is(err, domain.ErrKeyDestroyed) {
		t.Errorf("the named orphan after the erasure: %v", err)
	}
	if hits := grepDir(t, crashed, wrapped); len(hits) > 0 {
		t.Errorf("the named orphan is still in %v", hits)
	}
	for _, o := range c.Orphans() {
		if o == id {
			t.Error("the destroyed key is still an orphan")
		}
	}
}

// TestRotatedKeyBindingIsSynced: a rotated key is the talent's newest as
// soon as it is taken, so other commands may seal under it before the
// rotation's event is durable; its binding is on disk before it is used.
func TestRotatedKeyBindingIsSynced(t *testing.T) {
	_, master := masterKey(t)
	ks, err := Open(t.TempDir(), master)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	fillPool(ks)
	c := domain.NewCipher(ks)
	if _, err := c.NewKey("t0000000000000001", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewKey("t0000000000000001", true); err != nil {
		t.Fatal(err)
	}
	ks.smu.Lock()
	synced, written := ks.synced, ks.written
	ks.smu.Unlock()
	if synced < written {
		t.Fatalf("the rotation's binding is not synced: %d of %d records", synced, written)
	}
}
