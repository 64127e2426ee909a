package http

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"talentledger/domain"
	"talentledger/projections"
)

// The finance officers' work: the inbox, the payments register, the
// installments list and batch approval and release. The lists are read
// models; acting on an item runs the same commands, with the same checks
// on the streams, as the single routes.

// MaxBatch bounds the payments one batch request may approve or release.
const MaxBatch = 100

// inboxPage is how many items of each queue the inbox shows.
const inboxPage = 20

var workRoles = []string{domain.RoleClerk, domain.RoleReviewer, domain.RoleApprover, domain.RoleTreasurer}

func (s *Server) registerWorkRoutes() {
	s.handle("GET", "/v1/inbox", workRoles, "what waits for the caller's roles, by queue: counts and the first items; items segregation of duties keeps from the caller listed apart with the reason", s.handleInbox,
		routeDoc{Response: inboxAnswer{}, Query: qMin, Example: exampleInbox})
	s.handle("GET", "/v1/payments", AnyRole, "the payments register with filters, in the order prepared, by cursor", s.handlePaymentList,
		routeDoc{Response: paymentListAnswer{}, Example: examplePayments, Query: append(slices.Clone(qPointTime), "state", "program", "fiscal_year",
			"due_from", "due_to", "released_from", "released_to", "talent", "grant", "min_amount", "max_amount", "limit", "cursor")})
	s.handle("GET", "/v1/installments", AnyRole, "installments with filters and days overdue, by cursor", s.handleInstallmentList,
		routeDoc{Response: installmentListAnswer{}, Query: append(slices.Clone(qPointTime), "state", "program", "fiscal_year", "due_from", "due_to",
			"talent", "grant", "min_amount", "max_amount", "limit", "cursor")})
	s.handle("POST", "/v1/payments/batch-approve", []string{domain.RoleApprover}, "approve up to 100 prepared payments, each judged on its own (207)", s.command(s.batch(batchApprove)),
		routeDoc{Request: batchRequest{}, Response: batchAnswer{}, Status: http.StatusMultiStatus, RequestExample: exampleBatchRequest, Example: exampleBatchApprove})
	s.handle("POST", "/v1/payments/batch-release", []string{domain.RoleTreasurer}, "release up to 100 approved payments as one release batch, each judged on its own (207)", s.command(s.batch(batchRelease)),
		routeDoc{Request: batchRequest{}, Response: batchAnswer{}, Status: http.StatusMultiStatus, RequestExample: exampleBatchRequest, Example: exampleBatchRelease})
}

// inboxAnswer is the inbox.
type inboxAnswer struct {
	Principal string                   `json:"principal"`
	Roles     []string                 `json:"roles"`
	Today     string                   `json:"today"`
	Queues    []projections.InboxQueue `json:"queues"`
	Position  string                   `json:"position"`
}

func (s *Server) handleInbox(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	p := principalFrom(r.Context())
	var id string
	var roles []string
	if p != nil {
		id, roles = p.ID, p.Roles
	} else {
		a := actor(r.Context())
		id, roles = a.Principal, []string{a.Role}
	}
	today := s.svc.Today()
	pos := s.proj.Position()
	writeJSON(w, http.StatusOK, inboxAnswer{Principal: id, Roles: roles, Today: today,
		Queues: s.proj.Work().Inbox(today, id, roles, inboxPage), Position: pos.String()})
}

// paymentListAnswer is a page of the payments register.
type paymentListAnswer struct {
	Payments   []projections.PaymentRow `json:"payments"`
	Total      int                      `json:"total"`
	Limit      int                      `json:"limit"`
	NextCursor string                   `json:"next_cursor,omitempty"`
	Position   string                   `json:"position"`
	pointInTimeStamp
}

// installmentListAnswer is a page of installments.
type installmentListAnswer struct {
	Installments []projections.InstallmentRow `json:"installments"`
	Total        int                          `json:"total"`
	Limit        int                          `json:"limit"`
	NextCursor   string                       `json:"next_cursor,omitempty"`
	Today        string                       `json:"today"`
	Position     string                       `json:"position"`
	pointInTimeStamp
}

// listFilters reads the filters the payments and installments lists
// share; strictQuery has checked their form.
func listFilters(r *http.Request) (limit int, fy int, min, max *domain.Money, err error) {
	q := r.URL.Query()
	limit = 100
	if v := q.Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	if v := q.Get("fiscal_year"); v != "" {
		fy, _ = strconv.Atoi(v)
	}
	for _, m := range []struct {
		name string
		to   **domain.Money
	}{{"min_amount", &min}, {"max_amount", &max}} {
		if v := q.Get(m.name); v != "" {
			a, err := domain.ParseMoney(v)
			if err != nil {
				return 0, 0, nil, nil, paramErrorf(EBADPARAM, m.name, nil, "%s", domain.ErrorMessage(err))
			}
			*m.to = &a
		}
	}
	for _, pair := range [][2]string{{"due_from", "due_to"}, {"released_from", "released_to"}, {"min_amount", "max_amount"}} {
		a, b := q.Get(pair[0]), q.Get(pair[1])
		if pair[0] == "min_amount" {
			if min != nil && max != nil && min.Cmp(*max) > 0 {
				return 0, 0, nil, nil, paramErrorf(EBADPARAM, "min_amount", nil, "min_amount (%s) is above max_amount (%s)", min, max)
			}
			continue
		}
		if a != "" && b != "" && a > b {
			return 0, 0, nil, nil, paramErrorf(EBADPARAM, pair[0], nil, "%s (%s) is after %s (%s)", pair[0], a, pair[1], b)
		}
	}
	return limit, fy, min, max, nil
}

// rowFilter is the filters the payments and installments lists share.
func rowFilter(q url.Values, fy int, min, max *domain.Money) projections.RowFilter {
	return projections.RowFilter{State: q.Get("state"), ProgramID: q.Get("program"), TalentID: q.Get("talent"), GrantID: q.Get("grant"),
		FiscalYear: fy, DueFrom: q.Get("due_from"), DueTo: q.Get("due_to"), MinAmount: min, MaxAmount: max}
}

// Cursors are opaque to clients: a prefix naming the list, then the place.
func badCursor() error {
	return paramErrorf(EBADPARAM, "cursor", nil, "cursor must be the next_cursor of the previous page of this list")
}

func (s *Server) handlePaymentList(w http.ResponseWriter, r *http.Request) {
	v, pt, ok := s.query(w, r)
	if !ok {
		return
	}
	limit, fy, min, max, err := listFilters(r)
	q := r.URL.Query()
	f := projections.PaymentFilter{RowFilter: rowFilter(q, fy, min, max), ReleasedFrom: q.Get("released_from"),
		ReleasedTo: q.Get("released_to"), After: -1, Limit: limit}
	if c := q.Get("cursor"); c != "" && err == nil {
		n, ok := strings.CutPrefix(c, "p")
		if f.After, err = strconv.Atoi(n); !ok || err != nil || f.After < 0 {
			err = badCursor()
		}
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	rows, total, next := v.Work().Payments(f)
	a := paymentListAnswer{Payments: rows, Total: total, Limit: limit, Position: v.Position().String(),
		pointInTimeStamp: pointInTimeStamp{AsOf: pt.AsOf, RecordedAsOf: pt.RecordedAsOfString()}}
	if next >= 0 {
		a.NextCursor = "p" + strconv.Itoa(next)
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) handleInstallmentList(w http.ResponseWriter, r *http.Request) {
	v, pt, ok := s.query(w, r)
	if !ok {
		return
	}
	limit, fy, min, max, err := listFilters(r)
	q := r.URL.Query()
	today := s.svc.Today()
	if pt.AsOf != "" {
		today = pt.AsOf
	}
	f := projections.InstallmentFilter{RowFilter: rowFilter(q, fy, min, max), Today: today, Limit: limit}
	if c := q.Get("cursor"); c != "" && err == nil {
		g, n, ok := strings.Cut(strings.TrimPrefix(c, "i"), ".")
		gi, err1 := strconv.Atoi(g)
		ni, err2 := strconv.Atoi(n)
		if !ok || !strings.HasPrefix(c, "i") || err1 != nil || err2 != nil || gi < 0 || ni < 0 {
			err = badCursor()
		}
		f.After = &projections.InstallmentCursor{Grant: gi, N: ni}
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	rows, total, next := v.Work().Installments(f)
	a := installmentListAnswer{Installments: rows, Total: total, Limit: limit, Today: today, Position: v.Position().String(),
		pointInTimeStamp: pointInTimeStamp{AsOf: pt.AsOf, RecordedAsOf: pt.RecordedAsOfString()}}
	if next != nil {
		a.NextCursor = fmt.Sprintf("i%d.%d", next.Grant, next.N)
	}
	writeJSON(w, http.StatusOK, a)
}

// batchRequest is a batch of payments to approve or release.
type batchRequest struct {
	commandFields
	PaymentIDs []string `json:"payment_ids" required:"true"`
}

// batchItem is one payment's outcome in a batch: the command's answer, or
// the problem that refused it.
type batchItem struct {
	PaymentID     string   `json:"payment_id"`
	Status        int      `json:"status"`
	Position      string   `json:"position,omitempty"`
	BankReference string   `json:"bank_reference,omitempty"`
	Problem       *Problem `json:"problem,omitempty"`
}

// batchAnswer answers a batch item by item (207 Multi-Status).
type batchAnswer struct {
	// Batch names a release batch; its payments' bank references are
	// Batch-001, Batch-002, … in the order given.
	Batch     string      `json:"batch,omitempty"`
	Results   []batchItem `json:"results"`
	Succeeded int         `json:"succeeded"`
	Refused   int         `json:"refused"`
	// Position is the last position any item wrote, for min_position.
	Position string `json:"position"`
}

type batchKind int

const (
	batchApprove batchKind = iota
	batchRelease
)

// batchWorkers bounds the items of one batch run at once.
const batchWorkers = 4

// batch runs a batch: each payment is its own command, judged on its own
// (state, segregation of duties) by the same service call as the single
// route, under a command ID derived from the batch's (from its
// Idempotency-Key when it has one), so a retried batch appends nothing
// for an item already done.
func (s *Server) batch(kind batchKind) commandFunc {
	return func(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
		var req batchRequest
		if err := decode(body, &req); err != nil {
			return 0, nil, err
		}
		if len(req.PaymentIDs) == 0 || len(req.PaymentIDs) > MaxBatch {
			return 0, nil, fieldErrorf("/payment_ids", "payment_ids must list 1 to %d payments", MaxBatch)
		}
		seen := map[string]bool{}
		for i, id := range req.PaymentIDs {
			if seen[id] {
				return 0, nil, fieldErrorf(fmt.Sprintf("/payment_ids/%d", i), "payment %q is listed twice", clip(id))
			}
			seen[id] = true
		}
		base := m.CommandID
		if base == "" {
			var b [16]byte
			_, _ = rand.Read(b[:])
			base = hex.EncodeToString(b[:])
		}
		ans := batchAnswer{Results: make([]batchItem, len(req.PaymentIDs))}
		if kind == batchRelease {
			sum := sha256.Sum256([]byte("release-batch\x00" + base))
			ans.Batch = "RB" + strings.ToUpper(hex.EncodeToString(sum[:5]))
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, batchWorkers)
		for i, id := range req.PaymentIDs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ans.Results[i] = s.batchItem(r.Context(), kind, req, m, base, ans.Batch, i, id)
			}()
		}
		wg.Wait()
		var last string
		for _, it := range ans.Results {
			if it.Problem != nil {
				ans.Refused++
				continue
			}
			ans.Succeeded++
			if last == "" || positionAfter(it.Position, last) {
				last = it.Position
			}
		}
		ans.Position = last
		if ans.Position == "" {
			ans.Position = s.proj.Position().String()
		}
		return http.StatusMultiStatus, ans, nil
	}
}

func positionAfter(a, b string) bool {
	pa, err1 := parsePosition(a)
	pb, err2 := parsePosition(b)
	return err1 == nil && err2 == nil && pb.Before(pa)
}

func (s *Server) batchItem(ctx context.Context, kind batchKind, req batchRequest, m domain.CommandMeta, base, batch string, i int, id string) batchItem {
	im := req.meta(m)
	im.CommandID = domain.IdempotencyCommandID(m.Actor.Principal, base+"#"+id)
	c := domain.PaymentCommand{Meta: im, PaymentID: id}
	var res domain.Result
	var err error
	if kind == batchRelease {
		c.BankReference = fmt.Sprintf("%s-%03d", batch, i+1)
		res, err = s.svc.ReleasePayment(ctx, c)
	} else {
		res, err = s.svc.ApprovePayment(ctx, c)
	}
	if err != nil {
		code := errorCode(err)
		status, ok := codes[code]
		if !ok || code == domain.EINTERNAL {
			s.log.Error("batch item failed", "payment", id, "err", err.Error())
			status, code = http.StatusInternalServerError, domain.EINTERNAL
		}
		detail := domain.ErrorMessage(err)
		if code == domain.EINTERNAL {
			detail = "internal error"
		}
		return batchItem{PaymentID: id, Status: status, Problem: &Problem{Type: "urn:talentledger:problem:" + code,
			Title: http.StatusText(status), Status: status, Detail: detail, Code: code}}
	}
	return batchItem{PaymentID: id, Status: http.StatusOK, Position: res.Position.String(), BankReference: c.BankReference}
}
