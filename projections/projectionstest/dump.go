// Package projectionstest helps tests compare read models: Dump writes
// down every answer a Projector's models give, so that two projectors that
// should agree (one resumed from its views, one folded from the log) can
// be compared whole.
package projectionstest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"talentledger/projections"
)

// Dump returns, as indented JSON, what every model of p answers: programs
// and every budget with its commitments, every grant (listed, one by one
// and by program and state), every talent of a grant, the trial balance,
// funds, projects and alerts, principals and access requests, the audit
// tree's size, roots, every leaf's position and proofs, the flows under
// way, the funds' measures and every LP's capital statements on several
// dates, every project's history, the rows of the reports the read models
// draw (budget execution, clawbacks receivable, funds, grants register),
// the clawbacks, and the apartments' register, units and waiting list.
func Dump(p *projections.Projector) string {
	d := map[string]any{"position": p.Position().String()}
	progs := p.Programs()
	d["programs"] = progs
	budgets := map[string]any{}
	for _, pr := range progs {
		for _, b := range pr.Budgets {
			key := fmt.Sprintf("%s/%d", pr.ID, b.FiscalYear)
			v, _ := p.Budget(pr.ID, b.FiscalYear)
			budgets[key] = map[string]any{"budget": v, "commitments": p.Commitments(pr.ID, b.FiscalYear)}
		}
	}
	d["budgets"] = budgets
	grants, total := p.Grants(projections.GrantFilter{})
	d["grants"], d["grants_total"] = grants, total
	one := map[string]any{}
	var talents []string
	for _, g := range grants {
		v, _ := p.Grant(g.ID)
		one[g.ID] = v
		if !slices.Contains(talents, g.TalentID) {
			talents = append(talents, g.TalentID)
		}
		for _, st := range []string{"", "approved", "completed", "terminated", "rejected"} {
			page, n := p.Grants(projections.GrantFilter{ProgramID: g.ProgramID, State: st, Limit: 5})
			ids := []string{}
			for _, x := range page {
				ids = append(ids, x.ID)
			}
			one[g.ProgramID+"?status="+st] = map[string]any{"ids": ids, "total": n}
		}
	}
	d["grant"] = one
	tv := map[string]any{}
	for _, id := range talents {
		v, ok := p.Talent(id)
		tv[id] = map[string]any{"talent": v, "found": ok}
	}
	d["talents"] = tv
	d["trial_balance"] = p.TrialBalance()
	funds, totals := p.Funds("")
	d["funds"], d["fund_totals"] = funds, totals
	for _, f := range funds {
		v, _ := p.Fund(f.ID, "")
		d["fund/"+f.ID] = v
	}
	projects, ptotals := p.Projects(projections.ProjectFilter{})
	d["projects"], d["project_totals"] = projects, ptotals
	for _, day := range dumpDays {
		fs, ft := p.Funds(day)
		d["funds@"+day], d["fund_totals@"+day] = fs, ft
		for _, f := range fs {
			for _, lp := range f.LPs {
				for _, from := range dumpDays {
					if from <= day {
						st, ok := p.Statement(f.ID, lp.ID, from, day)
						d["statement/"+f.ID+"/"+lp.ID+"/"+from+".."+day] = map[string]any{"statement": st, "found": ok}
					}
				}
			}
		}
		ps, pt := p.Projects(projections.ProjectFilter{AsOf: day})
		d["projects@"+day], d["project_totals@"+day] = ps, pt
		for _, pr := range ps {
			v, ok := p.Project(pr.ID, day)
			d["project/"+pr.ID+"@"+day] = map[string]any{"project": v, "found": ok}
		}
		d["clawbacks@"+day] = p.Clawbacks(day, true)
		d["clawbacks_outstanding@"+day] = p.Clawbacks(day, false)
		reports := map[string]any{}
		for _, r := range []projections.Report{p.BudgetExecutionReport(0), p.ClawbacksReport(day), p.FundReport(day),
			p.GrantsRegisterReport()} {
			rows := [][]string{}
			err := r.Rows(context.Background(), func(row []string) error {
				rows = append(rows, slices.Clone(row))
				return nil
			})
			reports[r.Name] = map[string]any{"rows": rows, "err": fmt.Sprint(err)}
		}
		d["reports@"+day] = reports
		apts := p.ApartmentsModel()
		units, ut := apts.Register(day)
		d["apartments@"+day], d["apartment_totals@"+day] = units, ut
		for _, u := range units {
			v, ok := apts.Unit(u.Unit, day)
			d["apartment/"+u.Unit+"@"+day] = map[string]any{"unit": v, "found": ok}
		}
	}
	d["waiting_list"] = p.ApartmentsModel().WaitingList()
	d["alerts"] = p.FundAlerts("")
	d["pending_funds"] = p.PendingFunds()
	d["principals"] = p.Principals()
	d["access_requests"] = p.AccessRequests()
	far := time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
	d["pending_grants"] = p.PendingGrants(far)
	d["pending_closes"] = p.PendingCloses(far)
	d["pending_transfers"] = p.PendingTransfers(far)
	size := p.TreeSize()
	tree := map[string]any{"size": size}
	for i := uint64(0); i < size; i++ {
		pos, ok := p.LeafPosition(i)
		root, rpos, err := p.TreeRoot(i + 1)
		leaf := map[string]any{"position": pos.String(), "ok": ok, "root": fmt.Sprintf("%x", root), "root_position": rpos.String(),
			"root_err": fmt.Sprint(err)}
		if i%7 == 0 || i+1 == size {
			idx, proof, err := p.InclusionProof(pos, size)
			leaf["inclusion"] = map[string]any{"index": idx, "proof": proof, "err": fmt.Sprint(err)}
			cons, err := p.ConsistencyProof(i+1, size)
			leaf["consistency"] = map[string]any{"proof": cons, "err": fmt.Sprint(err)}
		}
		tree[fmt.Sprint(i)] = leaf
	}
	d["tree"] = tree
	b, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return "dump: " + err.Error()
	}
	return string(b)
}

// dumpDays are the business dates the dated queries are asked about: in
// the first year of the test logs, after it, and past their last events.
var dumpDays = []string{"2024-03-31", "2024-06-30", "2025-01-01", "2027-12-31"}
