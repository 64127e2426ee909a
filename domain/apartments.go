package domain

import (
	"context"
	"strings"

	"github.com/shopspring/decimal"
)

// Talent apartments (人才公寓): a register of units, each with its size, a
// market rent and the discounted rent a talent pays; a waiting list in the
// order of application; allocations of a unit to a talent from a start to
// an end date. The monthly discount is paid as the installments of a grant
// of the apartment program (KindApartmentRent), which an allocation names:
// those installments stop when the grant is terminated at the talent's
// departure.
//
// The register, the waiting list and the allocations live in one stream,
// "apartments": every decision (is the unit free for those dates, is this
// the first application waiting, does the talent already hold a unit) is
// taken on its current state and appended at its version, so two
// allocations of one unit at once cannot both be recorded.

// Apartment event types.
const (
	TypeApartmentRegistered = "ApartmentRegistered"
	TypeApartmentApplied    = "ApartmentApplied"
	TypeApartmentAllocated  = "ApartmentAllocated"
	TypeApartmentVacated    = "ApartmentVacated"
)

// ApartmentRegistered adds a unit to the register.
type ApartmentRegistered struct {
	Unit           string          `json:"unit"`
	Building       string          `json:"building"`
	SizeSqm        decimal.Decimal `json:"size_sqm"`
	MarketRent     Money           `json:"market_rent"`
	DiscountedRent Money           `json:"discounted_rent"`
}

// ApartmentApplied puts a talent on the waiting list.
type ApartmentApplied struct {
	ApplicationID string `json:"application_id"`
	TalentID      string `json:"talent_id"`
	AppliedOn     string `json:"applied_on"`
}

// ApartmentAllocated lets a unit to the talent of an application from
// StartDate to EndDate (inclusive). GrantID names the apartment-program
// grant that pays the discount, when there is one.
type ApartmentAllocated struct {
	AllocationID  string `json:"allocation_id"`
	Unit          string `json:"unit"`
	ApplicationID string `json:"application_id"`
	TalentID      string `json:"talent_id"`
	StartDate     string `json:"start_date"`
	EndDate       string `json:"end_date"`
	GrantID       string `json:"grant_id,omitempty"`
}

// ApartmentVacated ends an allocation on EndDate, before or on its
// planned end: the talent moved out or departed.
type ApartmentVacated struct {
	AllocationID string `json:"allocation_id"`
	Unit         string `json:"unit"`
	TalentID     string `json:"talent_id"`
	EndDate      string `json:"end_date"`
	Reason       string `json:"reason"`
}

func (ApartmentRegistered) EventType() string { return TypeApartmentRegistered }
func (ApartmentApplied) EventType() string    { return TypeApartmentApplied }
func (ApartmentAllocated) EventType() string  { return TypeApartmentAllocated }
func (ApartmentVacated) EventType() string    { return TypeApartmentVacated }

// MaxApartmentMonths is the longest allocation: a talent apartment is let
// for at most 36 months.
const MaxApartmentMonths = 36

const streamApartments = "apartments"

const (
	prefixApartmentApplication = "w"
	prefixAllocation           = "l"
)

// apartments is the state of the apartments stream.
type apartments struct {
	units        map[string]*ApartmentRegistered
	applications []*apartmentApplication
	allocations  map[string]*allocation
}

type apartmentApplication struct {
	ev        *ApartmentApplied
	allocated bool
}

type allocation struct {
	ev  *ApartmentAllocated
	end string // the planned end, or the day it was vacated
}

func newApartments() aggregate {
	return &apartments{units: map[string]*ApartmentRegistered{}, allocations: map[string]*allocation{}}
}

func (a *apartments) apply(e Event) {
	switch e := e.(type) {
	case *ApartmentRegistered:
		a.units[e.Unit] = e
	case *ApartmentApplied:
		a.applications = append(a.applications, &apartmentApplication{ev: e})
	case *ApartmentAllocated:
		a.allocations[e.AllocationID] = &allocation{ev: e, end: e.EndDate}
		for _, ap := range a.applications {
			if ap.ev.ApplicationID == e.ApplicationID {
				ap.allocated = true
			}
		}
	case *ApartmentVacated:
		if al := a.allocations[e.AllocationID]; al != nil {
			al.end = e.EndDate
		}
	}
}

// overlaps reports whether [s1, e1] and [s2, e2] share a day.
func overlaps(s1, e1, s2, e2 string) bool { return s1 <= e2 && s2 <= e1 }

// RegisterApartment adds a unit to the register.
type RegisterApartment struct {
	Meta           CommandMeta
	Unit           string
	Building       string
	SizeSqm        decimal.Decimal
	MarketRent     Money
	DiscountedRent Money
}

// RegisterApartment adds a unit. Only a reviewer (the talent office)
// may: rents are money, which an admin never sets. The discounted rent is
// at most the market rent.
//
// Errors: EINVALID, ECONFLICT (the unit is registered).
func (s *Service) RegisterApartment(ctx context.Context, c RegisterApartment) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleReviewer)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("unit", c.Unit, true); err != nil {
		return Result{}, err
	}
	if err := checkText("building", c.Building, false); err != nil {
		return Result{}, err
	}
	if c.SizeSqm.Sign() <= 0 || c.SizeSqm.GreaterThan(decimal.NewFromInt(1000)) || !c.SizeSqm.Equal(c.SizeSqm.Round(2)) {
		return Result{}, Errorf(EINVALID, "size_sqm must be greater than 0 and at most 1000, with at most 2 decimals")
	}
	if err := c.MarketRent.CheckAmount("market_rent"); err != nil {
		return Result{}, err
	}
	if err := c.DiscountedRent.CheckAmount("discounted_rent"); err != nil {
		return Result{}, err
	}
	if c.DiscountedRent.Cmp(c.MarketRent) > 0 {
		return Result{}, Errorf(EINVALID, "discounted_rent %s is above the market rent %s", c.DiscountedRent, c.MarketRent)
	}
	ev := &ApartmentRegistered{Unit: c.Unit, Building: c.Building, SizeSqm: c.SizeSqm, MarketRent: c.MarketRent, DiscountedRent: c.DiscountedRent}
	res, err := s.repo.execute(ctx, streamApartments, newApartments, m, func(e *entry) ([]Event, error) {
		if e.agg.(*apartments).units[c.Unit] != nil {
			return nil, Errorf(ECONFLICT, "unit %s is already registered", c.Unit)
		}
		return []Event{ev}, nil
	})
	return result(c.Unit, res), err
}

// ApplyApartment puts a talent on the waiting list.
type ApplyApartment struct {
	Meta     CommandMeta
	TalentID string
}

// ApplyApartment records a talent's application for an apartment, dated
// by the command's business date. Only a clerk may. A talent who departed,
// waits already or holds a unit now is refused.
//
// Errors: EINVALID, ENOTFOUND (talent), ENOTELIGIBLE (departed), ECONFLICT.
func (s *Service) ApplyApartment(ctx context.Context, c ApplyApartment) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleClerk)
	if err != nil {
		return Result{}, err
	}
	t, err := s.loadTalent(ctx, c.TalentID)
	if err != nil {
		return Result{}, err
	}
	if t.departure != "" {
		return Result{}, Errorf(ENOTELIGIBLE, "talent %s departed on %s", c.TalentID, t.departure)
	}
	id := newID(prefixApartmentApplication, m.CommandID, "apartment-application")
	res, err := s.repo.execute(ctx, streamApartments, newApartments, m, func(e *entry) ([]Event, error) {
		a := e.agg.(*apartments)
		for _, ap := range a.applications {
			if ap.ev.TalentID == c.TalentID && !ap.allocated {
				return nil, Errorf(ECONFLICT, "talent %s is already waiting (application %s)", c.TalentID, ap.ev.ApplicationID)
			}
		}
		for _, al := range a.allocations {
			if al.ev.TalentID == c.TalentID && al.end >= m.date {
				return nil, Errorf(ECONFLICT, "talent %s holds unit %s until %s", c.TalentID, al.ev.Unit, al.end)
			}
		}
		return []Event{&ApartmentApplied{ApplicationID: id, TalentID: c.TalentID, AppliedOn: m.date}}, nil
	})
	return result(id, res), err
}

// AllocateApartment lets a unit to the first talent waiting.
type AllocateApartment struct {
	Meta          CommandMeta
	Unit          string
	ApplicationID string
	StartDate     string
	EndDate       string
	GrantID       string
}

// AllocateApartment lets a unit from StartDate to EndDate (inclusive, at
// most MaxApartmentMonths) to the application's talent. Only a reviewer
// (the talent office) may. The application must be the first still
// waiting: applicants are served in order. The unit must be free for
// every day of the period, and the talent may hold no other unit in it.
// A grant, when named, must be the talent's grant of the apartment
// program.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (not first, unit taken, talent
// housed).
func (s *Service) AllocateApartment(ctx context.Context, c AllocateApartment) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleReviewer)
	if err != nil {
		return Result{}, err
	}
	for _, d := range []struct{ name, v string }{{"start_date", c.StartDate}, {"end_date", c.EndDate}} {
		if _, err := ParseDate(d.v); err != nil {
			return Result{}, Errorf(EINVALID, "%s: %v", d.name, err)
		}
	}
	if c.EndDate < c.StartDate {
		return Result{}, Errorf(EINVALID, "end_date %s is before start_date %s", c.EndDate, c.StartDate)
	}
	if c.EndDate >= AddMonths(c.StartDate, MaxApartmentMonths) {
		return Result{}, Errorf(EINVALID, "an allocation runs at most %d months: from %s it ends before %s", MaxApartmentMonths, c.StartDate, AddMonths(c.StartDate, MaxApartmentMonths))
	}
	var talentID string
	if c.GrantID != "" {
		// The grant's talent and program are checked against the
		// application's below, on the grant's own stream.
		g, err := s.loadGrantFacts(ctx, c.GrantID)
		if err != nil {
			return Result{}, err
		}
		if g.kind != KindApartmentRent {
			return Result{}, Errorf(EINVALID, "grant %s is of program %s, not a talent-apartment program", c.GrantID, g.program)
		}
		talentID = g.talent
	}
	id := newID(prefixAllocation, m.CommandID, "allocation")
	res, err := s.repo.execute(ctx, streamApartments, newApartments, m, func(e *entry) ([]Event, error) {
		a := e.agg.(*apartments)
		if a.units[c.Unit] == nil {
			return nil, Errorf(ENOTFOUND, "unit %q is not registered", truncate(c.Unit, 40))
		}
		var app *apartmentApplication
		for _, ap := range a.applications {
			if ap.allocated {
				continue
			}
			if app == nil && ap.ev.ApplicationID != c.ApplicationID {
				return nil, Errorf(ECONFLICT, "application %s waits before %s: applicants are served in order", ap.ev.ApplicationID, c.ApplicationID)
			}
			if ap.ev.ApplicationID == c.ApplicationID {
				app = ap
				break
			}
		}
		if app == nil {
			return nil, Errorf(ENOTFOUND, "no application %q is waiting", truncate(c.ApplicationID, 40))
		}
		if talentID != "" && talentID != app.ev.TalentID {
			return nil, Errorf(EINVALID, "grant %s is not of the application's talent", c.GrantID)
		}
		for _, al := range a.allocations {
			if al.ev.Unit == c.Unit && overlaps(al.ev.StartDate, al.end, c.StartDate, c.EndDate) {
				return nil, Errorf(ECONFLICT, "unit %s is let to %s from %s to %s", c.Unit, al.ev.TalentID, al.ev.StartDate, al.end)
			}
			if al.ev.TalentID == app.ev.TalentID && overlaps(al.ev.StartDate, al.end, c.StartDate, c.EndDate) {
				return nil, Errorf(ECONFLICT, "talent %s holds unit %s from %s to %s", app.ev.TalentID, al.ev.Unit, al.ev.StartDate, al.end)
			}
		}
		return []Event{&ApartmentAllocated{AllocationID: id, Unit: c.Unit, ApplicationID: c.ApplicationID, TalentID: app.ev.TalentID,
			StartDate: c.StartDate, EndDate: c.EndDate, GrantID: c.GrantID}}, nil
	})
	return result(id, res), err
}

// VacateApartment ends an allocation early.
type VacateApartment struct {
	Meta         CommandMeta
	AllocationID string
	Reason       string
}

// VacateApartment ends an allocation on the command's business date. Only
// a clerk may; the reason is required. An allocation already ended, or
// not yet started, cannot be vacated.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) VacateApartment(ctx context.Context, c VacateApartment) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleClerk)
	if err != nil {
		return Result{}, err
	}
	if strings.TrimSpace(c.Reason) == "" {
		return Result{}, Errorf(EINVALID, "reason is required")
	}
	if err := checkText("reason", c.Reason, true); err != nil {
		return Result{}, err
	}
	res, err := s.repo.execute(ctx, streamApartments, newApartments, m, func(e *entry) ([]Event, error) {
		al := e.agg.(*apartments).allocations[c.AllocationID]
		if al == nil {
			return nil, Errorf(ENOTFOUND, "allocation %q not found", truncate(c.AllocationID, 40))
		}
		if al.end < m.date {
			return nil, Errorf(ECONFLICT, "allocation %s ended on %s", c.AllocationID, al.end)
		}
		if m.date < al.ev.StartDate {
			return nil, Errorf(ECONFLICT, "allocation %s starts on %s", c.AllocationID, al.ev.StartDate)
		}
		return []Event{&ApartmentVacated{AllocationID: c.AllocationID, Unit: al.ev.Unit, TalentID: al.ev.TalentID, EndDate: m.date, Reason: c.Reason}}, nil
	})
	return result(c.AllocationID, res), err
}

// grantFacts are what an allocation needs of the grant it names.
type grantFacts struct {
	talent, program, kind string
}

func (s *Service) loadGrantFacts(ctx context.Context, id string) (grantFacts, error) {
	if !validGenerated(prefixGrant, id) {
		return grantFacts{}, Errorf(ENOTFOUND, "grant %q not found", truncate(id, 40))
	}
	var f grantFacts
	err := s.repo.view(ctx, streamGrant(id), newGrant, func(e *entry) error {
		if g := e.agg.(*grant); g.applied != nil {
			f.talent, f.program = g.applied.TalentID, g.applied.ProgramID
		}
		return nil
	})
	if err != nil {
		return f, err
	}
	if f.talent == "" {
		return f, Errorf(ENOTFOUND, "grant %s not found", id)
	}
	def, err := s.loadProgram(ctx, f.program)
	if err != nil {
		return f, err
	}
	f.kind = def.Kind
	return f, nil
}
