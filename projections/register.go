package projections

import (
	"talentledger/domain"
)

// PaymentRow is one payment in the payments register: the payment, its
// installment's due date and the grant's program and talent.
type PaymentRow struct {
	ID          string       `json:"id"`
	GrantID     string       `json:"grant_id"`
	Installment int          `json:"installment"`
	ProgramID   string       `json:"program_id"`
	TalentID    string       `json:"talent_id"`
	TalentName  string       `json:"talent_name"`
	Amount      domain.Money `json:"amount"`
	State       string       `json:"state"`
	DueDate     string       `json:"due_date"`
	// FiscalYear is the year the payment is charged to: the year of its
	// release once released, else its installment's.
	FiscalYear    int    `json:"fiscal_year"`
	PreparedBy    string `json:"prepared_by"`
	ApprovedBy    string `json:"approved_by,omitempty"`
	ReleasedBy    string `json:"released_by,omitempty"`
	BankReference string `json:"bank_reference,omitempty"`
	ReleasedOn    string `json:"released_on,omitempty"`
	Reason        string `json:"reason,omitempty"`
	// ReconciledIn names the bank statement that matched the payment.
	ReconciledIn string `json:"reconciled_in,omitempty"`
}

// RowFilter is what the payments and installments lists filter on alike;
// zero fields match all. Dates are inclusive.
type RowFilter struct {
	State, ProgramID, TalentID, GrantID string
	FiscalYear                          int
	// DueFrom and DueTo bound the installment's due date.
	DueFrom, DueTo       string
	MinAmount, MaxAmount *domain.Money
}

func (f *RowFilter) match(state, program, talent, grant string, fy int, due string, amount domain.Money) bool {
	switch {
	case f.State != "" && state != f.State,
		f.ProgramID != "" && program != f.ProgramID,
		f.TalentID != "" && talent != f.TalentID,
		f.GrantID != "" && grant != f.GrantID,
		f.FiscalYear != 0 && fy != f.FiscalYear,
		f.DueFrom != "" && due < f.DueFrom,
		f.DueTo != "" && due > f.DueTo,
		f.MinAmount != nil && amount.Cmp(*f.MinAmount) < 0,
		f.MaxAmount != nil && amount.Cmp(*f.MaxAmount) > 0:
		return false
	}
	return true
}

// PaymentFilter selects payments; zero fields match all. Dates are
// inclusive.
type PaymentFilter struct {
	RowFilter
	ReleasedFrom, ReleasedTo string
	// After is the cursor: only payments prepared after the one at this
	// place in the register (-1 for none).
	After int
	Limit int
}

// Payments lists the payments that match f in the order they were
// prepared, at most f.Limit of them after f.After, with the number that
// match in all and the cursor of the next page (-1 when there is none).
func (w *Work) Payments(f PaymentFilter) (rows []PaymentRow, total, next int) {
	unlock := w.readLock()
	defer unlock()
	rows, next = []PaymentRow{}, -1
	last := -1
	w.eachPaymentRecord(0, -1, func(r *paymentRecord) bool {
		row := w.paymentRow(r)
		if !f.match(&row) {
			return true
		}
		total++
		if r.seq <= f.After {
			return true
		}
		if len(rows) < f.Limit {
			rows = append(rows, row)
			last = r.seq
		} else if next < 0 {
			next = last
		}
		return true
	})
	return rows, total, next
}

// paymentPage is how many matching payments EachPayment draws under one
// hold of the model's lock.
var paymentPage = 512

// EachPayment calls yield with every payment that matches f (its After
// and Limit aside), in the register's order: the rows Payments answers.
// It lists the payments prepared when it starts, drawn a page at a time,
// and holds the model's lock only while it draws a page, never while
// yield runs, so a long report neither holds up the feed nor keeps every
// row in memory. It stops at yield's first error and returns it.
func (w *Work) EachPayment(f PaymentFilter, yield func(PaymentRow) error) error {
	page := make([]PaymentRow, 0, paymentPage)
	n := -1 // the payments prepared when the first page is drawn
	for from := 0; ; {
		page = page[:0]
		unlock := w.readLock()
		if n < 0 {
			n = w.paymentCount()
		}
		w.eachPaymentRecord(from, n, func(r *paymentRecord) bool {
			from = r.seq + 1
			if row := w.paymentRow(r); f.match(&row) {
				page = append(page, row)
			}
			return len(page) < paymentPage
		})
		unlock()
		if len(page) < paymentPage {
			from = n
		}
		for i := range page {
			if err := yield(page[i]); err != nil {
				return err
			}
		}
		if from >= n {
			return nil
		}
	}
}

// paymentCount is the number of payments prepared. w.mu is held.
func (w *Work) paymentCount() int {
	if w.disk != nil {
		return w.disk.count.payments
	}
	return len(w.payments)
}

// eachPaymentRecord calls f with the payments from the register's place
// from up to to (exclusive; -1 for all), in order, until f returns false.
// w.mu is held.
func (w *Work) eachPaymentRecord(from, to int, f func(*paymentRecord) bool) {
	if w.disk != nil {
		w.disk.eachPayment(from, to, f)
		return
	}
	if to < 0 || to > len(w.payments) {
		to = len(w.payments)
	}
	for _, wp := range w.payments[min(from, to):to] {
		r := wp.grant.paymentRecord(wp.grant.paymentIndex(wp.id))
		if !f(&r) {
			return
		}
	}
}

func (w *Work) paymentRow(r *paymentRecord) PaymentRow {
	p := &r.p
	row := PaymentRow{ID: p.ID, GrantID: p.GrantID, Installment: p.Installment, ProgramID: r.program,
		TalentID: r.talent, TalentName: w.talentName(r.talent), Amount: money(p.fen), State: p.State,
		FiscalYear: p.FiscalYear, PreparedBy: p.PreparedBy, ApprovedBy: p.ApprovedBy, ReleasedBy: p.ReleasedBy,
		BankReference: p.BankReference, ReleasedOn: p.ReleasedOn, Reason: p.Reason, DueDate: r.due,
		ReconciledIn: w.reconciledIn(matchKey(domain.MatchPayment, p.ID, "", ""))}
	if row.FiscalYear == 0 {
		row.FiscalYear = r.instFY
	}
	return row
}

// reconciledIn returns the statement that matched an item, "" for none.
// w.mu is held.
func (w *Work) reconciledIn(key string) string {
	if w.disk != nil {
		return w.disk.reconciledIn(key)
	}
	return w.reconciled[key]
}

// talent returns a talent's name and bank account, nil when unknown.
// w.mu is held.
func (w *Work) talent(id string) *workTalent {
	if w.disk != nil {
		return w.disk.talent(id)
	}
	return w.talents[id]
}

func (w *Work) talentName(id string) string {
	if t := w.talent(id); t != nil {
		return t.name
	}
	return ""
}

func (f *PaymentFilter) match(r *PaymentRow) bool {
	switch {
	case f.ReleasedFrom != "" && (r.ReleasedOn == "" || r.ReleasedOn < f.ReleasedFrom),
		f.ReleasedTo != "" && (r.ReleasedOn == "" || r.ReleasedOn > f.ReleasedTo):
		return false
	}
	return f.RowFilter.match(r.State, r.ProgramID, r.TalentID, r.GrantID, r.FiscalYear, r.DueDate, r.Amount)
}

// InstallmentRow is one scheduled payout with its grant's program and
// talent. DaysOverdue counts the days since its due date while it waits
// for a payment (scheduled and due before today).
type InstallmentRow struct {
	GrantID     string       `json:"grant_id"`
	N           int          `json:"n"`
	ProgramID   string       `json:"program_id"`
	TalentID    string       `json:"talent_id"`
	TalentName  string       `json:"talent_name"`
	Amount      domain.Money `json:"amount"`
	DueDate     string       `json:"due_date"`
	State       string       `json:"state"`
	PaymentID   string       `json:"payment_id,omitempty"`
	FiscalYear  int          `json:"fiscal_year"`
	DaysOverdue int          `json:"days_overdue"`
}

// InstallmentCursor is a place in the installments list: a grant's place
// in the order of application and an installment's number.
type InstallmentCursor struct{ Grant, N int }

// InstallmentFilter selects installments; zero fields match all. Today is
// the date overdue days are counted to.
type InstallmentFilter struct {
	RowFilter
	Today string
	// After is the cursor: only installments after it (nil for none).
	After *InstallmentCursor
	Limit int
}

// Installments lists the installments that match f by grant (in the order
// applied for) and number, at most f.Limit after f.After, with the number
// that match in all and the cursor of the next page (nil when none).
func (w *Work) Installments(f InstallmentFilter) (rows []InstallmentRow, total int, next *InstallmentCursor) {
	unlock := w.readLock()
	defer unlock()
	rows = []InstallmentRow{}
	var last InstallmentCursor
	w.eachInstallment(func(r *installmentRecord) {
		row := w.installmentRow(r, f.Today)
		if !f.match(&row) {
			return
		}
		total++
		if f.After != nil && (r.grantSeq < f.After.Grant || (r.grantSeq == f.After.Grant && r.in.N <= f.After.N)) {
			return
		}
		if len(rows) < f.Limit {
			rows = append(rows, row)
			last = InstallmentCursor{r.grantSeq, r.in.N}
		} else if next == nil {
			c := last
			next = &c
		}
	})
	return rows, total, next
}

// eachInstallment calls f with every installment by grant, in the order
// applied for, and number. w.mu is held.
func (w *Work) eachInstallment(f func(*installmentRecord)) {
	if w.disk != nil {
		w.disk.eachInstallment(f)
		return
	}
	for _, g := range w.grants {
		for i := range g.view.Installments {
			r := installmentRecord{grantSeq: g.seq, grant: g.view.ID, program: g.view.ProgramID, talent: g.view.TalentID,
				in: g.view.Installments[i]}
			f(&r)
		}
	}
}

func (w *Work) installmentRow(r *installmentRecord, today string) InstallmentRow {
	in := &r.in
	row := InstallmentRow{GrantID: r.grant, N: in.N, ProgramID: r.program, TalentID: r.talent,
		TalentName: w.talentName(r.talent), Amount: money(in.fen), DueDate: in.DueDate, State: in.State,
		PaymentID: in.PaymentID, FiscalYear: in.FiscalYear}
	if in.State == InstallmentScheduled && today != "" && in.DueDate < today {
		row.DaysOverdue = daysBetween(in.DueDate, today)
	}
	return row
}

func (f *InstallmentFilter) match(r *InstallmentRow) bool {
	return f.RowFilter.match(r.State, r.ProgramID, r.TalentID, r.GrantID, r.FiscalYear, r.DueDate, r.Amount)
}

// daysBetween counts the days from a to b (dates YYYY-MM-DD).
func daysBetween(a, b string) int {
	ta, err1 := domain.ParseDate(a)
	tb, err2 := domain.ParseDate(b)
	if err1 != nil || err2 != nil {
		return 0
	}
	return int(tb.Sub(ta).Hours() / 24)
}

// InstallmentStates lists the states of an installment.
var InstallmentStates = []string{InstallmentScheduled, InstallmentPrepared, InstallmentApproved, InstallmentPaid, InstallmentCancelled}

// PaymentStates lists the states of a payment.
var PaymentStates = []string{domain.PaymentStatePrepared, domain.PaymentStateApproved, domain.PaymentStateReleased,
	domain.PaymentStateFailed, domain.PaymentStateReversed}
