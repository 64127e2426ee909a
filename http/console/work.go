package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

// workRoles are the roles the API's inbox has queues for.
var workRoles = []string{domain.RoleClerk, domain.RoleReviewer, domain.RoleApprover, domain.RoleTreasurer}

// inboxItem is one thing waiting, as GET /v1/inbox answers it.
type inboxItem struct {
	GrantID     string       `json:"grant_id"`
	PaymentID   string       `json:"payment_id"`
	Installment int          `json:"installment"`
	ProgramID   string       `json:"program_id"`
	TalentName  string       `json:"talent_name"`
	Amount      domain.Money `json:"amount"`
	Since       string       `json:"since"`
	DaysOverdue int          `json:"days_overdue"`
	Reason      string       `json:"reason"`
	// Program and Href are the console's: the program's name and the page
	// where the item is acted on.
	Program string `json:"-"`
	Href    string `json:"-"`
}

type section struct {
	Key             string // message key of the queue
	ID              string
	Count           int
	Items           []inboxItem
	SegregatedCount int
	Segregated      []inboxItem
}

type inboxData struct {
	Sections []section
	Alerts   []projections.Alert
	Requests []projections.AccessRequestView
	Today    string
}

// handleInbox is every role's landing page: the API's inbox of what waits
// for the principal's roles, queue by queue with counts, overdue first;
// what segregation of duties keeps from them listed apart with the
// reason; and the fund alerts and access requests of their roles.
func (c *Console) handleInbox(w http.ResponseWriter, r *http.Request, s *session) {
	d := inboxData{Today: c.today()}
	if anyOf(s, workRoles) {
		var ans struct {
			Today  string `json:"today"`
			Queues []struct {
				Name            string      `json:"name"`
				Count           int         `json:"count"`
				Items           []inboxItem `json:"items"`
				SegregatedCount int         `json:"segregated_count"`
				Segregated      []inboxItem `json:"segregated"`
			} `json:"queues"`
		}
		if res := c.get(r, s, "/v1/inbox", &ans); !res.ok() {
			c.failAPI(w, r, s, res)
			return
		}
		d.Today = ans.Today
		names := programNames(c.proj)
		fill := func(items []inboxItem) []inboxItem {
			for i := range items {
				it := &items[i]
				it.Program = names[it.ProgramID]
				it.Href = "/grants/" + url.PathEscape(it.GrantID)
				if it.PaymentID != "" {
					it.Href = "/payments"
				}
			}
			sort.SliceStable(items, func(i, j int) bool { return items[i].DaysOverdue > items[j].DaysOverdue })
			return items
		}
		for _, q := range ans.Queues {
			if q.Count == 0 && q.SegregatedCount == 0 {
				continue
			}
			d.Sections = append(d.Sections, section{Key: "inbox." + q.Name, ID: "sec-" + strings.ReplaceAll(q.Name, "_", "-"),
				Count: q.Count, Items: fill(q.Items), SegregatedCount: q.SegregatedCount, Segregated: fill(q.Segregated)})
		}
	}
	if s.has(domain.RoleFundManager) {
		d.Alerts = c.proj.FundAlerts("")
	}
	if s.has(domain.RoleAdmin) {
		d.Requests = c.proj.AccessRequests()
	}
	c.render(w, r, s, http.StatusOK, "inbox", "inbox.title", d)
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
	Batch    string // the release batch the API named
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
	Payment       string
	OK            bool
	BankReference string
	Code          string
	Detail        string
}

// handlePaymentBatch approves or releases the payments ticked, as one
// batch request to the API, which judges each on its own; the page shows
// each one's result.
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
	}
	res := c.call(r.Context(), r, s, http.MethodPost, "/v1/payments/batch-"+verb, map[string]any{"payment_ids": ids})
	if !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	var ans struct {
		Batch   string `json:"batch"`
		Results []struct {
			PaymentID     string `json:"payment_id"`
			BankReference string `json:"bank_reference"`
			Problem       *struct {
				Code   string `json:"code"`
				Detail string `json:"detail"`
			} `json:"problem"`
		} `json:"results"`
		Position string `json:"position"`
	}
	_ = json.Unmarshal(res.Body, &ans)
	if pos, err := eventstore.ParsePosition(ans.Position); err == nil {
		_ = c.proj.WaitFor(r.Context(), pos, 5*time.Second)
	}
	var results []batchResult
	for _, it := range ans.Results {
		br := batchResult{Payment: it.PaymentID, OK: it.Problem == nil, BankReference: it.BankReference}
		if it.Problem != nil {
			br.Code, br.Detail = it.Problem.Code, it.Problem.Detail
		}
		results = append(results, br)
	}
	d := c.paymentsData(s)
	d.Results, d.Action, d.Batch = results, verb, ans.Batch
	c.render(w, r, s, http.StatusOK, "payments", "payments.title", d)
}

func dueOf(g projections.GrantView, n int) string {
	for _, in := range g.Installments {
		if in.N == n {
			return in.DueDate
		}
	}
	return ""
}
