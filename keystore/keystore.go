// Package keystore keeps the talents' data keys, apart from the log: one
// file per talent in a directory of its own, each key wrapped (AES-256-GCM)
// by a master key that is never stored there. Destroying a talent's key
// (erasure) removes its file and leaves a tombstone, so the key is never
// made again; the log, which holds only what the keys sealed, is not
// touched.
//
// Layout under the directory:
//
//	master.check        the master key's check value (a sealed constant)
//	keys/<xx>/<id>      a talent's wrapped data key (xx: two characters of the ID)
//	destroyed/<xx>/<id> an empty tombstone: the talent's key was destroyed
//
// Every file is written to a temporary name, synced, renamed and its
// directory synced: a key DataKey returned survives a crash.
package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"talentledger/domain"
)

// MasterKeySize is the master key's length in bytes (AES-256).
const MasterKeySize = 32

const (
	checkFile    = "master.check"
	keysDir      = "keys"
	destroyedDir = "destroyed"
	wrapVersion  = 1
)

var checkPlain = []byte("talentledger keystore master key check v1")

// reTalent is what a talent ID may be to name a file.
var reTalent = regexp.MustCompile(`^[a-z0-9_]{3,64}$`)

// Store is a key store directory opened with its master key. It is safe
// for concurrent use; one process opens a directory at a time.
type Store struct {
	dir    string
	master cipher.AEAD
	// mu serializes creating and destroying a talent's key against each
	// other, so a key destroyed is never made again by a racing create.
	mu sync.Mutex
}

var _ domain.KeyStore = (*Store)(nil)

// ReadMasterKey reads a master key file: 64 hexadecimal digits (spaces and
// a final newline ignored). A file others may read is refused.
func ReadMasterKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != MasterKeySize {
		return nil, fmt.Errorf("master key %s must hold %d hexadecimal digits", path, 2*MasterKeySize)
	}
	return k, nil
}

// WriteMasterKey makes a new random master key in a new file, readable by
// its owner only.
func WriteMasterKey(path string) error {
	k := make([]byte, MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Open opens (creating when absent) the key store in dir with the master
// key. A directory made with another master key is refused.
func Open(dir string, master []byte) (*Store, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("keystore: master key must be %d bytes", MasterKeySize)
	}
	b, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, master: a}
	for _, d := range []string{dir, filepath.Join(dir, keysDir), filepath.Join(dir, destroyedDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	check, err := os.ReadFile(filepath.Join(dir, checkFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sealed, err := s.wrap("check", checkPlain)
		if err != nil {
			return nil, err
		}
		if err := writeFileSync(filepath.Join(dir, checkFile), sealed); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		plain, err := s.unwrap("check", check)
		if err != nil || !bytes.Equal(plain, checkPlain) {
			return nil, fmt.Errorf("keystore %s was made with another master key", dir)
		}
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) wrap(name string, plain []byte) ([]byte, error) {
	out := make([]byte, 1+s.master.NonceSize(), 1+s.master.NonceSize()+len(plain)+s.master.Overhead())
	out[0] = wrapVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return s.master.Seal(out, out[1:], plain, []byte("talentledger/keystore\x00"+name)), nil
}

func (s *Store) unwrap(name string, b []byte) ([]byte, error) {
	n := s.master.NonceSize()
	if len(b) < 1+n || b[0] != wrapVersion {
		return nil, errors.New("keystore: damaged key file")
	}
	return s.master.Open(nil, b[1:1+n], b[1+n:], []byte("talentledger/keystore\x00"+name))
}

func shard(id string) string { return id[len(id)-2:] }

func (s *Store) keyPath(id string) string {
	return filepath.Join(s.dir, keysDir, shard(id), id)
}

func (s *Store) tombPath(id string) string {
	return filepath.Join(s.dir, destroyedDir, shard(id), id)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// DataKey implements domain.KeyStore.
func (s *Store) DataKey(talentID string, create bool) ([]byte, error) {
	if !reTalent.MatchString(talentID) {
		return nil, fmt.Errorf("keystore: bad talent ID %q", talentID)
	}
	if k, err := s.read(talentID); err == nil || !errors.Is(err, domain.ErrNoKey) || !create {
		return k, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, err := s.read(talentID); !errors.Is(err, domain.ErrNoKey) {
		return k, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	w, err := s.wrap(talentID, k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(s.keyPath(talentID)), 0o700); err != nil {
		return nil, err
	}
	if err := writeFileSync(s.keyPath(talentID), w); err != nil {
		return nil, err
	}
	return k, nil
}

func (s *Store) read(id string) ([]byte, error) {
	b, err := os.ReadFile(s.keyPath(id))
	if err == nil {
		return s.unwrap(id, b)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dead, err := exists(s.tombPath(id))
	switch {
	case err != nil:
		return nil, err
	case dead:
		return nil, domain.ErrKeyDestroyed
	}
	return nil, domain.ErrNoKey
}

// Destroy implements domain.KeyStore: the tombstone is written first, then
// the key file is overwritten with zeros, synced and removed.
func (s *Store) Destroy(talentID string) error {
	if !reTalent.MatchString(talentID) {
		return fmt.Errorf("keystore: bad talent ID %q", talentID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.tombPath(talentID)), 0o700); err != nil {
		return err
	}
	if ok, err := exists(s.tombPath(talentID)); err != nil {
		return err
	} else if !ok {
		if err := writeFileSync(s.tombPath(talentID), nil); err != nil {
			return err
		}
	}
	return shred(s.keyPath(talentID))
}

// Destroyed lists the talents whose keys were destroyed.
func (s *Store) Destroyed() ([]string, error) {
	return list(filepath.Join(s.dir, destroyedDir))
}

// Keys lists the talents that have a key.
func (s *Store) Keys() ([]string, error) {
	return list(filepath.Join(s.dir, keysDir))
}

func list(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".tmp") {
			out = append(out, d.Name())
		}
		return nil
	})
	return out, err
}

// shred overwrites a file with zeros, syncs it and removes it, then syncs
// its directory. A file already gone is fine.
func shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt(make([]byte, fi.Size()), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func writeFileSync(path string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-"+hex.EncodeToString(randBytes(4)))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Backup copies the key store into dst, a new directory: its master key
// check, its keys and its tombstones, each file synced.
func (s *Store) Backup(dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("keystore backup: %s already exists", dst)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if strings.HasPrefix(d.Name(), ".tmp") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return writeFileSync(to, b)
	})
}

// PurgeBackup removes from the key store backup in dir every key this
// store has destroyed, and records their tombstones there, so that
// restoring the backup cannot bring an erased talent back. It returns how
// many keys it removed. The backup must have been made with the same
// master key.
func (s *Store) PurgeBackup(dir string) (int, error) {
	check, err := os.ReadFile(filepath.Join(dir, checkFile))
	if err != nil {
		return 0, fmt.Errorf("%s is not a key store backup: %w", dir, err)
	}
	if plain, err := s.unwrap("check", check); err != nil || !bytes.Equal(plain, checkPlain) {
		return 0, fmt.Errorf("%s was made with another master key", dir)
	}
	dead, err := s.Destroyed()
	if err != nil {
		return 0, err
	}
	backup := &Store{dir: dir, master: s.master}
	n := 0
	for _, id := range dead {
		had, err := exists(backup.keyPath(id))
		if err != nil {
			return n, err
		}
		if err := backup.Destroy(id); err != nil {
			return n, err
		}
		if had {
			n++
		}
	}
	return n, nil
}
