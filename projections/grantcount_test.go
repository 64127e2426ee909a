package projections_test

import (
	"testing"

	"talentledger/projections"
)

// The total a grant list reports for a program and a state is the number
// of grants of that program in that state, counted from the grants
// themselves, and a page of one holds the first of them.
func TestGrantListTotalsCountTheGrants(t *testing.T) {
	for name, evs := range logs(t) {
		dir := t.TempDir()
		p := openViews(t, dir)
		fold(t, p, evs)
		if err := p.CloseViews(); err != nil {
			t.Fatal(err)
		}
		disk := openViews(t, dir)
		mem := projections.New(nil, quietLog())
		fold(t, mem, evs)
		for form, q := range map[string]*projections.Projector{"memory": mem, "disk": disk} {
			all, _ := q.Grants(projections.GrantFilter{})
			want := map[[2]string]int{}
			first := map[[2]string]string{}
			for _, g := range all {
				for _, k := range [][2]string{{g.ProgramID, g.State}, {"", g.State}, {g.ProgramID, ""}, {"", ""}} {
					if want[k] == 0 {
						first[k] = g.ID
					}
					want[k]++
				}
			}
			for k, n := range want {
				sums, total := q.GrantSummaries(projections.GrantFilter{ProgramID: k[0], State: k[1], Limit: 1})
				if total != n || len(sums) != 1 || sums[0].ID != first[k] {
					t.Errorf("%s, %s: program %q state %q: total %d, page %+v; want %d, first %s", name, form, k[0], k[1], total, sums, n, first[k])
				}
			}
		}
		disk.CloseViews()
	}
}
