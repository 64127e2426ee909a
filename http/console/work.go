package console

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/projections"
)

// item is one thing waiting for someone.
type item struct {
	Label   string // message key of what to do
	Ref     string // the grant or payment
	Who     string // the talent's name
	Program string
	Amount  domain.Money
	Since   string // the date it has waited since
	Overdue bool
	Href    string
}

type section struct {
	Key   string
	ID    string
	Items []item
}

// handleInbox is every role's landing page: what waits for the principal,
// overdue first, then oldest first.
func (c *Console) handleInbox(w http.ResponseWriter, r *http.Request, s *session) {
	today := c.today()
	names := programNames(c.proj)
	byLabel := map[string][]item{}
	add := func(label string, g projections.GrantView, amount domain.Money, since string, href string) {
		t, _ := c.proj.Talent(g.TalentID)
		byLabel[label] = append(byLabel[label], item{Label: label, Ref: g.ID, Who: t.Name, Program: names[g.ProgramID], Amount: amount,
			Since: since, Overdue: since != "" && since < today && strings.HasPrefix(label, "inbox.prepare"), Href: href})
	}
	gs, _ := c.proj.Grants(projections.GrantFilter{})
	for _, g := range gs {
		href := "/grants/" + url.PathEscape(g.ID)
		switch {
		case g.State == domain.GrantStateApplied && s.has(domain.RoleReviewer):
			add("inbox.review", g, g.AmountRequested, g.AppliedOn, href)
		case g.State == domain.GrantStateReviewed && s.has(domain.RoleReviewer) && (g.Review == nil || g.Review.Decision != "reject"):
			add("inbox.notice", g, g.AmountRequested, g.AppliedOn, href)
		case g.State == domain.GrantStateInNotice && s.has(domain.RoleReviewer) && g.Notice != nil:
			add("inbox.notice_close", g, g.AmountRequested, g.Notice.OpenedOn, href)
		case g.State == domain.GrantStateNoticeClosed && s.has(domain.RoleApprover):
			since := g.AppliedOn
			if g.Notice != nil {
				since = g.Notice.ClosedOn
			}
			add("inbox.approve", g, g.AmountRequested, since, href)
		case g.State == domain.GrantStateReviewed && s.has(domain.RoleApprover) && g.Review != nil && g.Review.Decision == "reject":
			add("inbox.reject", g, g.AmountRequested, g.AppliedOn, href)
		}
		if g.State == domain.GrantStateApproved && s.has(domain.RoleClerk) {
			for _, in := range g.Installments {
				if in.State == projections.InstallmentScheduled && in.DueDate <= today {
					add("inbox.prepare", g, in.Amount, in.DueDate, href)
				}
			}
		}
		for _, p := range g.Payments {
			switch {
			case p.State == domain.PaymentStatePrepared && s.has(domain.RoleApprover) && p.PreparedBy != s.principal:
				add("inbox.pay_approve", g, p.Amount, dueOf(g, p.Installment), "/payments")
			case p.State == domain.PaymentStateApproved && s.has(domain.RoleTreasurer) && p.ApprovedBy != s.principal:
				add("inbox.release", g, p.Amount, dueOf(g, p.Installment), "/payments")
			}
		}
		if g.Clawback.Outstanding.Sign() > 0 && s.has(domain.RoleTreasurer) {
			since := ""
			if g.Termination != nil {
				since = g.Termination.DepartureDate
			}
			add("inbox.recover", g, g.Clawback.Outstanding, since, href)
		}
	}
	var secs []section
	for _, k := range inboxOrder {
		items := byLabel[k]
		if len(items) == 0 {
			continue
		}
		sort.SliceStable(items, func(i, j int) bool {
			if items[i].Overdue != items[j].Overdue {
				return items[i].Overdue
			}
			return items[i].Since < items[j].Since
		})
		secs = append(secs, section{Key: k, ID: strings.ReplaceAll(k, ".", "-"), Items: items})
	}
	d := inboxData{Sections: secs, Today: today}
	if s.has(domain.RoleFundManager) {
		d.Alerts = c.proj.FundAlerts("")
	}
	if s.has(domain.RoleAdmin) {
		d.Requests = c.proj.AccessRequests()
	}
	c.render(w, r, s, http.StatusOK, "inbox", "inbox.title", d)
}

var inboxOrder = []string{"inbox.review", "inbox.notice", "inbox.notice_close", "inbox.approve", "inbox.reject", "inbox.prepare",
	"inbox.pay_approve", "inbox.release", "inbox.recover"}

type inboxData struct {
	Sections []section
	Alerts   []projections.Alert
	Requests []projections.AccessRequestView
	Today    string
}

func dueOf(g projections.GrantView, n int) string {
	for _, in := range g.Installments {
		if in.N == n {
			return in.DueDate
		}
	}
	return ""
}

// payRow is a payment waiting for its next step.
type payRow struct {
	projections.PaymentView
	TalentName string
	Due        string
	Buttons    []button
}

type paymentsData struct {
	Prepared []payRow
	Approved []payRow
	Results  []batchResult
	Action   string
}

// handlePayments lists the payments waiting for approval or release,
// with the batch forms.
func (c *Console) handlePayments(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "payments", "payments.title", c.paymentsData(s))
}

func (c *Console) paymentsData(s *session) paymentsData {
	d := paymentsData{}
	gs, _ := c.proj.Grants(projections.GrantFilter{State: domain.GrantStateApproved})
	more, _ := c.proj.Grants(projections.GrantFilter{State: domain.GrantStateTerminated})
	for _, g := range append(gs, more...) {
		t, _ := c.proj.Talent(g.TalentID)
		for _, p := range g.Payments {
			row := payRow{PaymentView: p, TalentName: t.Name, Due: dueOf(g, p.Installment), Buttons: paymentButtons(s, p)}
			switch p.State {
			case domain.PaymentStatePrepared:
				d.Prepared = append(d.Prepared, row)
			case domain.PaymentStateApproved:
				d.Approved = append(d.Approved, row)
			}
		}
	}
	byDue := func(rows []payRow) {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Due < rows[j].Due })
	}
	byDue(d.Prepared)
	byDue(d.Approved)
	return d
}

// paymentAction approves, releases or fails one payment.
func (c *Console) paymentAction(verb string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		id := mux.Vars(r)["id"]
		_, res := c.post(r, s, "/v1/payments/"+url.PathEscape(id)+"/"+verb, formBody(r, []string{"bank_reference", "reason", "document_ref"}))
		if !res.ok() {
			c.failAPI(w, r, s, res)
			return
		}
		c.setFlash(s, "flash.done", "")
		def := "/payments"
		if g, _, ok := domain.ParsePaymentID(id); ok {
			def = "/grants/" + url.PathEscape(g)
		}
		http.Redirect(w, r, next(r, def), http.StatusSeeOther)
	}
}

// batchResult is one payment's outcome in a batch.
type batchResult struct {
	Payment string
	OK      bool
	Code    string
	Detail  string
}

// handlePaymentBatch approves or releases the payments ticked, one
// request to the API each, and shows each one's result.
func (c *Console) handlePaymentBatch(w http.ResponseWriter, r *http.Request, s *session) {
	verb := r.PostFormValue("action")
	ids := r.PostForm["payment"]
	switch {
	case verb != "approve" && verb != "release":
		c.fail(w, r, s, http.StatusBadRequest, domain.EINVALID, "action must be approve or release")
		return
	case len(ids) == 0:
		c.fail(w, r, s, http.StatusBadRequest, domain.EINVALID, "no payment was chosen")
		return
	case len(ids) > 200:
		c.fail(w, r, s, http.StatusBadRequest, domain.EINVALID, "a batch holds at most 200 payments")
		return
	}
	ref := strings.TrimSpace(r.PostFormValue("bank_reference"))
	var results []batchResult
	for i, id := range ids {
		body := map[string]any{}
		if verb == "release" && ref != "" {
			body["bank_reference"] = ref + "-" + strconv.Itoa(i+1)
		}
		_, res := c.post(r, s, "/v1/payments/"+url.PathEscape(id)+"/"+verb, body, id)
		results = append(results, batchResult{Payment: id, OK: res.ok(), Code: res.Code, Detail: res.Detail})
	}
	d := c.paymentsData(s)
	d.Results, d.Action = results, verb
	c.render(w, r, s, http.StatusOK, "payments", "payments.title", d)
}
