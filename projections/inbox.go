package projections

import (
	"slices"
	"sort"
	"strconv"

	"talentledger/domain"
)

// Inbox queues, in the order a grant goes through them.
const (
	QueueReview          = "applications_to_review"
	QueueNoticeOpen      = "notices_to_open"
	QueueNoticeClose     = "notices_ready_to_close"
	QueueGrantApprove    = "grants_to_approve"
	QueueInstallmentsDue = "installments_due"
	QueuePaymentApprove  = "payments_to_approve"
	QueuePaymentRelease  = "payments_to_release"
	QueuePaymentFailed   = "failed_payments"
	QueueClawbacks       = "clawbacks_outstanding"
)

// inboxQueues lists each queue with the roles that work it, in order.
var inboxQueues = []struct {
	name  string
	roles []string
}{
	{QueueReview, []string{domain.RoleReviewer}},
	{QueueNoticeOpen, []string{domain.RoleReviewer}},
	{QueueNoticeClose, []string{domain.RoleReviewer}},
	{QueueGrantApprove, []string{domain.RoleApprover}},
	{QueueInstallmentsDue, []string{domain.RoleClerk}},
	{QueuePaymentApprove, []string{domain.RoleApprover}},
	{QueuePaymentRelease, []string{domain.RoleTreasurer}},
	{QueuePaymentFailed, []string{domain.RoleClerk, domain.RoleTreasurer}},
	{QueueClawbacks, []string{domain.RoleTreasurer, domain.RoleApprover}},
}

// InboxItem is one thing waiting: a grant, an installment, a payment or a
// clawback, with what to call to act on it. Reason, on an item listed
// apart, says why the caller may not act on it.
type InboxItem struct {
	GrantID     string       `json:"grant_id"`
	PaymentID   string       `json:"payment_id,omitempty"`
	Installment int          `json:"installment,omitempty"`
	ProgramID   string       `json:"program_id"`
	TalentID    string       `json:"talent_id"`
	TalentName  string       `json:"talent_name"`
	Amount      domain.Money `json:"amount"`
	// Since is the date the item started waiting where it is known: the
	// application, the notice, the due date, the release.
	Since       string `json:"since,omitempty"`
	DaysOverdue int    `json:"days_overdue,omitempty"`
	// Action is the command that clears the item (method and path).
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
}

// InboxQueue is one queue of the inbox: how many items the caller may act
// on and the first of them, and apart, how many the caller may not act on
// because of the segregation of duties, and the first of those.
type InboxQueue struct {
	Name            string      `json:"name"`
	Roles           []string    `json:"roles"`
	Count           int         `json:"count"`
	Items           []InboxItem `json:"items"`
	SegregatedCount int         `json:"segregated_count"`
	Segregated      []InboxItem `json:"segregated"`
}

// Inbox answers, for a principal holding roles, the queues of the roles
// with up to page items each. Today (the server's date) decides which
// notices may close and which installments are due. Installments due come
// oldest first, with their days overdue; other items in the order they
// entered the ledger.
func (w *Work) Inbox(today, principal string, roles []string, page int) []InboxQueue {
	unlock := w.readLock()
	defer unlock()
	out := []InboxQueue{}
	for _, q := range inboxQueues {
		if !slices.ContainsFunc(q.roles, func(r string) bool { return slices.Contains(roles, r) }) {
			continue
		}
		iq := InboxQueue{Name: q.name, Roles: q.roles, Items: []InboxItem{}, Segregated: []InboxItem{}}
		w.eachEntry(queueCodes[q.name], today, func(e *queueEntry) {
			it, ok := w.present(q.name, e, today, principal)
			if !ok {
				return
			}
			if it.Reason != "" {
				iq.SegregatedCount++
				if len(iq.Segregated) < page {
					iq.Segregated = append(iq.Segregated, it)
				}
				return
			}
			iq.Count++
			if len(iq.Items) < page {
				iq.Items = append(iq.Items, it)
			}
		})
		out = append(out, iq)
	}
	return out
}

// queueEntry is a grant, an installment or a payment in one of the
// queues' indexes: what the inbox shows of it and what decides, with the
// day, the caller and the program's notice, whether and how it is shown.
// The indexes do not depend on those, so an entry changes only when its
// grant does.
type queueEntry struct {
	code byte
	// seq is the grant's place in the order applied for, or the
	// payment's in the register.
	seq                                     int
	state                                   string
	grantID, paymentID, programID, talentID string
	n                                       int
	amount                                  int64
	since                                   string
	// by and reviewer are who may not act on it: who entered the
	// application (or prepared the payment) and who reviewed it (or
	// approved the payment).
	by, reviewer string
	reviewed     bool
}

// The indexes: each queue's candidates, by code.
const (
	codeReview      = 'a' // applied, not reviewed
	codeReviewed    = 'o' // reviewed: a notice may open
	codeInNotice    = 'c' // in notice, no objection open
	codeApprovable  = 'g' // reviewed or notice closed, nothing objected
	codeDue         = 'd' // an approved grant's scheduled installment
	codeClawback    = 'k' // a clawback outstanding
	codePrepared    = 'P' // a payment prepared
	codeApproved    = 'A' // a payment approved
	codeFailedRetry = 'F' // a failed payment whose installment waits
)

var queueCodes = map[string]byte{
	QueueReview: codeReview, QueueNoticeOpen: codeReviewed, QueueNoticeClose: codeInNotice, QueueGrantApprove: codeApprovable,
	QueueInstallmentsDue: codeDue, QueuePaymentApprove: codePrepared, QueuePaymentRelease: codeApproved,
	QueuePaymentFailed: codeFailedRetry, QueueClawbacks: codeClawback,
}

// entries returns the grant's entries in the grant-level queues and its
// installments'; paymentEntry a payment's.
func (g *workGrant) entries() []queueEntry {
	v := &g.view
	base := queueEntry{seq: g.seq, state: v.State, grantID: v.ID, programID: v.ProgramID, talentID: v.TalentID,
		amount: v.fen.requested, by: g.appliedBy}
	if v.Review != nil {
		base.reviewer, base.reviewed = v.Review.ReviewedBy, true
	}
	var out []queueEntry
	add := func(code byte, since string) {
		e := base
		e.code, e.since = code, since
		out = append(out, e)
	}
	open := g.openObjections()
	switch v.State {
	case domain.GrantStateApplied:
		if v.Review == nil {
			add(codeReview, v.AppliedOn)
		}
	case domain.GrantStateReviewed:
		add(codeReviewed, "")
	case domain.GrantStateInNotice:
		if v.Notice != nil && open == 0 {
			add(codeInNotice, v.Notice.OpenedOn)
		}
	}
	if (v.State == domain.GrantStateNoticeClosed || v.State == domain.GrantStateReviewed) && !g.upheld && open == 0 {
		since := ""
		if v.Notice != nil {
			since = v.Notice.ClosedOn
		}
		add(codeApprovable, since)
	}
	if v.State == domain.GrantStateApproved {
		for _, in := range v.Installments {
			if in.State == InstallmentScheduled {
				e := base
				e.code, e.n, e.amount, e.since = codeDue, in.N, in.fen, in.DueDate
				out = append(out, e)
			}
		}
	}
	if owed := g.outstanding(); owed > 0 {
		since := ""
		if v.Termination != nil {
			since = v.Termination.DepartureDate
		}
		e := base
		e.code, e.amount, e.since = codeClawback, owed, since
		out = append(out, e)
	}
	return out
}

// paymentEntry returns the k-th payment's entry, if it waits in a queue.
func (g *workGrant) paymentEntry(k int) (queueEntry, bool) {
	p := &g.view.Payments[k]
	e := queueEntry{seq: g.pays[k], state: p.State, grantID: g.view.ID, paymentID: p.ID, programID: g.view.ProgramID,
		talentID: g.view.TalentID, n: p.Installment, amount: p.fen, by: p.PreparedBy, reviewer: p.ApprovedBy}
	switch p.State {
	case domain.PaymentStatePrepared:
		e.code = codePrepared
	case domain.PaymentStateApproved:
		e.code = codeApproved
	case domain.PaymentStateFailed:
		// A failed payment waits until its installment is prepared
		// again (or the grant ends).
		in := g.installment(p.Installment)
		if in == nil || in.State != InstallmentScheduled || g.view.State != domain.GrantStateApproved {
			return e, false
		}
		e.code = codeFailedRetry
	default:
		return e, false
	}
	return e, true
}

// present returns the inbox item an entry makes in a queue, today, for
// principal, if the queue shows it. w.mu is held.
func (w *Work) present(queue string, e *queueEntry, today, principal string) (InboxItem, bool) {
	it := InboxItem{GrantID: e.grantID, PaymentID: e.paymentID, ProgramID: e.programID, TalentID: e.talentID,
		TalentName: w.talentName(e.talentID), Amount: money(e.amount), Since: e.since}
	notice := w.notice[e.programID]
	switch queue {
	case QueueReview:
		it.Action = "POST /v1/grants/" + e.grantID + "/review"
		if e.by == principal {
			it.Reason = "the clerk who entered an application may not review it"
		}
	case QueueNoticeOpen:
		if notice <= 0 {
			return it, false
		}
		it.Action = "POST /v1/grants/" + e.grantID + "/notice"
	case QueueNoticeClose:
		if domain.NoticeClosesOn(e.since, notice) > today {
			return it, false
		}
		it.Action = "POST /v1/grants/" + e.grantID + "/notice/close"
	case QueueGrantApprove:
		if e.state == domain.GrantStateReviewed && notice != 0 {
			return it, false
		}
		it.Action = "POST /v1/grants/" + e.grantID + "/approve"
		if principal == e.by || (e.reviewed && principal == e.reviewer) {
			it.Reason = "the approver may not be the clerk who entered or the reviewer who reviewed the application"
		}
	case QueueInstallmentsDue:
		if e.since > today {
			return it, false
		}
		it.Installment, it.DaysOverdue = e.n, daysBetween(e.since, today)
		it.Action = "POST /v1/grants/" + e.grantID + "/installments/" + strconv.Itoa(e.n) + "/payments"
	case QueueClawbacks:
		it.Action = "POST /v1/grants/" + e.grantID + "/recoveries"
	case QueuePaymentApprove:
		it.Installment, it.Since = e.n, ""
		it.Action = "POST /v1/payments/" + e.paymentID + "/approve"
		if e.by == principal {
			it.Reason = "whoever prepares a payment may not approve it"
		}
	case QueuePaymentRelease:
		it.Installment, it.Since = e.n, ""
		it.Action = "POST /v1/payments/" + e.paymentID + "/release"
		if e.by == principal || e.reviewer == principal {
			it.Reason = "whoever approves or prepares a payment may not release it"
		}
	case QueuePaymentFailed:
		it.Installment, it.Since = e.n, ""
		it.Action = "POST /v1/grants/" + e.grantID + "/installments/" + strconv.Itoa(e.n) + "/payments"
	}
	return it, true
}

// eachEntry calls f with the entries of the index code in the queue's
// order: installments due oldest first (up to today), others in the
// order they entered the ledger. w.mu is held.
func (w *Work) eachEntry(code byte, today string, f func(*queueEntry)) {
	if w.disk != nil {
		w.disk.eachEntry(code, today, f)
		return
	}
	switch code {
	case codePrepared, codeApproved, codeFailedRetry:
		for _, wp := range w.payments {
			if e, ok := wp.grant.paymentEntry(wp.grant.paymentIndex(wp.id)); ok && e.code == code {
				f(&e)
			}
		}
		return
	}
	var due []queueEntry
	for _, g := range w.grants {
		for _, e := range g.entries() {
			switch {
			case e.code != code:
			case code == codeDue:
				due = append(due, e)
			default:
				f(&e)
			}
		}
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].since < due[j].since })
	for i := range due {
		f(&due[i])
	}
}
