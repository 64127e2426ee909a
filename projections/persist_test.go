package projections_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
	"talentledger/projections/projectionstest"
	"talentledger/projections/viewstore"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logs are the event logs the persistence tests fold: the golden corpus
// (every event type), the point-in-time books (funds, corrections, late
// records), the work books (every queue, bank batches, a statement), two funds with several LPs, distributions, an exit and a
// write-off beside a register of apartments let and vacated, and a
// clawback partly recovered.
func logs(t *testing.T) map[string][]eventstore.Event {
	b, _, _ := pointInTimeBooks(t)
	funds, _, _, _, _, _ := fundSet(t)
	apartments(funds)
	claws, _, _ := clawbackBooks(t)
	return map[string][]eventstore.Event{"corpus": corpusEvents(t), "books": readLog(t, b.store), "funds": readLog(t, funds.st),
		"clawbacks": readLog(t, claws.st), "work": workBooks(t)}
}

func readLog(t *testing.T, store eventstore.Store) []eventstore.Event {
	t.Helper()
	var evs []eventstore.Event
	it := store.ReadAll(context.Background(), eventstore.Start)
	defer it.Close()
	for it.Next() {
		evs = append(evs, it.Event())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// apartments registers three units and three talents who apply; two are
// let, and one of them vacated early.
func apartments(e *env) {
	for _, u := range []string{"A-101", "A-102", "B-201"} {
		e.do(e.svc.RegisterApartment(e.ctx, domain.RegisterApartment{Meta: e.on(e.reviewer, "2024-01-03"), Unit: u, Building: "Block " + u[:1],
			SizeSqm: e.pct("68.5"), MarketRent: e.money("4200"), DiscountedRent: e.money("1200.50")}))
	}
	var apps []string
	for i, name := range []string{"Anna Berg", "王伟", "Cleo Dupont"} {
		tl := e.do(e.svc.RegisterTalent(e.ctx, domain.RegisterTalent{Meta: e.on(e.clerk, "2024-01-05"), Name: name, PermitCategory: "A",
			Tier: "B", Employer: "Pinghu Optics"})).ID
		apps = append(apps, e.do(e.svc.ApplyApartment(e.ctx, domain.ApplyApartment{Meta: e.on(e.clerk, fmt.Sprintf("2024-02-0%d", i+1)),
			TalentID: tl})).ID)
	}
	let := func(unit, app string) string {
		return e.do(e.svc.AllocateApartment(e.ctx, domain.AllocateApartment{Meta: e.on(e.reviewer, "2024-02-20"), Unit: unit,
			ApplicationID: app, StartDate: "2024-03-01", EndDate: "2026-02-28"})).ID
	}
	first := let("A-101", apps[0])
	let("B-201", apps[1])
	e.do(e.svc.VacateApartment(e.ctx, domain.VacateApartment{Meta: e.on(e.clerk, "2024-09-30"), AllocationID: first, Reason: "left Pinghu"}))
}

func fold(t *testing.T, p *projections.Projector, evs []eventstore.Event) {
	t.Helper()
	for i := range evs {
		if err := p.Apply(&evs[i]); err != nil {
			t.Fatalf("%s at %s: %v", evs[i].Type, evs[i].Position, err)
		}
	}
}

func openViews(t *testing.T, dir string) *projections.Projector {
	t.Helper()
	p := projections.New(nil, quietLog())
	if err := p.OpenViews(dir); err != nil {
		t.Fatal(err)
	}
	return p
}

// Models stopped anywhere and resumed from their views answer every query
// as the models folded from the log in one go, and resume from the
// checkpoint instead of the log's start.
func TestResumedModelsAnswerAsTheFold(t *testing.T) {
	for name, evs := range logs(t) {
		want := projections.New(nil, quietLog())
		fold(t, want, evs)
		for _, stops := range [][]int{{1}, {len(evs) / 3, 2 * len(evs) / 3}, {len(evs)}} {
			dir := t.TempDir()
			done := 0
			var p *projections.Projector
			for _, stop := range stops {
				p = openViews(t, dir)
				if got := p.Position(); got.Commit != uint64(done) {
					t.Fatalf("%s: resumed at %s after %d events", name, got, done)
				}
				fold(t, p, evs[done:stop])
				if err := p.CloseViews(); err != nil {
					t.Fatal(err)
				}
				done = stop
			}
			p = openViews(t, dir)
			fold(t, p, evs[done:])
			w := projectionstest.Dump(want)
			if got := projectionstest.Dump(p); got != w {
				t.Fatalf("%s stopped at %v: the resumed models differ from the fold:\n%s", name, stops, firstDiff(got, w))
			}
			if err := p.CloseViews(); err != nil {
				t.Fatal(err)
			}
			// And what the last part changed is stored: reopened,
			// the models answer the same.
			p = openViews(t, dir)
			if got := projectionstest.Dump(p); got != w {
				t.Fatalf("%s stopped at %v and at the end: the reopened models differ from the fold:\n%s", name, stops, firstDiff(got, w))
			}
			if err := p.CloseViews(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Models that commit after every event write each change they fold, not
// only what a batch created: resumed from those commits, they answer as
// the fold (a change not marked for saving would leave its stored form
// stale).
func TestViewsCommittedAfterEveryEventAnswerAsTheFold(t *testing.T) {
	for name, evs := range logs(t) {
		want := projections.New(nil, quietLog())
		fold(t, want, evs)
		dir := t.TempDir()
		p := projections.New(nil, quietLog(), projections.WithCommitEvery(1))
		if err := p.OpenViews(dir); err != nil {
			t.Fatal(err)
		}
		fold(t, p, evs)
		if err := p.CloseViews(); err != nil {
			t.Fatal(err)
		}
		p = openViews(t, dir)
		if got, w := projectionstest.Dump(p), projectionstest.Dump(want); got != w {
			t.Fatalf("%s: the models resumed from commits after every event differ from the fold:\n%s", name, firstDiff(got, w))
		}
		if err := p.CloseViews(); err != nil {
			t.Fatal(err)
		}
	}
}

// A model whose stored schema differs is rebuilt from the log's start,
// alone: the others resume from their checkpoints and skip what they hold.
func TestSchemaChangeRebuildsThatModelAlone(t *testing.T) {
	evs := logs(t)["corpus"]
	want := projections.New(nil, quietLog())
	fold(t, want, evs)
	dir := t.TempDir()
	p := openViews(t, dir)
	fold(t, p, evs[:len(evs)/2])
	if err := p.CloseViews(); err != nil {
		t.Fatal(err)
	}
	// Another build stored the grants in another form.
	vs, err := viewstore.Open(dir, "grants", 99, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	vs.Close()
	p = openViews(t, dir)
	if got := p.Position(); got != eventstore.Start {
		t.Fatalf("with the grants to rebuild, the feed starts at %s, want the log's start", got)
	}
	fold(t, p, evs)
	if got, w := projectionstest.Dump(p), projectionstest.Dump(want); got != w {
		t.Fatalf("after rebuilding the grants: the models differ from the fold:\n%s", firstDiff(got, w))
	}
	p.CloseViews()
}

// firstDiff shows where two dumps first differ.
func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-300)
	return "got:  …" + got[lo:min(len(got), i+300)] + "\nwant: …" + want[lo:min(len(want), i+300)]
}

// Views opened beside another log than the one they folded (a data
// directory restored or replaced) are not trusted: every model is rebuilt
// from the log at hand.
func TestViewsOfAnotherLogAreRebuilt(t *testing.T) {
	ctx := context.Background()
	a, _, _ := pointInTimeBooks(t)
	b, _, _ := pointInTimeBooks(t)
	dir := t.TempDir()
	p := projections.New(a.store, quietLog())
	if err := p.OpenViews(dir); err != nil {
		t.Fatal(err)
	}
	var evs []eventstore.Event
	it := a.store.ReadAll(ctx, eventstore.Start)
	for it.Next() {
		evs = append(evs, it.Event())
	}
	it.Close()
	fold(t, p, evs)
	if err := p.CloseViews(); err != nil {
		t.Fatal(err)
	}
	// The same log first: the others empty the views.
	for _, c := range []struct {
		name  string
		store eventstore.Store
	}{{"the same log", a.store}, {"another log", b.store}, {"an empty log", memstore.New()}} {
		name := c.name
		q := projections.New(c.store, quietLog())
		if err := q.OpenViews(dir); err != nil {
			t.Fatal(err)
		}
		want := eventstore.Start
		if name == "the same log" {
			want = evs[len(evs)-1].Position
		}
		if got := q.Position(); got != want {
			t.Errorf("views beside %s resume at %s, want %s", name, got, want)
		}
		if err := q.CloseViews(); err != nil {
			t.Fatal(err)
		}
	}
}

// Every model of this build persists: one kept in memory only would make
// every start fold the whole log again (the feed starts after the
// earliest checkpoint, the log's start for such a model).
func TestEveryModelPersists(t *testing.T) {
	for _, m := range projections.New(nil, quietLog()).Models() {
		if _, ok := m.(projections.Persistent); !ok {
			t.Errorf("model %s does not implement projections.Persistent", m.Name())
		}
	}
}

// A grant's summary in a list says what its whole view says, on every log
// and in both forms of the model (kept in memory, and resumed from disk).
func TestGrantSummariesAgreeWithViews(t *testing.T) {
	for name, evs := range logs(t) {
		mem := projections.New(nil, quietLog())
		fold(t, mem, evs)
		dir := t.TempDir()
		p := openViews(t, dir)
		fold(t, p, evs)
		if err := p.CloseViews(); err != nil {
			t.Fatal(err)
		}
		disk := openViews(t, dir)
		for form, q := range map[string]*projections.Projector{"memory": mem, "disk": disk} {
			sums, total := q.GrantSummaries(projections.GrantFilter{})
			views, vtotal := q.Grants(projections.GrantFilter{})
			if total != vtotal || len(sums) != len(views) {
				t.Fatalf("%s, %s: %d summaries (total %d), %d views (total %d)", name, form, len(sums), total, len(views), vtotal)
			}
			for i, s := range sums {
				v := views[i]
				c := v.Clawback
				same := s.ID == v.ID && s.TalentID == v.TalentID && s.ProgramID == v.ProgramID && s.State == v.State &&
					s.AppliedOn == v.AppliedOn && s.ApprovedOn == v.ApprovedOn && s.FiscalYear == v.FiscalYear && s.Position == v.Position &&
					s.AmountRequested.Cmp(v.AmountRequested) == 0 && s.Award.Cmp(v.Award) == 0 && s.Deduction.Cmp(v.Deduction) == 0 &&
					s.Amount.Cmp(v.Amount) == 0 && s.Paid.Cmp(v.Paid) == 0 && s.Due.Cmp(v.Due) == 0 &&
					s.Clawback.Assessed.Cmp(c.Assessed) == 0 && s.Clawback.Recovered.Cmp(c.Recovered) == 0 &&
					s.Clawback.Waived.Cmp(c.Waived) == 0 && s.Clawback.Outstanding.Cmp(c.Outstanding) == 0
				if !same {
					t.Errorf("%s, %s: grant %s: summary %+v, view %+v", name, form, v.ID, s, v)
				}
			}
		}
		disk.CloseViews()
	}
}

// A record of the work model's store found unreadable (the store damaged
// on disk) stops the feed at its next commit with an error naming the
// damage, and never panics a query or the fold.
func TestWorkStoreDamageStopsTheFeed(t *testing.T) {
	// The register's payment records, read by a query, and a grant's own
	// copies of them, read when the fold takes the grant back from disk.
	for _, prefix := range []string{"p/", "y/"} {
		t.Run(prefix, func(t *testing.T) { workStoreDamageStopsTheFeed(t, prefix) })
	}
}

func workStoreDamageStopsTheFeed(t *testing.T, prefix string) {
	evs := logs(t)["work"]
	// Cut after the first payment prepared.
	half := 0
	for half < len(evs) && !strings.HasPrefix(evs[half].Type, "PaymentPrepared") {
		half++
	}
	half++
	dir := t.TempDir()
	p := openViews(t, dir)
	fold(t, p, evs[:half])
	if rows, _, _ := p.Work().Payments(projections.PaymentFilter{After: -1, Limit: 1}); len(rows) == 0 {
		t.Fatal("no payment before the cut: the test damages none")
	}
	if err := p.CloseViews(); err != nil {
		t.Fatal(err)
	}
	// Every payment record under prefix overwritten with bytes of no
	// known form, at the same checkpoint.
	if projectionstest.DamageRecords(t, dir, "work", p.Work().Schema(), prefix) == 0 {
		t.Fatal("no payment record in the work model's store")
	}
	q := projections.New(nil, quietLog(), projections.WithCommitEvery(1))
	if err := q.OpenViews(dir); err != nil {
		t.Fatal(err)
	}
	defer q.CloseViews()
	q.Work().Payments(projections.PaymentFilter{After: -1, Limit: 10})
	var stopped error
	for i := half; i < len(evs) && stopped == nil; i++ {
		stopped = q.Apply(&evs[i])
	}
	if stopped == nil || !strings.Contains(stopped.Error(), "damaged") {
		t.Fatalf("the fold after damage to the work store: %v, want it stopped on the damage", stopped)
	}
}

// The budgets' forward commitments are stored one key each: one found
// unreadable at start (the store damaged on disk) refuses the views with
// an error naming the model, never a panic nor a budget missing its
// commitments.
func TestBudgetsCommitmentDamageRefusesTheViews(t *testing.T) {
	evs := corpusEvents(t)
	dir := t.TempDir()
	p := openViews(t, dir)
	fold(t, p, evs)
	if err := p.CloseViews(); err != nil {
		t.Fatal(err)
	}
	if projectionstest.DamageRecords(t, dir, "budgets", p.Budgets().Schema(), "f/") == 0 {
		t.Fatal("no forward commitment in the budgets' store: the test damages none")
	}
	q := projections.New(nil, quietLog())
	err := q.OpenViews(dir)
	if err == nil {
		q.CloseViews()
		t.Fatal("views with damaged forward commitments opened")
	}
	if !strings.Contains(err.Error(), "budgets") {
		t.Fatalf("the error does not name the model: %v", err)
	}
}

// A commit of a model's views that failed (a full disk) loses nothing:
// the feed stops, no later commit (the one at close) stores a checkpoint
// past what the failed one held, and the models reopened and fed the
// rest of the log answer as the fold.
func TestAFailedCommitLosesNothing(t *testing.T) {
	evs := corpusEvents(t)
	want := projections.New(nil, quietLog())
	fold(t, want, evs)
	// Each model, failed at the commit after an event it folds.
	for model, kind := range map[string]string{"budgets": "ForwardCommitted", "talents": "TalentRegistered",
		"talent_index": "TalentRegistered", "balances": "PaymentReleased", "grants": "GrantApproved", "work": "PaymentPrepared",
		"fund_flows": "CapitalPaidIn", "funds": "CapitalPaidIn", "reports": "ClawbackAssessed", "apartments": "ApartmentAllocated",
		"audit": "TalentRegistered", "asof": "PaymentReleased", "principals": "RoleGranted", "pending": "YearEndCloseRequested"} {
		t.Run(model, func(t *testing.T) {
			dir := t.TempDir()
			p := projections.New(nil, quietLog(), projections.WithCommitEvery(1))
			if err := p.OpenViews(dir); err != nil {
				t.Fatal(err)
			}
			full := errors.New("no space left on device")
			arm, armed := false, false
			defer projections.SetCommitHook(func(m string) error {
				if m == model && arm {
					arm = false
					return full
				}
				return nil
			})()
			stopped := -1
			for i := range evs {
				if !armed && i > 0 && strings.HasPrefix(evs[i].Type, kind) {
					arm, armed = true, true
				}
				if err := p.Apply(&evs[i]); err != nil {
					stopped = i
					break
				}
			}
			if stopped < 0 {
				t.Fatalf("no commit failed (no %s in the log): the test proves nothing", kind)
			}
			if err := p.CloseViews(); !errors.Is(err, full) {
				t.Errorf("closing after the failed commit: %v, want the failure reported", err)
			}
			q := openViews(t, dir)
			defer q.CloseViews()
			from := int(q.Position().Commit)
			if from > stopped {
				t.Fatalf("resumed after %d events, past the %d the failed commit would have stored", from, stopped)
			}
			fold(t, q, evs[from:])
			if got, w := projectionstest.Dump(q), projectionstest.Dump(want); got != w {
				t.Fatalf("after a failed commit of %s, the resumed models differ from the fold:\n%s", model, firstDiff(got, w))
			}
		})
	}
}
