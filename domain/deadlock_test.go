package domain

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestConcurrentApprovalsForOneTalent: approving two grants of one talent at
// once, under a program whose no-stacking rule reads the talent's other
// grants, must not deadlock — each approval reads the other's grant.
func TestConcurrentApprovalsForOneTalent(t *testing.T) {
	st := newTestStore(t)
	// Both approvals look up the talent's grants at the same moment: the
	// lookup waits until both have reached it, so that any lock either
	// holds by then is held while it reads the other's grant.
	var arrive sync.WaitGroup
	arrive.Add(2)
	list := talentGrantsFromLog(st)
	var once sync.Map
	lookup := func(ctx context.Context, talentID string) ([]string, error) {
		if _, again := once.LoadOrStore(ctx.Value(approvalKey{}), true); !again {
			arrive.Done()
			arrive.Wait()
		}
		return list(ctx, talentID)
	}
	s := newServiceOver(st, WithTalentGrants(lookup))
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
					actx := context.WithValue(ctx, approvalKey{}, g)
					_, _ = s.ApproveGrant(actx, ApproveGrant{Meta: m, GrantID: g})
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

type approvalKey struct{}
