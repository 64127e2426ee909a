package domain

import (
	"context"
	"testing"
)

// hookKeys runs hook once, at the first rotation's BindKey.
type hookKeys struct {
	*memKeys
	hook func()
}

func (h *hookKeys) BindKey(id string, rotate bool) (string, []byte, error) {
	if rotate && h.hook != nil {
		f := h.hook
		h.hook = nil
		f()
	}
	return h.memKeys.BindKey(id, rotate)
}

// TestKeyRotationRetryRacingItself: two deliveries of one rotation (one
// Idempotency-Key, e.g. a client retry on a second replica) that both
// pass the "already recorded?" check before either appends must both be
// answered with the key the log names, never with a key it does not.
func TestKeyRotationRetryRacingItself(t *testing.T) {
	ctx := context.Background()
	keys := &hookKeys{memKeys: newMemKeys()}
	s := newServiceOver(newTestStore(t), WithCipher(NewCipher(keys)))
	tid := registerTalent(t, s, "C")
	m := rotationMeta("2024-02-01")
	m.CommandID = "rotate-once"
	var first KeyRotation
	keys.hook = func() {
		var err error
		first, err = s.RotateTalentKey(ctx, RotateTalentKey{Meta: m, TalentID: tid})
		if err != nil {
			t.Fatal(err)
		}
	}
	second, err := s.RotateTalentKey(ctx, RotateTalentKey{Meta: m, TalentID: tid})
	if err != nil {
		t.Fatal(err)
	}
	if second.KeyID != first.KeyID || second.Version != first.Version {
		t.Fatalf("the same rotation answered %s v%d and %s v%d; the log names %s",
			first.KeyID, first.Version, second.KeyID, second.Version, first.KeyID)
	}
}
