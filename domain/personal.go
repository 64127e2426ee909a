package domain

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Personal data is declared in one place: the personal:"true" tags of the
// event payloads (docs/events.md lists them). A tagged string field is
// recorded sealed under its talent's data key, so that destroying the key
// erases the person while every stored byte, and so every hash, stays.
//
// A sealed value is a string of its own form:
//
//	U+FDD0 "pd2:" talent ":" key ":" field ":" base64url(nonce ‖ AES-256-GCM ciphertext)
//
// where key is the ID of the talent's key version it was sealed under
// (TalentKeyCreated and TalentKeyRotated name them). Values sealed before
// key versions have the form U+FDD0 "pd1:" talent ":" field ":" … and the
// talent's first key, whose ID is the talent's.
//
// U+FDD0 is a non-character that no input may hold (TextProblem refuses
// it), so no plain value is ever taken for a sealed one. The talent, the
// key and the field are authenticated as additional data: a sealed value
// cannot be moved to another talent or field. The value names its talent
// and key, so the read side opens it without knowing which event it came
// from.

// SealedMarker begins every sealed value; its UTF-8 bytes are EF B7 90.
const SealedMarker = "\uFDD0"

const (
	sealedPrefix   = SealedMarker + "pd"
	sealedPrefixV1 = SealedMarker + "pd1:"
	sealedPrefixV2 = SealedMarker + "pd2:"
)

// Erased is what an answer shows in place of a personal field whose
// talent's data key was destroyed.
const Erased = "[erased]"

// Unreadable is what an answer shows in place of a sealed field that
// cannot be opened although its key was not destroyed: a key store that
// is not the one the value was sealed with, or a damaged value.
const Unreadable = "[unreadable]"

// KeyStore keeps the talents' data keys, outside the log. A talent has one
// or more keys, its versions, each with an ID; the newest seals. Keys are
// never shared between talents. Implementations are safe for concurrent
// use and durable: a key is on disk before it is returned.
type KeyStore interface {
	// DataKey returns the talent's newest key and its ID, its binding to
	// the talent on disk. With create set it makes one when the talent
	// has none. Errors: ErrKeyDestroyed when the talent's keys were
	// destroyed, ErrNoKey when it has none and create is not set.
	DataKey(talentID string, create bool) (keyID string, key []byte, err error)
	// BindKey takes a new key for the talent, as its newest version,
	// without waiting for its binding to reach the disk: the caller names
	// keyID in the log (TalentKeyCreated, TalentKeyRotated) in the append
	// that acknowledges the command. Without rotate, a talent that has a
	// key already gets that one (a registration tried again).
	BindKey(talentID string, rotate bool) (keyID string, key []byte, err error)
	// Key returns one of the talent's keys by its ID.
	Key(talentID, keyID string) ([]byte, error)
	// Destroy deletes every key of the talent for good, and the keys named
	// that the log binds to it, and remembers that it did, so that no key
	// is made for the talent again. Destroying keys already destroyed, or
	// never made, succeeds.
	Destroy(talentID string, keyIDs ...string) error
}

// Key store errors.
var (
	ErrKeyDestroyed = errors.New("the talent's data key was destroyed")
	ErrNoKey        = errors.New("the talent has no data key")
)

// Sealed reports whether s is a sealed value.
func Sealed(s string) bool { return strings.HasPrefix(s, sealedPrefix) }

// Fields whose values are masked for every role but those that need them.
var maskedFields = map[string]bool{"id_number": true, "bank_account": true}

// Masked reports whether field is shown masked to roles without a need
// for it.
func Masked(field string) bool { return maskedFields[field] }

// SeesUnmasked reports whether role sees masked fields in full: the clerk
// who enters them and the treasurer who pays to them.
func SeesUnmasked(role string) bool { return role == RoleClerk || role == RoleTreasurer }

// Mask hides all but the first and last four characters of v
// (3304**********1234); a value of eight characters or fewer keeps only
// its last two.
func Mask(v string) string {
	r := []rune(v)
	n := len(r)
	if n <= 8 {
		keep := min(2, n/2)
		return strings.Repeat("*", n-keep) + string(r[n-keep:])
	}
	return string(r[:4]) + strings.Repeat("*", n-8) + string(r[n-4:])
}

// Cipher seals and opens personal fields with the talents' data keys. A
// nil *Cipher seals nothing (a ledger run without encryption) and opens
// only what was sealed, which it cannot read: it shows it erased.
type Cipher struct {
	keys KeyStore
	// ttl, when set, is how long a cached key may be used before the key
	// store is asked again: a key store shared by replicas (a key
	// service) may have destroyed it at another's erasure.
	ttl time.Duration
	mu  sync.RWMutex
	// aeads caches the keys' ciphers, by key ID.
	aeads map[string]cachedKey
	// current caches the talents' newest key IDs.
	current map[string]string
	// destroyed holds the talents whose keys this process destroyed, or
	// whose destruction the log recorded, so that a key read just before
	// is never cached after.
	destroyed map[string]bool
	// gone holds the talents whose keys the key store confirmed destroyed
	// to this process.
	gone map[string]bool
}

// cachedKey is a key's cipher and when the key store last gave it.
type cachedKey struct {
	a  cipher.AEAD
	at time.Time
}

// NewCipher returns a Cipher over keys, caching them for good: keys that
// only this process destroys.
func NewCipher(keys KeyStore) *Cipher { return NewCipherTTL(keys, 0) }

// NewCipherTTL returns a Cipher over keys that uses a cached key for at
// most ttl before asking the key store for it again (0: for good).
func NewCipherTTL(keys KeyStore, ttl time.Duration) *Cipher {
	return &Cipher{keys: keys, ttl: ttl, aeads: map[string]cachedKey{}, current: map[string]string{},
		destroyed: map[string]bool{}, gone: map[string]bool{}}
}

// fresh returns the cached key's cipher while it may still be used.
func (c *Cipher) fresh(k cachedKey) cipher.AEAD {
	if k.a == nil || c.ttl > 0 && time.Since(k.at) > c.ttl {
		return nil
	}
	return k.a
}

// KeyDestroyed forgets the talent's keys: the log records their
// destruction (TalentKeyDestroyed), which another replica may have
// carried out on a shared key store. Nothing of the talent is opened or
// sealed by this cipher from then on.
func (c *Cipher) KeyDestroyed(talentID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.destroyed[talentID] = true
	delete(c.current, talentID)
	c.mu.Unlock()
}

// DestroyConfirmed reports whether the key store confirmed to this
// cipher that the talent's keys are destroyed.
func (c *Cipher) DestroyConfirmed(talentID string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gone[talentID]
}

// KeyStore returns the cipher's key store.
func (c *Cipher) KeyStore() KeyStore { return c.keys }

func newAEAD(k []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// cache remembers a key's cipher, and makes it the talent's newest when
// newest is set; it refuses a talent whose keys were destroyed.
func (c *Cipher) cache(talentID, keyID string, a cipher.AEAD, newest bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed[talentID] {
		return ErrKeyDestroyed
	}
	if len(c.aeads) >= 100_000 {
		clear(c.aeads)
		clear(c.current)
	}
	c.aeads[keyID] = cachedKey{a, time.Now()}
	if newest {
		c.current[talentID] = keyID
	}
	return nil
}

// key returns the cipher of one of the talent's keys.
func (c *Cipher) key(talentID, keyID string) (cipher.AEAD, error) {
	c.mu.RLock()
	a, dead := c.fresh(c.aeads[keyID]), c.destroyed[talentID]
	c.mu.RUnlock()
	if dead {
		return nil, ErrKeyDestroyed
	}
	if a != nil {
		return a, nil
	}
	k, err := c.keys.Key(talentID, keyID)
	if err != nil {
		return nil, err
	}
	if a, err = newAEAD(k); err != nil {
		return nil, err
	}
	return a, c.cache(talentID, keyID, a, false)
}

// newest returns the talent's newest key and its cipher, making a key if
// it has none and create is set.
func (c *Cipher) newest(talentID string, create bool) (string, cipher.AEAD, error) {
	c.mu.RLock()
	id, dead := c.current[talentID], c.destroyed[talentID]
	a := c.fresh(c.aeads[id])
	c.mu.RUnlock()
	if dead {
		return "", nil, ErrKeyDestroyed
	}
	if a != nil {
		return id, a, nil
	}
	id, k, err := c.keys.DataKey(talentID, create)
	if err != nil {
		return "", nil, err
	}
	if a, err = newAEAD(k); err != nil {
		return "", nil, err
	}
	return id, a, c.cache(talentID, id, a, true)
}

// NewKey takes a new key for the talent, its newest from now on (with
// rotate; without, a talent's registration), and returns its ID, which the
// caller records in the log in the append that acknowledges the command.
func (c *Cipher) NewKey(talentID string, rotate bool) (string, error) {
	c.mu.RLock()
	dead := c.destroyed[talentID]
	c.mu.RUnlock()
	if dead {
		return "", ErrKeyDestroyed
	}
	id, k, err := c.keys.BindKey(talentID, rotate)
	if err != nil {
		return "", err
	}
	if s, ok := c.keys.(interface{ Sync() error }); ok && rotate {
		// A rotated key is the talent's newest from now on: a grant's
		// note may be sealed under it before the rotation's event is
		// durable. Its binding is synced first, so that a crash in
		// between leaves it bound to the talent (a registration's key
		// needs no sync here: nothing else seals under it before its
		// event names it).
		if err := s.Sync(); err != nil {
			return "", err
		}
	}
	a, err := newAEAD(k)
	if err != nil {
		return "", err
	}
	return id, c.cache(talentID, id, a, true)
}

// Destroy destroys the talent's data keys, and those named.
func (c *Cipher) Destroy(talentID string, keyIDs ...string) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	c.destroyed[talentID] = true
	delete(c.current, talentID)
	for _, id := range keyIDs {
		delete(c.aeads, id)
	}
	c.mu.Unlock()
	// Keys cached by ID that were not named go with the cache's next
	// clearing; none opens anything once destroyed is set.
	if err := c.keys.Destroy(talentID, keyIDs...); err != nil {
		return err
	}
	c.mu.Lock()
	c.gone[talentID] = true
	c.mu.Unlock()
	return nil
}

func sealedAAD(talentID, keyID, field string) []byte {
	if keyID == talentID {
		return []byte("talentledger/pd1\x00" + talentID + "\x00" + field)
	}
	return []byte("talentledger/pd2\x00" + talentID + "\x00" + keyID + "\x00" + field)
}

// Seal returns v sealed for the talent's field under its newest key,
// making the talent's data key if it has none; "" stays "". Errors:
// ErrKeyDestroyed.
func (c *Cipher) Seal(talentID, field, v string) (string, error) {
	if c == nil || v == "" || Sealed(v) {
		return v, nil
	}
	keyID, a, err := c.newest(talentID, true)
	if err != nil {
		return "", err
	}
	return sealWith(a, talentID, keyID, field, v)
}

func sealWith(a cipher.AEAD, talentID, keyID, field, v string) (string, error) {
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return sealNonce(a, nonce, talentID, keyID, field, v), nil
}

// sealNonce seals v under a with the nonce given, which is never used
// again.
func sealNonce(a cipher.AEAD, nonce []byte, talentID, keyID, field, v string) string {
	buf := make([]byte, len(nonce), len(nonce)+len(v)+a.Overhead())
	copy(buf, nonce)
	buf = a.Seal(buf, nonce, []byte(v), sealedAAD(talentID, keyID, field))
	var b strings.Builder
	b.Grow(len(sealedPrefixV2) + len(talentID) + len(keyID) + len(field) + 3 + base64.RawURLEncoding.EncodedLen(len(buf)))
	if keyID == talentID {
		b.WriteString(sealedPrefixV1)
		b.WriteString(talentID)
	} else {
		b.WriteString(sealedPrefixV2)
		b.WriteString(talentID)
		b.WriteByte(':')
		b.WriteString(keyID)
	}
	b.WriteByte(':')
	b.WriteString(field)
	b.WriteByte(':')
	enc := make([]byte, base64.RawURLEncoding.EncodedLen(len(buf)))
	base64.RawURLEncoding.Encode(enc, buf)
	b.Write(enc)
	return b.String()
}

// parseSealed splits a sealed value into its talent, key, field and bytes.
func parseSealed(s string) (talentID, keyID, field string, data []byte, ok bool) {
	rest, v1 := strings.CutPrefix(s, sealedPrefixV1)
	if !v1 {
		if rest, ok = strings.CutPrefix(s, sealedPrefixV2); !ok {
			return "", "", "", nil, false
		}
	}
	talentID, rest, ok1 := strings.Cut(rest, ":")
	keyID, ok2 := talentID, true
	if !v1 {
		keyID, rest, ok2 = strings.Cut(rest, ":")
	}
	field, rest, ok3 := strings.Cut(rest, ":")
	data, err := base64.RawURLEncoding.DecodeString(rest)
	if !ok1 || !ok2 || !ok3 || err != nil || talentID == "" || keyID == "" {
		return "", "", "", nil, false
	}
	return talentID, keyID, field, data, true
}

// SealedTalent returns the talent a sealed value belongs to.
func SealedTalent(s string) (string, bool) {
	t, _, _, _, ok := parseSealed(s)
	return t, ok
}

// SealedKey returns the ID of the key a sealed value was sealed under.
func SealedKey(s string) (string, bool) {
	_, k, _, _, ok := parseSealed(s)
	return k, ok
}

// Open returns the plain text of v, which may be sealed or plain, and the
// field it was sealed for. A value whose key was destroyed is Erased, one
// that cannot be opened otherwise Unreadable, both with hidden set.
func (c *Cipher) Open(v string) (plain, field string, hidden bool) {
	if !Sealed(v) {
		return v, "", false
	}
	talentID, keyID, field, data, ok := parseSealed(v)
	if !ok || c == nil {
		return Unreadable, field, true
	}
	a, err := c.key(talentID, keyID)
	if errors.Is(err, ErrKeyDestroyed) {
		return Erased, field, true
	}
	if err != nil || len(data) < a.NonceSize() {
		return Unreadable, field, true
	}
	n := a.NonceSize()
	out, err := a.Open(nil, data[:n], data[n:], sealedAAD(talentID, keyID, field))
	if err != nil || !utf8.Valid(out) {
		return Unreadable, field, true
	}
	return string(out), field, false
}

// Reveal returns what role sees of v: the plain text, masked when the
// field is masked and the role does not see it in full (unless unmask),
// or Erased.
func (c *Cipher) Reveal(v, role string, unmask bool) string {
	plain, field, erased := c.Open(v)
	if erased || !Masked(field) || unmask || SeesUnmasked(role) {
		return plain
	}
	return Mask(plain)
}

// personalIndexCache caches, per event type, the indexes of its personal
// string fields.
var personalIndexCache sync.Map // reflect.Type → [][]int

func personalIndexes(t reflect.Type) [][]int {
	if v, ok := personalIndexCache.Load(t); ok {
		return v.([][]int)
	}
	var out [][]int
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int(nil), prefix...), i)
			if f.Tag.Get("personal") == "true" && f.Type.Kind() == reflect.String {
				out = append(out, idx)
			} else if f.Type.Kind() == reflect.Struct && f.IsExported() {
				walk(f.Type, idx)
			}
		}
	}
	walk(t, nil)
	personalIndexCache.Store(t, out)
	return out
}

// jsonName returns the field's JSON name.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// sealEvent seals every personal field of ev, a pointer to a payload, for
// the talent, under its newest key. An event without personal fields is
// left as it is.
func (c *Cipher) sealEvent(talentID string, ev Event) error {
	if c == nil {
		return nil
	}
	v := reflect.ValueOf(ev).Elem()
	idxs := personalIndexes(v.Type())
	if len(idxs) == 0 {
		return nil
	}
	return c.sealFields(talentID, "", v, idxs)
}

// sealEventUnder seals the personal fields of ev under one of the
// talent's keys.
func (c *Cipher) sealEventUnder(talentID, keyID string, ev Event) error {
	v := reflect.ValueOf(ev).Elem()
	return c.sealFields(talentID, keyID, v, personalIndexes(v.Type()))
}

// sealFields seals the fields idxs of v under the talent's key keyID, or
// its newest when keyID is "".
func (c *Cipher) sealFields(talentID, keyID string, v reflect.Value, idxs [][]int) error {
	names := personalNames(v.Type())
	n := 0
	for _, idx := range idxs {
		if f := v.FieldByIndex(idx); f.String() != "" && !Sealed(f.String()) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	var a cipher.AEAD
	var err error
	if keyID == "" {
		keyID, a, err = c.newest(talentID, true)
	} else {
		a, err = c.key(talentID, keyID)
	}
	if err != nil {
		return err
	}
	// One read of the random source for every field's fresh nonce.
	ns := a.NonceSize()
	nonces := make([]byte, n*ns)
	if _, err := rand.Read(nonces); err != nil {
		return err
	}
	for i, idx := range idxs {
		f := v.FieldByIndex(idx)
		if f.String() == "" || Sealed(f.String()) {
			continue
		}
		f.SetString(sealNonce(a, nonces[:ns:ns], talentID, keyID, names[i], f.String()))
		nonces = nonces[ns:]
	}
	return nil
}

// personalNameCache caches, per event type, the JSON names of its
// personal fields, in the order of personalIndexes.
var personalNameCache sync.Map // reflect.Type → []string

func personalNames(t reflect.Type) []string {
	if v, ok := personalNameCache.Load(t); ok {
		return v.([]string)
	}
	idxs := personalIndexes(t)
	out := make([]string, len(idxs))
	for i, idx := range idxs {
		out[i] = jsonName(t.FieldByIndex(idx))
	}
	personalNameCache.Store(t, out)
	return out
}

// HasPersonal reports whether events of ev's type carry personal fields.
func HasPersonal(ev Event) bool {
	return len(personalIndexes(reflect.TypeOf(ev).Elem())) > 0
}
