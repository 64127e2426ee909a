package domain

import (
	"testing"
	"time"
)

// slowKeys is a key store whose first answer to Key arrives late: the
// key is read, then during runs (an erasure on another replica, say) and
// the answer takes delay more to reach the caller.
type slowKeys struct {
	*memKeys
	delay  time.Duration
	during func()
}

func (s *slowKeys) Key(id, keyID string) ([]byte, error) {
	k, err := s.memKeys.Key(id, keyID)
	if f := s.during; f != nil {
		s.during = nil
		f()
		time.Sleep(s.delay)
	}
	return k, err
}

// TestCipherCacheTimeCountsFromTheAsking: a key cached with a time limit
// is used for at most that long after the key store gave it, however late
// its answer arrived: a key read just before an erasure, whose answer took
// longer than the limit, opens nothing once it is in hand.
func TestCipherCacheTimeCountsFromTheAsking(t *testing.T) {
	const ttl = 50 * time.Millisecond
	mem := newMemKeys()
	keys := &slowKeys{memKeys: mem, delay: 3 * ttl}
	writer := NewCipher(mem)
	sealed, err := writer.Seal("t0000000000000001", "name", chineseName)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCipherTTL(keys, ttl)
	keys.during = func() {
		if err := mem.Destroy("t0000000000000001"); err != nil {
			t.Error(err)
		}
	}
	// Read before the erasure: this answer may show the name.
	c.Open(sealed)
	if got, _, _ := c.Open(sealed); got != Erased {
		t.Errorf("a key the store gave %v before, then destroyed, still opens: %q", 3*ttl, got)
	}
}
