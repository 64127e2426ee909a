package domain

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sync"
	"testing"

	"talentledger/eventstore"
)

// keyEvents returns the talent's key events in the order of its stream.
func keyEvents(t *testing.T, st eventstore.Store, talentID string) []eventstore.Event {
	t.Helper()
	var out []eventstore.Event
	for _, e := range readAll(t, st) {
		if e.Stream == streamTalent(talentID) && (e.Type == TypeTalentKeyCreated || e.Type == TypeTalentKeyRotated || e.Type == TypeTalentKeyDestroyed) {
			out = append(out, e)
		}
	}
	return out
}

func rotationMeta(date string) CommandMeta {
	m := on(admin, date)
	m.Reason = "the key may have been exposed"
	return m
}

func TestTalentKeyRotation(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	st := newTestStore(t)
	s := newServiceOver(st, WithCipher(NewCipher(keys)))
	c := s.Cipher()
	defineHousing(t, s, "housing", 0)
	appropriate(t, s, "housing", 2024, "30000000")
	tid := registerTalent(t, s, "C")
	talentState := func() talent {
		tl, err := s.loadTalentAny(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	// The registration's key is named by TalentKeyCreated, and its fields
	// by the key they were sealed under.
	reg := talentState().reg
	k1, _ := SealedKey(reg.Name)
	var created TalentKeyCreated
	if evs := keyEvents(t, st, tid); len(evs) != 1 || json.Unmarshal(evs[0].Data, &created) != nil || created.KeyID == "" || created.KeyID != k1 {
		t.Fatalf("TalentKeyCreated names %q, the name is sealed under %q", created.KeyID, k1)
	}

	_, err := s.RotateTalentKey(ctx, RotateTalentKey{Meta: on(admin, "2024-02-01"), TalentID: tid})
	wantCode(t, err, EINVALID) // no reason
	_, err = s.RotateTalentKey(ctx, RotateTalentKey{Meta: erasureMeta(clerk, "2024-02-01"), TalentID: tid})
	wantCode(t, err, EFORBIDDEN)
	_, err = s.RotateTalentKey(ctx, RotateTalentKey{Meta: rotationMeta("2024-02-01"), TalentID: "t0000000000009999"})
	wantCode(t, err, ENOTFOUND)

	rot, err := s.RotateTalentKey(ctx, RotateTalentKey{Meta: rotationMeta("2024-02-01"), TalentID: tid})
	if err != nil {
		t.Fatal(err)
	}
	if rot.Version != 2 || rot.KeyID == "" || rot.KeyID == k1 {
		t.Fatalf("rotation: %+v (first key %s)", rot, k1)
	}
	// The log names the new key and holds none of its bytes.
	evs := keyEvents(t, st, tid)
	last := evs[len(evs)-1]
	var rotated TalentKeyRotated
	if err := json.Unmarshal(last.Data, &rotated); err != nil || last.Type != TypeTalentKeyRotated || rotated.KeyID != rot.KeyID || rotated.Version != 2 {
		t.Fatalf("last key event %s %s", last.Type, last.Data)
	}
	k2bytes, err := keys.Key(tid, rot.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{hex.EncodeToString(k2bytes), base64.StdEncoding.EncodeToString(k2bytes), base64.RawURLEncoding.EncodeToString(k2bytes)} {
		if bytes.Contains(last.Data, []byte(enc)) {
			t.Fatal("TalentKeyRotated holds the key")
		}
	}

	// What is recorded now is sealed under the new version and names it;
	// what was recorded before still opens under the old one.
	gid := apply(t, s, tid, "housing", "600000")
	const note = "材料不全：欧阳震华"
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-02-02"), GrantID: gid, Decision: "reject", Note: note}))
	var sealedNote string
	for _, e := range readAll(t, st) {
		if e.Type == TypeGrantReviewed {
			var r GrantReviewed
			if err := json.Unmarshal(e.Data, &r); err != nil {
				t.Fatal(err)
			}
			sealedNote = r.Note
		}
	}
	if k, ok := SealedKey(sealedNote); !ok || k != rot.KeyID {
		t.Fatalf("the note after the rotation is sealed under %q, want %q", k, rot.KeyID)
	}
	if got, _, hidden := c.Open(sealedNote); got != note || hidden {
		t.Errorf("the new version does not open: %q", got)
	}
	if got, _, hidden := c.Open(reg.Name); got != "Talent C" || hidden {
		t.Errorf("the old version does not open after the rotation: %q", got)
	}
	// Another rotation is version 3; both older versions still open.
	rot3, err := s.RotateTalentKey(ctx, RotateTalentKey{Meta: rotationMeta("2024-02-03"), TalentID: tid})
	if err != nil || rot3.Version != 3 {
		t.Fatalf("second rotation: %+v %v", rot3, err)
	}
	for _, v := range []string{reg.Name, sealedNote} {
		if _, _, hidden := c.Open(v); hidden {
			t.Errorf("%s does not open after a second rotation", v)
		}
	}

	// The erasure destroys every version; a rotation after it is refused.
	must(t)(s.RequestErasure(ctx, RequestErasure{Meta: erasureMeta(clerk, "2024-02-04"), TalentID: tid}))
	if out, err := s.ApproveErasure(ctx, ApproveErasure{Meta: on(approver, "2024-02-04"), TalentID: tid}); err != nil || !out.Erased {
		t.Fatalf("erasure: %+v %v", out, err)
	}
	for _, v := range []string{reg.Name, sealedNote} {
		if got, _, _ := c.Open(v); got != Erased {
			t.Errorf("after the erasure a version opens: %q", got)
		}
	}
	for _, k := range []string{k1, rot.KeyID, rot3.KeyID} {
		if _, err := keys.Key(tid, k); err == nil {
			t.Errorf("key %s survived the erasure", k)
		}
	}
	if got := talentState().keys; len(got) != 3 || got[0] != k1 || got[1] != rot.KeyID || got[2] != rot3.KeyID {
		t.Errorf("the stream's versions: %v", got)
	}
	_, err = s.RotateTalentKey(ctx, RotateTalentKey{Meta: rotationMeta("2024-02-05"), TalentID: tid})
	wantCode(t, err, ECONFLICT)
	if evs := keyEvents(t, st, tid); evs[len(evs)-1].Type != TypeTalentKeyDestroyed {
		t.Errorf("a key event after the erasure: %s", evs[len(evs)-1].Type)
	}
}

// TestKeyRotationRacesErasure rotates a talent's key while its erasure
// is approved, many times: the erasure is carried out, and either the
// rotation came first (its TalentKeyRotated precedes TalentKeyDestroyed,
// and its key went with the others) or it is refused; no key of the
// talent is left either way.
func TestKeyRotationRacesErasure(t *testing.T) {
	ctx := context.Background()
	rotatedSome, refusedSome := false, false
	for round := range 12 {
		keys := newMemKeys()
		st := newTestStore(t)
		s := newServiceOver(st, WithCipher(NewCipher(keys)))
		tid := registerTalent(t, s, "B")
		must(t)(s.RequestErasure(ctx, RequestErasure{Meta: erasureMeta(clerk, "2024-01-15"), TalentID: tid}))
		var wg sync.WaitGroup
		var rotErr, eraseErr error
		var rot KeyRotation
		var out ErasureOutcome
		wg.Add(2)
		go func() {
			defer wg.Done()
			rot, rotErr = s.RotateTalentKey(ctx, RotateTalentKey{Meta: rotationMeta("2024-01-16"), TalentID: tid})
		}()
		go func() {
			defer wg.Done()
			out, eraseErr = s.ApproveErasure(ctx, ApproveErasure{Meta: on(approver2, "2024-01-16"), TalentID: tid})
		}()
		wg.Wait()
		if eraseErr != nil || !out.Erased {
			t.Fatalf("round %d: the erasure: %+v %v", round, out, eraseErr)
		}
		evs := keyEvents(t, st, tid)
		if evs[len(evs)-1].Type != TypeTalentKeyDestroyed {
			t.Fatalf("round %d: %s after the erasure", round, evs[len(evs)-1].Type)
		}
		switch rotErr {
		case nil:
			rotatedSome = true
			if len(evs) != 3 || evs[1].Type != TypeTalentKeyRotated {
				t.Fatalf("round %d: rotated (%+v) but the stream's key events are %d", round, rot, len(evs))
			}
			if _, err := keys.Key(tid, rot.KeyID); err == nil {
				t.Fatalf("round %d: the rotated key survived the erasure", round)
			}
		default:
			refusedSome = true
			wantCode(t, rotErr, ECONFLICT)
			if len(evs) != 2 {
				t.Fatalf("round %d: refused, but the stream has %d key events", round, len(evs))
			}
		}
		if keys.has(tid) {
			t.Fatalf("round %d: a key of the talent is left", round)
		}
		if _, err := s.Cipher().Seal(tid, "name", "x"); err == nil {
			t.Fatalf("round %d: a value is sealed for the erased talent", round)
		}
	}
	t.Logf("rotations first: %v; refused: %v", rotatedSome, refusedSome)
}

// TestKeyRotationRetried: a rotation sent again under its command ID (an
// Idempotency-Key) is answered with the key it recorded, and takes none.
func TestKeyRotationRetried(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	s := newServiceOver(newTestStore(t), WithCipher(NewCipher(keys)))
	tid := registerTalent(t, s, "C")
	m := rotationMeta("2024-02-01")
	m.CommandID = "rotate-once"
	first, err := s.RotateTalentKey(ctx, RotateTalentKey{Meta: m, TalentID: tid})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.RotateTalentKey(ctx, RotateTalentKey{Meta: m, TalentID: tid})
	if err != nil || again.KeyID != first.KeyID || again.Version != 2 || again.Position != first.Position {
		t.Fatalf("a retried rotation answered %+v (%v), the first %+v", again, err, first)
	}
	if id, _, err := keys.DataKey(tid, false); err != nil || id != first.KeyID {
		t.Fatalf("after a retried rotation the newest key is %s, want %s", id, first.KeyID)
	}
	if n := len(keys.keys[tid]); n != 2 {
		t.Errorf("the talent has %d keys, want 2", n)
	}
}
