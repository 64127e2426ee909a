package domain

import (
	"context"
	"errors"
	"slices"

	"talentledger/eventstore"
)

// Erasure of a talent's personal data (PIPL art. 47): a clerk requests it
// with a reason and a document, an approver other than the clerk approves
// it, and it is carried out by destroying the talent's data key once the
// talent has no open grant, no outstanding clawback, and the retention
// period of every program that paid it has run since its last movement of
// money. The financial records (amounts, dates, accounts, IDs) stay: only
// the sealed personal fields become unreadable.

// DefaultRetentionMonths is how long a talent's personal data is kept
// after the last payment, recovery or waiver of any of its grants, for a
// program that sets no retention of its own: five years, the period in
// which a subsidy obtained improperly may still be pursued (Administrative
// Penalty Law art. 36) and so its recipient must still be identifiable.
const DefaultRetentionMonths = 60

// Event types of keys and erasure, all on the talent's stream.
const (
	TypeTalentKeyCreated        = "TalentKeyCreated"
	TypeTalentKeyRotated        = "TalentKeyRotated"
	TypeTalentKeyDestroyed      = "TalentKeyDestroyed"
	TypeTalentErasureRequested  = "TalentErasureRequested"
	TypeTalentErasureApproved   = "TalentErasureApproved"
	TypePersonalDataUnmasked    = "PersonalDataUnmasked"
	TypeMasterKeyRotated        = "MasterKeyRotated"
	erasureSystemPrincipal      = "system"
	maxErasureDecisionAttempts  = 8
	unmaskReasonRequiredMessage = "reason is required: an unmasking is recorded with why it was needed"
)

// TalentKeyCreated records that the talent's personal fields are sealed
// under a data key of its own, kept in the key store (never in the log).
type TalentKeyCreated struct {
	TalentID string `json:"talent_id"`
	// KeyID names the key (its first version), which this event binds to
	// the talent; empty before key versions, when the key's ID is the
	// talent's.
	KeyID string `json:"key_id,omitempty"`
}

// TalentKeyRotated records that the talent's personal fields are sealed
// from now on under a new data key, its version Version, named by KeyID
// (the key itself is in the key store, never in the log). Fields sealed
// before stay under the key they name, readable until the erasure
// destroys every version.
type TalentKeyRotated struct {
	TalentID  string `json:"talent_id"`
	KeyID     string `json:"key_id"`
	Version   int    `json:"version"`
	RotatedOn string `json:"rotated_on"`
}

// TalentKeyDestroyed records that the talent's data key was destroyed:
// its personal fields are erased. It carries out an approved erasure.
type TalentKeyDestroyed struct {
	TalentID string `json:"talent_id"`
	// ErasedOn is the date the erasure was carried out.
	ErasedOn string `json:"erased_on"`
}

// TalentErasureRequested asks for the talent's personal data to be
// erased; the reason and the document are the event's metadata.
type TalentErasureRequested struct {
	TalentID    string `json:"talent_id"`
	RequestedOn string `json:"requested_on"`
}

// TalentErasureApproved approves a requested erasure. It is carried out
// (TalentKeyDestroyed) on NotBefore or at the first check after it.
type TalentErasureApproved struct {
	TalentID  string `json:"talent_id"`
	NotBefore string `json:"not_before"`
}

// PersonalDataUnmasked records that an auditor saw the talent's masked
// fields (ID number, bank account) in full; the reason is the metadata's.
type PersonalDataUnmasked struct {
	TalentID string   `json:"talent_id"`
	Fields   []string `json:"fields"`
}

// MasterKeyRotated records that every data key in the key store was
// wrapped again under a new master key (the keys themselves, and so the
// sealed data, are unchanged). It goes to the key store's stream.
type MasterKeyRotated struct {
	// Keys is how many data keys were wrapped again.
	Keys      int    `json:"keys"`
	RotatedOn string `json:"rotated_on"`
}

// EventType implements Event.
func (*MasterKeyRotated) EventType() string { return TypeMasterKeyRotated }

// streamKeyStore is the stream of the key store's own events.
const streamKeyStore = "keystore"

// keyStoreLog is the key store stream's state: nothing is decided on it.
type keyStoreLog struct{}

func (*keyStoreLog) apply(Event) {}

// RecordMasterKeyRotation records a rotation of the master key, done
// offline by an operator acting as admin.
//
// Errors: EINVALID.
func (s *Service) RecordMasterKeyRotation(ctx context.Context, meta CommandMeta, keys int) (Result, error) {
	m, err := s.newMeta(meta, RoleAdmin)
	if err != nil {
		return Result{}, err
	}
	if keys < 0 {
		return Result{}, Errorf(EINVALID, "keys must not be negative")
	}
	res, err := s.repo.execute(ctx, streamKeyStore, func() aggregate { return &keyStoreLog{} }, m, func(*entry) ([]Event, error) {
		return []Event{&MasterKeyRotated{Keys: keys, RotatedOn: m.today}}, nil
	})
	return result(streamKeyStore, res), err
}

// EventType implements Event.
func (*TalentKeyCreated) EventType() string { return TypeTalentKeyCreated }

// EventType implements Event.
func (*TalentKeyRotated) EventType() string { return TypeTalentKeyRotated }

// EventType implements Event.
func (*TalentKeyDestroyed) EventType() string { return TypeTalentKeyDestroyed }

// EventType implements Event.
func (*TalentErasureRequested) EventType() string { return TypeTalentErasureRequested }

// EventType implements Event.
func (*TalentErasureApproved) EventType() string { return TypeTalentErasureApproved }

// EventType implements Event.
func (*PersonalDataUnmasked) EventType() string { return TypePersonalDataUnmasked }

// erasure is a talent's erasure as its stream has it.
type erasure struct {
	requestedBy string
	approved    bool
	notBefore   string
	done        string // date carried out
}

// WithCipher makes the service seal personal fields with c. Without it
// they are recorded in plain text and cannot be erased.
func WithCipher(c *Cipher) Option { return func(s *Service) { s.cipher = c } }

// Cipher returns the service's cipher, nil when it seals nothing.
func (s *Service) Cipher() *Cipher { return s.cipher }

// seal seals the personal fields of evs for the talent.
func (s *Service) seal(talentID string, evs ...Event) error {
	for _, ev := range evs {
		if err := s.cipher.sealEvent(talentID, ev); err != nil {
			return sealError(talentID, err)
		}
	}
	return nil
}

// sealUnder seals the personal fields of ev under one of the talent's
// keys.
func (s *Service) sealUnder(talentID, keyID string, ev Event) error {
	return sealError(talentID, s.cipher.sealEventUnder(talentID, keyID, ev))
}

func sealError(talentID string, err error) error {
	if errors.Is(err, ErrKeyDestroyed) {
		return Errorf(ECONFLICT, "talent %s is erased: no personal data is recorded for it", talentID)
	}
	return err
}

// refuseErased refuses a command that would record or pay anything for a
// talent whose erasure is approved or carried out.
func (t *talent) refuseErased() error {
	switch {
	case t.erasure == nil || t.erasure.requestedBy == "" && t.erasure.done == "":
		return nil
	case t.erasure.done != "":
		return Errorf(ECONFLICT, "talent %s was erased on %s", t.reg.TalentID, t.erasure.done)
	case t.erasure.approved:
		return Errorf(ECONFLICT, "talent %s is to be erased on or after %s", t.reg.TalentID, t.erasure.notBefore)
	}
	return nil
}

// RequestErasure is the command that asks for a talent's personal data to
// be erased.
type RequestErasure struct {
	Meta     CommandMeta
	TalentID string
}

// RequestErasure records a request for erasure. Only a clerk may; the
// reason and the document reference are required.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (already requested or erased, or
// personal data recorded without encryption).
func (s *Service) RequestErasure(ctx context.Context, c RequestErasure) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleClerk)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("reason", m.Reason, true); err != nil {
		return Result{}, err
	}
	if err := checkText("document_ref", m.DocumentRef, true); err != nil {
		return Result{}, err
	}
	if !validGenerated(prefixTalent, c.TalentID) {
		return Result{}, Errorf(ENOTFOUND, "talent %q not found", truncate(c.TalentID, 40))
	}
	res, err := s.repo.execute(ctx, streamTalent(c.TalentID), newTalent, m, func(e *entry) ([]Event, error) {
		t := e.agg.(*talent)
		switch {
		case t.reg == nil:
			return nil, Errorf(ENOTFOUND, "talent %s not found", c.TalentID)
		case !t.keyed:
			return nil, Errorf(ECONFLICT, "talent %s was registered without encryption: its personal data cannot be erased by destroying a key", c.TalentID)
		case t.erasure != nil && t.erasure.done != "":
			return nil, Errorf(ECONFLICT, "talent %s was erased on %s", c.TalentID, t.erasure.done)
		case t.erasure != nil:
			return nil, Errorf(ECONFLICT, "an erasure of talent %s is already requested", c.TalentID)
		}
		return []Event{&TalentErasureRequested{TalentID: c.TalentID, RequestedOn: m.today}}, nil
	})
	return result(c.TalentID, res), err
}

// ApproveErasure is the command that approves a requested erasure.
type ApproveErasure struct {
	Meta     CommandMeta
	TalentID string
}

// ErasureOutcome says what an approval or a check of an erasure did.
type ErasureOutcome struct {
	Result
	// Erased is set when the key was destroyed; otherwise the erasure is
	// scheduled for NotBefore.
	Erased    bool   `json:"erased"`
	NotBefore string `json:"not_before"`
}

// ApproveErasure approves a requested erasure and carries it out at once
// when nothing holds it back, or schedules it for the day the last
// retention period ends. Only an approver may, and not the clerk who
// requested it. An open grant or an outstanding clawback refuses the
// approval: the talent must be paid out or settled first.
//
// Errors: ENOTFOUND, ECONFLICT (nothing requested, already approved, an
// open grant, an outstanding clawback), ESEGREGATION.
func (s *Service) ApproveErasure(ctx context.Context, c ApproveErasure) (ErasureOutcome, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return ErasureOutcome{}, err
	}
	if !validGenerated(prefixTalent, c.TalentID) {
		return ErasureOutcome{}, Errorf(ENOTFOUND, "talent %q not found", truncate(c.TalentID, 40))
	}
	return s.decideErasure(ctx, m, c.TalentID, func(t *talent) error {
		switch {
		case t.reg == nil:
			return Errorf(ENOTFOUND, "talent %s not found", c.TalentID)
		case t.erasure == nil:
			return Errorf(ECONFLICT, "no erasure of talent %s is requested", c.TalentID)
		case t.erasure.done != "":
			return Errorf(ECONFLICT, "talent %s was erased on %s", c.TalentID, t.erasure.done)
		case t.erasure.approved:
			return Errorf(ECONFLICT, "the erasure of talent %s is already approved, for %s", c.TalentID, t.erasure.notBefore)
		case t.erasure.requestedBy == m.Actor.Principal:
			return Errorf(ESEGREGATION, "the clerk who requested an erasure may not approve it")
		}
		return nil
	}, true)
}

// CarryOutErasure carries out an approved erasure whose day has come: the
// scheduler's command, run as the system. An erasure still held back
// stays scheduled (for a later day, when a grant paid since).
//
// Errors: ENOTFOUND, ECONFLICT (not approved, already erased, an open
// grant, an outstanding clawback).
func (s *Service) CarryOutErasure(ctx context.Context, talentID string) (ErasureOutcome, error) {
	m, err := s.newMeta(CommandMeta{Actor: Actor{Principal: erasureSystemPrincipal, Role: RoleApprover},
		Reason: "scheduled erasure"})
	if err != nil {
		return ErasureOutcome{}, err
	}
	if !validGenerated(prefixTalent, talentID) {
		return ErasureOutcome{}, Errorf(ENOTFOUND, "talent %q not found", truncate(talentID, 40))
	}
	return s.decideErasure(ctx, m, talentID, func(t *talent) error {
		switch {
		case t.reg == nil:
			return Errorf(ENOTFOUND, "talent %s not found", talentID)
		case t.erasure == nil || !t.erasure.approved:
			return Errorf(ECONFLICT, "no erasure of talent %s is approved", talentID)
		case t.erasure.done != "":
			return Errorf(ECONFLICT, "talent %s was erased on %s", talentID, t.erasure.done)
		}
		return nil
	}, false)
}

// errTalentMoved makes an erasure decide again: the talent's stream
// gained a grant between the look at its grants and the append.
var errTalentMoved = errors.New("the talent's grants changed while the erasure was decided")

// decideErasure decides an erasure on the event store, never on a read
// model: the talent's grants are those its stream has reserved for (every
// approval, hence every grant that can pay, reserves there first), each
// read from its own stream; the decision is appended to the talent's
// stream at the version whose grants were read, so an approval appended
// in between makes it decide again. An approval or a payment after it
// finds the talent erased or scheduled and is refused. approve records
// the approval; otherwise an approved erasure is carried out when due.
func (s *Service) decideErasure(ctx context.Context, m *meta, talentID string, check func(*talent) error, approve bool) (ErasureOutcome, error) {
	for attempt := 0; ; attempt++ {
		t, err := s.loadTalentAny(ctx, talentID)
		if err != nil {
			return ErasureOutcome{}, err
		}
		if err := check(&t); err != nil {
			return ErasureOutcome{}, err
		}
		grants := slices.Clone(t.entOrder)
		notBefore, err := s.erasureHold(ctx, talentID, grants, m.today)
		if err != nil {
			return ErasureOutcome{}, err
		}
		erase := notBefore <= m.today
		out := ErasureOutcome{Erased: erase, NotBefore: max(notBefore, m.today)}
		var keys []string
		if !approve && !erase {
			out.Result = Result{ID: talentID}
			return out, nil
		}
		res, err := s.repo.execute(ctx, streamTalent(talentID), newTalent, m, func(e *entry) ([]Event, error) {
			t := e.agg.(*talent)
			if err := check(t); err != nil {
				return nil, err
			}
			if !slices.Equal(t.entOrder, grants) {
				return nil, errTalentMoved
			}
			keys = t.keys
			var evs []Event
			if approve {
				evs = append(evs, &TalentErasureApproved{TalentID: talentID, NotBefore: out.NotBefore})
			}
			if erase {
				evs = append(evs, &TalentKeyDestroyed{TalentID: talentID, ErasedOn: m.today})
			}
			return evs, nil
		})
		if errors.Is(err, errTalentMoved) && attempt < maxErasureDecisionAttempts {
			continue
		}
		if err != nil {
			return ErasureOutcome{}, err
		}
		out.Result = result(talentID, res)
		if erase {
			// Recorded first, destroyed second: a crash between leaves a
			// key the scheduler destroys at the next start (DestroyErased),
			// never a key gone without the event that says why. Every
			// version goes, those the stream names included.
			if err := s.cipher.Destroy(talentID, keys...); err != nil {
				return out, err
			}
		}
		return out, nil
	}
}

// erasureHold returns the first day the talent's personal data may be
// erased, given its grants, or refuses while one is open or owes a
// clawback. Each grant is read from its stream.
func (s *Service) erasureHold(ctx context.Context, talentID string, grants []string, today string) (string, error) {
	hold := ""
	for _, id := range grants {
		var g grant
		if err := s.repo.view(ctx, streamGrant(id), newGrant, func(e *entry) error {
			cp := *e.agg.(*grant)
			g = cp
			return nil
		}); err != nil {
			return "", err
		}
		if g.applied == nil {
			continue
		}
		switch g.state {
		case GrantStateCompleted, GrantStateTerminated, GrantStateRejected:
		default:
			return "", Errorf(ECONFLICT, "talent %s has grant %s open (%s): its personal data is needed until it is completed or terminated", talentID, id, g.state)
		}
		if g.outstanding().Sign() > 0 {
			return "", Errorf(ECONFLICT, "talent %s owes %s on grant %s: its personal data is needed until the clawback is settled", talentID, g.outstanding(), id)
		}
		if g.lastMoney == "" {
			continue
		}
		def, err := s.loadProgram(ctx, g.applied.ProgramID)
		if err != nil {
			return "", err
		}
		months := def.RetentionMonths
		if months == 0 {
			months = DefaultRetentionMonths
		}
		until := AddMonths(g.lastMoney, months)
		// A completed grant whose service period is still running may
		// yet be terminated and clawed back.
		if g.termination == nil && g.approval != nil && g.approval.ServiceMonths > 0 && g.approval.ServiceStart != "" {
			until = max(until, AddMonths(g.approval.ServiceStart, g.approval.ServiceMonths))
		}
		hold = max(hold, until)
	}
	return hold, nil
}

// loadTalentAny is loadTalent for a talent that may be erased.
func (s *Service) loadTalentAny(ctx context.Context, id string) (talent, error) {
	var t talent
	err := s.repo.view(ctx, streamTalent(id), newTalent, func(e *entry) error {
		t = *e.agg.(*talent)
		t.ents = nil
		t.entOrder = slices.Clone(t.entOrder)
		if t.erasure != nil {
			cp := *t.erasure
			t.erasure = &cp
		}
		return nil
	})
	return t, err
}

// UnmaskPersonalData is the command an auditor gives to see a talent's
// masked fields in full.
type UnmaskPersonalData struct {
	Meta     CommandMeta
	TalentID string
}

// UnmaskPersonalData records that an auditor saw the talent's masked
// fields in full, and why. Only an auditor may; the reason is required.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (erased).
func (s *Service) UnmaskPersonalData(ctx context.Context, c UnmaskPersonalData) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleAuditor)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("reason", m.Reason, true); err != nil {
		return Result{}, Errorf(EINVALID, unmaskReasonRequiredMessage)
	}
	if !validGenerated(prefixTalent, c.TalentID) {
		return Result{}, Errorf(ENOTFOUND, "talent %q not found", truncate(c.TalentID, 40))
	}
	fields := make([]string, 0, len(maskedFields))
	for f := range maskedFields {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	res, err := s.repo.execute(ctx, streamTalent(c.TalentID), newTalent, m, func(e *entry) ([]Event, error) {
		t := e.agg.(*talent)
		switch {
		case t.reg == nil:
			return nil, Errorf(ENOTFOUND, "talent %s not found", c.TalentID)
		case t.erasure != nil && t.erasure.done != "":
			return nil, Errorf(ECONFLICT, "talent %s was erased on %s", c.TalentID, t.erasure.done)
		}
		return []Event{&PersonalDataUnmasked{TalentID: c.TalentID, Fields: fields}}, nil
	})
	return result(c.TalentID, res), err
}

// applyErasure folds the key and erasure events into a talent. The
// erasure is replaced, never changed in place: copies of the talent taken
// by loadTalent share it.
func (t *talent) applyErasure(e Event, md *eventstore.Metadata) {
	next := func() *erasure {
		if t.erasure == nil {
			return &erasure{}
		}
		cp := *t.erasure
		return &cp
	}
	switch e := e.(type) {
	case *TalentKeyCreated:
		t.keyed = true
		id := e.KeyID
		if id == "" {
			id = e.TalentID
		}
		t.keys = append(slices.Clip(t.keys), id)
	case *TalentKeyRotated:
		t.keys = append(slices.Clip(t.keys), e.KeyID)
	case *TalentErasureRequested:
		t.erasure = &erasure{requestedBy: md.Principal}
	case *TalentErasureApproved:
		er := next()
		er.approved, er.notBefore = true, e.NotBefore
		t.erasure = er
	case *TalentKeyDestroyed:
		er := next()
		er.done = e.ErasedOn
		t.erasure = er
	}
}
