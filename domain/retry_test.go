package domain

import (
	"context"
	"sync"
	"testing"
	"time"
)

// withID sets a command ID on command metadata.
func withID(m CommandMeta, id string) CommandMeta {
	m.CommandID = id
	return m
}

// twice runs a command, then runs it again and checks that the retry wrote
// nothing and answered the same.
func twice(t *testing.T, s *Service, name string, run func() (Result, error)) Result {
	t.Helper()
	first := must(t)(run())
	before := countEvents(t, s.Store())
	again, err := run()
	if err != nil {
		t.Fatalf("%s retried: %v", name, err)
	}
	if after := countEvents(t, s.Store()); after != before {
		t.Errorf("%s retried wrote %d events", name, after-before)
	}
	if again != first {
		t.Errorf("%s retried answered %+v, first %+v", name, again, first)
	}
	if first.ID == "" {
		t.Errorf("%s answered no ID", name)
	}
	return first
}

func TestIdempotentRetries(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")

	tid := twice(t, s, "RegisterTalent", func() (Result, error) {
		return s.RegisterTalent(ctx, RegisterTalent{Meta: withID(on(clerk, "2024-01-02"), "reg-1"), Name: "Li", Tier: "B", Employer: "E"})
	}).ID
	gid := twice(t, s, "ApplyGrant", func() (Result, error) {
		return s.ApplyGrant(ctx, ApplyGrant{Meta: withID(onDoc(clerk, "2024-01-03"), "apply-1"), TalentID: tid, ProgramID: "housing", AmountRequested: money(t, "600000")})
	}).ID
	twice(t, s, "ReviewGrant", func() (Result, error) {
		return s.ReviewGrant(ctx, ReviewGrant{Meta: withID(on(reviewer, "2024-01-04"), "review-1"), GrantID: gid, Decision: "approve"})
	})
	twice(t, s, "OpenNotice", func() (Result, error) {
		return s.OpenNotice(ctx, NoticeCommand{Meta: withID(on(reviewer, "2024-01-05"), "open-1"), GrantID: gid})
	})
	twice(t, s, "CloseNotice", func() (Result, error) {
		return s.CloseNotice(ctx, NoticeCommand{Meta: withID(on(reviewer, "2024-01-15"), "close-1"), GrantID: gid})
	})
	twice(t, s, "ApproveGrant", func() (Result, error) {
		return s.ApproveGrant(ctx, ApproveGrant{Meta: withID(on(approver, "2024-01-15"), "approve-1"), GrantID: gid})
	})
	if n := countGrantEvents(t, s.Store(), TypeBudgetReserved, gid); n != 1 {
		t.Errorf("%d reservations, want 1", n)
	}
	pid := twice(t, s, "PreparePayment", func() (Result, error) {
		return s.PreparePayment(ctx, PreparePayment{Meta: withID(on(clerk, "2024-01-15"), "prep-1"), GrantID: gid, Installment: 1})
	}).ID
	if pid != PaymentID(gid, 1, 1) {
		t.Errorf("payment ID = %s, want %s", pid, PaymentID(gid, 1, 1))
	}
	twice(t, s, "ApprovePayment", func() (Result, error) {
		return s.ApprovePayment(ctx, PaymentCommand{Meta: withID(on(approver, "2024-01-15"), "papprove-1"), PaymentID: pid})
	})
	twice(t, s, "ReleasePayment", func() (Result, error) {
		return s.ReleasePayment(ctx, PaymentCommand{Meta: withID(on(treasurer, "2024-01-15"), "release-1"), PaymentID: pid, BankReference: "B1"})
	})
	twice(t, s, "ReportDeparture", func() (Result, error) {
		return s.ReportDeparture(ctx, ReportDeparture{Meta: withID(on(clerk, "2024-06-01"), "depart-1"), TalentID: tid, DepartureDate: "2024-05-31"})
	})
	twice(t, s, "TerminateGrant", func() (Result, error) {
		return s.TerminateGrant(ctx, TerminateGrant{Meta: withID(on(approver, "2024-06-02"), "term-1"), GrantID: gid})
	})
	twice(t, s, "RecordRecovery", func() (Result, error) {
		return s.RecordRecovery(ctx, RecoveryCommand{Meta: withID(on(treasurer, "2024-06-10"), "rec-1"), GrantID: gid, Amount: money(t, "1000"), BankReference: "R1"})
	})
	// One release in each year with unpaid installments: 2025 and 2026.
	if n := countGrantEvents(t, s.Store(), TypeBudgetReservationReleased, gid); n != 2 {
		t.Errorf("%d releases, want 2", n)
	}
	if g := grantState(t, s, gid); g.recovered.String() != "1000.00" {
		t.Errorf("recovered = %s, want 1000.00", g.recovered)
	}

	// A restarted process (a fresh service, nothing cached) recognises the
	// retries too.
	s2 := newServiceOver(s.Store())
	before := countEvents(t, s.Store())
	r, err := s2.PreparePayment(ctx, PreparePayment{Meta: withID(on(clerk, "2024-01-15"), "prep-1"), GrantID: gid, Installment: 1})
	if err != nil || r.ID != pid {
		t.Errorf("PreparePayment retried after restart = %+v, %v; want payment %s", r, err, pid)
	}
	// The talent has departed since, which would refuse these commands
	// now; their retries still get the first answer.
	if r, err := s2.ApplyGrant(ctx, ApplyGrant{Meta: withID(onDoc(clerk, "2024-01-03"), "apply-1"), TalentID: tid, ProgramID: "housing", AmountRequested: money(t, "600000")}); err != nil || r.ID != gid {
		t.Errorf("ApplyGrant retried after departure = %+v, %v; want grant %s", r, err, gid)
	}
	if _, err := s2.ApproveGrant(ctx, ApproveGrant{Meta: withID(on(approver, "2024-01-15"), "approve-1"), GrantID: gid}); err != nil {
		t.Errorf("ApproveGrant retried after restart: %v", err)
	}
	if after := countEvents(t, s.Store()); after != before {
		t.Errorf("retries after restart wrote %d events", after-before)
	}
	verifyChains(t, s.Store())
}

// TestIdempotentConcurrentRetries sends the same command many times at once,
// through one service and through two: it is carried out once and every
// call gets the same answer.
func TestIdempotentConcurrentRetries(t *testing.T) {
	for _, twoProcesses := range []bool{false, true} {
		name := "one_process"
		if twoProcesses {
			name = "two_processes"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := newTestService(t)
			defineHousing(t, s, "housing", 5)
			appropriate(t, s, "housing", 2024, "30000000")
			tid := registerTalent(t, s, "B")
			gid := apply(t, s, tid, "housing", "600000")
			toNoticeClosed(t, s, gid)
			services := []*Service{s}
			if twoProcesses {
				s2 := NewService(s.Store(), WithClock(func() time.Time { return testClock.Now().Add(time.Second) }))
				grantState(t, s2, gid)
				budgetState(t, s2, "housing", 2024)
				services = append(services, s2)
			}

			const n = 8
			run := func(f func(s *Service) (Result, error)) []Result {
				var wg sync.WaitGroup
				res := make([]Result, n)
				errs := make([]error, n)
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						res[i], errs[i] = f(services[i%len(services)])
					}()
				}
				wg.Wait()
				for i := range n {
					if errs[i] != nil {
						t.Fatalf("call %d: %v", i, errs[i])
					}
					if res[i] != res[0] {
						t.Errorf("call %d answered %+v, call 0 %+v", i, res[i], res[0])
					}
				}
				return res
			}
			run(func(s *Service) (Result, error) {
				return s.ApproveGrant(ctx, ApproveGrant{Meta: withID(on(approver, "2024-01-15"), "approve-x"), GrantID: gid})
			})
			if got := countGrantEvents(t, s.Store(), TypeBudgetReserved, gid); got != 1 {
				t.Errorf("%d BudgetReserved, want 1", got)
			}
			if got := countGrantEvents(t, s.Store(), TypeGrantApproved, gid); got != 1 {
				t.Errorf("%d GrantApproved, want 1", got)
			}
			res := run(func(s *Service) (Result, error) {
				return s.PreparePayment(ctx, PreparePayment{Meta: withID(on(clerk, "2024-01-15"), "prep-x"), GrantID: gid, Installment: 1})
			})
			if res[0].ID != PaymentID(gid, 1, 1) {
				t.Errorf("payment ID = %s, want %s", res[0].ID, PaymentID(gid, 1, 1))
			}
			if got := countEvents(t, s.Store(), TypePaymentPrepared); got != 1 {
				t.Errorf("%d PaymentPrepared, want 1", got)
			}
			// Every service goes on from the stored state, whatever it
			// proposed itself.
			for i, svc := range services {
				_, err := svc.RaiseObjection(ctx, RaiseObjection{Meta: on(reviewer, "2024-01-16"), GrantID: gid, Summary: "late"})
				wantCode(t, err, ECONFLICT) // not in notice any more
				must(t)(svc.FailPayment(ctx, PaymentCommand{Meta: withID(on(treasurer, "2024-01-16"), "fail-x"), PaymentID: res[0].ID, Reason: "try " + string(rune('a'+i))}))
			}
			verifyChains(t, s.Store())
		})
	}
}

// TestRetryThroughStaleProcessKeepsChain retries a command through a second
// process whose cached copy of the stream predates the first attempt and
// whose clock differs: the store acknowledges the retry without writing,
// and the next event that process appends must still link to the stored
// event, not to the one it proposed.
func TestRetryThroughStaleProcessKeepsChain(t *testing.T) {
	ctx := context.Background()
	s1 := newTestService(t)
	defineHousing(t, s1, "housing", 5)
	tid := registerTalent(t, s1, "B")
	gid := apply(t, s1, tid, "housing", "600000")
	s2 := NewService(s1.Store(), WithClock(func() time.Time { return testClock.Now().Add(3 * time.Second) }))
	grantState(t, s2, gid) // s2 caches the grant as applied

	review := ReviewGrant{Meta: withID(on(reviewer, "2024-01-04"), "review-r"), GrantID: gid, Decision: "approve"}
	r1 := must(t)(s1.ReviewGrant(ctx, review))
	before := countEvents(t, s1.Store())
	r2 := must(t)(s2.ReviewGrant(ctx, review)) // the client's retry lands on s2
	if after := countEvents(t, s1.Store()); after != before {
		t.Fatalf("the retry wrote %d events", after-before)
	}
	if r1 != r2 {
		t.Errorf("retry answered %+v, first %+v", r2, r1)
	}
	must(t)(s2.OpenNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-05"), GrantID: gid}))
	verifyChains(t, s1.Store())
}
