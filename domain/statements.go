package domain

import (
	"context"
	"fmt"
	"regexp"
)

// Bank statements. A treasurer imports the bank's statement; each line is
// matched, by its reference and amount, to a released payment (money out)
// or a recovery (money in). The outcome of the match is recorded as one
// event on the statement's own stream, whose ID is derived from the
// statement's content, so the same statement is imported once.
//
// The matching itself is done against the read models after they have
// caught up with the log (it moves no money and decides nothing but what
// the bank says happened); the event records what was matched, line by
// line, for the auditors.

// TypeBankStatementReconciled is the event type of an imported statement.
const TypeBankStatementReconciled = "BankStatementReconciled"

// Outcomes of a statement line.
const (
	// LineMatched: a released payment or a recovery with that reference
	// and amount.
	LineMatched = "matched"
	// LineMismatched: a payment or recovery with that reference, but
	// another amount or direction, or already matched by another line.
	LineMismatched = "mismatched"
	// LineUnmatched: nothing in the ledger has that reference.
	LineUnmatched = "unmatched"
)

// Kinds of what a line matches.
const (
	MatchPayment  = "payment"
	MatchRecovery = "recovery"
)

// StatementLine is one line of a bank statement with its outcome.
type StatementLine struct {
	// Line is the line's number in the file, the header being line 1.
	Line      int    `json:"line"`
	ValueDate string `json:"value_date"`
	Reference string `json:"reference"`
	// Amount is signed: negative for money out, positive for money in.
	Amount  Money  `json:"amount"`
	Outcome string `json:"outcome"`
	// Kind, GrantID and PaymentID name what the line matched (or
	// mismatched); Expected is that item's amount, signed as the line's.
	Kind      string `json:"kind,omitempty"`
	GrantID   string `json:"grant_id,omitempty"`
	PaymentID string `json:"payment_id,omitempty"`
	Expected  *Money `json:"expected,omitempty"`
	Note      string `json:"note,omitempty"`
}

// BankStatementReconciled records a bank statement matched line by line.
type BankStatementReconciled struct {
	StatementID string `json:"statement_id"`
	// Digest is the SHA-256 of the statement's bytes, in hex.
	Digest     string          `json:"digest"`
	Account    string          `json:"account,omitempty"`
	From       string          `json:"from"`
	To         string          `json:"to"`
	Lines      []StatementLine `json:"lines"`
	Matched    int             `json:"matched"`
	Mismatched int             `json:"mismatched"`
	Unmatched  int             `json:"unmatched"`
}

// EventType implements Event.
func (*BankStatementReconciled) EventType() string { return TypeBankStatementReconciled }

// NewBankStatement returns the statement of a file whose bytes have the
// SHA-256 digest (hex), with its lines as matched: its ID, the value dates
// its lines span and how many lines had each outcome.
func NewBankStatement(digest string, lines []StatementLine) BankStatementReconciled {
	st := BankStatementReconciled{StatementID: StatementID(digest), Digest: digest, Lines: lines}
	for i, l := range lines {
		if i == 0 || l.ValueDate < st.From {
			st.From = l.ValueDate
		}
		if l.ValueDate > st.To {
			st.To = l.ValueDate
		}
		switch l.Outcome {
		case LineMatched:
			st.Matched++
		case LineMismatched:
			st.Mismatched++
		default:
			st.Unmatched++
		}
	}
	return st
}

const prefixStatement = "s"

func streamStatement(id string) string { return "statement-" + id }

// StatementID derives a statement's ID from the digest of its bytes: the
// same statement always has the same ID.
func StatementID(digest string) string {
	return newID(prefixStatement, "statement\x00"+digest, "statement")
}

var reDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ReconcileStatement is the command that records a matched statement.
type ReconcileStatement struct {
	Meta      CommandMeta
	Statement BankStatementReconciled
}

// bankStatement is the state of a statement stream.
type bankStatement struct{ done bool }

func (s *bankStatement) apply(e Event) {
	if _, ok := e.(*BankStatementReconciled); ok {
		s.done = true
	}
}

// ReconcileStatement records a statement's match. Only a treasurer may.
// The statement's ID must be the one its digest gives; a statement
// already imported is a conflict.
//
// Errors: EINVALID, ECONFLICT.
func (s *Service) ReconcileStatement(ctx context.Context, c ReconcileStatement) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleTreasurer)
	if err != nil {
		return Result{}, err
	}
	st := c.Statement
	if !reDigest.MatchString(st.Digest) || st.StatementID != StatementID(st.Digest) {
		return Result{}, Errorf(EINVALID, "the statement's ID is not the one its digest gives")
	}
	if len(st.Lines) == 0 {
		return Result{}, Errorf(EINVALID, "the statement has no lines")
	}
	var n [3]int
	for _, l := range st.Lines {
		switch l.Outcome {
		case LineMatched:
			n[0]++
		case LineMismatched:
			n[1]++
		case LineUnmatched:
			n[2]++
		default:
			return Result{}, Errorf(EINVALID, "line %d: outcome %q is not one of matched, mismatched, unmatched", l.Line, l.Outcome)
		}
		if _, err := ParseDate(l.ValueDate); err != nil {
			return Result{}, err
		}
		if err := checkText(fmt.Sprintf("line %d reference", l.Line), l.Reference, true); err != nil {
			return Result{}, err
		}
	}
	if n != [3]int{st.Matched, st.Mismatched, st.Unmatched} {
		return Result{}, Errorf(EINVALID, "the statement's counts do not add up to its lines")
	}
	res, err := s.repo.execute(ctx, streamStatement(st.StatementID), func() aggregate { return &bankStatement{} }, m, func(e *entry) ([]Event, error) {
		if e.agg.(*bankStatement).done {
			return nil, Errorf(ECONFLICT, "statement %s (the same file) is already imported", st.StatementID)
		}
		ev := st
		return []Event{&ev}, nil
	})
	return result(st.StatementID, res), err
}
