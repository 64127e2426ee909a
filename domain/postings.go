package domain

import (
	"strconv"
	"strings"
)

// Posting moves Amount from Source to Destination. In journal terms the
// destination is debited and the source credited. Each posting sums to zero
// across the two accounts, so every event's postings, and the trial balance
// of the whole ledger, sum to zero.
type Posting struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Amount      Money  `json:"amount"`
}

// Account names. They are strings so that exports and auditors read them as
// they are.
func accountBudgetAvailable(program string, fy int) string {
	return "budget:" + program + ":" + strconv.Itoa(fy) + ":available"
}

func accountBudgetEncumbered(program string, fy int) string {
	return "budget:" + program + ":" + strconv.Itoa(fy) + ":encumbered"
}

func accountTalentPaid(talent string) string { return "talent:" + talent + ":paid" }

func accountTalentClawback(talent string) string { return "talent:" + talent + ":clawback_due" }

// ControlAccounts are the general ledger's control accounts, each the
// total of a subsidiary ledger of one account per talent: what was paid to
// each talent, and what each owes back. The trial balance shows them; the
// subsidiary ledger shows their accounts one by one.
var ControlAccounts = []string{"talent:*:clawback_due", "talent:*:paid"}

// ControlAccount returns the control account a subsidiary account rolls up
// into ("talent:*:paid" for "talent:<id>:paid"), and whether it is one; a
// general-ledger account is its own line.
func ControlAccount(account string) (string, bool) {
	rest, ok := strings.CutPrefix(account, "talent:")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return "", false
	}
	switch rest[i+1:] {
	case "paid":
		return "talent:*:paid", true
	case "clawback_due":
		return "talent:*:clawback_due", true
	}
	return "", false
}

// SubsidiaryTalent returns the talent of a subsidiary account.
func SubsidiaryTalent(account string) string {
	rest := strings.TrimPrefix(account, "talent:")
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		return rest[:i]
	}
	return rest
}

func accountTreasuryAppropriation(fy int) string {
	return "treasury:" + strconv.Itoa(fy) + ":appropriation"
}

func accountTreasuryRecoveries(fy int) string { return "treasury:" + strconv.Itoa(fy) + ":recoveries" }

// accountFundingSource names where a budget's money comes from.
func accountFundingSource(source string, fy int) string {
	if fund, ok := fundOfSource(source); ok {
		return accountFundInTransit(fund)
	}
	return accountTreasuryAppropriation(fy)
}

// NonNegativeAccount reports whether an account's balance may never go below
// zero: available and encumbered budgets, amounts paid and due, a fund's
// cash, money in transit to a budget, and each investment at cost.
// Treasury, capital, income and gains accounts are where money enters the
// ledger and carry negative balances by construction.
func NonNegativeAccount(account string) bool {
	return hasSuffix(account, ":available") || hasSuffix(account, ":encumbered") ||
		hasSuffix(account, ":uncovered") ||
		hasSuffix(account, ":paid") || hasSuffix(account, ":clawback_due") ||
		hasSuffix(account, ":cash") || hasSuffix(account, ":in_transit") ||
		strings.Contains(account, ":investments:")
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// Postings returns the postings an event makes. Events that move no money
// return nil. The mapping uses only the event's own fields, so an exported
// journal can be recomputed from the log alone.
func Postings(e Event) []Posting {
	switch e := e.(type) {
	case *BudgetAppropriated:
		return []Posting{{accountFundingSource(e.FundingSource, e.FiscalYear), accountBudgetAvailable(e.ProgramID, e.FiscalYear), e.Amount}}
	case *BudgetReserved:
		return []Posting{{accountBudgetAvailable(e.ProgramID, e.FiscalYear), accountBudgetEncumbered(e.ProgramID, e.FiscalYear), e.Amount}}
	case *BudgetReservationReleased:
		if e.Uncovered {
			return []Posting{{accountBudgetUncovered(e.ProgramID, e.FiscalYear), accountBudgetCommitments(e.ProgramID, e.FiscalYear), e.Amount}}
		}
		return []Posting{{accountBudgetEncumbered(e.ProgramID, e.FiscalYear), accountBudgetAvailable(e.ProgramID, e.FiscalYear), e.Amount}}
	case *PaymentReleased:
		return []Posting{{accountBudgetEncumbered(e.ProgramID, e.FiscalYear), accountTalentPaid(e.TalentID), e.Amount}}
	case *PaymentReversed:
		return []Posting{{accountTalentPaid(e.TalentID), accountBudgetEncumbered(e.ProgramID, e.FiscalYear), e.Amount}}
	case *ClawbackAssessed:
		if e.Amount.IsZero() {
			return nil
		}
		return []Posting{{accountTalentPaid(e.TalentID), accountTalentClawback(e.TalentID), e.Amount}}
	case *RecoveryReceived:
		return []Posting{{accountTalentClawback(e.TalentID), accountTreasuryRecoveries(e.FiscalYear), e.Amount}}
	case *RecoveryWaived:
		return []Posting{{accountTalentClawback(e.TalentID), accountTalentPaid(e.TalentID), e.Amount}}
	}
	if p, ok := e.(interface{ Postings() []Posting }); ok {
		return p.Postings()
	}
	return nil
}
