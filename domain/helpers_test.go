package domain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
)

// fakeClock is the server clock of the test services: tests move it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// setDate sets the clock to 09:30 in the city on date.
func (c *fakeClock) setDate(date string) {
	d, err := ParseDate(date)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.t = time.Date(d.Year(), d.Month(), d.Day(), 9, 30, 0, 0, CityTime)
	c.mu.Unlock()
}

// add moves the clock on by d.
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testClock is the server clock of every test service made by
// newServiceOver. Commands built with on run at the server's date: on
// sets this clock to the date it is given, so that a test reads as a
// sequence of days on which things happen.
var testClock = &fakeClock{t: time.Date(2026, 1, 10, 9, 30, 0, 0, CityTime)}

// newTestStore returns an empty store for one test. Switch the backend
// here (e.g. pebble.Open(t.TempDir())) to run the domain's tests on it.
func newTestStore(t testing.TB) eventstore.Store {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	return st
}

// newTestService returns a service over a fresh store.
func newTestService(t testing.TB, opts ...Option) *Service {
	t.Helper()
	return newServiceOver(newTestStore(t), opts...)
}

// newServiceOver returns a service over an existing store, as a second
// process would have.
func newServiceOver(st eventstore.Store, opts ...Option) *Service {
	return NewService(st, append([]Option{WithClock(testClock.Now)}, opts...)...)
}

// Principals of the tests. Each holds one role; tests that need one person
// in two roles pair the same principal with another role.
var (
	admin      = Actor{"ada", RoleAdmin}
	clerk      = Actor{"carl", RoleClerk}
	clerk2     = Actor{"cleo", RoleClerk}
	reviewer   = Actor{"rita", RoleReviewer}
	approver   = Actor{"alan", RoleApprover}
	approver2  = Actor{"abby", RoleApprover}
	treasurer  = Actor{"tess", RoleTreasurer}
	treasurer2 = Actor{"tom", RoleTreasurer}
	auditor    = Actor{"audrey", RoleAuditor}
	fundMgr    = Actor{"fred", RoleFundManager}
)

// as returns another role for the same principal.
func as(a Actor, role string) Actor { return Actor{a.Principal, role} }

// on returns the metadata of a command by a on date: it sets the test
// services' clock to that day, and the command carries no effective date,
// so its business date is the server's.
func on(a Actor, date string) CommandMeta {
	testClock.setDate(date)
	return CommandMeta{Actor: a}
}

// onDoc is on with a document reference, which applications need.
func onDoc(a Actor, date string) CommandMeta {
	m := on(a, date)
	m.DocumentRef = "DOC-" + date
	return m
}

func money(t testing.TB, s string) Money {
	t.Helper()
	m, err := ParseMoney(s)
	if err != nil {
		t.Fatalf("ParseMoney(%q): %v", s, err)
	}
	return m
}

// decs parses percentages.
func decs(t testing.TB, ss ...string) []decimal.Decimal {
	t.Helper()
	out := make([]decimal.Decimal, len(ss))
	for i, s := range ss {
		d, err := decimal.NewFromString(s)
		if err != nil {
			t.Fatalf("decimal %q: %v", s, err)
		}
		out[i] = d
	}
	return out
}

// wantCode fails unless err carries the domain error code want.
func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := ErrorCode(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

// must returns a function that fails the test on an error and otherwise
// returns the result: must(t)(s.ApplyGrant(ctx, c)).
func must(t testing.TB) func(Result, error) Result {
	return func(r Result, err error) Result {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return r
	}
}

func wantMoney(t testing.TB, what string, got Money, want string) {
	t.Helper()
	if got.String() != want {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

// housingCaps are docs/domain.md's housing caps by tier.
func housingCaps(t testing.TB) map[string]Money {
	return map[string]Money{
		"A": money(t, "1000000"), "B": money(t, "600000"), "C": money(t, "350000"), "D": money(t, "150000"),
	}
}

// housingSchedule pays 40/30/30 every 12 months.
func housingSchedule(t testing.TB) Schedule {
	return Schedule{Percentages: decs(t, "40", "30", "30"), IntervalMonths: 12}
}

// defineHousing defines docs/domain.md's housing-purchase program under id.
func defineHousing(t testing.TB, s *Service, id string, noticeDays int) {
	t.Helper()
	must(t)(s.DefineProgram(context.Background(), DefineProgram{
		Meta: on(admin, "2024-01-02"), ProgramID: id, Name: "Housing purchase " + id, Kind: KindHousingPurchase,
		Caps: housingCaps(t), Schedule: housingSchedule(t), ServiceMonths: 60, NoticeDays: noticeDays,
	}))
}

func appropriate(t testing.TB, s *Service, program string, fy int, amount string) {
	t.Helper()
	must(t)(s.AppropriateBudget(context.Background(), AppropriateBudget{
		Meta: on(approver, fmt.Sprintf("%d-01-02", fy)), ProgramID: program, FiscalYear: fy, Amount: money(t, amount),
	}))
}

// appropriateOn appropriates a fiscal year's budget on date, which may lie
// in an earlier year.
func appropriateOn(t testing.TB, s *Service, program string, fy int, amount, date string) {
	t.Helper()
	must(t)(s.AppropriateBudget(context.Background(), AppropriateBudget{
		Meta: on(approver, date), ProgramID: program, FiscalYear: fy, Amount: money(t, amount),
	}))
}

func registerTalent(t testing.TB, s *Service, tier string) string {
	t.Helper()
	r := must(t)(s.RegisterTalent(context.Background(), RegisterTalent{
		Meta: on(clerk, "2024-01-02"), Name: "Talent " + tier, PermitCategory: "A", Tier: tier, Employer: "Pinghu Precision",
	}))
	return r.ID
}

func apply(t testing.TB, s *Service, talentID, program, amount string) string {
	t.Helper()
	r := must(t)(s.ApplyGrant(context.Background(), ApplyGrant{
		Meta: onDoc(clerk, "2024-01-03"), TalentID: talentID, ProgramID: program, AmountRequested: money(t, amount),
	}))
	return r.ID
}

// toNoticeClosed reviews a grant, opens its notice on Friday 2024-01-05 and
// closes it on Friday 2024-01-12, after 5 working days.
func toNoticeClosed(t testing.TB, s *Service, grantID string) {
	t.Helper()
	ctx := context.Background()
	must(t)(s.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: grantID, Decision: "approve"}))
	must(t)(s.OpenNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-05"), GrantID: grantID}))
	must(t)(s.CloseNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-15"), GrantID: grantID}))
}

// approvedHousing sets up a housing program "housing" with 5 notice days, a
// 2024 budget, a tier-B talent and a 600,000 grant approved on 2024-01-15.
func approvedHousing(t testing.TB, s *Service) (talentID, grantID string) {
	t.Helper()
	defineHousing(t, s, "housing", 5)
	appropriate(t, s, "housing", 2024, "30000000")
	// The installments due in 2025 and 2026 are charged to those years:
	// their budgets are appropriated in advance, so that the approval
	// covers its forward commitments at once.
	appropriateOn(t, s, "housing", 2025, "30000000", "2024-01-02")
	appropriateOn(t, s, "housing", 2026, "30000000", "2024-01-02")
	talentID = registerTalent(t, s, "B")
	grantID = apply(t, s, talentID, "housing", "600000")
	toNoticeClosed(t, s, grantID)
	must(t)(s.ApproveGrant(context.Background(), ApproveGrant{Meta: on(approver, "2024-01-15"), GrantID: grantID}))
	return talentID, grantID
}

// payInstallment prepares (clerk), approves (approver) and releases
// (treasurer) installment n of a grant on date, returning the payment ID.
func payInstallment(t testing.TB, s *Service, grantID string, n int, date string) string {
	t.Helper()
	ctx := context.Background()
	p := must(t)(s.PreparePayment(ctx, PreparePayment{Meta: on(clerk, date), GrantID: grantID, Installment: n}))
	must(t)(s.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, date), PaymentID: p.ID}))
	must(t)(s.ReleasePayment(ctx, PaymentCommand{Meta: on(treasurer, date), PaymentID: p.ID, BankReference: "BANK-" + p.ID}))
	return p.ID
}

// grantState returns a copy of the grant's state as the service sees it.
func grantState(t testing.TB, s *Service, grantID string) grant {
	t.Helper()
	var g grant
	err := s.repo.view(context.Background(), streamGrant(grantID), newGrant, func(e *entry) error {
		g = *e.agg.(*grant)
		return nil
	})
	if err != nil {
		t.Fatalf("view grant %s: %v", grantID, err)
	}
	return g
}

func budgetState(t testing.TB, s *Service, program string, fy int) BudgetState {
	t.Helper()
	b, err := s.Budget(context.Background(), program, fy)
	if err != nil {
		t.Fatalf("Budget(%s, %d): %v", program, fy, err)
	}
	return b
}

// readAll returns the store's whole global log.
func readAll(t testing.TB, st eventstore.Store) []eventstore.Event {
	t.Helper()
	it := st.ReadAll(context.Background(), eventstore.Start)
	defer it.Close()
	var out []eventstore.Event
	for it.Next() {
		out = append(out, it.Event())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return out
}

// countEvents counts the events in the global log, by type when types are
// given.
func countEvents(t testing.TB, st eventstore.Store, types ...string) int {
	t.Helper()
	n := 0
	for _, e := range readAll(t, st) {
		if len(types) == 0 || contains(types, typeName(e.Type)) || contains(types, e.Type) {
			n++
		}
	}
	return n
}

// countGrantEvents counts events of one type that concern one grant,
// whatever their stream.
func countGrantEvents(t testing.TB, st eventstore.Store, typ, grantID string) int {
	t.Helper()
	n := 0
	for _, e := range readAll(t, st) {
		if typeName(e.Type) != typ {
			continue
		}
		var v struct {
			GrantID string `json:"grant_id"`
		}
		if err := json.Unmarshal(e.Data, &v); err != nil {
			t.Fatalf("event %s: %v", e.Type, err)
		}
		if v.GrantID == grantID {
			n++
		}
	}
	return n
}

// ledger folds the postings of every event of the log in order. It fails
// the test if a non-negative account goes below zero at any point or if the
// trial balance does not sum to zero, and returns the final balances.
func ledger(t testing.TB, st eventstore.Store) map[string]Money {
	t.Helper()
	bal := map[string]Money{}
	for _, ev := range readAll(t, st) {
		p, err := DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			t.Fatalf("decode %s at %s: %v", ev.Type, ev.Position, err)
		}
		for _, po := range Postings(p) {
			if po.Amount.Sign() <= 0 {
				t.Errorf("%s at %s posts a non-positive amount %s", ev.Type, ev.Position, po.Amount)
			}
			if po.Source == po.Destination {
				t.Errorf("%s at %s posts from and to %s", ev.Type, ev.Position, po.Source)
			}
			bal[po.Source] = bal[po.Source].Sub(po.Amount)
			bal[po.Destination] = bal[po.Destination].Add(po.Amount)
		}
		for acct, b := range bal {
			if NonNegativeAccount(acct) && b.Sign() < 0 {
				t.Errorf("after %s at %s, %s = %s, below zero", ev.Type, ev.Position, acct, b)
			}
		}
	}
	sum := Zero
	for _, b := range bal {
		sum = sum.Add(b)
	}
	if !sum.IsZero() {
		t.Errorf("trial balance sums to %s, want 0.00: %v", sum, bal)
	}
	return bal
}

// faultStore wraps a store and lets a test intercept appends.
type faultStore struct {
	eventstore.Store
	// onAppend, when set, is called before each append; a non-nil error
	// is returned instead of appending.
	onAppend func(stream string, events []eventstore.EventData) error
}

func (f *faultStore) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if f.onAppend != nil {
		if err := f.onAppend(stream, events); err != nil {
			return eventstore.AppendResult{}, err
		}
	}
	return f.Store.Append(ctx, stream, expected, events...)
}

// failOnce returns an onAppend hook that fails the first append of an event
// of type typ.
func failOnce(typ string) func(string, []eventstore.EventData) error {
	var once sync.Once
	return func(stream string, events []eventstore.EventData) error {
		var err error
		for _, e := range events {
			if typeName(e.Type) == typ {
				once.Do(func() { err = errors.New("injected fault: process stopped") })
			}
		}
		return err
	}
}

// typeName is the type name of a stored type, whatever its version:
// helpers given a type name count every version of it (and, given a
// stored type with its version, that version only).
func typeName(stored string) string {
	if name, _, ok := ParseEventType(stored); ok {
		return name
	}
	return stored
}
