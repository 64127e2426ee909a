package domain

import (
	"context"
	"encoding/json"
	"errors"

	"talentledger/eventstore"
)

// RotateTalentKey is the command that gives a talent a new data key.
type RotateTalentKey struct {
	Meta     CommandMeta
	TalentID string
}

// KeyRotation is what a rotation of a talent's key did.
type KeyRotation struct {
	Result
	// KeyID names the new key; Version is its version (the first key is
	// version 1).
	KeyID   string `json:"key_id"`
	Version int    `json:"version"`
}

// RotateTalentKey gives the talent a new data key: personal fields
// recorded from now on are sealed under it, those recorded before stay
// under the key they name (each stays readable until the erasure destroys
// every version). Only an admin may (keys are managed as the master key
// is: a rotation opens no personal data); the reason is required. It is
// refused once the talent is erased; racing an erasure, either the
// rotation comes first and the erasure destroys its key with the others,
// or the erasure does and the rotation is refused.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (erased, registered without
// encryption, or the ledger runs without encryption).
func (s *Service) RotateTalentKey(ctx context.Context, c RotateTalentKey) (KeyRotation, error) {
	m, err := s.newMeta(c.Meta, RoleAdmin)
	if err != nil {
		return KeyRotation{}, err
	}
	if err := checkText("reason", m.Reason, true); err != nil {
		return KeyRotation{}, err
	}
	if !validGenerated(prefixTalent, c.TalentID) {
		return KeyRotation{}, Errorf(ENOTFOUND, "talent %q not found", truncate(c.TalentID, 40))
	}
	if s.cipher == nil {
		return KeyRotation{}, Errorf(ECONFLICT, "the ledger runs without encryption: there is no key to rotate")
	}
	check := func(t *talent) error {
		switch {
		case t.reg == nil:
			return Errorf(ENOTFOUND, "talent %s not found", c.TalentID)
		case t.erasure != nil && t.erasure.done != "":
			return Errorf(ECONFLICT, "talent %s was erased on %s: it has no key to rotate", c.TalentID, t.erasure.done)
		case !t.keyed:
			return Errorf(ECONFLICT, "talent %s was registered without encryption: it has no key to rotate", c.TalentID)
		}
		return nil
	}
	t, err := s.loadTalentAny(ctx, c.TalentID)
	if err != nil {
		return KeyRotation{}, err
	}
	// A retry of a rotation already recorded takes no new key: it is
	// answered with the rotation's own, even once the talent is erased.
	prior, err := s.recordedRotation(ctx, m.CommandID, c.TalentID)
	if err != nil {
		return KeyRotation{}, err
	}
	if prior == nil {
		if err := check(&t); err != nil {
			return KeyRotation{}, err
		}
	}
	var keyID string
	if prior == nil {
		// The new key is bound in the key store first (an erasure that
		// destroys the talent's keys after this destroys it too), then
		// named in the log at the stream's version, where an erasure
		// recorded in between refuses it.
		keyID, err = s.cipher.NewKey(c.TalentID, true)
		if errors.Is(err, ErrKeyDestroyed) {
			return KeyRotation{}, Errorf(ECONFLICT, "talent %s is erased: it has no key to rotate", c.TalentID)
		}
		if err != nil {
			return KeyRotation{}, err
		}
	}
	var version int
	decided := false
	res, err := s.repo.execute(ctx, streamTalent(c.TalentID), newTalent, m, func(e *entry) ([]Event, error) {
		decided = true
		t := e.agg.(*talent)
		if err := check(t); err != nil {
			return nil, err
		}
		if keyID == "" {
			return nil, errors.New("domain: a rotation found recorded is no longer in its stream")
		}
		version = len(t.keys) + 1
		return []Event{&TalentKeyRotated{TalentID: c.TalentID, KeyID: keyID, Version: version, RotatedOn: m.today}}, nil
	})
	if err != nil {
		return KeyRotation{}, err
	}
	if prior == nil && !decided {
		// Another delivery of this command recorded its rotation between
		// the look above and this append: answer with the key the log
		// names (the key taken here stays bound to the talent, unused, and
		// goes with its other keys at erasure).
		if prior, err = s.recordedRotation(ctx, m.CommandID, c.TalentID); err != nil {
			return KeyRotation{}, err
		}
		if prior == nil {
			return KeyRotation{}, errors.New("domain: a rotation answered as recorded is not in its stream")
		}
	}
	if prior != nil {
		keyID, version = prior.KeyID, prior.Version
	}
	return KeyRotation{Result: result(c.TalentID, res), KeyID: keyID, Version: version}, nil
}

// recordedRotation returns the rotation the command recorded already in
// the talent's stream, or nil.
func (s *Service) recordedRotation(ctx context.Context, commandID, talentID string) (*TalentKeyRotated, error) {
	stream := streamTalent(talentID)
	done := false
	if err := s.repo.view(ctx, stream, newTalent, func(e *entry) error {
		_, done = e.replayed(commandID)
		return nil
	}); err != nil || !done {
		return nil, err
	}
	id := eventID(commandID, stream, 0)
	it := s.repo.store.ReadStream(ctx, stream, 0)
	defer it.Close()
	for it.Next() {
		if ev := it.Event(); ev.ID == id {
			payload, err := s.repo.codec.Decode(ev.Type, ev.Data)
			r, ok := payload.(*TalentKeyRotated)
			if err != nil || !ok {
				return nil, Errorf(ECONFLICT, "this command ID was used for another command")
			}
			return r, nil
		}
	}
	return nil, it.Err()
}

// OrphanKeys is implemented by a key store that can tell the keys a crash
// may have left bound to a talent by the log only.
type OrphanKeys interface {
	// Orphans lists those keys' IDs.
	Orphans() []string
	// BindOrphan binds one to the talent the log binds it to.
	BindOrphan(talentID, keyID string) error
	// RetireOrphans destroys those the log names nowhere.
	RetireOrphans(keyIDs []string) error
}

// RecoverKeyBindings binds to their talents, in the order of the log, the
// keys the key store holds unbound although the log names them
// (TalentKeyCreated, TalentKeyRotated): bindings that a crash caught
// before they reached the disk (they are not synced on the command's
// path; the event is). It reads the whole log, and only when the key
// store has such keys; it returns how many it bound. Run it before the
// ledger takes commands.
//
// With sole set (the log has no other writer, and none of an earlier
// process can still land: the embedded store) the orphans the log names
// nowhere are destroyed: pooled keys never handed out, which sealed
// nothing. On EventStoreDB an append the crashed process sent might still
// land after the scan, so they are kept, and looked for at each start.
func RecoverKeyBindings(ctx context.Context, store eventstore.Store, c *Cipher, sole bool) (int, error) {
	if c == nil {
		return 0, nil
	}
	ks, ok := c.keys.(OrphanKeys)
	if !ok {
		return 0, nil
	}
	orphans := map[string]bool{}
	for _, id := range ks.Orphans() {
		orphans[id] = true
	}
	if len(orphans) == 0 {
		return 0, nil
	}
	it := store.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	n := 0
	for it.Next() {
		ev := it.Event()
		var talentID, keyID string
		name, _, _ := ParseEventType(ev.Type)
		switch name {
		case TypeTalentKeyCreated, TypeTalentKeyRotated:
			var k struct {
				TalentID string `json:"talent_id"`
				KeyID    string `json:"key_id"`
			}
			if err := json.Unmarshal(ev.Data, &k); err != nil {
				return n, err
			}
			talentID, keyID = k.TalentID, k.KeyID
		default:
			continue
		}
		if !orphans[keyID] {
			continue
		}
		err := ks.BindOrphan(talentID, keyID)
		if errors.Is(err, ErrKeyDestroyed) {
			// Erased: the erasure destroys it by name.
			err = c.keys.Destroy(talentID, keyID)
		}
		if err != nil {
			return n, err
		}
		delete(orphans, keyID)
		n++
	}
	if err := it.Err(); err != nil {
		return n, err
	}
	if sole && len(orphans) > 0 {
		ids := make([]string, 0, len(orphans))
		for id := range orphans {
			ids = append(ids, id)
		}
		return n, ks.RetireOrphans(ids)
	}
	return n, nil
}
