package domain

import "context"

// RegisterTalent is the command that records a talent.
type RegisterTalent struct {
	Meta             CommandMeta
	Name             string
	PermitCategory   string
	Tier             string
	Employer         string
	OverseasEngineer bool
	// BankAccount and BankName, optional, are where payments are sent.
	BankAccount string
	BankName    string
}

// RegisterTalent records a talent and returns its new ID. Only a clerk may.
//
// Errors: EINVALID.
func (s *Service) RegisterTalent(ctx context.Context, c RegisterTalent) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleClerk)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("name", c.Name, true); err != nil {
		return Result{}, err
	}
	if err := checkText("employer", c.Employer, true); err != nil {
		return Result{}, err
	}
	if err := checkText("bank_account", c.BankAccount, false); err != nil {
		return Result{}, err
	}
	if err := checkText("bank_name", c.BankName, false); err != nil {
		return Result{}, err
	}
	if !contains(Tiers, c.Tier) {
		return Result{}, Errorf(EINVALID, "tier must be one of %v", Tiers)
	}
	if c.PermitCategory != "" && !contains(PermitCategories, c.PermitCategory) {
		return Result{}, Errorf(EINVALID, "permit_category must be one of %v or empty", PermitCategories)
	}
	id := newID(prefixTalent, m.CommandID, "talent")
	ev := &TalentRegistered{TalentID: id, Name: c.Name, PermitCategory: c.PermitCategory, Tier: c.Tier,
		Employer: c.Employer, OverseasEngineer: c.OverseasEngineer, RegisteredOn: m.date, BankAccount: c.BankAccount, BankName: c.BankName}
	res, err := s.repo.execute(ctx, streamTalent(id), newTalent, m, func(e *entry) ([]Event, error) {
		if e.agg.(*talent).reg != nil {
			return nil, Errorf(ECONFLICT, "talent %s already exists", id)
		}
		return []Event{ev}, nil
	})
	return result(id, res), err
}

func newTalent() aggregate { return &talent{} }

// ReportDeparture is the command that records a talent leaving local
// employment.
type ReportDeparture struct {
	Meta          CommandMeta
	TalentID      string
	DepartureDate string
}

// ReportDeparture records a departure. Only a clerk may.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (already departed).
func (s *Service) ReportDeparture(ctx context.Context, c ReportDeparture) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleClerk)
	if err != nil {
		return Result{}, err
	}
	if !validGenerated(prefixTalent, c.TalentID) {
		return Result{}, Errorf(ENOTFOUND, "talent %q not found", truncate(c.TalentID, 40))
	}
	if _, err := ParseDate(c.DepartureDate); err != nil {
		return Result{}, err
	}
	res, err := s.repo.execute(ctx, streamTalent(c.TalentID), newTalent, m, func(e *entry) ([]Event, error) {
		t := e.agg.(*talent)
		switch {
		case t.reg == nil:
			return nil, Errorf(ENOTFOUND, "talent %s not found", c.TalentID)
		case t.departure != "":
			return nil, Errorf(ECONFLICT, "talent %s already departed on %s", c.TalentID, t.departure)
		case c.DepartureDate < t.reg.RegisteredOn:
			return nil, Errorf(EINVALID, "departure date is before registration on %s", t.reg.RegisteredOn)
		}
		return []Event{&TalentDeparted{TalentID: c.TalentID, DepartureDate: c.DepartureDate}}, nil
	})
	return result(c.TalentID, res), err
}

// loadTalent returns a copy of a talent's state or ENOTFOUND.
func (s *Service) loadTalent(ctx context.Context, id string) (talent, error) {
	if !validGenerated(prefixTalent, id) {
		return talent{}, Errorf(ENOTFOUND, "talent %q not found", truncate(id, 40))
	}
	var t talent
	err := s.repo.view(ctx, streamTalent(id), newTalent, func(e *entry) error {
		t = *e.agg.(*talent)
		// The reservations change under the stream's lock; a copy
		// leaves them behind.
		t.ents, t.entOrder = nil, nil
		return nil
	})
	if err == nil && t.reg == nil {
		err = Errorf(ENOTFOUND, "talent %s not found", id)
	}
	return t, err
}
