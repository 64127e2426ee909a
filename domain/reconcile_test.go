package domain

import (
	"context"
	"testing"
)

// crashAfterReservation does the first half of an approval, as ApproveGrant
// does, and stops: the budget holds the reservation, the grant knows
// nothing of it.
func crashAfterReservation(t *testing.T, s *Service, grantID, commandID, date string) {
	t.Helper()
	ctx := context.Background()
	m, err := s.newMeta(withID(on(approver, date), commandID), RoleApprover)
	if err != nil {
		t.Fatal(err)
	}
	g := grantState(t, s, grantID)
	def, err := s.loadProgram(ctx, g.applied.ProgramID)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.approvable(def, m); err != nil {
		t.Fatalf("grant not approvable: %v", err)
	}
	amount := g.applied.AmountRequested
	installments, err := def.Schedule.installments(amount, m.date)
	if err != nil {
		t.Fatal(err)
	}
	approval := GrantApproved{
		GrantID: grantID, TalentID: g.applied.TalentID, ProgramID: def.ProgramID,
		Award: amount, Deduction: Zero, Amount: amount, FiscalYear: mustDate(m.today).Year(),
		Installments: installments, ServiceMonths: def.ServiceMonths,
		ServiceStart: m.date, ApprovedOn: m.date, CommandID: m.CommandID,
	}
	a, am, err := s.reserveEntitlement(ctx, m, def, approval)
	if err != nil {
		t.Fatalf("reserve entitlement: %v", err)
	}
	if err := s.reserve(ctx, am, a); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	if st := grantState(t, s, grantID).state; st == GrantStateApproved {
		t.Fatalf("grant state after the crash = %s, want not yet approved", st)
	}
	b := budgetState(t, s, def.ProgramID, a.FiscalYear)
	wantMoney(t, "committed after the crash", b.Committed, amount.String())
}

// reconcile runs Reconcile and checks how many grants it reports changed.
func reconcile(t *testing.T, s *Service, grantID string, want int) {
	t.Helper()
	n, err := s.Reconcile(context.Background(), []string{grantID})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if n != want {
		t.Errorf("Reconcile changed %d grants, want %d", n, want)
	}
}

// reconcileAgain runs Reconcile once more and checks it wrote nothing.
func reconcileAgain(t *testing.T, s *Service, grantID string) {
	t.Helper()
	before := countEvents(t, s.Store())
	reconcile(t, s, grantID, 0)
	if after := countEvents(t, s.Store()); after != before {
		t.Errorf("a second Reconcile wrote %d events", after-before)
	}
}

func TestReconcileCompletesApproval(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "same_process"
		if restart {
			name = "after_restart"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := newTestService(t)
			defineHousing(t, s, "housing", 5)
			appropriate(t, s, "housing", 2024, "30000000")
			tid := registerTalent(t, s, "B")
			gid := apply(t, s, tid, "housing", "600000")
			toNoticeClosed(t, s, gid)
			crashAfterReservation(t, s, gid, "approve-crash", "2024-01-15")

			r := s
			if restart {
				r = newServiceOver(s.Store())
			}
			reconcile(t, r, gid, 1)
			g := grantState(t, r, gid)
			if g.state != GrantStateApproved {
				t.Fatalf("state after Reconcile = %s, want approved", g.state)
			}
			if g.approval.CommandID != "approve-crash" || g.approval.ApprovedOn != "2024-01-15" || g.approval.Amount.String() != "600000.00" {
				t.Errorf("approval = %+v", g.approval)
			}
			if n := countGrantEvents(t, s.Store(), TypeBudgetReserved, gid); n != 1 {
				t.Errorf("%d BudgetReserved, want 1", n)
			}
			if n := countGrantEvents(t, s.Store(), TypeGrantApproved, gid); n != 1 {
				t.Errorf("%d GrantApproved, want 1", n)
			}
			wantMoney(t, "committed", budgetState(t, r, "housing", 2024).Committed, "600000.00")
			reconcileAgain(t, r, gid)

			// The interrupted command, retried, finds its work done.
			before := countEvents(t, s.Store())
			must(t)(r.ApproveGrant(ctx, ApproveGrant{Meta: withID(on(approver, "2024-01-15"), "approve-crash"), GrantID: gid}))
			if after := countEvents(t, s.Store()); after != before {
				t.Errorf("the retried approval wrote %d events", after-before)
			}
			// Another approval is refused: the grant is approved once.
			_, err := r.ApproveGrant(ctx, ApproveGrant{Meta: on(approver2, "2024-01-16"), GrantID: gid})
			wantCode(t, err, ECONFLICT)
			// And the grant can be paid.
			payInstallment(t, r, gid, 1, "2024-01-16")
			ledger(t, s.Store())
			verifyChains(t, s.Store())
		})
	}
}

// TestReconcileApprovalCrashInStore interrupts ApproveGrant itself: the store
// fails the GrantApproved append, as if the process stopped there.
func TestReconcileApprovalCrashInStore(t *testing.T) {
	ctx := context.Background()
	fs := &faultStore{Store: newTestStore(t)}
	s := newServiceOver(fs)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	toNoticeClosed(t, s, gid)
	fs.onAppend = failOnce(TypeGrantApproved)
	if _, err := s.ApproveGrant(ctx, ApproveGrant{Meta: withID(on(approver, "2024-01-15"), "approve-1"), GrantID: gid}); err == nil {
		t.Fatal("ApproveGrant succeeded through a failing store")
	}
	if n := countGrantEvents(t, fs, TypeBudgetReserved, gid); n != 1 {
		t.Fatalf("%d BudgetReserved after the crash, want 1", n)
	}
	if n := countGrantEvents(t, fs, TypeGrantApproved, gid); n != 0 {
		t.Fatalf("%d GrantApproved after the crash, want 0", n)
	}
	r := newServiceOver(fs.Store)
	reconcile(t, r, gid, 1)
	if st := grantState(t, r, gid).state; st != GrantStateApproved {
		t.Fatalf("state = %s, want approved", st)
	}
	if n := countGrantEvents(t, fs, TypeGrantApproved, gid); n != 1 {
		t.Errorf("%d GrantApproved, want 1", n)
	}
	reconcileAgain(t, r, gid)
	// The original process, retrying, agrees.
	before := countEvents(t, fs)
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: withID(on(approver, "2024-01-15"), "approve-1"), GrantID: gid}))
	if after := countEvents(t, fs); after != before {
		t.Errorf("the retried approval wrote %d events", after-before)
	}
	verifyChains(t, fs)
}

func TestReconcileUndoesApprovalOfRejectedGrant(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	toNoticeClosed(t, s, gid)
	crashAfterReservation(t, s, gid, "approve-crash", "2024-01-15")
	wantMoney(t, "available after the crash", budgetState(t, s, "housing", 2024).Available, "29400000.00")

	// Meanwhile another approver rejects the grant.
	must(t)(s.RejectGrant(ctx, RejectGrant{Meta: on(approver2, "2024-01-16"), GrantID: gid, Reason: "duplicate application"}))

	r := newServiceOver(s.Store())
	reconcile(t, r, gid, 1)
	if st := grantState(t, r, gid).state; st != GrantStateRejected {
		t.Errorf("state = %s, want rejected", st)
	}
	b := budgetState(t, r, "housing", 2024)
	wantMoney(t, "available", b.Available, "30000000.00")
	wantMoney(t, "committed", b.Committed, "0.00")
	if n := countGrantEvents(t, s.Store(), TypeBudgetReservationReleased, gid); n != 1 {
		t.Errorf("%d releases, want 1", n)
	}
	if n := countGrantEvents(t, s.Store(), TypeGrantApproved, gid); n != 0 {
		t.Errorf("%d GrantApproved for a rejected grant", n)
	}
	reconcileAgain(t, r, gid)
	ledger(t, s.Store())
	verifyChains(t, s.Store())
}

// terminationCrash runs the clawback journey over a store that fails the
// termination's budget release once, as if the process stopped between the
// grant's events and the budget's.
func terminationCrash(t *testing.T) (*faultStore, *Service, string) {
	t.Helper()
	fs := &faultStore{Store: newTestStore(t)}
	s := newServiceOver(fs)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	appropriateOn(t, s, "housing", 2025, "30000000", "2024-01-02")
	tid := registerTalent(t, s, "B")
	gid := apply(t, s, tid, "housing", "600000")
	toNoticeClosed(t, s, gid)
	must(t)(s.ApproveGrant(context.Background(), ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: gid}))
	payInstallment(t, s, gid, 1, "2024-01-15")
	payInstallment(t, s, gid, 2, "2025-01-15")
	must(t)(s.ReportDeparture(context.Background(), ReportDeparture{Meta: on(clerk, "2025-09-16"), TalentID: tid, DepartureDate: "2025-09-15"}))

	fs.onAppend = failOnce(TypeBudgetReservationReleased)
	_, err := s.TerminateGrant(context.Background(), TerminateGrant{Meta: withID(on(approver, "2025-09-20"), "term-1"), GrantID: gid})
	if err == nil {
		t.Fatal("TerminateGrant succeeded through a failing store")
	}
	if st := grantState(t, newServiceOver(fs.Store), gid).state; st != GrantStateTerminated {
		t.Fatalf("state after the crash = %s, want terminated", st)
	}
	if n := countGrantEvents(t, fs, TypeBudgetReservationReleased, gid); n != 0 {
		t.Fatalf("%d releases after the crash, want 0", n)
	}
	wantMoney(t, "uncovered 2026 after the crash", ledger(t, fs)["budget:housing:2026:uncovered"], "180000.00")
	return fs, s, gid
}

func TestReconcileReleasesTerminatedReservation(t *testing.T) {
	fs, _, gid := terminationCrash(t)
	r := newServiceOver(fs.Store)
	reconcile(t, r, gid, 1)
	if n := countGrantEvents(t, fs, TypeBudgetReservationReleased, gid); n != 1 {
		t.Errorf("%d releases, want 1", n)
	}
	b := budgetState(t, r, "housing", 2024)
	wantMoney(t, "committed", b.Committed, "240000.00")
	wantMoney(t, "available", b.Available, "29760000.00")
	wantMoney(t, "uncovered 2026", ledger(t, fs)["budget:housing:2026:uncovered"], "0.00")
	reconcileAgain(t, r, gid)
	ledger(t, fs)
	verifyChains(t, fs)
}

// TestRetriedTerminationReleases retries the interrupted termination instead
// of reconciling: the retry appends the missing release, once, and a
// further retry answers the same.
func TestRetriedTerminationReleases(t *testing.T) {
	fs, s, gid := terminationCrash(t)
	retry := func() Result {
		return must(t)(s.TerminateGrant(context.Background(), TerminateGrant{Meta: withID(on(approver, "2025-09-20"), "term-1"), GrantID: gid}))
	}
	r1 := retry()
	if n := countGrantEvents(t, fs, TypeBudgetReservationReleased, gid); n != 1 {
		t.Errorf("%d releases, want 1", n)
	}
	before := countEvents(t, fs)
	if r2 := retry(); r2 != r1 {
		t.Errorf("second retry answered %+v, first %+v", r2, r1)
	}
	if after := countEvents(t, fs); after != before {
		t.Errorf("second retry wrote %d events", after-before)
	}
	if last, err := fs.LastPosition(context.Background()); err != nil || r1.Position != last {
		t.Errorf("retry answered position %s, want the release's %s (%v)", r1.Position, last, err)
	}
	reconcile(t, newServiceOver(fs.Store), gid, 0)
	wantMoney(t, "committed", budgetState(t, s, "housing", 2024).Committed, "240000.00")
	wantMoney(t, "uncovered 2026", ledger(t, fs)["budget:housing:2026:uncovered"], "0.00")
	ledger(t, fs)
	verifyChains(t, fs)
}

func TestReconcileLeavesSettledGrantsAlone(t *testing.T) {
	s := newTestService(t)
	_, gid := approvedHousing(t, s)
	// A settled grant, an unknown grant and a malformed ID change nothing.
	for _, id := range []string{gid, "g0000000000000001", "nonsense"} {
		before := countEvents(t, s.Store())
		n, _ := s.Reconcile(context.Background(), []string{id})
		if n != 0 {
			t.Errorf("Reconcile(%s) changed %d grants", id, n)
		}
		if after := countEvents(t, s.Store()); after != before {
			t.Errorf("Reconcile(%s) wrote %d events", id, after-before)
		}
	}
}
