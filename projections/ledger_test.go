package projections_test

import (
	"slices"
	"testing"

	"talentledger/domain"
	"talentledger/projections"
)

// At control level a control account's line is its subsidiary accounts
// summed and counted, and it is a violation when one of them is below
// zero, even when the others make its total positive: the trial balance
// loses no breach by rolling the talents' accounts up. Its total is every
// account's, so a ledger that does not balance still shows it.
func TestControlAccountsKeepTheSubsidiaryBreaches(t *testing.T) {
	l := projections.NewLedger()
	l.Post([]domain.Posting{
		{Source: "budget:p:2024:encumbered", Destination: "talent:t1:paid", Amount: yuan("100.00")},
		{Source: "talent:t2:paid", Destination: "budget:p:2024:encumbered", Amount: yuan("30.00")},
		{Source: "talent:t1:paid", Destination: "talent:t1:clawback_due", Amount: yuan("20.00")},
	})
	tb := l.ControlTrialBalance()
	line := func(name string) projections.AccountBalance {
		for _, a := range tb.Accounts {
			if a.Account == name {
				return a
			}
		}
		t.Fatalf("no line %s in %+v", name, tb.Accounts)
		return projections.AccountBalance{}
	}
	paid := line("talent:*:paid")
	if paid.Balance.Cmp(yuan("50.00")) != 0 || paid.Debits.Cmp(yuan("100.00")) != 0 || paid.Credits.Cmp(yuan("50.00")) != 0 || paid.SubsidiaryAccounts != 2 {
		t.Errorf("talent:*:paid = %+v, want debits 100.00, credits 50.00, balance 50.00 over 2 accounts", paid)
	}
	if due := line("talent:*:clawback_due"); due.Balance.Cmp(yuan("20.00")) != 0 || due.SubsidiaryAccounts != 1 {
		t.Errorf("talent:*:clawback_due = %+v, want 20.00 over 1 account", due)
	}
	for _, a := range tb.Accounts {
		if _, sub := domain.ControlAccount(a.Account); sub && domain.SubsidiaryTalent(a.Account) != "*" {
			t.Errorf("subsidiary account %s listed at control level", a.Account)
		}
	}
	if !slices.Equal(tb.Violations, []string{"budget:p:2024:encumbered", "talent:*:paid"}) {
		t.Errorf("violations = %v, want the encumbered budget and talent:*:paid (talent t2's account is below zero)", tb.Violations)
	}
	if !tb.Total.IsZero() {
		t.Errorf("total = %s, want 0.00", tb.Total)
	}
	if got, want := jsonOf(t, tb), jsonOf(t, projections.RollUp(l.TrialBalance(), true)); got != want {
		t.Errorf("control level differs from the detail rolled up:\n%s", firstDiff(got, want))
	}
	// Paid back: no breach left.
	l.Post([]domain.Posting{{Source: "budget:p:2024:encumbered", Destination: "talent:t2:paid", Amount: yuan("30.00")}})
	if tb := l.ControlTrialBalance(); !slices.Equal(tb.Violations, []string{"budget:p:2024:encumbered"}) {
		t.Errorf("violations = %v once t2's account is back at zero", tb.Violations)
	}
	// The subsidiary ledger pages by name and finds a talent's accounts.
	p1 := l.Subsidiary(projections.SubsidiaryFilter{Limit: 2})
	if len(p1.Accounts) != 2 || p1.Next != "talent:t1:paid" {
		t.Fatalf("first page %+v, next %q", p1.Accounts, p1.Next)
	}
	p2 := l.Subsidiary(projections.SubsidiaryFilter{Limit: 2, After: p1.Next})
	if len(p2.Accounts) != 1 || p2.Accounts[0].Account != "talent:t2:paid" || p2.Next != "" {
		t.Errorf("second page %+v, next %q", p2.Accounts, p2.Next)
	}
	if t1 := l.Subsidiary(projections.SubsidiaryFilter{Talent: "t1", Limit: 10}); len(t1.Accounts) != 2 {
		t.Errorf("t1's accounts: %+v", t1.Accounts)
	}
	if due := l.Subsidiary(projections.SubsidiaryFilter{Control: "talent:*:clawback_due", Limit: 10}); len(due.Accounts) != 1 || due.Accounts[0].Account != "talent:t1:clawback_due" {
		t.Errorf("clawback accounts: %+v", due.Accounts)
	}
}

// An unbalanced ledger shows at control level: the total is every
// account's, the talents' included.
func TestControlLevelTotalCanFail(t *testing.T) {
	tb := projections.RollUp(projections.TrialBalance{Accounts: []projections.AccountBalance{
		{Account: "budget:p:2024:available", Debits: yuan("10.00"), Credits: domain.Zero, Balance: yuan("10.00")},
		{Account: "talent:t1:paid", Debits: yuan("5.00"), Credits: domain.Zero, Balance: yuan("5.00")},
		{Account: "treasury:2024:appropriation", Debits: domain.Zero, Credits: yuan("10.00"), Balance: yuan("-10.00")},
	}}, false)
	if tb.Total.Cmp(yuan("5.00")) != 0 {
		t.Errorf("total = %s, want 5.00: an unbalanced ledger must show", tb.Total)
	}
}
