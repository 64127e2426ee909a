package keystore

import (
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"talentledger/domain"
)

const testToken = "0123456789abcdef0123456789abcdef-service"

// serveStore runs a key service over a new store; it returns the store,
// the service's URL, and a function that stops the service.
func serveStore(t *testing.T) (*Store, string, func()) {
	t.Helper()
	_, master := masterKey(t)
	s, err := Open(filepath.Join(t.TempDir(), "keys"), master)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h, err := NewHandler(s, testToken)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return s, srv.URL, srv.Close
}

func client(t *testing.T, url, token string) *Client {
	t.Helper()
	c, err := NewClient(url, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func unavailableCode(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) && de.Code == domain.EUNAVAILABLE
}

// TestKeyServiceErrorsCrossTheWire: a client is a key store whose errors
// are the key store's own: a key never made is ErrNoKey, a destroyed one
// ErrKeyDestroyed, and no key is made again for an erased talent; a bad
// token and a service that is down are errors a command answers 503 with.
func TestKeyServiceErrorsCrossTheWire(t *testing.T) {
	s, url, stop := serveStore(t)
	c := client(t, url, testToken)
	const talent, other = "t00000000000000aa", "t00000000000000bb"

	if _, _, err := c.DataKey(talent, false); !errors.Is(err, domain.ErrNoKey) {
		t.Errorf("DataKey of a talent without a key: %v, want ErrNoKey", err)
	}
	id, k, err := c.BindKey(talent, false)
	if err != nil || len(k) != 32 {
		t.Fatalf("BindKey: %q %d %v", id, len(k), err)
	}
	// Bound on the service's disk before it was answered.
	if keys, _, err := WrappedKeys(s.Dir()); err != nil || len(keys[talent]) != 1 {
		t.Fatalf("the binding is not on disk when BindKey returns: %d %v", len(keys[talent]), err)
	}
	if again, _, err := c.BindKey(talent, false); err != nil || again != id {
		t.Errorf("a registration tried again took key %q (%v), want its first %q", again, err, id)
	}
	if got, err := c.Key(talent, id); err != nil || string(got) != string(k) {
		t.Errorf("Key: %v", err)
	}
	if _, err := c.Key(other, id); !errors.Is(err, domain.ErrNoKey) {
		t.Errorf("another talent's key: %v, want ErrNoKey", err)
	}
	if err := c.Destroy(talent); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Key(talent, id); !errors.Is(err, domain.ErrKeyDestroyed) {
		t.Errorf("a destroyed key: %v, want ErrKeyDestroyed", err)
	}
	if _, _, err := c.BindKey(talent, false); !errors.Is(err, domain.ErrKeyDestroyed) {
		t.Errorf("a key for an erased talent: %v, want ErrKeyDestroyed", err)
	}
	if len(grepDir(t, s.Dir(), k)) > 0 {
		t.Error("the destroyed key's bytes are still in the key store")
	}

	if _, _, err := client(t, url, testToken+"x").BindKey(other, false); !unavailableCode(err) {
		t.Errorf("a bad token: %v, want an unavailable error", err)
	}
	if v := s.Versions(other); len(v) != 0 {
		t.Errorf("a request with a bad token bound keys %v", v)
	}
	stop()
	if _, _, err := c.BindKey(other, false); !unavailableCode(err) {
		t.Errorf("a service that is down: %v, want an unavailable error", err)
	}
}

// TestKeyServiceRefusesWeakSetups: no service without a token of some
// length; no client over plain HTTP but to a loopback address.
func TestKeyServiceRefusesWeakSetups(t *testing.T) {
	if _, err := NewHandler(nil, "short"); err == nil {
		t.Error("a key service with a short token started")
	}
	for _, u := range []string{"http://10.0.0.5:7443", "http://keys.example:7443", "ftp://127.0.0.1:1", "https://h:1/path", "https://u:p@h:1"} {
		if _, err := NewClient(u, testToken, nil); err == nil {
			t.Errorf("a client of %s was made", u)
		}
	}
	for _, u := range []string{"https://keys.example:7443", "http://127.0.0.1:7443", "http://[::1]:7443"} {
		if _, err := NewClient(u, testToken, nil); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if _, err := NewClient("https://keys.example:7443", "short", nil); err == nil {
		t.Error("a client with a short token was made")
	}
}

// TestReplicaCiphersForgetDestroyedKeys: two ciphers over one key service
// (two replicas). What one seals the other opens; once one destroys the
// talent's keys, the other, which cached the key, stops opening it when
// told the log recorded the destruction, and on its own once its cache's
// time is up.
func TestReplicaCiphersForgetDestroyedKeys(t *testing.T) {
	_, url, _ := serveStore(t)
	for _, how := range []string{"told", "expired"} {
		t.Run(how, func(t *testing.T) {
			talent := "t0000000000000" + map[string]string{"told": "0c1", "expired": "0c2"}[how]
			a := domain.NewCipher(client(t, url, testToken))
			ttl := time.Hour
			if how == "expired" {
				ttl = time.Nanosecond
			}
			b := domain.NewCipherTTL(client(t, url, testToken), ttl)
			sealed, err := a.Seal(talent, "name", "欧阳震华")
			if err != nil {
				t.Fatal(err)
			}
			if got, _, hidden := b.Open(sealed); hidden || got != "欧阳震华" {
				t.Fatalf("the other replica opens %q (hidden %v)", got, hidden)
			}
			if err := a.Destroy(talent); err != nil {
				t.Fatal(err)
			}
			if how == "told" {
				b.KeyDestroyed(talent)
			} else {
				time.Sleep(time.Millisecond) // past the nanosecond the key may be cached
			}
			if got, _, _ := b.Open(sealed); got != domain.Erased {
				t.Errorf("after the erasure the other replica opens %q, want %q", got, domain.Erased)
			}
			if _, err := b.Seal(talent, "note", "x"); !errors.Is(err, domain.ErrKeyDestroyed) {
				t.Errorf("after the erasure the other replica seals: %v", err)
			}
		})
	}
}

// TestConcurrentBindsOneKeyPerTalent: many replicas registering the same
// talents at once (one command, tried on each) bind one key per talent.
func TestConcurrentBindsOneKeyPerTalent(t *testing.T) {
	s, url, _ := serveStore(t)
	clients := []*Client{client(t, url, testToken), client(t, url, testToken)}
	const talents = 10
	ids := make([][]string, talents)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			n := i % talents
			id, _, err := clients[i%2].BindKey("t00000000000000"+string(rune('a'+n))+"x", false)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[n] = append(ids[n], id)
			mu.Unlock()
		})
	}
	wg.Wait()
	for n := range talents {
		talent := "t00000000000000" + string(rune('a'+n)) + "x"
		if v := s.Versions(talent); len(v) != 1 {
			t.Errorf("talent %s has %d keys bound, want 1", talent, len(v))
			continue
		}
		for _, id := range ids[n] {
			if id != s.Versions(talent)[0] {
				t.Errorf("talent %s was given key %s, not its bound %s", talent, id, s.Versions(talent)[0])
			}
		}
	}
	if o := s.Orphans(); len(o) != 0 {
		t.Errorf("orphans left: %v", strings.Join(o, " "))
	}
}

// TestRotationOnOneReplicaWhileAnotherSeals: a replica that cached the
// talent's key before another rotated it seals under that earlier key,
// still the talent's: the value opens on both, and the erasure, which
// destroys every version, erases it on both.
func TestRotationOnOneReplicaWhileAnotherSeals(t *testing.T) {
	s, url, _ := serveStore(t)
	const talent = "t00000000000000rr"
	a := domain.NewCipherTTL(client(t, url, testToken), time.Hour)
	b := domain.NewCipherTTL(client(t, url, testToken), time.Hour)
	first, err := a.NewKey(talent, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Seal(talent, "name", "欧阳震华"); err != nil { // b caches the first key
		t.Fatal(err)
	}
	second, err := a.NewKey(talent, true)
	if err != nil || second == first {
		t.Fatalf("rotation: %q %v", second, err)
	}
	note, err := b.Seal(talent, "note", "材料不全")
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := domain.SealedKey(note); k != first && k != second {
		t.Fatalf("the note is sealed under %q, not one of the talent's keys", k)
	}
	for _, c := range []*domain.Cipher{a, b} {
		if got, _, hidden := c.Open(note); hidden || got != "材料不全" {
			t.Errorf("the note opens as %q", got)
		}
	}
	if v := s.Versions(talent); len(v) != 2 {
		t.Errorf("the talent has %d keys, want 2", len(v))
	}
	if err := a.Destroy(talent); err != nil {
		t.Fatal(err)
	}
	b.KeyDestroyed(talent)
	for _, c := range []*domain.Cipher{a, b} {
		if got, _, _ := c.Open(note); got != domain.Erased {
			t.Errorf("after the erasure the note opens as %q", got)
		}
	}
	if keys, _, _ := WrappedKeys(s.Dir()); len(keys[talent]) != 0 {
		t.Errorf("after the erasure the service holds %d keys of the talent", len(keys[talent]))
	}
}
