package console

import (
	"net/http"

	"talentledger/projections"
)

type apartmentsData struct {
	AsOf    string
	Units   []projections.ApartmentView
	Totals  projections.ApartmentTotals
	Waiting []projections.WaitingEntry
}

// handleApartments shows the register of the talent apartments on a day
// (today by default): each unit, its rents and discount, who holds it and
// until when; the counts; and the waiting list, in order. Both are the
// API's answers (GET /v1/apartments, /v1/apartments/waiting-list).
func (c *Console) handleApartments(w http.ResponseWriter, r *http.Request, s *session) {
	var reg struct {
		AsOf       string                      `json:"as_of"`
		Apartments []projections.ApartmentView `json:"apartments"`
		Totals     projections.ApartmentTotals `json:"totals"`
	}
	if res := c.get(r, s, "/v1/apartments"+asOfQuery(r), &reg); !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	var wl struct {
		Waiting []projections.WaitingEntry `json:"waiting"`
	}
	if res := c.get(r, s, "/v1/apartments/waiting-list", &wl); !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	c.render(w, r, s, http.StatusOK, "apartments", "apartments.title",
		apartmentsData{AsOf: reg.AsOf, Units: reg.Apartments, Totals: reg.Totals, Waiting: wl.Waiting})
}
