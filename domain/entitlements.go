package domain

import (
	"context"
	"slices"

	"talentledger/eventstore"
)

// Entitlement is what one talent may receive from a program in a lifetime,
// beyond the tier cap, which always bounds the total of all the talent's
// awards under the program. It is enforced on the talent's stream, under
// optimistic concurrency, so that it holds however approvals are spread
// over processes.
type Entitlement struct {
	// Once allows a single grant per talent (a housing purchase).
	Once bool `json:"once,omitempty"`
	// MaxMonths bounds the monthly installments of all the talent's
	// grants under the program.
	MaxMonths int `json:"max_months,omitempty"`
	// MaxPerYear bounds what the talent's grants under the program pay in
	// one calendar year, by the installments' due dates.
	MaxPerYear *Money `json:"max_per_year,omitempty"`
	// ExclusiveKinds lists program kinds (this program's own among them,
	// for one apartment at a time) whose grants to the same talent may not
	// pay for the same months as a grant of this program.
	ExclusiveKinds []string `json:"exclusive_kinds,omitempty"`
}

func (en *Entitlement) validate() error {
	if en.MaxMonths < 0 || en.MaxMonths > 1200 {
		return Errorf(EINVALID, "entitlement max_months must be between 0 and 1200")
	}
	if en.MaxPerYear != nil {
		if err := en.MaxPerYear.CheckAmount("entitlement max_per_year"); err != nil {
			return err
		}
	}
	if len(en.ExclusiveKinds) > len(ProgramKinds) {
		return Errorf(EINVALID, "entitlement exclusive_kinds lists at most %d kinds", len(ProgramKinds))
	}
	for _, k := range en.ExclusiveKinds {
		if !contains(ProgramKinds, k) {
			return Errorf(EINVALID, "entitlement exclusive kind %q unknown; kinds are %v", truncate(k, 40), ProgramKinds)
		}
	}
	return nil
}

// EntitlementReserved records, on the talent's stream, that an approval
// takes its share of what the talent may receive. It is the first step of
// an approval and carries the whole approval, so that an approval
// interrupted after it is completed as decided (see Reconcile), and a
// retried approval continues it instead of reserving again: a grant has at
// most one live reservation.
type EntitlementReserved struct {
	TalentID  string        `json:"talent_id"`
	ProgramID string        `json:"program_id"`
	Kind      string        `json:"kind"`
	GrantID   string        `json:"grant_id"`
	Approval  GrantApproved `json:"approval"`
}

// EntitlementReleased gives back a grant's entitlement: the installments
// listed (cancelled at termination) no longer count, or, when none are
// listed, nothing of the grant counts (its approval did not complete).
type EntitlementReleased struct {
	TalentID     string `json:"talent_id"`
	ProgramID    string `json:"program_id"`
	GrantID      string `json:"grant_id"`
	Installments []int  `json:"installments,omitempty"`
	Reason       string `json:"reason"`
}

// Event types of entitlements.
const (
	TypeEntitlementReserved = "EntitlementReserved"
	TypeEntitlementReleased = "EntitlementReleased"
)

// EventType implements Event.
func (*EntitlementReserved) EventType() string { return TypeEntitlementReserved }

// EventType implements Event.
func (*EntitlementReleased) EventType() string { return TypeEntitlementReleased }

// entitlementUse is one grant's reservation on its talent's stream.
type entitlementUse struct {
	kind     string
	approval GrantApproved
	// void: the approval did not complete, so nothing of it counts.
	void      bool
	cancelled map[int]bool
	// Who decided the approval, and when, for completing it as decided.
	actor       Actor
	date        string
	correlation string
	documentRef string
}

// counted returns the installments of the use that still count.
func (u *entitlementUse) counted() []Installment {
	if u.void {
		return nil
	}
	out := make([]Installment, 0, len(u.approval.Installments))
	for _, in := range u.approval.Installments {
		if !u.cancelled[in.N] {
			out = append(out, in)
		}
	}
	return out
}

// total is the part of the award that still counts against the tier cap.
func (u *entitlementUse) total() Money {
	t := u.approval.Award
	for _, in := range u.approval.Installments {
		if u.cancelled[in.N] {
			t = t.Sub(in.Amount)
		}
	}
	return t.Max(Zero)
}

func (t *talent) applyEntitlement(e Event, md *eventstore.Metadata) {
	switch e := e.(type) {
	case *EntitlementReserved:
		if t.ents == nil {
			t.ents = map[string]*entitlementUse{}
		}
		t.ents[e.GrantID] = &entitlementUse{kind: e.Kind, approval: e.Approval, cancelled: map[int]bool{},
			actor: Actor{Principal: md.Principal, Role: md.Role}, date: businessDate(md),
			correlation: md.CorrelationID, documentRef: md.DocumentRef}
		t.entOrder = append(t.entOrder, e.GrantID)
	case *EntitlementReleased:
		u := t.ents[e.GrantID]
		if u == nil {
			return
		}
		if len(e.Installments) == 0 {
			u.void = true
		}
		for _, n := range e.Installments {
			u.cancelled[n] = true
		}
	}
}

// entitled checks that approval a fits what the talent may still receive
// under program def, given every live reservation on the stream.
func (t *talent) entitled(def *ProgramDefined, a *GrantApproved) error {
	if err := t.refuseErased(); err != nil {
		return err
	}
	tier := t.reg.Tier
	cap := def.Caps[tier]
	en := def.Entitlement
	total, months := a.Award, 0
	if def.Schedule.MonthlyAmount != nil {
		months = len(a.Installments)
	}
	perYear := map[string]Money{}
	for _, in := range a.Installments {
		perYear[in.DueDate[:4]] = perYear[in.DueDate[:4]].Add(in.Amount)
	}
	newMonths := map[string]bool{}
	for _, in := range a.Installments {
		newMonths[in.DueDate[:7]] = true
	}
	for _, gid := range t.entOrder {
		u := t.ents[gid]
		if u.void || gid == a.GrantID {
			continue
		}
		counted := u.counted()
		if slices.Contains(en.ExclusiveKinds, u.kind) {
			for _, in := range counted {
				if newMonths[in.DueDate[:7]] {
					return Errorf(EENTITLEMENT, "talent %s already receives %s grant %s for %s; the months may not overlap",
						t.reg.TalentID, u.kind, gid, in.DueDate[:7])
				}
			}
		}
		if u.approval.ProgramID != def.ProgramID {
			continue
		}
		if en.Once {
			return Errorf(EENTITLEMENT, "talent %s already has grant %s under program %s, which allows one per talent", t.reg.TalentID, gid, def.ProgramID)
		}
		total = total.Add(u.total())
		if def.Schedule.MonthlyAmount != nil {
			months += len(counted)
		}
		for _, in := range counted {
			perYear[in.DueDate[:4]] = perYear[in.DueDate[:4]].Add(in.Amount)
		}
	}
	if total.Cmp(cap) > 0 {
		return Errorf(EENTITLEMENT, "talent %s would receive %s under program %s, above the tier %s cap of %s for all grants", t.reg.TalentID, total, def.ProgramID, tier, cap)
	}
	if en.MaxMonths > 0 && months > en.MaxMonths {
		return Errorf(EENTITLEMENT, "talent %s would receive %d months under program %s, above its %d", t.reg.TalentID, months, def.ProgramID, en.MaxMonths)
	}
	if en.MaxPerYear != nil {
		years := make([]string, 0, len(perYear))
		for y := range perYear {
			years = append(years, y)
		}
		slices.Sort(years)
		for _, y := range years {
			if perYear[y].Cmp(*en.MaxPerYear) > 0 {
				return Errorf(EENTITLEMENT, "talent %s would receive %s under program %s in %s, above its %s a year", t.reg.TalentID, perYear[y], def.ProgramID, y, *en.MaxPerYear)
			}
		}
	}
	return nil
}

// reserveEntitlement appends EntitlementReserved for approval a to the
// talent's stream, unless the grant already has a live reservation there.
// It returns the approval in force, which is the earlier one if there was
// one (a retried or concurrent approval continues what was decided first,
// whatever its date), and the metadata to carry out its further steps with.
func (s *Service) reserveEntitlement(ctx context.Context, m *meta, def *ProgramDefined, a GrantApproved) (GrantApproved, *meta, error) {
	stream := streamTalent(a.TalentID)
	var held *entitlementUse
	find := func(e *entry) *entitlementUse {
		if u := e.agg.(*talent).ents[a.GrantID]; u != nil && !u.void {
			cp := *u
			return &cp
		}
		return nil
	}
	_, err := s.repo.execute(ctx, stream, newTalent, m.secondary(), func(e *entry) ([]Event, error) {
		t := e.agg.(*talent)
		if t.reg == nil {
			return nil, Errorf(ENOTFOUND, "talent %s not found", a.TalentID)
		}
		if held = find(e); held != nil {
			return nil, nil
		}
		if err := t.entitled(def, &a); err != nil {
			return nil, err
		}
		return []Event{&EntitlementReserved{TalentID: a.TalentID, ProgramID: a.ProgramID, Kind: def.Kind, GrantID: a.GrantID, Approval: a}}, nil
	})
	if err != nil {
		return GrantApproved{}, nil, err
	}
	if held == nil {
		// This command had reserved already (a retry); read what it did.
		if err := s.repo.view(ctx, stream, newTalent, func(e *entry) error {
			held = find(e)
			return nil
		}); err != nil {
			return GrantApproved{}, nil, err
		}
		if held == nil {
			return GrantApproved{}, nil, Errorf(ECONFLICT, "the approval of grant %s was undone; approve it again", a.GrantID)
		}
	}
	if held.approval.CommandID == m.CommandID {
		return held.approval, m, nil
	}
	return held.approval, s.continuation(held, m.Actor.Principal), nil
}

// continuation is the metadata for completing an approval that u's
// approver decided: the steps are recorded as theirs, with the business
// date they chose, and completedBy names who completed them.
func (s *Service) continuation(u *entitlementUse, completedBy string) *meta {
	m := s.systemMeta(u.approval.CommandID, "")
	m.Actor = u.actor
	m.CorrelationID = u.correlation
	m.DocumentRef = u.documentRef
	m.date = u.date
	m.EffectiveDate = u.date
	m.completedBy = completedBy
	return m
}

// releaseEntitlement appends EntitlementReleased for a grant to its
// talent's stream, with event IDs derived from commandID: the listed
// installments, or the whole reservation when none are listed. It does
// nothing when the grant has no live reservation.
func (s *Service) releaseEntitlement(ctx context.Context, m *meta, talentID, grantID string, installments []int, reason string) (eventstore.AppendResult, error) {
	stream := streamTalent(talentID)
	return s.repo.execute(ctx, stream, newTalent, m, func(e *entry) ([]Event, error) {
		u := e.agg.(*talent).ents[grantID]
		if u == nil || u.void {
			return nil, nil
		}
		var left []int
		for _, n := range installments {
			if !u.cancelled[n] {
				left = append(left, n)
			}
		}
		if len(installments) > 0 && len(left) == 0 {
			return nil, nil
		}
		return []Event{&EntitlementReleased{TalentID: talentID, ProgramID: u.approval.ProgramID, GrantID: grantID,
			Installments: left, Reason: truncate(reason, MaxTextLen)}}, nil
	})
}

// entitlementReleased reports whether the command with this ID released
// the grant's entitlement on the talent's stream.
func (s *Service) entitlementReleased(ctx context.Context, talentID, commandID string) (bool, error) {
	stream := streamTalent(talentID)
	done := false
	err := s.repo.view(ctx, stream, newTalent, func(e *entry) error {
		_, done = e.ids[eventID(commandID, stream, 0)]
		return nil
	})
	return done, err
}

// stackingDeduction sums what the talent has been paid under programs whose
// kinds this program deducts (rent already received comes off a later
// housing-purchase award), and names the grants it came from. The grants
// are found on the talent's stream and their payments read from their own
// streams, never from a read model that may lag.
func (s *Service) stackingDeduction(ctx context.Context, def *ProgramDefined, a *GrantApplied) (Money, []string, error) {
	if len(def.DeductKinds) == 0 {
		return Zero, nil, nil
	}
	var ids []string
	if err := s.repo.view(ctx, streamTalent(a.TalentID), newTalent, func(e *entry) error {
		t := e.agg.(*talent)
		for _, gid := range t.entOrder {
			if u := t.ents[gid]; gid != a.GrantID && slices.Contains(def.DeductKinds, u.kind) {
				ids = append(ids, gid)
			}
		}
		return nil
	}); err != nil {
		return Zero, nil, err
	}
	total := Zero
	var from []string
	for _, id := range ids {
		var paid Money
		if err := s.repo.view(ctx, streamGrant(id), newGrant, func(e *entry) error {
			if g := e.agg.(*grant); g.applied != nil && g.applied.TalentID == a.TalentID {
				paid = g.paid
			}
			return nil
		}); err != nil {
			return Zero, nil, err
		}
		if paid.Sign() > 0 {
			total = total.Add(paid)
			from = append(from, id)
		}
	}
	return total, from, nil
}
