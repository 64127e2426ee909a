package domain

import (
	"context"
	"sync"
	"testing"

	"talentledger/eventstore"
)

// TestBusinessDateBounds: an effective date never lies after the server's
// date, never more than the backdating window before it, and never before
// the latest business date of the stream; each refusal appends nothing.
func TestBusinessDateBounds(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000") // on 2024-01-03
	testClock.setDate("2024-03-01")
	dated := func(date string) CommandMeta { return CommandMeta{Actor: reviewer, EffectiveDate: date} }
	for _, tc := range []struct{ date, code string }{
		{"2024-03-02", EDATEFUTURE},
		{"2100-01-01", EDATEFUTURE},
		{"2024-01-29", EBACKDATE}, // 32 days before 2024-03-01
		{"2019-06-30", EBACKDATE},
		{"2024-01-02", EBACKDATE},
	} {
		before := countEvents(t, s.Store())
		_, err := s.ReviewGrant(ctx, ReviewGrant{Meta: dated(tc.date), GrantID: gid, Decision: "approve"})
		wantCode(t, err, tc.code)
		if after := countEvents(t, s.Store()); after != before {
			t.Errorf("refused date %s appended %d events", tc.date, after-before)
		}
	}
	// 31 days back is inside the window.
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: dated("2024-01-30"), GrantID: gid, Decision: "approve"}))
	// The stream's business dates never go backwards.
	_, err := s.OpenNotice(ctx, NoticeCommand{Meta: CommandMeta{Actor: reviewer, EffectiveDate: "2024-01-29"}, GrantID: gid})
	wantCode(t, err, EBACKDATE)
	must(t)(s.OpenNotice(ctx, NoticeCommand{Meta: CommandMeta{Actor: reviewer, EffectiveDate: "2024-02-10"}, GrantID: gid}))
	_, err = s.RaiseObjection(ctx, RaiseObjection{Meta: CommandMeta{Actor: clerk2, EffectiveDate: "2024-02-09"}, GrantID: gid, Summary: "late"})
	wantCode(t, err, EDATEBEFORESTREAM)

	// The window is a setting.
	narrow := newServiceOver(s.Store(), WithMaxBackdate(3))
	_, err = narrow.RaiseObjection(ctx, RaiseObjection{Meta: CommandMeta{Actor: clerk2, EffectiveDate: "2024-02-20"}, GrantID: gid, Summary: "late"})
	wantCode(t, err, EBACKDATE)
}

// TestNoticeRunsByServerClock: the public notice is counted from the day
// the server opened it, whatever business date the reviewer records, and
// closes only once the server's date allows.
func TestNoticeRunsByServerClock(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	gid := apply(t, s, registerTalent(t, s, "B"), "housing", "600000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: gid, Decision: "approve"}))
	// Opened on Friday 2024-02-02 by the server's clock, though dated
	// back to 2024-01-05.
	testClock.setDate("2024-02-02")
	must(t)(s.OpenNotice(ctx, NoticeCommand{Meta: CommandMeta{Actor: reviewer, EffectiveDate: "2024-01-05"}, GrantID: gid}))
	if g := grantState(t, s, gid); g.noticeOpen != "2024-02-02" {
		t.Fatalf("notice opened on %s, want the server's 2024-02-02", g.noticeOpen)
	}
	// Sunday 4 Feb is a make-up working day; 5–8 Feb make five on the 9th.
	for _, day := range []string{"2024-02-02", "2024-02-05", "2024-02-08"} {
		_, err := s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, day), GrantID: gid})
		wantCode(t, err, ENOTICEPENDING)
	}
	must(t)(s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-02-09"), GrantID: gid}))
}

// TestDueDateAndFiscalYearByServerClock: an installment is prepared only
// once the server's date reaches its due date, and an approval is charged
// to the fiscal year of the server's date, not of its business date.
func TestDueDateAndFiscalYearByServerClock(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 0)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriate(t, s, "housing", 2025, "30000000")
	gid := apply(t, s, registerTalent(t, s, "B"), "housing", "600000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-12-20"), GrantID: gid, Decision: "approve"}))
	testClock.setDate("2025-01-02")
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: CommandMeta{Actor: approver, EffectiveDate: "2024-12-30"}, GrantID: gid}))
	a := grantState(t, s, gid).approval
	if a.FiscalYear != 2025 {
		t.Errorf("charged to %d, want 2025, the year of the server's date", a.FiscalYear)
	}
	wantMoney(t, "2024 committed", budgetState(t, s, "housing", 2024).Committed, "0.00")
	// The first installment, due 2024-12-30, is charged to 2025 with the
	// second; the third is a forward commitment on 2026.
	wantMoney(t, "2025 committed", budgetState(t, s, "housing", 2025).Committed, "420000.00")
	payInstallment(t, s, gid, 1, "2025-01-02")
	// Installment 2 is due 2025-12-30: not on the 29th by the server's
	// clock, and a date after today cannot be claimed.
	testClock.setDate("2025-12-29")
	_, err := s.PreparePayment(ctx, PreparePayment{Meta: CommandMeta{Actor: clerk}, GrantID: gid, Installment: 2})
	wantCode(t, err, ENOTDUE)
	_, err = s.PreparePayment(ctx, PreparePayment{Meta: CommandMeta{Actor: clerk, EffectiveDate: "2025-12-30"}, GrantID: gid, Installment: 2})
	wantCode(t, err, EDATEFUTURE)
	testClock.setDate("2025-12-30")
	must(t)(s.PreparePayment(ctx, PreparePayment{Meta: CommandMeta{Actor: clerk}, GrantID: gid, Installment: 2}))
}

// entitlementPrograms defines the demo's programs with their lifetime
// entitlements, without notices, and budgets for 2024 and 2025.
func entitlementPrograms(t *testing.T, s *Service) {
	t.Helper()
	ctx := context.Background()
	monthly := func(id, kind, amount string, months int, en Entitlement) {
		m := money(t, amount)
		cap := m.MulRatio(int64(months), 1)
		must(t)(s.DefineProgram(ctx, DefineProgram{Meta: on(admin, "2024-01-02"), ProgramID: id, Name: id, Kind: kind,
			Caps: map[string]Money{"A": cap, "B": cap}, Schedule: Schedule{MonthlyAmount: &m, Months: months}, Entitlement: en}))
	}
	must(t)(s.DefineProgram(ctx, DefineProgram{Meta: on(admin, "2024-01-02"), ProgramID: "housing", Name: "Housing", Kind: KindHousingPurchase,
		Caps: housingCaps(t), Schedule: housingSchedule(t), ServiceMonths: 60, DeductKinds: []string{KindRent, KindApartmentRent},
		Entitlement: Entitlement{Once: true}}))
	perYear := money(t, "6000")
	monthly("living", KindLivingAllowance, "5000", 36, Entitlement{MaxMonths: 36})
	monthly("rent", KindRent, "2500", 36, Entitlement{MaxMonths: 36, ExclusiveKinds: []string{KindRent, KindApartmentRent}})
	monthly("apartment", KindApartmentRent, "3000", 36, Entitlement{MaxMonths: 36, ExclusiveKinds: []string{KindRent, KindApartmentRent}})
	monthly("transport", KindTransport, "500", 36, Entitlement{MaxPerYear: &perYear})
	for _, p := range []string{"housing", "living", "rent", "apartment", "transport"} {
		appropriate(t, s, p, 2024, "100000000")
	}
}

// TestEntitlementsPerTalent: what one talent may receive holds across
// grants, not per grant.
func TestEntitlementsPerTalent(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	entitlementPrograms(t, s)
	tid := registerTalent(t, s, "B")
	approve := func(program, amount, date string) (string, error) {
		gid := apply(t, s, tid, program, amount)
		must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, date), GrantID: gid, Decision: "approve"}))
		_, err := s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, date), GrantID: gid})
		return gid, err
	}
	refused := func(program, amount, date string) {
		t.Helper()
		before := countEvents(t, s.Store())
		_, err := approve(program, amount, date)
		wantCode(t, err, EENTITLEMENT)
		if after := countEvents(t, s.Store()); after != before+2 { // the application and its review
			t.Errorf("a refused %s approval appended %d events", program, after-before-2)
		}
	}

	// Housing purchase: once, whatever the amount left under the cap.
	if _, err := approve("housing", "300000", "2024-01-15"); err != nil {
		t.Fatal(err)
	}
	refused("housing", "100000", "2024-01-15")

	// Living allowance: 36 months in all (12 + 24, then not one more).
	for _, amount := range []string{"60000", "120000"} {
		if _, err := approve("living", amount, "2024-01-15"); err != nil {
			t.Fatalf("living %s: %v", amount, err)
		}
	}
	refused("living", "5000", "2024-01-15")

	// Transport: at most 6,000 in a calendar year. Approved on 15 Jan,
	// 12 months pay 6,000 in 2024 (Jan–Dec); another month that year is
	// refused.
	if _, err := approve("transport", "6000", "2024-01-15"); err != nil {
		t.Fatal(err)
	}
	refused("transport", "500", "2024-01-16")

	// Rent and a talent apartment never for the same months; rent
	// months after the apartment's end are fine.
	apt, err := approve("apartment", "36000", "2024-01-15") // Jan–Dec 2024
	if err != nil {
		t.Fatal(err)
	}
	refused("rent", "2500", "2024-01-16")
	testClock.setDate("2024-12-16") // rent from December would overlap
	refused("rent", "2500", "2024-12-16")
	_ = apt
}

// TestEntitlementGivenBackOnTermination: installments cancelled at
// termination no longer count, so the talent may be granted them again.
func TestEntitlementGivenBackOnTermination(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	entitlementPrograms(t, s)
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "living", "180000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-15"), GrantID: gid, Decision: "approve"}))
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: gid}))
	payInstallment(t, s, gid, 1, "2024-01-15")
	must(t)(s.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2024-02-01"), TalentID: tid, DepartureDate: "2024-02-01"}))
	must(t)(s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2024-02-02"), GrantID: gid}))
	var used int
	if err := s.repo.view(ctx, streamTalent(tid), newTalent, func(e *entry) error {
		used = len(e.agg.(*talent).ents[gid].counted())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if used != 1 {
		t.Errorf("after termination %d months count, want the 1 paid", used)
	}
}

// TestEntitlementUnderConcurrency fires 50 approvals of different grants
// of one talent under one program at once, through two services on one
// store: exactly what the entitlement allows is approved, the rest are
// refused with entitlement_exhausted.
func TestEntitlementUnderConcurrency(t *testing.T) {
	for _, tc := range []struct {
		program, amount string
		want            int
	}{
		{"housing", "10000", 1},  // once
		{"living", "60000", 3},   // 12 of 36 months each
		{"transport", "1000", 6}, // two months each; 6,000 a year
	} {
		t.Run(tc.program, func(t *testing.T) {
			ctx := context.Background()
			s1 := newTestService(t)
			entitlementPrograms(t, s1)
			s2 := newServiceOver(s1.Store())
			tid := registerTalent(t, s1, "A")
			const n = 50
			gids := make([]string, n)
			for i := range gids {
				gids[i] = apply(t, s1, tid, tc.program, tc.amount)
				must(t)(s1.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-15"), GrantID: gids[i], Decision: "approve"}))
			}
			testClock.setDate("2024-01-15")
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i, gid := range gids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					svc := []*Service{s1, s2}[i%2]
					_, errs[i] = svc.ApproveGrant(ctx, ApproveGrant{Meta: CommandMeta{Actor: approver}, GrantID: gid})
				}()
			}
			wg.Wait()
			approved := 0
			for i, err := range errs {
				switch ErrorCode(err) {
				case "":
					approved++
				case EENTITLEMENT:
				default:
					t.Errorf("approval %d: %v, want success or %s", i, err, EENTITLEMENT)
				}
			}
			if approved != tc.want {
				t.Errorf("%d approved, want %d", approved, tc.want)
			}
			if got := countEvents(t, s1.Store(), TypeGrantApproved); got != tc.want {
				t.Errorf("%d GrantApproved, want %d", got, tc.want)
			}
			if got := countEvents(t, s1.Store(), TypeBudgetReserved); got != tc.want {
				t.Errorf("%d BudgetReserved, want %d", got, tc.want)
			}
			ledger(t, s1.Store())
		})
	}
}

// TestApprovalRetriedInAnotherYear interrupts an approval after its
// reservations on 2024-12-31 and retries it without a key on 2025-01-02:
// the retry continues the approval decided in 2024, and the grant keeps
// one reservation, in 2024's budget.
func TestApprovalRetriedInAnotherYear(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 0)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriate(t, s, "housing", 2025, "30000000")
	gid := apply(t, s, registerTalent(t, s, "B"), "housing", "600000")
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-12-30"), GrantID: gid, Decision: "approve"}))
	crashAfterReservation(t, s, gid, "approve-1", "2024-12-31")
	retried := newServiceOver(s.Store())
	_, err := retried.ApproveGrant(ctx, ApproveGrant{Meta: on(approver2, "2025-01-02"), GrantID: gid})
	// The approval is the first approver's: the retry saw it through.
	wantCode(t, err, ECONFLICT)
	g := grantState(t, retried, gid)
	if g.state != GrantStateApproved || g.approval.FiscalYear != 2024 || g.approval.CommandID != "approve-1" {
		t.Fatalf("grant %s, approval %+v; want approved by approve-1 in 2024", g.state, g.approval)
	}
	wantMoney(t, "2024 committed", budgetState(t, retried, "housing", 2024).Committed, "600000.00")
	wantMoney(t, "2025 committed", budgetState(t, retried, "housing", 2025).Committed, "0.00")
	if n := countGrantEvents(t, s.Store(), TypeBudgetReserved, gid); n != 1 {
		t.Errorf("%d reservations, want 1", n)
	}
	if n := countGrantEvents(t, s.Store(), TypeEntitlementReserved, gid); n != 1 {
		t.Errorf("%d entitlement reservations, want 1", n)
	}
	// The approval is recorded as the approver's, completed by the retry.
	for _, e := range readAll(t, s.Store()) {
		if typeName(e.Type) == TypeGrantApproved {
			if e.Metadata.Principal != approver.Principal || e.Metadata.CompletedBy != approver2.Principal {
				t.Errorf("GrantApproved by %q completed by %q, want %q completed by %q",
					e.Metadata.Principal, e.Metadata.CompletedBy, approver.Principal, approver2.Principal)
			}
		}
	}
	ledger(t, s.Store())
	verifyChains(t, s.Store())
}

// TestReconcileRecordsTheApprover: an approval completed by reconciliation
// names the approver who decided it, with completed_by "reconcile", never
// "system".
func TestReconcileRecordsTheApprover(t *testing.T) {
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	gid := apply(t, s, registerTalent(t, s, "B"), "housing", "600000")
	toNoticeClosed(t, s, gid)
	crashAfterReservation(t, s, gid, "approve-crash", "2024-01-15")
	testClock.setDate("2024-01-16")
	reconcile(t, newServiceOver(s.Store()), gid, 1)
	var found bool
	for _, e := range readAll(t, s.Store()) {
		if typeName(e.Type) != TypeGrantApproved {
			continue
		}
		found = true
		md := e.Metadata
		if md.Principal != approver.Principal || md.Role != RoleApprover || md.CompletedBy != CompletedByReconcile || md.EffectiveDate != "2024-01-15" {
			t.Errorf("GrantApproved metadata %+v; want the approver %s, completed_by reconcile, dated 2024-01-15", md, approver.Principal)
		}
	}
	if !found {
		t.Fatal("no GrantApproved")
	}
}

// TestStaleReplica: a departure recorded through one process stops the
// other's next payment and lets it terminate, however long the other had
// the talent cached.
func TestStaleReplica(t *testing.T) {
	for name, newStore := range map[string]func(t testing.TB) eventstore.Store{"memstore": newTestStore} {
		t.Run(name, func(t *testing.T) {
			staleReplica(t, newStore(t))
		})
	}
}

// staleReplica runs the stale-replica scenario on a store.
func staleReplica(t *testing.T, st eventstore.Store) {
	ctx := context.Background()
	p1 := newServiceOver(st)
	p2 := newServiceOver(st)
	defineHousing(t, p1, "housing", 0)
	appropriate(t, p1, "housing", 2024, "30000000")
	tid := registerTalent(t, p1, "B")
	gid := apply(t, p1, tid, "housing", "400000")
	// p2 applies for a second housing grant, and so caches the talent
	// before p1 approves the first.
	second := apply(t, p2, tid, "housing", "400000")
	must(t)(p1.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: gid, Decision: "approve"}))
	must(t)(p2.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: second, Decision: "approve"}))
	must(t)(p1.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: gid}))
	// The tier cap over all the talent's grants, used through p1, is seen by p2.
	_, err := p2.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: second})
	wantCode(t, err, EENTITLEMENT)
	payInstallment(t, p1, gid, 1, "2024-01-15") // p1 now caches the talent and the grant
	must(t)(p2.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2024-06-01"), TalentID: tid, DepartureDate: "2024-05-31"}))
	testClock.setDate("2025-01-15")
	_, err = p1.PreparePayment(ctx, PreparePayment{Meta: CommandMeta{Actor: clerk}, GrantID: gid, Installment: 2})
	wantCode(t, err, ENOTELIGIBLE)
	must(t)(p1.TerminateGrant(ctx, TerminateGrant{Meta: CommandMeta{Actor: approver}, GrantID: gid}))
	if g := grantState(t, p1, gid); g.state != GrantStateTerminated {
		t.Errorf("state %s, want terminated", g.state)
	}
	ledger(t, st)
}
