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
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := []InboxQueue{}
	for _, q := range inboxQueues {
		if !slices.ContainsFunc(q.roles, func(r string) bool { return slices.Contains(roles, r) }) {
			continue
		}
		iq := InboxQueue{Name: q.name, Roles: q.roles, Items: []InboxItem{}, Segregated: []InboxItem{}}
		add := func(it InboxItem) {
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
		}
		if q.name == QueueInstallmentsDue {
			// Oldest due first: collect, sort, then page.
			var due []InboxItem
			w.each(q.name, today, principal, func(it InboxItem) { due = append(due, it) })
			sort.SliceStable(due, func(i, j int) bool { return due[i].Since < due[j].Since })
			for _, it := range due {
				add(it)
			}
		} else {
			w.each(q.name, today, principal, add)
		}
		out = append(out, iq)
	}
	return out
}

// each calls f with every item of a queue. w.mu is held.
func (w *Work) each(queue, today, principal string, f func(InboxItem)) {
	if queue == QueuePaymentApprove || queue == QueuePaymentRelease || queue == QueuePaymentFailed {
		w.eachPayment(queue, principal, f)
		return
	}
	for _, g := range w.grants {
		v := &g.view
		item := func() InboxItem {
			return InboxItem{GrantID: v.ID, ProgramID: v.ProgramID, TalentID: v.TalentID, TalentName: w.talentName(v.TalentID)}
		}
		switch queue {
		case QueueReview:
			if v.State == domain.GrantStateApplied && v.Review == nil {
				it := item()
				it.Amount, it.Since, it.Action = money(v.fen.requested), v.AppliedOn, "POST /v1/grants/"+v.ID+"/review"
				if g.appliedBy == principal {
					it.Reason = "the clerk who entered an application may not review it"
				}
				f(it)
			}
		case QueueNoticeOpen:
			if v.State == domain.GrantStateReviewed && w.notice[v.ProgramID] > 0 {
				it := item()
				it.Amount, it.Action = money(v.fen.requested), "POST /v1/grants/"+v.ID+"/notice"
				f(it)
			}
		case QueueNoticeClose:
			if v.State == domain.GrantStateInNotice && v.Notice != nil && g.openObjections() == 0 &&
				domain.NoticeClosesOn(v.Notice.OpenedOn, w.notice[v.ProgramID]) <= today {
				it := item()
				it.Amount, it.Since, it.Action = money(v.fen.requested), v.Notice.OpenedOn, "POST /v1/grants/"+v.ID+"/notice/close"
				f(it)
			}
		case QueueGrantApprove:
			ready := v.State == domain.GrantStateNoticeClosed || (v.State == domain.GrantStateReviewed && w.notice[v.ProgramID] == 0)
			if ready && !g.upheld && g.openObjections() == 0 {
				it := item()
				it.Amount, it.Action = money(v.fen.requested), "POST /v1/grants/"+v.ID+"/approve"
				if v.Notice != nil {
					it.Since = v.Notice.ClosedOn
				}
				if principal == g.appliedBy || (v.Review != nil && principal == v.Review.ReviewedBy) {
					it.Reason = "the approver may not be the clerk who entered or the reviewer who reviewed the application"
				}
				f(it)
			}
		case QueueInstallmentsDue:
			if v.State != domain.GrantStateApproved {
				continue
			}
			for _, in := range v.Installments {
				if in.State != InstallmentScheduled || in.DueDate > today {
					continue
				}
				it := item()
				it.Installment, it.Amount, it.Since = in.N, money(in.fen), in.DueDate
				it.DaysOverdue = daysBetween(in.DueDate, today)
				it.Action = "POST /v1/grants/" + v.ID + "/installments/" + strconv.Itoa(in.N) + "/payments"
				f(it)
			}
		case QueueClawbacks:
			if owed := g.outstanding(); owed > 0 {
				it := item()
				it.Amount, it.Action = money(owed), "POST /v1/grants/"+v.ID+"/recoveries"
				if v.Termination != nil {
					it.Since = v.Termination.DepartureDate
				}
				f(it)
			}
		}
	}
}

// eachPayment calls f with every payment of a payments queue. w.mu is
// held.
func (w *Work) eachPayment(queue, principal string, f func(InboxItem)) {
	for _, wp := range w.payments {
		g := wp.grant
		p := g.payment(wp.id)
		it := InboxItem{GrantID: g.view.ID, PaymentID: p.ID, Installment: p.Installment, ProgramID: g.view.ProgramID,
			TalentID: g.view.TalentID, TalentName: w.talentName(g.view.TalentID), Amount: money(p.fen)}
		switch queue {
		case QueuePaymentApprove:
			if p.State != domain.PaymentStatePrepared {
				continue
			}
			it.Action = "POST /v1/payments/" + p.ID + "/approve"
			if p.PreparedBy == principal {
				it.Reason = "whoever prepares a payment may not approve it"
			}
		case QueuePaymentRelease:
			if p.State != domain.PaymentStateApproved {
				continue
			}
			it.Action = "POST /v1/payments/" + p.ID + "/release"
			if p.PreparedBy == principal || p.ApprovedBy == principal {
				it.Reason = "whoever approves or prepares a payment may not release it"
			}
		case QueuePaymentFailed:
			// A failed payment waits until its installment is prepared
			// again (or the grant ends).
			in := g.installment(p.Installment)
			if p.State != domain.PaymentStateFailed || in == nil || in.State != InstallmentScheduled || g.view.State != domain.GrantStateApproved {
				continue
			}
			it.Action = "POST /v1/grants/" + g.view.ID + "/installments/" + strconv.Itoa(p.Installment) + "/payments"
		}
		f(it)
	}
}
