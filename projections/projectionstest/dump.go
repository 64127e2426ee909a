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
	"strings"
	"time"

	"talentledger/domain"
	"talentledger/projections"
)

// Dump returns, as indented JSON, what every model of p answers: programs
// and every budget with its commitments, every grant (listed, one by one
// and by program and state), every talent of a grant, the trial balance
// (also at points in time, from the as-of index),
// funds, projects and alerts, principals and access requests, the audit
// tree's size, roots, every leaf's position and proofs, the flows under
// way, the work (the inbox of every role and of each principal who acted,
// the payments register and installments, whole and by pages, bank files,
// statements and how new lines would match) and the talent index's
// searches, the funds' measures and every LP's capital statements on several
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
	d["as_of"] = asOf(p)
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
	d["work"] = dumpWork(p)
	d["talent_index"] = dumpTalentIndex(p)
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

// dumpWork writes down what the work model answers.
func dumpWork(p *projections.Projector) map[string]any {
	w := p.Work()
	d := map[string]any{}
	payments, total, next := w.Payments(projections.PaymentFilter{After: -1, Limit: 1 << 30})
	d["payments"] = map[string]any{"rows": payments, "total": total, "next": next}
	// Pages of two, by cursor, and filtered by state.
	var pages []any
	for after, n := -1, 0; n < 100; n++ {
		rows, total, next := w.Payments(projections.PaymentFilter{After: after, Limit: 2})
		pages = append(pages, map[string]any{"rows": rows, "total": total, "next": next})
		if next < 0 {
			break
		}
		after = next
	}
	d["payment_pages"] = pages
	for _, st := range projections.PaymentStates {
		rows, total, _ := w.Payments(projections.PaymentFilter{RowFilter: projections.RowFilter{State: st}, After: -1, Limit: 1 << 30})
		d["payments?state="+st] = map[string]any{"rows": len(rows), "total": total}
	}
	for _, today := range []string{"2024-06-30", "2999-12-31"} {
		rows, total, next := w.Installments(projections.InstallmentFilter{Today: today, Limit: 1 << 30})
		d["installments/"+today] = map[string]any{"rows": rows, "total": total, "next": next}
	}
	var ipages []any
	var after *projections.InstallmentCursor
	for n := 0; n < 100; n++ {
		rows, total, next := w.Installments(projections.InstallmentFilter{Today: "2999-12-31", After: after, Limit: 2})
		ipages = append(ipages, map[string]any{"rows": rows, "total": total, "next": next})
		if next == nil {
			break
		}
		after = next
	}
	d["installment_pages"] = ipages
	// The inbox of every role, and of each principal who acted on a
	// payment, with all roles (which shows what they may not act on).
	principals := []string{""}
	var entries []projections.StatementEntry
	batches := map[string]bool{}
	for _, r := range payments {
		for _, who := range []string{r.PreparedBy, r.ApprovedBy, r.ReleasedBy} {
			if who != "" && !slices.Contains(principals, who) {
				principals = append(principals, who)
			}
		}
		if r.BankReference != "" {
			entries = append(entries,
				projections.StatementEntry{Line: len(entries) + 1, ValueDate: r.ReleasedOn, Reference: r.BankReference, Amount: r.Amount.Neg()},
				projections.StatementEntry{Line: len(entries) + 2, ValueDate: r.ReleasedOn, Reference: r.BankReference, Amount: r.Amount})
			if i := strings.LastIndexByte(r.BankReference, '-'); i > 0 {
				batches[r.BankReference[:i]] = true
			}
		}
	}
	grants, _ := p.Grants(projections.GrantFilter{})
	for _, g := range grants {
		if g.Review != nil && !slices.Contains(principals, g.Review.ReviewedBy) {
			principals = append(principals, g.Review.ReviewedBy)
		}
	}
	inbox := map[string]any{}
	for _, today := range []string{"2024-06-30", "2999-12-31"} {
		for _, role := range domain.Roles {
			inbox[today+"/"+role] = w.Inbox(today, "", []string{role}, 3)
		}
		for _, who := range principals {
			inbox[today+"/"+who+"/all"] = w.Inbox(today, who, domain.Roles, 1000)
		}
	}
	d["inbox"] = inbox
	for b := range batches {
		d["bank_file/"+b] = w.BankFile(b)
	}
	statements := w.Statements()
	d["statements"] = statements
	for _, s := range statements {
		st, ok := w.Statement(s.StatementID)
		d["statement/"+s.StatementID] = map[string]any{"statement": st, "found": ok}
		for _, l := range st.Lines {
			entries = append(entries, projections.StatementEntry{Line: len(entries) + 1, ValueDate: l.ValueDate, Reference: l.Reference,
				Amount: l.Amount})
		}
	}
	d["match"] = w.MatchStatement(entries)
	return d
}

// dumpTalentIndex writes down what the talent index finds: every talent,
// by pages, and each talent by name, by employer and by the filters.
func dumpTalentIndex(p *projections.Projector) map[string]any {
	x := p.TalentIndex()
	d := map[string]any{}
	all, total := x.Find(projections.TalentFilter{Limit: 1 << 30})
	d["all"] = map[string]any{"ids": all, "total": total}
	ids, total := x.Find(projections.TalentFilter{Offset: 1, Limit: 2})
	d["page"] = map[string]any{"ids": ids, "total": total}
	yes, no := true, false
	for _, f := range []bool{yes, no} {
		ids, total := x.Find(projections.TalentFilter{Departed: &f, Limit: 1 << 30})
		d[fmt.Sprint("departed=", f)] = map[string]any{"ids": ids, "total": total}
		ids, total = x.Find(projections.TalentFilter{Overseas: &f, Limit: 1 << 30})
		d[fmt.Sprint("overseas=", f)] = map[string]any{"ids": ids, "total": total}
	}
	for _, id := range all {
		t, _ := p.Talent(id)
		for k, f := range map[string]projections.TalentFilter{
			"name": {Name: t.Name}, "employer": {Employer: t.Employer}, "tier": {Tier: t.Tier},
			"category": {PermitCategory: t.PermitCategory}, "registered": {RegisteredFrom: t.RegisteredOn, RegisteredTo: t.RegisteredOn},
		} {
			f.Limit = 1 << 30
			ids, total := x.Find(f)
			d[id+"/"+k] = map[string]any{"ids": ids, "total": total}
		}
	}
	return d
}

// dumpDays are the business dates the dated queries are asked about: in
// the first year of the test logs, after it, and past their last events.
var dumpDays = []string{"2024-03-31", "2024-06-30", "2025-01-01", "2027-12-31"}

// asOf is what the as-of index answers at a few points in time around
// the test logs' dates: by business date, by recording time and both.
func asOf(p *projections.Projector) map[string]any {
	out := map[string]any{}
	for _, d := range []string{"", "2023-12-31", "2024-03-31", "2024-06-30", "2024-12-31", "2025-06-30"} {
		for _, r := range []string{"", "2024-03-31T12:00:00Z", "2024-07-31T00:00:00Z", "2025-01-15T00:00:00Z"} {
			pt, err := projections.ParsePointInTime(d, r)
			if err != nil || pt.IsZero() {
				continue
			}
			key := d + "|" + r
			tb, err := p.AsOf().TrialBalance(pt)
			if err != nil {
				out[key] = err.Error()
				continue
			}
			bb, err := p.AsOf().Budgets(pt, "", 0)
			if err != nil {
				out[key] = err.Error()
				continue
			}
			out[key] = map[string]any{"trial_balance": tb, "programs": bb.Programs(), "position": bb.Position().String()}
		}
	}
	return out
}
