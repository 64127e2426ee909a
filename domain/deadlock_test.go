package domain

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestConcurrentApprovalsForOneTalent: approving two grants of one talent at
// once, under a program whose no-stacking rule reads the talent's other
// grants, must not deadlock — each approval reads the other's grant and
// both reserve on the talent's stream.
func TestConcurrentApprovalsForOneTalent(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	must(t)(s.DefineProgram(ctx, DefineProgram{
		Meta: on(admin, "2024-01-02"), ProgramID: "housing", Name: "Housing purchase", Kind: KindHousingPurchase,
		Caps: housingCaps(t), Schedule: housingSchedule(t), ServiceMonths: 60, DeductKinds: []string{KindHousingPurchase},
	}))
	appropriate(t, s, "housing", 2024, "30000000")
	talent := registerTalent(t, s, "B")
	grants := []string{apply(t, s, talent, "housing", "300000"), apply(t, s, talent, "housing", "200000")}
	for _, g := range grants {
		must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: g, Decision: "approve"}))
	}
	for round := 0; round < 3; round++ {
		done := make(chan struct{})
		go func() {
			defer close(done)
			var wg sync.WaitGroup
			for _, g := range grants {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// The same command each round: after the first, a retry.
					m := on(approver, "2024-01-15")
					m.CommandID = "approve-" + g
					_, _ = s.ApproveGrant(ctx, ApproveGrant{Meta: m, GrantID: g})
				}()
			}
			wg.Wait()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: two approvals for one talent deadlocked", round)
		}
	}
	for _, g := range grants {
		if st := grantState(t, s, g).state; st != GrantStateApproved {
			t.Errorf("grant %s is %s, want approved", g, st)
		}
	}
}
