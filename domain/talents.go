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
	// IDNumber (resident ID or passport), DateOfBirth (YYYY-MM-DD),
	// Phone, Email and Address are optional.
	IDNumber    string
	DateOfBirth string
	Phone       string
	Email       string
	Address     string
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
	for _, f := range []struct{ name, v string }{
		{"id_number", c.IDNumber}, {"phone", c.Phone}, {"email", c.Email}, {"address", c.Address},
	} {
		if err := checkText(f.name, f.v, false); err != nil {
			return Result{}, err
		}
	}
	if c.DateOfBirth != "" {
		if _, err := ParseDate(c.DateOfBirth); err != nil {
			return Result{}, Errorf(EINVALID, "date_of_birth must be a date YYYY-MM-DD")
		}
	}
	if !contains(Tiers, c.Tier) {
		return Result{}, Errorf(EINVALID, "tier must be one of %v", Tiers)
	}
	if c.PermitCategory != "" && !contains(PermitCategories, c.PermitCategory) {
		return Result{}, Errorf(EINVALID, "permit_category must be one of %v or empty", PermitCategories)
	}
	id := newID(prefixTalent, m.CommandID, "talent")
	ev := &TalentRegistered{TalentID: id, Name: c.Name, PermitCategory: c.PermitCategory, Tier: c.Tier,
		Employer: c.Employer, OverseasEngineer: c.OverseasEngineer, RegisteredOn: m.date,
		IDNumber: c.IDNumber, DateOfBirth: c.DateOfBirth, Phone: c.Phone, Email: c.Email, Address: c.Address,
		BankAccount: c.BankAccount, BankName: c.BankName}
	evs := []Event{ev}
	if s.cipher != nil {
		// The key comes from the key store's pool, made and synced
		// ahead; TalentKeyCreated binds it to the talent in the same
		// append as the registration that needs it.
		keyID, err := s.cipher.NewKey(id, false)
		if err == nil {
			err = s.sealUnder(id, keyID, ev)
		}
		if err != nil {
			return Result{}, err
		}
		evs = []Event{&TalentKeyCreated{TalentID: id, KeyID: keyID}, ev}
	}
	res, err := s.repo.execute(ctx, streamTalent(id), newTalent, m, func(e *entry) ([]Event, error) {
		if e.agg.(*talent).reg != nil {
			return nil, Errorf(ECONFLICT, "talent %s already exists", id)
		}
		return evs, nil
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
		case t.erasure != nil && t.erasure.done != "":
			return nil, Errorf(ECONFLICT, "talent %s was erased on %s", c.TalentID, t.erasure.done)
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
