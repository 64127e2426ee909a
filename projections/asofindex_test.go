package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/projections"
)

// rewrite copies a log into a new store with its dates scrambled: each
// recording time moved by up to two minutes either way, and one in ten by
// up to a month (so that they no longer follow the log's order), a third
// of the events given a business date up to 40 days before their
// recording, a few up to 400 days before, and a few one after it.
func rewrite(t *testing.T, evs []eventstore.Event, seed uint64) eventstore.Store {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	for _, ev := range evs {
		md := ev.Metadata
		if !md.RecordedAt.IsZero() {
			md.RecordedAt = md.RecordedAt.Add(time.Duration(rng.Int64N(int64(4*time.Minute))) - 2*time.Minute)
			if rng.IntN(10) == 0 {
				md.RecordedAt = md.RecordedAt.Add(time.Duration(rng.IntN(60)-30) * 24 * time.Hour)
			}
			switch r := rng.IntN(20); {
			case r < 1:
				md.EffectiveDate = domain.AddDays(domain.Today(md.RecordedAt), -rng.IntN(400))
			case r < 7:
				md.EffectiveDate = domain.AddDays(domain.Today(md.RecordedAt), -rng.IntN(41))
			case r < 8:
				md.EffectiveDate = domain.AddDays(domain.Today(md.RecordedAt), 1+rng.IntN(3))
			case r < 12:
				md.EffectiveDate = ""
			}
		}
		copyEvent(t, store, ev, md)
	}
	return store
}

func copyEvent(t *testing.T, store eventstore.Store, ev eventstore.Event, md eventstore.Metadata) {
	t.Helper()
	if _, err := store.Append(context.Background(), ev.Stream, eventstore.Any,
		eventstore.EventData{ID: ev.ID, Type: ev.Type, Data: ev.Data, Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

// storeOf copies a log into a store as it is.
func storeOf(t *testing.T, evs []eventstore.Event) eventstore.Store {
	t.Helper()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	for _, ev := range evs {
		copyEvent(t, store, ev, ev.Metadata)
	}
	return store
}

// pointsOf picks points in time to ask a log about: before its first event,
// on and around each business date and recording time it holds (the
// instant of a recording, a nanosecond before and after), after its last,
// and both together.
func pointsOf(evs []eventstore.Event, rng *rand.Rand, n int) []projections.PointInTime {
	dates := []string{"2000-01-01", "2100-12-31"}
	instants := []time.Time{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, ev := range evs {
		if d := projections.EffectiveDate(&ev); d != "" {
			dates = append(dates, d, domain.AddDays(d, -1), domain.AddDays(d, 1))
		}
		if r := ev.Metadata.RecordedAt; !r.IsZero() {
			instants = append(instants, r, r.Add(-time.Nanosecond), r.Add(time.Nanosecond), r.Truncate(time.Minute),
				r.Truncate(time.Hour).Add(-time.Nanosecond))
		}
	}
	var pts []projections.PointInTime
	for i := range n {
		var pt projections.PointInTime
		switch i % 3 {
		case 0:
			pt.AsOf = dates[rng.IntN(len(dates))]
		case 1:
			pt.RecordedAsOf = instants[rng.IntN(len(instants))]
		default:
			pt.AsOf, pt.RecordedAsOf = dates[rng.IntN(len(dates))], instants[rng.IntN(len(instants))]
		}
		pts = append(pts, pt)
	}
	return pts
}

// indexAnswers writes down what the index answers at pt: the trial
// balance in detail and at control level, the subsidiary ledgers page by
// page and one talent's accounts, and every program and budget. The
// control-level answer must be the detail's accounts summed into their
// control accounts.
//
// The funds and projects at pt are those folded from the funds' streams
// (Projector.FundsAt) of fp, a projector reading the log.
func indexAnswers(t *testing.T, p, fp *projections.Projector, pt projections.PointInTime) string {
	t.Helper()
	tb, err := p.AsOf().TrialBalance(pt)
	if err != nil {
		t.Fatalf("%+v: %v", pt, err)
	}
	ctl, err := p.AsOf().ControlTrialBalance(pt)
	if err != nil {
		t.Fatalf("%+v: %v", pt, err)
	}
	if got, want := jsonOf(t, ctl), jsonOf(t, projections.RollUp(tb, false)); got != want {
		t.Fatalf("%+v: the control-level trial balance is not the detail's accounts summed:\n%s", pt, firstDiff(got, want))
	}
	bb, err := p.AsOf().Budgets(pt, "", 0)
	if err != nil {
		t.Fatalf("%+v: %v", pt, err)
	}
	subs := subsidiaryAnswers(t, tb, func(f projections.SubsidiaryFilter) (projections.SubsidiaryLedger, error) {
		return p.AsOf().Subsidiary(pt, f)
	})
	funds, err := fp.FundsAt(context.Background(), pt)
	if err != nil {
		t.Fatalf("%+v: %v", pt, err)
	}
	return booksAnswers(t, tb, bb) + jsonOf(t, ctl) + subs + fundAnswers(t, funds, pt)
}

// fundAnswers writes down the funds and projects at pt, with their
// measures, as of pt's business date (or a date after every event).
func fundAnswers(t *testing.T, p *projections.Projector, pt projections.PointInTime) string {
	t.Helper()
	d := pt.AsOf
	if d == "" {
		d = "2099-12-31"
	}
	funds, totals := p.Funds(d)
	projects, ptotals := p.Projects(projections.ProjectFilter{AsOf: d})
	return jsonOf(t, map[string]any{"funds": funds, "totals": totals, "projects": projects, "project_totals": ptotals})
}

// subsidiaryAnswers writes down the subsidiary ledgers as page answers
// them, three accounts a page, each control account's alone, and one
// talent's accounts (of the detail tb's last subsidiary account).
func subsidiaryAnswers(t *testing.T, tb projections.TrialBalance, page func(projections.SubsidiaryFilter) (projections.SubsidiaryLedger, error)) string {
	t.Helper()
	all := func(f projections.SubsidiaryFilter) []projections.AccountBalance {
		var out []projections.AccountBalance
		for f.Limit = 3; ; {
			sl, err := page(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sl.Accounts...)
			if sl.Next == "" {
				return out
			}
			f.After = sl.Next
		}
	}
	talent := ""
	for _, a := range tb.Accounts {
		if _, ok := domain.ControlAccount(a.Account); ok {
			talent = domain.SubsidiaryTalent(a.Account)
		}
	}
	answers := map[string]any{"all": all(projections.SubsidiaryFilter{})}
	for _, cn := range domain.ControlAccounts {
		answers[cn] = all(projections.SubsidiaryFilter{Control: cn})
	}
	if talent != "" {
		answers["talent"] = all(projections.SubsidiaryFilter{Talent: talent})
	}
	return jsonOf(t, answers)
}

func booksAnswers(t *testing.T, tb projections.TrialBalance, bb projections.BudgetBook) string {
	t.Helper()
	progs := bb.Programs()
	budgets := map[string]any{}
	for _, pr := range progs {
		one, ok := bb.Program(pr.ID)
		if !ok {
			t.Fatalf("program %s listed but not found", pr.ID)
		}
		budgets[pr.ID] = one
		for _, b := range pr.Budgets {
			v, _ := bb.Budget(pr.ID, b.FiscalYear)
			budgets[fmt.Sprintf("%s/%d", pr.ID, b.FiscalYear)] = v
		}
	}
	return jsonOf(t, map[string]any{"balances": tb, "programs": progs, "budgets": budgets, "position": bb.Position().String()})
}

// replayAnswers is the same, folded from the log for pt: the trial
// balance streamed from the log (BalancesAt) and, at control level and in
// the subsidiary ledgers, answered by a replay, which has no index.
func replayAnswers(t *testing.T, store eventstore.Store, pt projections.PointInTime) string {
	t.Helper()
	ctx := context.Background()
	tb, err := projections.BalancesAt(ctx, store, pt)
	if err != nil {
		t.Fatal(err)
	}
	r, err := projections.Replay(ctx, store, pt.Keep)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := r.TrialBalanceAt(ctx, pt)
	if err != nil {
		t.Fatal(err)
	}
	subs := subsidiaryAnswers(t, tb, func(f projections.SubsidiaryFilter) (projections.SubsidiaryLedger, error) {
		return r.SubsidiaryAt(ctx, pt, f)
	})
	return booksAnswers(t, tb, r) + jsonOf(t, ctl) + subs + fundAnswers(t, r, pt)
}

// The as-of index answers every point in time as a replay of the log
// does: the trial balance and every program and budget, by business date,
// by recording time and both, on the test logs (every event type, the
// point-in-time books, funds, clawbacks, the work books) and on random
// ledgers whose dates are scrambled (backdated, recorded out of the log's
// order, a few dated after their recording), at random points around the
// events' own dates and instants; and again after a restart from the
// views' checkpoint, stopped halfway through the log.
func TestAsOfIndexAnswersAsTheReplay(t *testing.T) {
	all := logs(t)
	for seed := uint64(1); seed <= 3; seed++ {
		src := randomLedger(t, seed, 400)
		all[fmt.Sprint("random ", seed)] = readLog(t, rewrite(t, readLog(t, src), seed))
		src.Close()
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			store := storeOf(t, all[name])
			evs := readLog(t, store)
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			pts := pointsOf(evs, rng, 60)

			live := projections.New(store, quietLog())
			fold(t, live, evs)
			dir := t.TempDir()
			half := openViews(t, dir)
			fold(t, half, evs[:len(evs)/2])
			if err := half.CloseViews(); err != nil {
				t.Fatal(err)
			}
			resumed := openViews(t, dir)
			fold(t, resumed, evs[len(evs)/2:])

			checkLiveControls(t, "in memory", live)
			checkLiveControls(t, "resumed", resumed)

			wants := make([]string, len(pts))
			for i, pt := range pts {
				if !live.AsOf().Serves(pt) {
					t.Fatalf("%+v: the index does not answer", pt)
				}
				wants[i] = replayAnswers(t, store, pt)
				if got := indexAnswers(t, live, live, pt); got != wants[i] {
					t.Fatalf("as of %s, recorded as of %s: the index differs from the replay:\n%s", pt.AsOf, pt.RecordedAsOfString(), firstDiff(got, wants[i]))
				}
				if got := indexAnswers(t, resumed, live, pt); got != wants[i] {
					t.Fatalf("as of %s, recorded as of %s, after a restart: the index differs from the replay:\n%s", pt.AsOf, pt.RecordedAsOfString(), firstDiff(got, wants[i]))
				}
			}
			// And once the second half is committed too, from the store.
			if err := resumed.CloseViews(); err != nil {
				t.Fatal(err)
			}
			reopened := openViews(t, dir)
			defer reopened.CloseViews()
			checkLiveControls(t, "reopened", reopened)
			for i, pt := range pts {
				if got := indexAnswers(t, reopened, live, pt); got != wants[i] {
					t.Fatalf("as of %s, recorded as of %s, committed and reopened: the index differs from the replay:\n%s", pt.AsOf, pt.RecordedAsOfString(), firstDiff(got, wants[i]))
				}
			}
		})
	}
}

// checkLiveControls checks the live trial balance at control level
// against the detail's accounts summed (each control line counting its
// accounts), and the live subsidiary ledgers against the detail's
// subsidiary accounts.
func checkLiveControls(t *testing.T, what string, p *projections.Projector) {
	t.Helper()
	ctx := context.Background()
	detail := p.TrialBalance()
	ctl, err := p.TrialBalanceAt(ctx, projections.PointInTime{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jsonOf(t, ctl), jsonOf(t, projections.RollUp(detail, true)); got != want {
		t.Fatalf("%s: the live control-level trial balance is not the detail's accounts summed:\n%s", what, firstDiff(got, want))
	}
	n := 0
	for _, a := range ctl.Accounts {
		n += a.SubsidiaryAccounts
	}
	if n == 0 && len(ctl.Accounts) > 0 && len(detail.Accounts) > len(ctl.Accounts) {
		t.Fatalf("%s: no control line counts a subsidiary account", what)
	}
	var subs []projections.AccountBalance
	for _, a := range detail.Accounts {
		if _, ok := domain.ControlAccount(a.Account); ok {
			subs = append(subs, a)
		}
	}
	got := subsidiaryAnswers(t, detail, func(f projections.SubsidiaryFilter) (projections.SubsidiaryLedger, error) {
		return p.SubsidiaryAt(ctx, projections.PointInTime{}, f)
	})
	var want map[string]json.RawMessage
	if err := json.Unmarshal([]byte(got), &want); err != nil {
		t.Fatal(err)
	}
	if g, w := string(want["all"]), jsonOf(t, subs); g != w {
		t.Fatalf("%s: the live subsidiary ledgers are not the detail's subsidiary accounts:\n%s", what, firstDiff(g, w))
	}
}

// A release takes its amount off the year's forward commitments only when
// the books hold the grant's forward commitment too. Here the commitments
// (three of them, for one grant and year) lie after the release in business
// date or in recording time, so that some points in time hold the release
// without them; at every date and instant around the events the index
// answers as the replay.
func TestAsOfIndexReleaseOfAForwardCommitment(t *testing.T) {
	day := func(d int, h int) time.Time { return time.Date(2024, 6, d, h, 0, 0, 0, time.UTC) }
	c := domain.Codec{}
	type rec struct {
		e   domain.Event
		eff string
		at  time.Time
	}
	log := []rec{
		{&domain.ProgramDefined{ProgramID: "p", Name: "P", Kind: domain.KindTransport}, "", day(1, 8)},
		{&domain.BudgetAppropriated{ProgramID: "p", FiscalYear: 2025, Amount: yuan("1000.00")}, "2024-06-01", day(1, 9)},
		// Approved with a business date after the release's, recorded early.
		{&domain.ForwardCommitted{ProgramID: "p", FiscalYear: 2025, GrantID: "g", TalentID: "t", Amount: yuan("100.00"),
			Installments: []int{2}, ApprovedIn: 2024, Covered: true}, "2024-06-10", day(2, 9)},
		// Again, recorded after the release but dated earlier.
		{&domain.ForwardCommitted{ProgramID: "p", FiscalYear: 2025, GrantID: "g", TalentID: "t", Amount: yuan("50.00"),
			Installments: []int{3}, ApprovedIn: 2024, Covered: true}, "2024-06-04", day(9, 9)},
		// And once more, after both in date and in recording time.
		{&domain.ForwardCommitted{ProgramID: "p", FiscalYear: 2025, GrantID: "g", TalentID: "t", Amount: yuan("10.00"),
			Installments: []int{4}, ApprovedIn: 2024}, "2024-06-11", day(10, 9)},
		{&domain.BudgetReservationReleased{ProgramID: "p", FiscalYear: 2025, GrantID: "g", TalentID: "t", Amount: yuan("30.00"),
			Reason: "terminated"}, "2024-06-06", day(5, 9)},
		{&domain.BudgetReservationReleased{ProgramID: "p", FiscalYear: 2025, GrantID: "g", TalentID: "t", Amount: yuan("20.00"),
			Reason: "terminated"}, "2024-06-03", day(3, 9)},
	}
	store := memstore.New()
	defer store.Close()
	for i, r := range log {
		data, err := json.Marshal(r.e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(context.Background(), fmt.Sprint("budget-", i), eventstore.Any, eventstore.EventData{
			ID: eventstore.NewEventID(), Type: c.StoredType(r.e), Data: data,
			Metadata: eventstore.Metadata{RecordedAt: r.at, EffectiveDate: r.eff}}); err != nil {
			t.Fatal(err)
		}
	}
	evs := readLog(t, store)
	p := projections.New(store, quietLog())
	fold(t, p, evs)
	var dates []string
	for d := 1; d <= 11; d++ {
		dates = append(dates, fmt.Sprintf("2024-06-%02d", d))
	}
	instants := []time.Time{{}}
	for _, r := range log {
		instants = append(instants, r.at.Add(-time.Nanosecond), r.at)
	}
	checked := map[string]bool{}
	for _, d := range append([]string{""}, dates...) {
		for _, at := range instants {
			pt := projections.PointInTime{AsOf: d, RecordedAsOf: at}
			if pt.IsZero() {
				continue
			}
			want := replayAnswers(t, store, pt)
			if got := indexAnswers(t, p, p, pt); got != want {
				t.Fatalf("as of %q, recorded as of %s: the index differs from the replay:\n%s", d, pt.RecordedAsOfString(), firstDiff(got, want))
			}
			checked[want] = true
		}
	}
	if len(checked) < 12 {
		t.Fatalf("only %d different books: the points do not reach the cases", len(checked))
	}
}

// An event whose business date is not YYYY-MM-DD cannot be placed by date:
// the index then leaves questions by business date to the replay, still
// answers those by recording time, and the projector's trial balance at a
// point in time is the replay's either way.
func TestAsOfIndexLeavesIrregularDatesToTheReplay(t *testing.T) {
	evs := corpusEvents(t)
	evs[len(evs)/2].Metadata.EffectiveDate = "2024-6-1"
	store := storeOf(t, evs)
	p := projections.New(store, quietLog())
	fold(t, p, readLog(t, store))
	ctx := context.Background()
	byDate := projections.PointInTime{AsOf: "2024-06-30"}
	byRecording := projections.PointInTime{RecordedAsOf: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	if p.AsOf().Serves(byDate) {
		t.Fatal("the index answers by business date on a log it cannot place")
	}
	if !p.AsOf().Serves(byRecording) {
		t.Fatal("the index does not answer by recording time")
	}
	for _, pt := range []projections.PointInTime{byDate, byRecording} {
		got, err := p.BalancesAt(ctx, pt)
		if err != nil {
			t.Fatal(err)
		}
		want, err := projections.BalancesAt(ctx, store, pt)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
			t.Fatalf("%+v: %s", pt, firstDiff(g, w))
		}
	}
}
