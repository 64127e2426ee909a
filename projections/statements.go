package projections

import (
	"io"
	"slices"
	"strconv"
	"strings"

	"talentledger/domain"
)

// StatementEntry is a bank statement's line as read from the file, before
// it is matched.
type StatementEntry struct {
	Line      int
	ValueDate string
	Reference string
	// Amount is signed: negative for money out, positive for money in.
	Amount domain.Money
}

// MatchStatement matches a statement's lines to released payments (money
// out) and recoveries (money in) by reference and amount. A line matches
// an item once: an item matched by an earlier statement, or by an earlier
// line of this one, makes the line mismatched, as does another amount, the
// wrong direction, or a payment since reversed. A reference the ledger
// does not know leaves the line unmatched.
func (w *Work) MatchStatement(entries []StatementEntry) []domain.StatementLine {
	unlock := w.readLock()
	defer unlock()
	taken := map[string]int{} // item key → the line of this file that matched it
	out := make([]domain.StatementLine, len(entries))
	for i, en := range entries {
		l := domain.StatementLine{Line: en.Line, ValueDate: en.ValueDate, Reference: en.Reference, Amount: en.Amount, Outcome: domain.LineUnmatched}
		items := w.bankItems(en.Reference)
		// The first item free to match with the same amount wins; else
		// the line is set against the first item, as mismatched.
		var best *bankItem
		note := ""
		amount, _ := en.Amount.Fen() // parsed with two decimals: it fits
		for _, it := range items {
			signed := it.amount
			if it.kind == domain.MatchPayment {
				signed = -signed
			}
			why := ""
			switch {
			case w.reconciledIn(it.key) != "":
				why = "already matched by statement " + w.reconciledIn(it.key)
			case taken[it.key] != 0:
				why = "already matched by line " + strconv.Itoa(taken[it.key])
			case it.kind == domain.MatchPayment && w.paymentState(it) != domain.PaymentStateReleased:
				why = "the payment is " + w.paymentState(it)
			case signed != amount:
				why = "the amount differs from the ledger's"
			}
			if why == "" {
				best, note = it, ""
				break
			}
			if best == nil {
				best, note = it, why
			}
		}
		if best != nil {
			expected := money(best.amount)
			if best.kind == domain.MatchPayment {
				expected = expected.Neg()
			}
			l.Kind, l.GrantID, l.PaymentID, l.Expected = best.kind, best.grantID, best.paymentID, &expected
			if note == "" {
				l.Outcome = domain.LineMatched
				taken[best.key] = en.Line
			} else {
				l.Outcome, l.Note = domain.LineMismatched, note
			}
		} else {
			l.Note = "no payment or recovery has this reference"
		}
		out[i] = l
	}
	return out
}

func (w *Work) paymentState(it *bankItem) string {
	if w.disk != nil {
		return w.disk.paymentState(it.paySeq)
	}
	if g := w.byID[it.grantID]; g != nil {
		if p := g.payment(it.paymentID); p != nil {
			return p.State
		}
	}
	return ""
}

// bankItems returns what the bank moved under a reference. w.mu is held.
func (w *Work) bankItems(ref string) []*bankItem {
	if w.disk != nil {
		return w.disk.bankItems(ref)
	}
	return w.byRef[ref]
}

// eachStatement calls f with the statements in the order imported until
// f returns false. w.mu is held.
func (w *Work) eachStatement(f func(*domain.BankStatementReconciled) bool) {
	if w.disk != nil {
		w.disk.eachStatement(f)
		return
	}
	for _, s := range w.statements {
		if !f(s) {
			return
		}
	}
}

// StatementSummary is an imported statement without its lines.
type StatementSummary struct {
	StatementID string `json:"statement_id"`
	Digest      string `json:"digest"`
	From        string `json:"from"`
	To          string `json:"to"`
	Lines       int    `json:"lines"`
	Matched     int    `json:"matched"`
	Mismatched  int    `json:"mismatched"`
	Unmatched   int    `json:"unmatched"`
}

// Statements lists the imported statements in the order imported.
func (w *Work) Statements() []StatementSummary {
	unlock := w.readLock()
	defer unlock()
	out := []StatementSummary{}
	w.eachStatement(func(s *domain.BankStatementReconciled) bool {
		out = append(out, StatementSummary{StatementID: s.StatementID, Digest: s.Digest, From: s.From, To: s.To,
			Lines: len(s.Lines), Matched: s.Matched, Mismatched: s.Mismatched, Unmatched: s.Unmatched})
		return true
	})
	return out
}

// Statement returns one imported statement with its lines.
func (w *Work) Statement(id string) (domain.BankStatementReconciled, bool) {
	unlock := w.readLock()
	defer unlock()
	var c domain.BankStatementReconciled
	found := false
	w.eachStatement(func(s *domain.BankStatementReconciled) bool {
		if s.StatementID == id {
			c, found = *s, true
			c.Lines = append([]domain.StatementLine(nil), s.Lines...)
		}
		return !found
	})
	return c, found
}

// BankInstruction is one payment of a release batch as the bank is told
// to make it.
type BankInstruction struct {
	PaymentID   string
	PayeeName   string
	Account     string
	Bank        string
	Amount      domain.Money
	Reference   string
	ReleasedOn  string
	ProgramID   string
	GrantID     string
	Installment int
}

// BankFile lists the payments of a release batch (those whose bank
// reference is the batch's name, a dash and a number), in the order of
// their references.
func (w *Work) BankFile(batch string) []BankInstruction {
	unlock := w.readLock()
	defer unlock()
	prefix := batch + "-"
	var out []BankInstruction
	w.eachPaymentRecord(0, -1, func(r *paymentRecord) bool {
		p := &r.p
		if len(p.BankReference) <= len(prefix) || p.BankReference[:len(prefix)] != prefix {
			return true
		}
		in := BankInstruction{PaymentID: p.ID, Amount: money(p.fen), Reference: p.BankReference, ReleasedOn: p.ReleasedOn,
			ProgramID: r.program, GrantID: p.GrantID, Installment: p.Installment}
		if t := w.talent(r.talent); t != nil {
			in.PayeeName, in.Account, in.Bank = t.name, t.bankAccount, t.bankName
		}
		out = append(out, in)
		return true
	})
	slices.SortStableFunc(out, func(a, b BankInstruction) int { return strings.Compare(a.Reference, b.Reference) })
	return out
}

// BankFileColumns are the columns a bank file may have; the first five,
// in that order, are the default layout.
var BankFileColumns = []string{"payee_name", "account", "bank", "amount", "reference",
	"released_on", "payment_id", "program", "grant", "installment"}

// DefaultBankFileColumns is the default layout of a bank file.
var DefaultBankFileColumns = BankFileColumns[:5]

// bankFileLabels are the columns' headers in Chinese and in English.
var bankFileLabels = map[string][2]string{
	"payee_name":  {"收款人户名", "Payee name"},
	"account":     {"收款账号", "Account"},
	"bank":        {"开户银行", "Bank"},
	"amount":      {"金额", "Amount"},
	"reference":   {"业务参考号", "Reference"},
	"released_on": {"发放日期", "Released on"},
	"payment_id":  {"支付编号", "Payment ID"},
	"program":     {"补贴项目", "Program"},
	"grant":       {"补贴编号", "Grant"},
	"installment": {"期次", "Installment"},
}

func (b *BankInstruction) cell(column string) string {
	switch column {
	case "payee_name":
		return Text(b.PayeeName)
	case "account":
		return Text(b.Account)
	case "bank":
		return Text(b.Bank)
	case "amount":
		return b.Amount.String()
	case "reference":
		return Text(b.Reference)
	case "released_on":
		return b.ReleasedOn
	case "payment_id":
		return b.PaymentID
	case "program":
		return Text(b.ProgramID)
	case "grant":
		return b.GrantID
	case "installment":
		return strconv.Itoa(b.Installment)
	}
	return ""
}

// WriteBankFile writes a release batch's instructions as CSV (UTF-8 with
// a byte-order mark, CRLF), with the columns given, headed in Chinese, or
// in English when english is set.
func WriteBankFile(w io.Writer, rows []BankInstruction, columns []string, english bool) error {
	out, err := newCSVOut(w, nil)
	if err != nil {
		return err
	}
	header := make([]string, len(columns))
	for i, c := range columns {
		l := bankFileLabels[c]
		header[i] = l[0]
		if english {
			header[i] = l[1]
		}
	}
	if err := out.write(header); err != nil {
		return err
	}
	row := make([]string, len(columns))
	for i := range rows {
		for j, c := range columns {
			row[j] = rows[i].cell(c)
		}
		if err := out.write(row); err != nil {
			return err
		}
	}
	return out.flush()
}
