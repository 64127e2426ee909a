package domain

import (
	"fmt"
	"sync"
	"testing"

	"github.com/shopspring/decimal"
)

func (f *fundFixture) apartment(unit string) {
	f.t.Helper()
	f.ok(f.s.RegisterApartment(f.ctx, RegisterApartment{Meta: f.on(f.reviewer, "2024-01-02"), Unit: unit, Building: "Block A",
		SizeSqm: decimal.RequireFromString("68.5"), MarketRent: f.money("4200"), DiscountedRent: f.money("1200")}))
}

func (f *fundFixture) talent(name, date string) string {
	f.t.Helper()
	return f.ok(f.s.RegisterTalent(f.ctx, RegisterTalent{Meta: f.on(f.clerk, date), Name: name, PermitCategory: "A", Tier: "B", Employer: "E"})).ID
}

func (f *fundFixture) waitFor(talent, date string) string {
	f.t.Helper()
	return f.ok(f.s.ApplyApartment(f.ctx, ApplyApartment{Meta: f.on(f.clerk, date), TalentID: talent})).ID
}

func (f *fundFixture) allocate(unit, app, from, to string) (Result, error) {
	return f.s.AllocateApartment(f.ctx, AllocateApartment{Meta: f.on(f.reviewer, "2024-03-01"), Unit: unit, ApplicationID: app, StartDate: from, EndDate: to})
}

// TestApartmentAllocation: applicants are served in the order they
// applied; a unit is let to one talent at a time; a talent holds one unit
// at a time, for at most 36 months; a vacated unit is free from the day
// after.
func TestApartmentAllocation(t *testing.T) {
	f := newFundFixture(t, nil)
	f.apartment("A-101")
	f.apartment("A-102")
	f.refused("a unit twice", ECONFLICT, func() (Result, error) {
		return f.s.RegisterApartment(f.ctx, RegisterApartment{Meta: f.on(f.reviewer, "2024-01-02"), Unit: "A-101",
			SizeSqm: decimal.NewFromInt(50), MarketRent: f.money("1"), DiscountedRent: f.money("1")})
	})
	f.refused("a discount above the market rent", EINVALID, func() (Result, error) {
		return f.s.RegisterApartment(f.ctx, RegisterApartment{Meta: f.on(f.reviewer, "2024-01-02"), Unit: "A-103",
			SizeSqm: decimal.NewFromInt(50), MarketRent: f.money("1000"), DiscountedRent: f.money("1000.01")})
	})
	anna, ben, cleo := f.talent("Anna", "2024-01-05"), f.talent("王伟", "2024-01-05"), f.talent("Cleo", "2024-01-05")
	wa := f.waitFor(anna, "2024-02-01")
	wb := f.waitFor(ben, "2024-02-02")
	f.refused("waiting twice", ECONFLICT, func() (Result, error) {
		return f.s.ApplyApartment(f.ctx, ApplyApartment{Meta: f.on(f.clerk, "2024-02-03"), TalentID: anna})
	})
	f.refused("out of order", ECONFLICT, func() (Result, error) { return f.allocate("A-101", wb, "2024-03-01", "2025-02-28") })
	f.refused("37 months", EINVALID, func() (Result, error) { return f.allocate("A-101", wa, "2024-03-01", "2027-03-01") })
	f.refused("ending before it starts", EINVALID, func() (Result, error) { return f.allocate("A-101", wa, "2024-03-01", "2024-02-28") })
	f.refused("an unknown unit", ENOTFOUND, func() (Result, error) { return f.allocate("Z-9", wa, "2024-03-01", "2025-02-28") })
	la := f.ok(f.allocate("A-101", wa, "2024-03-01", "2027-02-28")).ID
	wc := f.waitFor(cleo, "2024-03-01")
	// Ben is first now; A-101 is taken for every day he asks.
	f.refused("an occupied unit", ECONFLICT, func() (Result, error) { return f.allocate("A-101", wb, "2027-02-28", "2027-12-31") })
	f.ok(f.allocate("A-101", wb, "2027-03-01", "2028-02-29"))
	f.refused("a talent housed already", ECONFLICT, func() (Result, error) {
		return f.s.ApplyApartment(f.ctx, ApplyApartment{Meta: f.on(f.clerk, "2024-03-02"), TalentID: anna})
	})
	// Anna moves out: A-101 is free from the next day, for Cleo.
	f.refused("vacating without a reason", EINVALID, func() (Result, error) {
		return f.s.VacateApartment(f.ctx, VacateApartment{Meta: f.on(f.clerk, "2024-06-30"), AllocationID: la})
	})
	f.ok(f.s.VacateApartment(f.ctx, VacateApartment{Meta: f.on(f.clerk, "2024-06-30"), AllocationID: la, Reason: "moved to her own flat"}))
	f.refused("A-101 on the day vacated", ECONFLICT, func() (Result, error) { return f.allocate("A-101", wc, "2024-06-30", "2025-06-29") })
	f.ok(f.allocate("A-101", wc, "2024-07-01", "2025-06-30"))
	f.refused("vacating twice", ECONFLICT, func() (Result, error) {
		return f.s.VacateApartment(f.ctx, VacateApartment{Meta: f.on(f.clerk, "2024-07-02"), AllocationID: la, Reason: "again"})
	})
}

// TestApartmentAllocationRace: of eight allocations of one unit for one
// period at once, to eight applicants served in order, exactly one is
// recorded.
func TestApartmentAllocationRace(t *testing.T) {
	for _, services := range []int{1, 2} {
		t.Run(fmt.Sprintf("services=%d", services), func(t *testing.T) {
			f := newFundFixture(t, nil)
			f.apartment("B-201")
			f.apartment("B-202")
			apps := make([]string, 8)
			for i := range apps {
				apps[i] = f.waitFor(f.talent(fmt.Sprintf("T%d", i), "2024-01-05"), "2024-02-01")
			}
			svcs := []*Service{f.s}
			if services == 2 {
				svcs = append(svcs, fundFixtureService(f.st))
			}
			var wg sync.WaitGroup
			won := make(chan string, len(apps))
			// Racer i allocates B-201 for one period to applicant i: the
			// first must be served first, and every later one, once
			// first, finds the unit taken.
			for i := range apps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := svcs[i%len(svcs)]
					m := f.on(f.reviewer, "2024-03-01")
					m.CommandID = fmt.Sprintf("race-%d", i)
					r, err := s.AllocateApartment(f.ctx, AllocateApartment{Meta: m, Unit: "B-201", ApplicationID: apps[i],
						StartDate: "2024-04-01", EndDate: "2025-03-31"})
					switch ErrorCode(err) {
					case "":
						won <- r.ID
					case ECONFLICT:
					default:
						t.Errorf("racer %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			close(won)
			n := 0
			for range won {
				n++
			}
			if n != 1 {
				t.Errorf("%d allocations of B-201 recorded, want 1", n)
			}
			// The next applicant gets the other unit.
			f.ok(f.allocate("B-202", apps[1], "2024-04-01", "2025-03-31"))
		})
	}
}
