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
	"unicode/utf8"
)

// Personal data is declared in one place: the personal:"true" tags of the
// event payloads (docs/events.md lists them). A tagged string field is
// recorded sealed under its talent's data key, so that destroying the key
// erases the person while every stored byte, and so every hash, stays.
//
// A sealed value is a string of its own form:
//
//	U+FDD0 "pd1:" talent ":" field ":" base64url(nonce ‖ AES-256-GCM ciphertext)
//
// U+FDD0 is a non-character that no input may hold (TextProblem refuses
// it), so no plain value is ever taken for a sealed one. The talent and the
// field are authenticated as additional data: a sealed value cannot be
// moved to another talent or field. The value names its talent, so the
// read side opens it without knowing which event it came from.

// SealedMarker begins every sealed value; its UTF-8 bytes are EF B7 90.
const SealedMarker = "\uFDD0"

const sealedPrefix = SealedMarker + "pd1:"

// Erased is what an answer shows in place of a personal field whose
// talent's data key was destroyed.
const Erased = "[erased]"

// Unreadable is what an answer shows in place of a sealed field that
// cannot be opened although its key was not destroyed: a key store that
// is not the one the value was sealed with, or a damaged value.
const Unreadable = "[unreadable]"

// KeyStore keeps the talents' data keys, outside the log. Implementations
// are safe for concurrent use and durable: a key is on disk before
// DataKey returns it.
type KeyStore interface {
	// DataKey returns the talent's 32-byte data key. With create set it
	// makes one when the talent has none. Errors: ErrKeyDestroyed when the
	// talent's key was destroyed, ErrNoKey when it has none and create is
	// not set.
	DataKey(talentID string, create bool) ([]byte, error)
	// Destroy deletes the talent's key for good and remembers that it
	// did, so that the key is never made again. Destroying a key already
	// destroyed, or never made, succeeds.
	Destroy(talentID string) error
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
	// aeads caches the talents' ciphers.
	mu    sync.RWMutex
	aeads map[string]cipher.AEAD
	// destroyed holds the talents whose keys this process destroyed, so
	// that a key read just before is never cached after.
	destroyed map[string]bool
}

// NewCipher returns a Cipher over keys.
func NewCipher(keys KeyStore) *Cipher {
	return &Cipher{keys: keys, aeads: map[string]cipher.AEAD{}, destroyed: map[string]bool{}}
}

func (c *Cipher) aead(talentID string, create bool) (cipher.AEAD, error) {
	c.mu.RLock()
	a, dead := c.aeads[talentID], c.destroyed[talentID]
	c.mu.RUnlock()
	if dead {
		return nil, ErrKeyDestroyed
	}
	if a != nil {
		return a, nil
	}
	k, err := c.keys.DataKey(talentID, create)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	if a, err = cipher.NewGCM(b); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed[talentID] {
		return nil, ErrKeyDestroyed
	}
	if len(c.aeads) >= 100_000 {
		clear(c.aeads)
	}
	c.aeads[talentID] = a
	return a, nil
}

// Destroy destroys the talent's data key.
func (c *Cipher) Destroy(talentID string) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	c.destroyed[talentID] = true
	delete(c.aeads, talentID)
	c.mu.Unlock()
	return c.keys.Destroy(talentID)
}

func sealedAAD(talentID, field string) []byte {
	return []byte("talentledger/pd1\x00" + talentID + "\x00" + field)
}

// Seal returns v sealed for the talent's field, making the talent's data
// key if it has none; "" stays "". Errors: ErrKeyDestroyed.
func (c *Cipher) Seal(talentID, field, v string) (string, error) {
	if c == nil || v == "" || Sealed(v) {
		return v, nil
	}
	a, err := c.aead(talentID, true)
	if err != nil {
		return "", err
	}
	buf := make([]byte, a.NonceSize(), a.NonceSize()+len(v)+a.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	buf = a.Seal(buf, buf, []byte(v), sealedAAD(talentID, field))
	return sealedPrefix + talentID + ":" + field + ":" + base64.RawURLEncoding.EncodeToString(buf), nil
}

// parseSealed splits a sealed value into its talent, field and bytes.
func parseSealed(s string) (talentID, field string, data []byte, ok bool) {
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok {
		return "", "", nil, false
	}
	talentID, rest, ok1 := strings.Cut(rest, ":")
	field, rest, ok2 := strings.Cut(rest, ":")
	data, err := base64.RawURLEncoding.DecodeString(rest)
	if !ok1 || !ok2 || err != nil {
		return "", "", nil, false
	}
	return talentID, field, data, true
}

// SealedTalent returns the talent a sealed value belongs to.
func SealedTalent(s string) (string, bool) {
	t, _, _, ok := parseSealed(s)
	return t, ok
}

// Open returns the plain text of v, which may be sealed or plain, and the
// field it was sealed for. A value whose key was destroyed is Erased, one
// that cannot be opened otherwise Unreadable, both with hidden set.
func (c *Cipher) Open(v string) (plain, field string, hidden bool) {
	if !Sealed(v) {
		return v, "", false
	}
	talentID, field, data, ok := parseSealed(v)
	if !ok || c == nil {
		return Unreadable, field, true
	}
	a, err := c.aead(talentID, false)
	if errors.Is(err, ErrKeyDestroyed) {
		return Erased, field, true
	}
	if err != nil || len(data) < a.NonceSize() {
		return Unreadable, field, true
	}
	n := a.NonceSize()
	out, err := a.Open(nil, data[:n], data[n:], sealedAAD(talentID, field))
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
// the talent. An event without personal fields is left as it is.
func (c *Cipher) sealEvent(talentID string, ev Event) error {
	if c == nil {
		return nil
	}
	v := reflect.ValueOf(ev).Elem()
	for _, idx := range personalIndexes(v.Type()) {
		f := v.FieldByIndex(idx)
		sealed, err := c.Seal(talentID, jsonName(v.Type().FieldByIndex(idx)), f.String())
		if err != nil {
			return err
		}
		f.SetString(sealed)
	}
	return nil
}

// HasPersonal reports whether events of ev's type carry personal fields.
func HasPersonal(ev Event) bool {
	return len(personalIndexes(reflect.TypeOf(ev).Elem())) > 0
}
