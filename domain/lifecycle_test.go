package domain_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

// The state machines are written once (lifecycle.go); the aggregates and
// the read models each fold their own state around them. These tests feed
// every event type of the grant, fund and principal streams through both,
// one event at a time, and compare the states after each.

// sampleOf returns a copy of the sample of type name, changed by edit.
func sampleOf[E any](t *testing.T, edit func(*E)) domain.Event {
	t.Helper()
	for _, s := range domain.Samples() {
		if e, ok := any(s.Event).(*E); ok {
			c := *e
			if edit != nil {
				edit(&c)
			}
			return any(&c).(domain.Event)
		}
	}
	t.Fatalf("no sample of %T", new(E))
	return nil
}

// streamTypes lists the event types whose samples go to streams of prefix.
func streamTypes(prefix string) []string {
	var out []string
	for _, s := range domain.Samples() {
		if strings.HasPrefix(s.Stream, prefix+"-") {
			out = append(out, s.Event.EventType())
		}
	}
	return out
}

// checkCovers fails unless script holds an event of every type in types.
func checkCovers(t *testing.T, script []domain.Event, types []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range script {
		seen[e.EventType()] = true
	}
	for _, typ := range types {
		if !seen[typ] {
			t.Errorf("the script has no %s: every event type of the stream must go through both folds", typ)
		}
	}
}

// batchOf makes event i of a script a batch for a read model.
func batchOf(i int, e domain.Event) projections.Batch {
	pos := eventstore.Position{Commit: uint64(i + 1), Prepare: uint64(i + 1)}
	ev := &eventstore.Event{Position: pos, Type: e.EventType(),
		Metadata: eventstore.Metadata{Principal: "someone", RecordedAt: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)}}
	return projections.Batch{Changes: []projections.Change{{Event: ev, Payload: e}}, Last: pos}
}

func TestGrantAndPaymentStatesAreTheAggregates(t *testing.T) {
	type (
		G  = domain.GrantApplied
		PP = domain.PaymentPrepared
		PA = domain.PaymentApproved
		PR = domain.PaymentReleased
		PF = domain.PaymentFailed
		PV = domain.PaymentReversed
	)
	pay := func(id string, n int) func(*PP) { return func(e *PP) { e.PaymentID, e.Installment = id, n } }
	script := []domain.Event{
		sampleOf[G](t, nil),
		sampleOf[domain.GrantReviewed](t, nil),
		sampleOf[domain.PublicNoticeOpened](t, nil),
		sampleOf[domain.ObjectionRaised](t, nil),
		sampleOf[domain.ObjectionResolved](t, nil),
		sampleOf[domain.PublicNoticeClosed](t, nil),
		sampleOf[domain.GrantApproved](t, nil), // two installments
		sampleOf(t, pay("p1", 1)),
		sampleOf(t, func(e *PA) { e.PaymentID = "p1" }),
		sampleOf(t, func(e *PR) { e.PaymentID, e.Installment = "p1", 1 }),
		sampleOf(t, pay("p2", 2)),
		sampleOf(t, func(e *PF) { e.PaymentID = "p2" }),
		sampleOf(t, pay("p3", 2)),
		sampleOf(t, func(e *PA) { e.PaymentID = "p3" }),
		sampleOf(t, func(e *PR) { e.PaymentID, e.Installment = "p3", 2 }), // completes the grant
		sampleOf(t, func(e *PV) { e.PaymentID, e.Installment = "p3", 2 }), // and reopens it
		sampleOf(t, pay("p4", 2)),
		sampleOf(t, pay("p5", 2)),
		sampleOf(t, func(e *PA) { e.PaymentID = "p5" }),
		sampleOf[domain.GrantTerminated](t, nil), // fails p4, leaves p5 approved
		sampleOf[domain.ClawbackAssessed](t, nil),
		sampleOf[domain.RecoveryReceived](t, nil),
		sampleOf[domain.RecoveryWaived](t, nil),
	}
	rejected := []domain.Event{
		sampleOf(t, func(e *G) { e.GrantID = "g2" }),
		sampleOf(t, func(e *domain.GrantReviewed) { e.GrantID, e.Decision = "g2", "reject" }),
		sampleOf(t, func(e *domain.GrantRejected) { e.GrantID = "g2" }),
	}
	checkCovers(t, slices.Concat(script, rejected), streamTypes("grant"))

	for _, s := range [][]domain.Event{script, rejected} {
		m := projections.NewGrants()
		states := map[string]bool{}
		for i, e := range s {
			m.Apply(batchOf(i, e))
			wantState, wantPayments := domain.FoldGrant(s[:i+1])
			states[wantState] = true
			id := s[0].(*G).GrantID
			g, ok := m.Grant(id)
			if !ok {
				t.Fatalf("after %s the read model has no grant %s", e.EventType(), id)
			}
			got := map[string]string{}
			for _, p := range g.Payments {
				got[p.ID] = p.State
			}
			if g.State != wantState || !maps.Equal(got, wantPayments) {
				t.Errorf("after event %d (%s): read model %s %v, aggregate %s %v", i, e.EventType(), g.State, got, wantState, wantPayments)
			}
		}
		if len(s) == len(script) {
			for _, st := range []string{domain.GrantStateInNotice, domain.GrantStateCompleted, domain.GrantStateTerminated} {
				if !states[st] {
					t.Errorf("the script never reaches %s", st)
				}
			}
		}
	}
}

func TestInvestmentStatesAreTheAggregates(t *testing.T) {
	inv := func(id string) func(*domain.InvestmentApproved) {
		return func(e *domain.InvestmentApproved) { e.InvestmentID = id }
	}
	script := []domain.Event{
		sampleOf[domain.FundEstablished](t, nil),
		sampleOf[domain.CommitmentMade](t, nil),
		sampleOf[domain.CapitalPaidIn](t, nil),
		sampleOf(t, inv("i1")),
		sampleOf(t, func(e *domain.InvestmentFunded) { e.InvestmentID = "i1" }),
		sampleOf(t, func(e *domain.ValuationUpdated) { e.InvestmentID = "i1" }),
		sampleOf(t, func(e *domain.DistributionReceived) { e.InvestmentID = "i1" }),
		sampleOf(t, func(e *domain.ExitCompleted) { e.InvestmentID = "i1" }),
		sampleOf(t, inv("i2")),
		sampleOf(t, func(e *domain.InvestmentFunded) { e.InvestmentID = "i2" }),
		sampleOf(t, func(e *domain.WrittenOff) { e.InvestmentID = "i2" }),
		sampleOf(t, inv("i3")),
		sampleOf[domain.FundAppropriated](t, nil),
	}
	checkCovers(t, script, streamTypes("fund"))
	m := projections.NewFunds()
	for i, e := range script {
		m.Apply(batchOf(i, e))
		want := domain.FoldFund(script[:i+1])
		projects, _ := m.Projects(projections.ProjectFilter{})
		got := map[string]string{}
		for _, p := range projects {
			got[p.ID] = p.Status
		}
		if !maps.Equal(got, want) {
			t.Errorf("after event %d (%s): read model %v, aggregate %v", i, e.EventType(), got, want)
		}
	}
}

func TestPrincipalAccessIsTheAggregates(t *testing.T) {
	script := []domain.Event{
		sampleOf[domain.PrincipalCreated](t, nil),
		sampleOf[domain.RoleGranted](t, nil),
		sampleOf[domain.RoleRevoked](t, nil),
		sampleOf[domain.TokenRotated](t, nil),
		sampleOf(t, func(e *domain.AccessRequested) { e.Change, e.RevokeNow = domain.ChangeRotate, true }),
		sampleOf[domain.AccessApproved](t, nil),
		sampleOf[domain.EnrollmentRedeemed](t, nil),
		sampleOf(t, func(e *domain.AccessRequested) { e.RequestID = "r2" }),
		sampleOf[domain.AccessRejected](t, nil),
		sampleOf[domain.PrincipalRevoked](t, nil),
		sampleOf[domain.PrincipalRestored](t, nil),
	}
	checkCovers(t, script, streamTypes("principal"))
	id := script[0].(*domain.PrincipalCreated).PrincipalID
	m := projections.NewPrincipals()
	var tokens []string
	for i, e := range script {
		m.Apply(batchOf(i, e))
		want := domain.FoldPrincipal(script[:i+1])
		if want.TokenSHA256 != "" && !slices.Contains(tokens, want.TokenSHA256) {
			tokens = append(tokens, want.TokenSHA256)
		}
		v, ok := m.Principal(id)
		if !ok || !slices.Equal(v.Roles, want.Roles) || v.Active == want.Revoked {
			t.Errorf("after event %d (%s): read model %v roles %v active %v, aggregate roles %v revoked %v",
				i, e.EventType(), ok, v.Roles, v.Active, want.Roles, want.Revoked)
		}
		// The read model answers for a token exactly when the aggregate
		// would let it through: held, not revoked, with a role.
		for _, tok := range tokens {
			_, got := m.PrincipalByToken(tok)
			if wantOK := tok == want.TokenSHA256 && !want.Revoked && len(want.Roles) > 0; got != wantOK {
				t.Errorf("after event %d (%s): token %.8s… answers %v, the aggregate %v", i, e.EventType(), tok, got, wantOK)
			}
		}
	}
	if len(tokens) < 2 {
		t.Errorf("the script holds %d tokens, want a rotation and an enrollment", len(tokens))
	}
}
