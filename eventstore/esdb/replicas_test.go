package esdb_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
	"talentledger/eventstore/esdb"
	"talentledger/eventstore/esdb/esdbtest"
)

// replicaClock is the server clock both replicas share.
type replicaClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *replicaClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *replicaClock) set(date string) {
	d, err := domain.ParseDate(date)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.t = time.Date(d.Year(), d.Month(), d.Day(), 9, 30, 0, 0, domain.CityTime)
	c.mu.Unlock()
}

// TestReplicasNeverActOnStaleState runs two replicas, each with its own
// connection and cache, on one EventStoreDB: a departure recorded through
// one stops the other's next payment and lets it terminate, and the tier
// cap used through one is seen by the other.
func TestReplicasNeverActOnStaleState(t *testing.T) {
	srv := esdbtest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := &replicaClock{}
	clock.set("2024-01-02")
	replica := func() *domain.Service {
		store, err := esdb.New(ctx, srv.URL(), esdb.WithLogger(log))
		if err != nil {
			t.Fatalf("esdb.New: %v", err)
		}
		t.Cleanup(func() { store.Close() })
		return domain.NewService(store, domain.WithClock(clock.Now), domain.WithLogger(log))
	}
	r1, r2 := replica(), replica()
	as := func(p, role string) domain.CommandMeta {
		return domain.CommandMeta{Actor: domain.Actor{Principal: p, Role: role}, DocumentRef: "DOC-1"}
	}
	must := func(res domain.Result, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	wantCode := func(err error, code string) {
		t.Helper()
		if domain.ErrorCode(err) != code {
			t.Fatalf("error %v, want %s", err, code)
		}
	}
	m := func(s string) domain.Money {
		v, err := domain.ParseMoney(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	pct := func(ps ...int64) []decimal.Decimal {
		var out []decimal.Decimal
		for _, p := range ps {
			out = append(out, decimal.NewFromInt(p))
		}
		return out
	}
	must(r1.DefineProgram(ctx, domain.DefineProgram{Meta: as("ada", domain.RoleAdmin), ProgramID: "housing", Name: "Housing", Kind: domain.KindHousingPurchase,
		Caps: map[string]domain.Money{"B": m("600000")}, Schedule: domain.Schedule{Percentages: pct(40, 30, 30), IntervalMonths: 12}, ServiceMonths: 60}))
	must(r1.AppropriateBudget(ctx, domain.AppropriateBudget{Meta: as("zhao", domain.RoleApprover), ProgramID: "housing", FiscalYear: 2024, Amount: m("30000000")}))
	tid := must(r1.RegisterTalent(ctx, domain.RegisterTalent{Meta: as("wang", domain.RoleClerk), Name: "Lin", Tier: "B", Employer: "E"}))
	apply := func(r *domain.Service) string {
		g := must(r.ApplyGrant(ctx, domain.ApplyGrant{Meta: as("wang", domain.RoleClerk), TalentID: tid, ProgramID: "housing", AmountRequested: m("400000")}))
		must(r.ReviewGrant(ctx, domain.ReviewGrant{Meta: as("li", domain.RoleReviewer), GrantID: g, Decision: "approve"}))
		return g
	}
	g1, g2 := apply(r1), apply(r2) // r2 now has the talent cached
	must(r1.ApproveGrant(ctx, domain.ApproveGrant{Meta: as("zhao", domain.RoleApprover), GrantID: g1}))
	// The tier cap over all the talent's grants, used through r1.
	_, err := r2.ApproveGrant(ctx, domain.ApproveGrant{Meta: as("zhao", domain.RoleApprover), GrantID: g2})
	wantCode(err, domain.EENTITLEMENT)

	p := must(r1.PreparePayment(ctx, domain.PreparePayment{Meta: as("wang", domain.RoleClerk), GrantID: g1, Installment: 1}))
	must(r1.ApprovePayment(ctx, domain.PaymentCommand{Meta: as("zhao", domain.RoleApprover), PaymentID: p}))
	must(r1.ReleasePayment(ctx, domain.PaymentCommand{Meta: as("chen", domain.RoleTreasurer), PaymentID: p, BankReference: "B-1"}))
	// r1 has the talent and the grant cached; the departure goes through r2.
	clock.set("2024-06-01")
	must(r2.ReportDeparture(ctx, domain.ReportDeparture{Meta: as("wang", domain.RoleClerk), TalentID: tid, DepartureDate: "2024-05-31"}))
	clock.set("2025-01-02")
	_, err = r1.PreparePayment(ctx, domain.PreparePayment{Meta: as("wang", domain.RoleClerk), GrantID: g1, Installment: 2})
	wantCode(err, domain.ENOTELIGIBLE)
	must(r1.TerminateGrant(ctx, domain.TerminateGrant{Meta: as("zhao", domain.RoleApprover), GrantID: g1}))
}
