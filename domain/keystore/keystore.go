// Package keystore keeps the talents' data keys, apart from the log: one
// append-only file in a directory of its own, each key wrapped (AES-256-GCM)
// by a master key that is never stored there. Destroying a talent's key
// (erasure) overwrites its record in place with zeros and appends a
// tombstone, so the key is never made again; the log, which holds only
// what the keys sealed, is not touched.
//
// Layout under the directory:
//
//	master.check  the master key's check value (a sealed constant)
//	keys.log      records, each: kind (1 byte: 1 key, 2 tombstone),
//	              ID length (1 byte), ID, wrapped length (2 bytes, big
//	              endian), wrapped key (version, nonce, ciphertext)
//
// Concurrent creations share one sync of the file (group commit): a key
// DataKey returned is on disk. A record torn by a crash (never
// acknowledged) is cut off at the next open.
package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	checkFile   = "master.check"
	logFile     = "keys.log"
	wrapVersion = 1

	recordKey  = 1
	recordTomb = 2
)

var checkPlain = []byte("talentledger keystore master key check v1")

// reTalent is what a talent ID may be.
var reTalent = regexp.MustCompile(`^[a-z0-9_]{3,64}$`)

// Store is a key store directory opened with its master key. It is safe
// for concurrent use; one process opens a directory at a time.
type Store struct {
	dir    string
	master cipher.AEAD

	// mu guards the file's end, the index and the tombstones.
	mu   sync.Mutex
	f    *os.File
	end  int64
	keys map[string]keyRecord
	dead map[string]bool

	// Group commit: written counts appends, synced those on disk.
	smu             sync.Mutex
	cond            *sync.Cond
	written, synced uint64
	syncing         bool
	syncErr         error
}

// keyRecord is where a talent's wrapped key lies in the file.
type keyRecord struct {
	off     int64 // of the wrapped key
	wrapped []byte
	seq     uint64 // its append, for syncThrough; 0 when loaded
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

func newAEAD(master []byte) (cipher.AEAD, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("keystore: master key must be %d bytes", MasterKeySize)
	}
	b, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Open opens (creating when absent) the key store in dir with the master
// key. A directory made with another master key is refused.
func Open(dir string, master []byte) (*Store, error) {
	a, err := newAEAD(master)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, master: a, keys: map[string]keyRecord{}, dead: map[string]bool{}}
	s.cond = sync.NewCond(&s.smu)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := finishRotation(dir); err != nil {
		return nil, err
	}
	if err := s.checkMaster(true); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, logFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	s.f = f
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, syncDir(dir)
}

// checkMaster checks the master key against the directory's check value,
// writing one when create is set and there is none.
func (s *Store) checkMaster(create bool) error {
	path := filepath.Join(s.dir, checkFile)
	check, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		sealed, err := s.wrap("check", checkPlain)
		if err != nil {
			return err
		}
		return writeFileSync(path, sealed)
	case err != nil:
		return fmt.Errorf("%s is not a key store: %w", s.dir, err)
	}
	plain, err := s.unwrap("check", check)
	if err != nil || !bytes.Equal(plain, checkPlain) {
		return fmt.Errorf("keystore %s was made with another master key", s.dir)
	}
	return nil
}

// load reads the file into the index, cutting off a torn last record.
func (s *Store) load() error {
	b, err := io.ReadAll(s.f)
	if err != nil {
		return err
	}
	off := 0
	for off < len(b) {
		kind, id, wrapped, n, ok := parseRecord(b[off:])
		if !ok {
			break
		}
		switch kind {
		case recordKey:
			s.keys[id] = keyRecord{off: int64(off + n - len(wrapped)), wrapped: wrapped}
		case recordTomb:
			delete(s.keys, id)
			s.dead[id] = true
		}
		off += n
	}
	if off < len(b) {
		// Never acknowledged: its append did not finish syncing.
		if err := s.f.Truncate(int64(off)); err != nil {
			return err
		}
		if err := s.f.Sync(); err != nil {
			return err
		}
	}
	s.end = int64(off)
	return nil
}

func parseRecord(b []byte) (kind byte, id string, wrapped []byte, n int, ok bool) {
	if len(b) < 2 {
		return 0, "", nil, 0, false
	}
	kind, idLen := b[0], int(b[1])
	if kind != recordKey && kind != recordTomb || len(b) < 2+idLen+2 {
		return 0, "", nil, 0, false
	}
	id = string(b[2 : 2+idLen])
	wl := int(binary.BigEndian.Uint16(b[2+idLen:]))
	n = 2 + idLen + 2 + wl
	if len(b) < n || !reTalent.MatchString(id) {
		return 0, "", nil, 0, false
	}
	return kind, id, bytes.Clone(b[n-wl : n]), n, true
}

func record(kind byte, id string, wrapped []byte) []byte {
	out := []byte{kind, byte(len(id))}
	out = append(out, id...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(wrapped)))
	return append(out, wrapped...)
}

// Close closes the store's file.
func (s *Store) Close() error { return s.f.Close() }

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
		return nil, errors.New("keystore: damaged key record")
	}
	return s.master.Open(nil, b[1:1+n], b[1+n:], []byte("talentledger/keystore\x00"+name))
}

// DataKey implements domain.KeyStore.
func (s *Store) DataKey(talentID string, create bool) ([]byte, error) {
	if !reTalent.MatchString(talentID) {
		return nil, fmt.Errorf("keystore: bad talent ID %q", talentID)
	}
	s.mu.Lock()
	rec, ok := s.keys[talentID]
	dead := s.dead[talentID]
	if ok || dead || !create {
		s.mu.Unlock()
		switch {
		case dead:
			return nil, domain.ErrKeyDestroyed
		case !ok:
			return nil, domain.ErrNoKey
		}
		// Made by a caller whose sync may still be under way.
		if err := s.syncThrough(rec.seq); err != nil {
			return nil, err
		}
		return s.unwrap(talentID, rec.wrapped)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	w, err := s.wrap(talentID, k)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	seq, err := s.appendLocked(record(recordKey, talentID, w))
	if err == nil {
		s.keys[talentID] = keyRecord{off: s.end - int64(len(w)), wrapped: w, seq: seq}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := s.syncThrough(seq); err != nil {
		return nil, err
	}
	return k, nil
}

// appendLocked writes rec at the file's end; s.mu is held. It returns the
// append's sequence number for syncThrough.
func (s *Store) appendLocked(rec []byte) (uint64, error) {
	if _, err := s.f.WriteAt(rec, s.end); err != nil {
		return 0, err
	}
	s.end += int64(len(rec))
	s.smu.Lock()
	s.written++
	seq := s.written
	s.smu.Unlock()
	return seq, nil
}

// syncThrough returns once the append seq is on disk, syncing the file
// itself unless a sync that covers it is under way (group commit).
func (s *Store) syncThrough(seq uint64) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	for s.synced < seq {
		if s.syncErr != nil {
			return s.syncErr
		}
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.syncing = true
		target := s.written
		s.smu.Unlock()
		err := s.f.Sync()
		s.smu.Lock()
		s.syncing = false
		if err != nil {
			// A failed sync leaves the file's state unknown: no later
			// key is acknowledged by this process.
			s.syncErr = err
		} else {
			s.synced = max(s.synced, target)
		}
		s.cond.Broadcast()
	}
	return nil
}

// Destroy implements domain.KeyStore: the key's bytes are overwritten with
// zeros where they lie, a tombstone is appended, and both are synced.
func (s *Store) Destroy(talentID string) error {
	if !reTalent.MatchString(talentID) {
		return fmt.Errorf("keystore: bad talent ID %q", talentID)
	}
	s.mu.Lock()
	if s.dead[talentID] {
		s.mu.Unlock()
		return nil
	}
	if rec, ok := s.keys[talentID]; ok {
		if _, err := s.f.WriteAt(make([]byte, len(rec.wrapped)), rec.off); err != nil {
			s.mu.Unlock()
			return err
		}
		delete(s.keys, talentID)
	}
	seq, err := s.appendLocked(record(recordTomb, talentID, nil))
	if err == nil {
		s.dead[talentID] = true
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.syncThrough(seq)
}

// Destroyed lists the talents whose keys were destroyed.
func (s *Store) Destroyed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.dead))
	for id := range s.dead {
		out = append(out, id)
	}
	return out
}

// Keys lists the talents that have a key.
func (s *Store) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.keys))
	for id := range s.keys {
		out = append(out, id)
	}
	return out
}

// WrappedKeys reads the key store in dir without its master key (it may
// be in use): the talents with a key and their wrapped keys, and the
// talents whose keys were destroyed. It serves audits of a store or a
// backup: what it lists is all that could ever open a talent's data.
func WrappedKeys(dir string) (keys map[string][]byte, destroyed map[string]bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, logFile))
	if err != nil {
		return nil, nil, err
	}
	keys, destroyed = map[string][]byte{}, map[string]bool{}
	for off := 0; off < len(b); {
		kind, id, wrapped, n, ok := parseRecord(b[off:])
		if !ok {
			break
		}
		if kind == recordKey {
			keys[id] = wrapped
		} else {
			delete(keys, id)
			destroyed[id] = true
		}
		off += n
	}
	return keys, destroyed, nil
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp-" + hex.EncodeToString(randBytes(4))
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
// check and its file of keys, synced.
func (s *Store) Backup(dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("keystore backup: %s already exists", dst)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	check, err := os.ReadFile(filepath.Join(s.dir, checkFile))
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dst, checkFile), check); err != nil {
		return err
	}
	s.mu.Lock()
	b := make([]byte, s.end)
	_, err = s.f.ReadAt(b, 0)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(dst, logFile), b)
}

// PurgeBackup removes from the key store backup in dir every key this
// store has destroyed (overwritten in place, a tombstone appended), so
// that restoring the backup cannot bring an erased talent back. It returns
// how many keys it removed. It needs no master key: a backup made under
// an earlier one is purged alike.
func (s *Store) PurgeBackup(dir string) (int, error) {
	b := &Store{dir: dir, keys: map[string]keyRecord{}, dead: map[string]bool{}}
	b.cond = sync.NewCond(&b.smu)
	if _, err := os.Stat(filepath.Join(dir, checkFile)); err != nil {
		return 0, fmt.Errorf("%s is not a key store backup: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, logFile), os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("%s is not a key store backup: %w", dir, err)
	}
	defer f.Close()
	b.f = f
	if err := b.load(); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range s.Destroyed() {
		if b.dead[id] {
			continue
		}
		if _, had := b.keys[id]; had {
			n++
		}
		if err := b.Destroy(id); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Rotate wraps every key of the store in dir again under a new master
// key, and the check value with it; the store must not be open elsewhere
// (the server stopped). The new file is written beside the old one,
// synced, and renamed over it; the old file's blocks, which a master key
// compromised could still open, are overwritten first. It returns how many
// keys it wrapped again. Tombstones are kept.
func Rotate(dir string, oldMaster, newMaster []byte) (int, error) {
	s, err := Open(dir, oldMaster)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	na, err := newAEAD(newMaster)
	if err != nil {
		return 0, err
	}
	next := &Store{dir: dir, master: na}
	var out []byte
	n := 0
	s.mu.Lock()
	for id, rec := range s.keys {
		k, err := s.unwrap(id, rec.wrapped)
		if err != nil {
			s.mu.Unlock()
			return 0, fmt.Errorf("keystore: the key of %s does not open: %w", id, err)
		}
		w, err := next.wrap(id, k)
		if err != nil {
			s.mu.Unlock()
			return 0, err
		}
		out = append(out, record(recordKey, id, w)...)
		n++
	}
	for id := range s.dead {
		out = append(out, record(recordTomb, id, nil)...)
	}
	end := s.end
	s.mu.Unlock()
	check, err := next.wrap("check", checkPlain)
	if err != nil {
		return 0, err
	}
	// The new check value and file are written aside first; the file is
	// renamed in, then the check value (finishRotation completes a
	// rotation a crash cut between the two). Only then are the old file's
	// blocks, still open here, overwritten.
	if err := writeFileSync(filepath.Join(dir, checkFile+rotating), check); err != nil {
		return 0, err
	}
	if err := writeFileSync(filepath.Join(dir, logFile+rotating), out); err != nil {
		return 0, err
	}
	if err := os.Rename(filepath.Join(dir, logFile+rotating), filepath.Join(dir, logFile)); err != nil {
		return 0, err
	}
	if err := finishRotation(dir); err != nil {
		return 0, err
	}
	if _, err := s.f.WriteAt(make([]byte, end), 0); err != nil {
		return 0, err
	}
	return n, s.f.Sync()
}

const rotating = ".rotating"

// finishRotation settles a rotation a crash interrupted: before the new
// file was renamed in, it is undone (the old file and check value are
// whole); after, it is completed.
func finishRotation(dir string) error {
	newCheck := filepath.Join(dir, checkFile+rotating)
	if _, err := os.Stat(newCheck); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, logFile+rotating)); err == nil {
		if err := os.Remove(filepath.Join(dir, logFile+rotating)); err != nil {
			return err
		}
		if err := os.Remove(newCheck); err != nil {
			return err
		}
		return syncDir(dir)
	}
	if err := os.Rename(newCheck, filepath.Join(dir, checkFile)); err != nil {
		return err
	}
	return syncDir(dir)
}
