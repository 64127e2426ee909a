package projections

import (
	"context"
	"sort"
	"sync"

	"talentledger/domain"
	"talentledger/eventstore"
)

// Ledger holds account balances folded from postings. Balance = debits −
// credits, where a posting debits its destination and credits its source.
// It keeps them in fen (see tally).
type Ledger struct {
	tally
	accounts map[string]*account
}

type account struct {
	debits, credits, balance int64
	nonNegative              bool
}

// AccountBalance is one account's totals.
type AccountBalance struct {
	Account string       `json:"account"`
	Debits  domain.Money `json:"debits"`
	Credits domain.Money `json:"credits"`
	Balance domain.Money `json:"balance"`
	// NonNegative marks accounts that may never go below zero.
	NonNegative bool `json:"non_negative"`
}

// TrialBalance lists every account and the sum of all balances, which is
// zero in a sound ledger.
type TrialBalance struct {
	AsOf string `json:"as_of,omitempty"`
	// RecordedAsOf is the recording-time bound (RFC 3339), when one was
	// asked for.
	RecordedAsOf string           `json:"recorded_as_of,omitempty"`
	Position     string           `json:"position"`
	Accounts     []AccountBalance `json:"accounts"`
	Total        domain.Money     `json:"total"`
	Debits       domain.Money     `json:"total_debits"`
	Credits      domain.Money     `json:"total_credits"`
	// Violations lists non-negative accounts that are below zero; it is
	// always empty in a sound ledger.
	Violations []string `json:"violations"`
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{accounts: map[string]*account{}} }

// Post applies postings. An amount or balance out of range is remembered
// (Err) and the ledger stays as it was before the posting.
func (l *Ledger) Post(ps []domain.Posting) {
	for _, p := range ps {
		f := l.fen(p.Amount)
		dst, src := l.account(p.Destination), l.account(p.Source)
		d, c := *dst, *src
		d.debits, d.balance = l.add(d.debits, f), l.add(d.balance, f)
		c.credits, c.balance = l.add(c.credits, f), l.sub(c.balance, f)
		if l.err != nil {
			return
		}
		if dst == src {
			c.debits, c.balance = d.debits, l.add(c.balance, f)
		} else {
			*dst = d
		}
		*src = c
	}
}

func (l *Ledger) account(name string) *account {
	a := l.accounts[name]
	if a == nil {
		a = &account{nonNegative: domain.NonNegativeAccount(name)}
		l.accounts[name] = a
	}
	return a
}

// Balance returns an account's balance.
func (l *Ledger) Balance(name string) domain.Money {
	if a := l.accounts[name]; a != nil {
		return money(a.balance)
	}
	return domain.Zero
}

// TrialBalance returns all accounts, sorted by name, with their total.
func (l *Ledger) TrialBalance() TrialBalance {
	tb := TrialBalance{Accounts: make([]AccountBalance, 0, len(l.accounts)), Violations: []string{}}
	var total, debits, credits int64
	var t tally
	for name, a := range l.accounts {
		tb.Accounts = append(tb.Accounts, AccountBalance{Account: name, Debits: money(a.debits), Credits: money(a.credits),
			Balance: money(a.balance), NonNegative: a.nonNegative})
		total, debits, credits = t.add(total, a.balance), t.add(debits, a.debits), t.add(credits, a.credits)
		if a.nonNegative && a.balance < 0 {
			tb.Violations = append(tb.Violations, name)
		}
	}
	tb.Total, tb.Debits, tb.Credits = money(total), money(debits), money(credits)
	if t.err != nil { // totals beyond an int64: sum them as decimals
		tb.Total, tb.Debits, tb.Credits = domain.Zero, domain.Zero, domain.Zero
		for _, a := range tb.Accounts {
			tb.Total, tb.Debits, tb.Credits = tb.Total.Add(a.Balance), tb.Debits.Add(a.Debits), tb.Credits.Add(a.Credits)
		}
	}
	sort.Slice(tb.Accounts, func(i, j int) bool { return tb.Accounts[i].Account < tb.Accounts[j].Account })
	sort.Strings(tb.Violations)
	return tb
}

// Balances is the ledger's account balances as a read model: every
// event's postings, folded in log order.
type Balances struct {
	mu     sync.RWMutex
	ledger *Ledger
	pos    eventstore.Position
}

// NewBalances returns an empty balances model.
func NewBalances() *Balances { return &Balances{ledger: NewLedger()} }

// Name implements Model.
func (m *Balances) Name() string { return "balances" }

// Apply implements Model.
func (m *Balances) Apply(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Changes {
		m.ledger.Post(domain.Postings(b.Changes[i].Payload))
	}
	m.pos = b.Last
}

// Err implements Failing.
func (m *Balances) Err() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ledger.Err()
}

// TrialBalance returns the current trial balance, with the position of
// the last event it holds.
func (m *Balances) TrialBalance() TrialBalance {
	m.mu.RLock()
	defer m.mu.RUnlock()
	tb := m.ledger.TrialBalance()
	tb.Position = m.pos.String()
	return tb
}

var _ Model = (*Balances)(nil)

// BalancesAsOf computes the trial balance as the books stood at the end of
// date (YYYY-MM-DD): every posting whose effective date, or recording date
// where none is given, is on or before it. See BalancesAt.
func BalancesAsOf(ctx context.Context, store eventstore.Store, date string) (TrialBalance, error) {
	return BalancesAt(ctx, store, PointInTime{AsOf: date})
}

// EffectiveDate returns an event's business date: its effective date, or
// the city date it was recorded on.
func EffectiveDate(ev *eventstore.Event) string {
	if ev.Metadata.EffectiveDate != "" {
		return ev.Metadata.EffectiveDate
	}
	if ev.Metadata.RecordedAt.IsZero() {
		return ""
	}
	return domain.Today(ev.Metadata.RecordedAt)
}
