// Package keystore keeps the talents' data keys, apart from the log: one
// append-only file in a directory of its own, each key wrapped (AES-256-GCM)
// by a master key that is never stored there. Destroying a talent's keys
// (erasure) overwrites their records in place with zeros and appends a
// tombstone, so no key is ever made for the talent again; the log, which
// holds only what the keys sealed, is not touched.
//
// A talent may have several keys, its versions, oldest first: the one made
// at its registration and one more at each rotation. Each key has an ID
// of its own, which the sealed values and the log's key events name.
//
// Keys are made ahead, in a pool: a background batch of keys is written
// and synced at once, and a registration (or rotation) takes one from it,
// binding it to the talent by a record that is not synced on the
// command's path. The binding is also in the log: the TalentKeyCreated or
// TalentKeyRotated event names the key, and is durable before the command
// is acknowledged. A crash can thus lose a binding, never a key: the key
// was synced before it was handed out. A pooled key made by an earlier
// process and bound to no talent (an orphan) is never handed out again,
// so no key is ever bound to two talents; BindOrphan binds it from the
// log. Pooled keys never handed out are destroyed at Close.
//
// Layout under the directory:
//
//	master.check  the master key's check value (a sealed constant)
//	keys.log      records, each: kind (1 byte), ID length (1 byte), ID,
//	              payload length (2 bytes, big endian), payload
//
// Kinds: 1 a talent's first key under the talent's own ID (stores made
// before key versions; payload: the wrapped key), 2 a talent's tombstone
// (no payload), 3 a pooled key (ID: the key's; payload: the wrapped key),
// 4 a binding (ID: the talent's; payload: the key's ID), 5 a pooled key
// destroyed (ID: the key's). A wrapped key is version, nonce, ciphertext.
//
// A key returned by DataKey or Key is on disk with its binding. A record
// torn by a crash (never acknowledged) is cut off at the next open.
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
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"talentledger/domain"
)

// MasterKeySize is the master key's length in bytes (AES-256).
const MasterKeySize = 32

const (
	checkFile   = "master.check"
	logFile     = "keys.log"
	wrapVersion = 1

	recordKey    = 1
	recordTomb   = 2
	recordPooled = 3
	recordBind   = 4
	recordRetire = 5

	// PoolSize is how many keys the pool holds when full; it is refilled,
	// in one batch and one sync, when it falls to half.
	PoolSize = 256
)

var checkPlain = []byte("talentledger keystore master key check v1")

// reTalent is what a talent ID or a key ID may be: [a-z0-9_]{3,64}.
var reTalent idPattern

type idPattern struct{}

// MatchString reports whether s is a talent or key ID, without the cost
// of a regular expression on the command's path.
func (idPattern) MatchString(s string) bool {
	if len(s) < 3 || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Store is a key store directory opened with its master key. It is safe
// for concurrent use; one process opens a directory at a time.
type Store struct {
	dir    string
	master cipher.AEAD

	// mu guards the file's end, the indexes, the tombstones and the pool.
	mu       sync.Mutex
	f        *os.File
	end      int64
	keys     map[string]*keyRecord // by key ID
	versions map[string][]string   // talent → its key IDs, oldest first
	dead     map[string]bool       // talents whose keys were destroyed
	deadKeys map[string]string     // keys destroyed → the talent they were bound to, or ""
	free     []string              // pooled keys this process made, synced, not handed out
	// pend holds the records appended but not yet written, which lie at
	// end-len(pend): a binding costs no system call on the command's
	// path; the next sync writes them first.
	pend     []byte
	refill   sync.WaitGroup // the background refills and flushes
	filling  bool
	flushing bool
	closed   bool

	// Group commit: written counts appends, synced those on disk.
	smu             sync.Mutex
	cond            *sync.Cond
	written, synced uint64
	syncing         bool
	syncErr         error
}

// keyRecord is a key: where its wrapped bytes lie in the file, under
// which name they were wrapped, and which talent it is bound to.
type keyRecord struct {
	off     int64 // of the wrapped key
	wrapped []byte
	name    string // the wrapping's additional data: the talent's ID (kind 1) or the key's
	owner   string // the talent bound to; "" for none (in the pool, or an orphan)
	mine    bool   // made by this process: pooled (or being pooled), never an orphan
	seq     uint64 // the append of its binding, for syncThrough; 0 when loaded
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
	s := newStore(dir)
	s.master = a
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

// OpenReference reads the key store in dir, checked against the master
// key, without writing to it: a store another process (a server, a key
// service) may be writing to, taken as the reference of PurgeBackup. It
// holds what was on disk when it was read; only its lists are of use.
func OpenReference(dir string, master []byte) (*Store, error) {
	a, err := newAEAD(master)
	if err != nil {
		return nil, err
	}
	s := newStore(dir)
	s.master = a
	if err := s.checkMaster(false); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, logFile))
	if err != nil {
		return nil, err
	}
	s.fold(b)
	s.closed = true
	return s, nil
}

func newStore(dir string) *Store {
	s := &Store{dir: dir, keys: map[string]*keyRecord{}, versions: map[string][]string{},
		dead: map[string]bool{}, deadKeys: map[string]string{}}
	s.cond = sync.NewCond(&s.smu)
	return s
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

// load reads the file into the indexes, cutting off a torn last record.
func (s *Store) load() error {
	b, err := io.ReadAll(s.f)
	if err != nil {
		return err
	}
	off := s.fold(b)
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

// fold applies the whole records at the start of b and returns their
// length: a torn last record is left out.
func (s *Store) fold(b []byte) int {
	off := 0
	for off < len(b) {
		kind, id, payload, n, ok := parseRecord(b[off:])
		if !ok {
			break
		}
		s.applyRecord(kind, id, payload, int64(off+n-len(payload)))
		off += n
	}
	return off
}

// applyRecord folds one record, whose payload lies at off, into the
// indexes.
func (s *Store) applyRecord(kind byte, id string, payload []byte, off int64) {
	switch kind {
	case recordKey:
		if s.dead[id] || s.isDeadKey(id) {
			return
		}
		s.keys[id] = &keyRecord{off: off, wrapped: payload, name: id, owner: id}
		s.versions[id] = append(s.versions[id], id)
	case recordPooled:
		if s.isDeadKey(id) || s.keys[id] != nil {
			return
		}
		s.keys[id] = &keyRecord{off: off, wrapped: payload, name: id}
	case recordBind:
		k := s.keys[string(payload)]
		if k == nil || k.owner != "" || s.dead[id] {
			return
		}
		k.owner = id
		s.versions[id] = append(s.versions[id], string(payload))
	case recordRetire:
		if k := s.keys[id]; k != nil && k.owner != "" {
			s.versions[k.owner] = slices.DeleteFunc(s.versions[k.owner], func(v string) bool { return v == id })
		}
		delete(s.keys, id)
		s.deadKeys[id] = string(payload)
	case recordTomb:
		for _, k := range s.versions[id] {
			delete(s.keys, k)
			s.deadKeys[k] = id
		}
		delete(s.versions, id)
		s.dead[id] = true
	}
}

func parseRecord(b []byte) (kind byte, id string, payload []byte, n int, ok bool) {
	if len(b) < 2 {
		return 0, "", nil, 0, false
	}
	kind, idLen := b[0], int(b[1])
	if kind < recordKey || kind > recordRetire || len(b) < 2+idLen+2 {
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

func record(kind byte, id string, payload []byte) []byte {
	out := []byte{kind, byte(len(id))}
	out = append(out, id...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(payload)))
	return append(out, payload...)
}

// Close destroys the pooled keys never handed out (they sealed nothing)
// and closes the store's file.
func (s *Store) Close() error {
	if s.f == nil {
		// A reference, read only.
		return nil
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.refill.Wait()
	s.mu.Lock()
	var err error
	var seq uint64
	for _, id := range s.free {
		if err = s.retireLocked(id); err != nil {
			break
		}
	}
	s.free = nil
	seq = s.writtenSeq()
	s.mu.Unlock()
	if err == nil {
		err = s.syncThrough(seq)
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) writtenSeq() uint64 {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.written
}

// retireLocked overwrites an unbound or bound key's bytes with zeros and
// records that it is destroyed; s.mu is held.
func (s *Store) retireLocked(id string) error {
	k := s.keys[id]
	if k == nil {
		return nil
	}
	if err := s.flushLocked(); err != nil {
		return err
	}
	if _, err := s.f.WriteAt(make([]byte, len(k.wrapped)), k.off); err != nil {
		return err
	}
	if k.owner != id {
		// A pooled key (the record names the talent it was bound to);
		// a talent's first key under its own ID (kind 1) goes with the
		// talent's tombstone.
		if _, err := s.appendLocked(record(recordRetire, id, []byte(k.owner))); err != nil {
			return err
		}
	}
	if k.owner != "" {
		s.versions[k.owner] = slices.DeleteFunc(s.versions[k.owner], func(v string) bool { return v == id })
	}
	delete(s.keys, id)
	s.deadKeys[id] = k.owner
	return nil
}

func (s *Store) isDeadKey(id string) bool {
	_, ok := s.deadKeys[id]
	return ok
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
		return nil, errors.New("keystore: damaged key record")
	}
	return s.master.Open(nil, b[1:1+n], b[1+n:], []byte("talentledger/keystore\x00"+name))
}

// newKeyID returns a new key's ID: "k" and 24 random hexadecimal digits.
func newKeyID() string { return "k" + hex.EncodeToString(randBytes(12)) }

// makePooledLocked makes a key and appends its record; s.mu is held. It
// returns the key's ID and the append's sequence number.
func (s *Store) makePooledLocked() (string, uint64, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", 0, err
	}
	id := newKeyID()
	for s.keys[id] != nil || s.isDeadKey(id) {
		id = newKeyID()
	}
	w, err := s.wrap(id, k)
	if err != nil {
		return "", 0, err
	}
	seq, err := s.appendLocked(record(recordPooled, id, w))
	if err != nil {
		return "", 0, err
	}
	s.keys[id] = &keyRecord{off: s.end - int64(len(w)), wrapped: w, name: id, mine: true}
	return id, seq, nil
}

// fill makes a batch of pooled keys, syncs them once, and only then puts
// them in the pool. It runs in the background.
func (s *Store) fill() {
	defer s.refill.Done()
	s.mu.Lock()
	var ids []string
	var seq uint64
	for range PoolSize - len(s.free) {
		id, sq, err := s.makePooledLocked()
		if err != nil {
			break
		}
		ids, seq = append(ids, id), sq
	}
	s.mu.Unlock()
	err := s.syncThrough(seq)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.filling = false
	if err == nil {
		// Closing retires them with the rest of the pool.
		s.free = append(s.free, ids...)
	}
}

// kickLocked starts a refill when the pool is at half or below; s.mu is
// held.
func (s *Store) kickLocked() {
	if s.filling || s.closed || len(s.free) > PoolSize/2 {
		return
	}
	s.filling = true
	s.refill.Add(1)
	go s.fill()
}

// DataKey implements domain.KeyStore.
func (s *Store) DataKey(talentID string, create bool) (string, []byte, error) {
	if !reTalent.MatchString(talentID) {
		return "", nil, fmt.Errorf("keystore: bad talent ID %q", talentID)
	}
	s.mu.Lock()
	if !s.dead[talentID] && len(s.versions[talentID]) == 0 && create {
		// Made and bound here, synced below: the log may not name it.
		id, _, err := s.bindLocked(talentID)
		if err != nil {
			s.mu.Unlock()
			return "", nil, err
		}
		s.mu.Unlock()
		k, err := s.Key(talentID, id)
		return id, k, err
	}
	s.mu.Unlock()
	return s.current(talentID)
}

// current returns the talent's newest key, its binding on disk.
func (s *Store) current(talentID string) (string, []byte, error) {
	s.mu.Lock()
	if s.dead[talentID] {
		s.mu.Unlock()
		return "", nil, domain.ErrKeyDestroyed
	}
	v := s.versions[talentID]
	if len(v) == 0 {
		s.mu.Unlock()
		return "", nil, domain.ErrNoKey
	}
	id := v[len(v)-1]
	s.mu.Unlock()
	k, err := s.Key(talentID, id)
	return id, k, err
}

// bindLocked takes a key from the pool (or makes one when it is empty)
// and binds it to the talent as its newest version; s.mu is held. The
// binding is written, not synced: the caller syncs it or names the key in
// the log. It returns the append the key itself awaits: 0 for a pooled
// key (synced before it was pooled), the key's record for one made here.
func (s *Store) bindLocked(talentID string) (string, uint64, error) {
	var id string
	var made uint64
	if n := len(s.free); n > 0 {
		id, s.free = s.free[n-1], s.free[:n-1]
	} else {
		var err error
		if id, made, err = s.makePooledLocked(); err != nil {
			return "", 0, err
		}
	}
	seq, err := s.appendLocked(record(recordBind, talentID, []byte(id)))
	if err != nil {
		return "", 0, err
	}
	k := s.keys[id]
	k.owner, k.seq = talentID, seq
	s.versions[talentID] = append(s.versions[talentID], id)
	s.kickLocked()
	s.flushSoonLocked()
	return id, made, nil
}

// BindKey implements domain.KeyStore.
func (s *Store) BindKey(talentID string, rotate bool) (string, []byte, error) {
	if !reTalent.MatchString(talentID) {
		return "", nil, fmt.Errorf("keystore: bad talent ID %q", talentID)
	}
	s.mu.Lock()
	if s.dead[talentID] {
		s.mu.Unlock()
		return "", nil, domain.ErrKeyDestroyed
	}
	if v := s.versions[talentID]; len(v) > 0 && !rotate {
		// A registration tried again: its key, whose binding may not be
		// synced yet, as the first try's event names it.
		id := v[len(v)-1]
		k, err := s.unwrapLocked(id)
		s.mu.Unlock()
		return id, k, err
	}
	id, made, err := s.bindLocked(talentID)
	if err != nil {
		s.mu.Unlock()
		return "", nil, err
	}
	k, err := s.unwrapLocked(id)
	s.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	// The key itself was synced before it went into the pool, or is
	// synced here when the pool was empty; its binding is not waited for.
	if err := s.syncThrough(made); err != nil {
		return "", nil, err
	}
	return id, k, nil
}

func (s *Store) unwrapLocked(id string) ([]byte, error) {
	k := s.keys[id]
	if k == nil {
		return nil, domain.ErrKeyDestroyed
	}
	return s.unwrap(k.name, k.wrapped)
}

// Key implements domain.KeyStore: one of the talent's keys by its ID,
// its binding on disk. A talent's first key from a store made before key
// versions has the talent's ID.
func (s *Store) Key(talentID, keyID string) ([]byte, error) {
	if !reTalent.MatchString(talentID) || !reTalent.MatchString(keyID) {
		return nil, fmt.Errorf("keystore: bad talent or key ID %q %q", talentID, keyID)
	}
	s.mu.Lock()
	k := s.keys[keyID]
	switch {
	case s.dead[talentID] || s.isDeadKey(keyID):
		s.mu.Unlock()
		return nil, domain.ErrKeyDestroyed
	case k == nil || k.owner != talentID:
		s.mu.Unlock()
		return nil, domain.ErrNoKey
	}
	seq := k.seq
	w, name := k.wrapped, k.name
	s.mu.Unlock()
	if err := s.syncThrough(seq); err != nil {
		return nil, err
	}
	return s.unwrap(name, w)
}

// Orphans lists the pooled keys bound to no talent that an earlier
// process made: each is either unused or bound to a talent by the log
// only, its binding lost in a crash.
func (s *Store) Orphans() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, k := range s.keys {
		if k.owner == "" && !k.mine {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// BindOrphan binds an orphan key to the talent, as the talent's newest
// key, and syncs the binding: the log names the key for the talent (a
// binding a crash lost). A key bound already, to this talent, is left as
// it is; one bound to another talent, destroyed, or still in the pool is
// refused.
func (s *Store) BindOrphan(talentID, keyID string) error {
	if !reTalent.MatchString(talentID) || !reTalent.MatchString(keyID) {
		return fmt.Errorf("keystore: bad talent or key ID %q %q", talentID, keyID)
	}
	s.mu.Lock()
	k := s.keys[keyID]
	switch {
	case s.dead[talentID] || s.isDeadKey(keyID):
		s.mu.Unlock()
		return domain.ErrKeyDestroyed
	case k != nil && k.owner == talentID:
		s.mu.Unlock()
		return nil
	case k == nil || k.owner != "" || k.mine:
		s.mu.Unlock()
		return fmt.Errorf("keystore: key %s is not an orphan: it cannot be bound to %s", keyID, talentID)
	}
	seq, err := s.appendLocked(record(recordBind, talentID, []byte(keyID)))
	if err == nil {
		k.owner, k.seq = talentID, seq
		s.versions[talentID] = append(s.versions[talentID], keyID)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.syncThrough(seq)
}

// RetireOrphans destroys the orphans named, which the log names nowhere:
// pooled keys an earlier process made and never handed out. Keys that
// are not orphans are left alone.
func (s *Store) RetireOrphans(keyIDs []string) error {
	s.mu.Lock()
	var err error
	for _, id := range keyIDs {
		if k := s.keys[id]; k != nil && k.owner == "" && !k.mine {
			if err = s.retireLocked(id); err != nil {
				break
			}
		}
	}
	seq := s.writtenSeq()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.syncThrough(seq)
}

// appendLocked appends rec at the file's end, in memory until the next
// sync writes it; s.mu is held. It returns the append's sequence number
// for syncThrough.
func (s *Store) appendLocked(rec []byte) (uint64, error) {
	s.pend = append(s.pend, rec...)
	s.end += int64(len(rec))
	s.smu.Lock()
	s.written++
	seq := s.written
	s.smu.Unlock()
	return seq, nil
}

// Sync writes and syncs every record appended so far (bindings are
// otherwise written in the background, soon after).
func (s *Store) Sync() error { return s.syncThrough(s.writtenSeq()) }

// flushLocked writes the records appended since the last; s.mu is held.
func (s *Store) flushLocked() error {
	if len(s.pend) == 0 {
		return nil
	}
	if _, err := s.f.WriteAt(s.pend, s.end-int64(len(s.pend))); err != nil {
		return err
	}
	s.pend = s.pend[:0]
	return nil
}

// flushDelay is how long a binding may wait in memory before the
// background writes and syncs it (the log has it meanwhile).
const flushDelay = 50 * time.Millisecond

// flushSoonLocked schedules a sync of what is appended; s.mu is held.
func (s *Store) flushSoonLocked() {
	if s.flushing || s.closed {
		return
	}
	s.flushing = true
	s.refill.Add(1)
	time.AfterFunc(flushDelay, func() {
		defer s.refill.Done()
		s.mu.Lock()
		s.flushing = false
		s.mu.Unlock()
		_ = s.syncThrough(s.writtenSeq())
	})
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
		s.smu.Unlock()
		// What is appended is written first (s.mu before s.smu, as
		// appendLocked takes them), then synced.
		s.mu.Lock()
		err := s.flushLocked()
		s.smu.Lock()
		target := s.written
		s.smu.Unlock()
		s.mu.Unlock()
		if err == nil {
			err = s.f.Sync()
		}
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

// Destroy implements domain.KeyStore: the bytes of every key of the
// talent, and of the orphans named (keys the log binds to it, whose
// binding a crash lost), are overwritten with zeros where they lie, a
// tombstone is appended, and all is synced. A named key bound to another
// talent is left alone.
func (s *Store) Destroy(talentID string, keyIDs ...string) error {
	if !reTalent.MatchString(talentID) {
		return fmt.Errorf("keystore: bad talent ID %q", talentID)
	}
	s.mu.Lock()
	var err error
	for _, id := range keyIDs {
		if k := s.keys[id]; k != nil && k.owner == "" && !k.mine {
			if err = s.retireLocked(id); err != nil {
				break
			}
		}
	}
	if err == nil {
		for _, id := range slices.Clone(s.versions[talentID]) {
			if err = s.retireLocked(id); err != nil {
				break
			}
		}
	}
	if err == nil && !s.dead[talentID] {
		if _, err = s.appendLocked(record(recordTomb, talentID, nil)); err == nil {
			s.dead[talentID] = true
			delete(s.versions, talentID)
		}
	}
	seq := s.writtenSeq()
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
	out := make([]string, 0, len(s.versions))
	for id, v := range s.versions {
		if len(v) > 0 {
			out = append(out, id)
		}
	}
	return out
}

// Versions returns the IDs of the talent's keys, oldest first.
func (s *Store) Versions(talentID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.versions[talentID])
}

// WrappedKeys reads the key store in dir without its master key (it may
// be in use): the talents with keys and their wrapped keys, oldest first
// (under "" the keys bound to no talent: pooled or orphans), and the
// talents whose keys were destroyed. It serves audits of a store or a
// backup: what it lists is all that could ever open a talent's data.
func WrappedKeys(dir string) (keys map[string][][]byte, destroyed map[string]bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, logFile))
	if err != nil {
		return nil, nil, err
	}
	s := newStore(dir)
	s.fold(b)
	keys = map[string][][]byte{}
	for _, k := range s.keys {
		if k.owner == "" {
			keys[""] = append(keys[""], k.wrapped)
		}
	}
	for t, v := range s.versions {
		for _, id := range v {
			keys[t] = append(keys[t], s.keys[id].wrapped)
		}
	}
	return keys, s.dead, nil
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
	s.mu.Lock()
	b := make([]byte, s.end)
	err := s.flushLocked()
	if err == nil {
		_, err = s.f.ReadAt(b, 0)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return backupTo(s.dir, dst, b)
}

// BackupDir copies the key store in src into dst, a new directory,
// without opening it (the server may be writing to it): the master key
// check, checked against master, and the file of keys up to its last whole
// record, synced.
func BackupDir(src, dst string, master []byte) error {
	a, err := newAEAD(master)
	if err != nil {
		return err
	}
	s := newStore(src)
	s.master = a
	if err := s.checkMaster(false); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(src, logFile))
	if err != nil {
		return err
	}
	return backupTo(src, dst, b[:newStore(src).fold(b)])
}

func backupTo(src, dst string, keys []byte) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("keystore backup: %s already exists", dst)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	check, err := os.ReadFile(filepath.Join(src, checkFile))
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dst, checkFile), check); err != nil {
		return err
	}
	return writeFileSync(filepath.Join(dst, logFile), keys)
}

// PurgeBackup removes from the key store backup in dir every key this
// store has destroyed (overwritten in place, a tombstone appended), so
// that restoring the backup cannot bring an erased talent back: the keys
// of the talents destroyed here, and every key destroyed here by its ID,
// which the backup may hold still unbound (taken from the pool after the
// backup was made). It returns how many keys it removed. It needs no
// master key: a backup made under an earlier one is purged alike.
func (s *Store) PurgeBackup(dir string) (int, error) {
	b := newStore(dir)
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
	s.mu.Lock()
	deadKeys := maps.Clone(s.deadKeys)
	s.mu.Unlock()
	n := 0
	b.mu.Lock()
	for id, owner := range deadKeys {
		k := b.keys[id]
		if k == nil {
			continue
		}
		if k.owner != "" || owner != "" {
			// A talent's key; pooled keys never handed out, destroyed
			// when the store closed, go uncounted.
			n++
		}
		if err := b.retireLocked(id); err != nil {
			b.mu.Unlock()
			return n, err
		}
	}
	seq := b.writtenSeq()
	b.mu.Unlock()
	if err := b.syncThrough(seq); err != nil {
		return n, err
	}
	for _, id := range s.Destroyed() {
		if b.dead[id] {
			continue
		}
		n += len(b.Versions(id))
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
// keys it wrapped again. Bindings, orphans and tombstones are kept.
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
	rewrap := func(id string) ([]byte, error) {
		k := s.keys[id]
		plain, err := s.unwrap(k.name, k.wrapped)
		if err != nil {
			return nil, fmt.Errorf("keystore: the key %s does not open: %w", id, err)
		}
		n++
		return next.wrap(k.name, plain)
	}
	// Keys in the order of their IDs, then each talent's bindings oldest
	// first, so that versions keep their order.
	ids := make([]string, 0, len(s.keys))
	for id := range s.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		k := s.keys[id]
		w, err := rewrap(id)
		if err != nil {
			s.mu.Unlock()
			return 0, err
		}
		kind := byte(recordPooled)
		if k.owner == id {
			kind = recordKey
		}
		out = append(out, record(kind, id, w)...)
	}
	for t, v := range s.versions {
		for _, id := range v {
			if id != t {
				out = append(out, record(recordBind, t, []byte(id))...)
			}
		}
	}
	for id, owner := range s.deadKeys {
		if !s.dead[id] {
			out = append(out, record(recordRetire, id, []byte(owner))...)
		}
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
