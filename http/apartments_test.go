package http_test

import (
	"net/http"
	"sync"
	"testing"
)

// TestApartmentsDay: the talent office registers units; the clerk puts
// talents on the waiting list; the first waiting gets a unit with the
// grant that pays its discount; the register shows who holds what and
// what is vacant; two allocations of one unit at once: one is recorded.
func TestApartmentsDay(t *testing.T) {
	e := newTestServer(t)
	p := quickProgram("apt", "72000.00")
	p.Kind = "apartment_rent"
	e.setupProgram(p, "2000000.00")
	for _, u := range []string{"A-101", "A-102"} {
		e.as(reviewer1).command(http.StatusCreated, "/v1/apartments", map[string]any{"unit": u, "building": "Block A", "size_sqm": "68.5",
			"market_rent": "4200.00", "discounted_rent": "1200.00", "effective_date": "2024-01-03"})
	}
	wantProblem(t, e.as(admin).post("/v1/apartments", map[string]any{"unit": "A-103", "size_sqm": "50", "market_rent": "1.00", "discounted_rent": "1.00"}),
		http.StatusForbidden, "forbidden")
	anna, ben, cleo := e.registerTalent("Anna Berg", "B"), e.registerTalent("王伟", "C"), e.registerTalent("Cleo Dupont", "B")
	apply := func(talent, date string) string {
		return e.as(clerk1).command(http.StatusCreated, "/v1/apartments/applications", map[string]any{"talent_id": talent, "effective_date": date})
	}
	wa, wb, wc := apply(anna, "2024-02-01"), apply(ben, "2024-02-02"), apply(cleo, "2024-02-03")
	g := e.approvedGrant(anna, "apt", "72000.00")
	alloc := func(unit, app string) *response {
		return e.as(reviewer1).post("/v1/apartments/"+unit+"/allocations", map[string]any{"application_id": app, "start_date": "2024-03-01",
			"end_date": "2026-02-28", "grant_id": g, "effective_date": "2024-02-20"})
	}
	wantProblem(t, alloc("A-101", wb), http.StatusConflict, "conflict") // Anna applied first
	if r := alloc("A-101", wa); r.status != http.StatusCreated {
		t.Fatalf("allocating A-101 to Anna: %s", r)
	}
	// Ben and Cleo race for A-102: Ben is first, so Cleo's is refused;
	// Ben's two racing requests are one allocation.
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i, app := range []string{wb, wb, wc, wb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.as(reviewer1).post("/v1/apartments/A-102/allocations", map[string]any{"application_id": app, "start_date": "2024-03-01",
				"end_date": "2025-02-28", "effective_date": "2024-02-20"})
			statuses[i] = r.status
		}()
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		if s == http.StatusCreated {
			created++
		} else if s != http.StatusConflict && s != http.StatusNotFound {
			t.Errorf("racing allocation answered %d", s)
		}
	}
	if created != 1 {
		t.Errorf("racing allocations of A-102: %v, want one created", statuses)
	}
	type register struct {
		Apartments []struct {
			Unit            string `json:"unit"`
			MonthlyDiscount string `json:"monthly_discount"`
			Vacant          bool   `json:"vacant"`
			Current         *struct {
				TalentName string `json:"talent_name"`
				GrantID    string `json:"grant_id"`
			} `json:"current"`
		} `json:"apartments"`
		Totals struct {
			Units, Occupied, Vacant, Waiting int
		} `json:"totals"`
	}
	before := fetch[register](e.as(auditor), "/v1/apartments?as_of=2024-02-29")
	if before.Totals.Vacant != 2 || before.Totals.Waiting != 1 {
		t.Errorf("before the allocations start: %+v", before.Totals)
	}
	reg := fetch[register](e.as(auditor), "/v1/apartments?as_of=2024-06-01")
	if reg.Totals.Units != 2 || reg.Totals.Occupied != 2 || reg.Totals.Vacant != 0 || reg.Totals.Waiting != 1 ||
		reg.Apartments[0].Current == nil || reg.Apartments[0].Current.TalentName != "Anna Berg" || reg.Apartments[0].Current.GrantID != g ||
		reg.Apartments[0].MonthlyDiscount != "3000.00" || reg.Apartments[1].Current == nil || reg.Apartments[1].Current.TalentName != "王伟" {
		t.Errorf("register on 2024-06-01: %+v", reg)
	}
	after := fetch[register](e.as(auditor), "/v1/apartments?as_of=2025-06-01")
	if after.Totals.Vacant != 1 || !after.Apartments[1].Vacant {
		t.Errorf("A-102 after Ben's year: %+v", after)
	}
	wl := fetch[struct {
		Waiting []struct {
			Position   int    `json:"position"`
			TalentName string `json:"talent_name"`
		} `json:"waiting"`
	}](e.as(clerk1), "/v1/apartments/waiting-list")
	if len(wl.Waiting) != 1 || wl.Waiting[0].Position != 1 || wl.Waiting[0].TalentName != "Cleo Dupont" {
		t.Errorf("waiting list %+v, want Cleo first", wl.Waiting)
	}
	wantProblem(t, e.as(clerk1).get("/v1/apartments/Z-9"), http.StatusNotFound, "not_found")
}
