package projections

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"

	"talentledger/domain"
	"talentledger/eventstore"
)

// Ledger holds account balances folded from postings. Balance = debits −
// credits, where a posting debits its destination and credits its source.
// It keeps them in fen (see tally).
//
// The per-talent accounts are a subsidiary ledger (see
// domain.ControlAccount): the ledger keeps each control account's totals,
// how many subsidiary accounts it has and how many of them are below zero,
// as it posts, so that the trial balance at control level costs the
// general ledger's accounts, not the talents.
type Ledger struct {
	tally
	accounts map[string]*account
	// general holds the general ledger's accounts (those of accounts
	// that are no subsidiary account), controls the control accounts.
	general  map[string]*account
	controls map[string]*control
	// subs is every subsidiary account's name, sorted up to sortedSubs;
	// the ones after it came since the last sort (see subsidiaries).
	subs       []string
	sortedSubs int
	sortMu     sync.Mutex
}

// control is a control account's totals: its subsidiary accounts' sums.
type control struct {
	account
	accounts, negative int
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
	// SubsidiaryAccounts is, on a control account's line, how many
	// accounts its subsidiary ledger holds.
	SubsidiaryAccounts int `json:"subsidiary_accounts,omitempty"`
}

// TrialBalance lists the accounts and the sum of all balances, which is
// zero in a sound ledger. At control level (the API's answer) the
// per-talent accounts are rolled up into their control accounts' lines
// (see domain.ControlAccount); in detail every account is listed.
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
	// always empty in a sound ledger. At control level a control account
	// is listed when one of its subsidiary accounts is below zero (live),
	// or when its total is (at a point in time: the subsidiary ledger at
	// that point names the accounts).
	Violations []string `json:"violations"`
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{accounts: map[string]*account{}, general: map[string]*account{}, controls: map[string]*control{}}
}

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
			l.roll(p.Destination, *dst, d)
			*dst = d
		}
		l.roll(p.Source, *src, c)
		*src = c
	}
}

// roll moves a subsidiary account's control account by the change from
// was to now.
func (l *Ledger) roll(name string, was, now account) {
	cn, ok := domain.ControlAccount(name)
	if !ok {
		return
	}
	c := l.control(cn)
	c.debits = l.add(c.debits, l.sub(now.debits, was.debits))
	c.credits = l.add(c.credits, l.sub(now.credits, was.credits))
	c.balance = l.add(c.balance, l.sub(now.balance, was.balance))
	if now.nonNegative {
		if was.balance < 0 {
			c.negative--
		}
		if now.balance < 0 {
			c.negative++
		}
	}
}

func (l *Ledger) control(name string) *control {
	c := l.controls[name]
	if c == nil {
		c = &control{account: account{nonNegative: domain.NonNegativeAccount(name)}}
		l.controls[name] = c
	}
	return c
}

func (l *Ledger) account(name string) *account {
	a := l.accounts[name]
	if a == nil {
		a = &account{nonNegative: domain.NonNegativeAccount(name)}
		l.accounts[name] = a
		if cn, ok := domain.ControlAccount(name); ok {
			l.control(cn).accounts++
			l.subs = append(l.subs, name)
		} else {
			l.general[name] = a
		}
	}
	return a
}

// load puts an account's stored totals into the ledger.
func (l *Ledger) load(name string, a account) {
	l.roll(name, *l.account(name), a)
	*l.accounts[name] = a
}

// Balance returns an account's balance.
func (l *Ledger) Balance(name string) domain.Money {
	if a := l.accounts[name]; a != nil {
		return money(a.balance)
	}
	return domain.Zero
}

// TrialBalance returns all accounts, sorted by name, with their total:
// the trial balance in detail.
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

// ControlTrialBalance returns the trial balance at control level: the
// general ledger's accounts and one line per control account, sorted by
// name, with their total. Its cost follows the general ledger's accounts,
// not the subsidiary ledgers'.
func (l *Ledger) ControlTrialBalance() TrialBalance {
	lines := make([]AccountBalance, 0, len(l.general)+len(l.controls))
	for name, a := range l.general {
		lines = append(lines, accountLine(name, a, 0))
	}
	var negative []string
	for name, c := range l.controls {
		lines = append(lines, accountLine(name, &c.account, c.accounts))
		if c.negative > 0 {
			negative = append(negative, name)
		}
	}
	return sumLines(lines, negative)
}

func accountLine(name string, a *account, subs int) AccountBalance {
	return AccountBalance{Account: name, Debits: money(a.debits), Credits: money(a.credits), Balance: money(a.balance),
		NonNegative: a.nonNegative, SubsidiaryAccounts: subs}
}

// sumLines makes a trial balance of lines: sorted, totalled, the
// non-negative lines below zero and those named in negative as
// violations.
func sumLines(lines []AccountBalance, negative []string) TrialBalance {
	tb := TrialBalance{Accounts: lines, Violations: []string{}, Total: domain.Zero, Debits: domain.Zero, Credits: domain.Zero}
	if tb.Accounts == nil {
		tb.Accounts = []AccountBalance{}
	}
	for _, a := range tb.Accounts {
		tb.Total, tb.Debits, tb.Credits = tb.Total.Add(a.Balance), tb.Debits.Add(a.Debits), tb.Credits.Add(a.Credits)
		if a.NonNegative && (a.Balance.Sign() < 0 || slices.Contains(negative, a.Account)) {
			tb.Violations = append(tb.Violations, a.Account)
		}
	}
	sort.Slice(tb.Accounts, func(i, j int) bool { return tb.Accounts[i].Account < tb.Accounts[j].Account })
	sort.Strings(tb.Violations)
	return tb
}

// SubsidiaryFilter selects a page of a subsidiary ledger.
type SubsidiaryFilter struct {
	// Control is the control account ("" for every one).
	Control string
	// Talent keeps one talent's accounts ("" for every talent).
	Talent string
	// After is the last account of the page before ("" for the first).
	After string
	Limit int
}

// keeps reports whether the filter keeps a subsidiary account (one of
// control cn).
func (f SubsidiaryFilter) keeps(name, cn string) bool {
	return (f.Control == "" || f.Control == cn) && (f.Talent == "" || domain.SubsidiaryTalent(name) == f.Talent) && name > f.After
}

// SubsidiaryLedger is a page of the subsidiary ledgers: the per-talent
// accounts, sorted by name.
type SubsidiaryLedger struct {
	AsOf         string           `json:"as_of,omitempty"`
	RecordedAsOf string           `json:"recorded_as_of,omitempty"`
	Position     string           `json:"position"`
	Accounts     []AccountBalance `json:"accounts"`
	// Next is the last account of the page when more follow.
	Next string `json:"-"`
}

// Subsidiary returns a page of the subsidiary accounts f selects.
func (l *Ledger) Subsidiary(f SubsidiaryFilter) SubsidiaryLedger {
	out := SubsidiaryLedger{Accounts: []AccountBalance{}}
	add := func(name string) bool {
		cn, _ := domain.ControlAccount(name)
		if !f.keeps(name, cn) {
			return true
		}
		if len(out.Accounts) == f.Limit {
			out.Next = out.Accounts[len(out.Accounts)-1].Account
			return false
		}
		out.Accounts = append(out.Accounts, accountLine(name, l.accounts[name], 0))
		return true
	}
	if f.Talent != "" {
		// A talent's accounts are found by name.
		var names []string
		for _, cn := range domain.ControlAccounts {
			name := "talent:" + f.Talent + strings.TrimPrefix(cn, "talent:*")
			if l.accounts[name] != nil {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			if !add(name) {
				break
			}
		}
		return out
	}
	subs := l.subsidiaries()
	for i := sort.SearchStrings(subs, f.After); i < len(subs); i++ {
		if !add(subs[i]) {
			break
		}
	}
	return out
}

// subsidiaries returns every subsidiary account's name, sorted: the ones
// posted since the last call are sorted and merged in.
func (l *Ledger) subsidiaries() []string {
	l.sortMu.Lock()
	defer l.sortMu.Unlock()
	if l.sortedSubs < len(l.subs) {
		fresh := l.subs[l.sortedSubs:]
		sort.Strings(fresh)
		merged := make([]string, 0, len(l.subs))
		old := l.subs[:l.sortedSubs]
		i, j := 0, 0
		for i < len(old) && j < len(fresh) {
			if old[i] < fresh[j] {
				merged = append(merged, old[i])
				i++
			} else {
				merged = append(merged, fresh[j])
				j++
			}
		}
		l.subs = append(append(merged, old[i:]...), fresh[j:]...)
		l.sortedSubs = len(l.subs)
	}
	return l.subs[:l.sortedSubs:l.sortedSubs]
}

// Balances is the ledger's account balances as a read model: every
// event's postings, folded in log order.
type Balances struct {
	mu     sync.RWMutex
	ledger *Ledger
	pos    eventstore.Position
	// dirty holds the accounts changed since the last Save once the
	// model persists (see persist_small.go); nil while it lives in
	// memory only.
	dirty map[string]bool
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
		ps := domain.Postings(b.Changes[i].Payload)
		m.ledger.Post(ps)
		if m.dirty != nil {
			for _, p := range ps {
				m.dirty[p.Source], m.dirty[p.Destination] = true, true
			}
		}
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

// ControlTrialBalance returns the current trial balance at control
// level (see Ledger.ControlTrialBalance).
func (m *Balances) ControlTrialBalance() TrialBalance {
	m.mu.RLock()
	defer m.mu.RUnlock()
	tb := m.ledger.ControlTrialBalance()
	tb.Position = m.pos.String()
	return tb
}

// Subsidiary returns a page of the current subsidiary ledgers.
func (m *Balances) Subsidiary(f SubsidiaryFilter) SubsidiaryLedger {
	m.mu.RLock()
	defer m.mu.RUnlock()
	sl := m.ledger.Subsidiary(f)
	sl.Position = m.pos.String()
	return sl
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
