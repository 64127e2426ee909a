package console

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	"talentledger/projections"
)

// grantRow is a grant in a list, with its talent's name.
type grantRow struct {
	projections.GrantView
	TalentName  string
	ProgramName string
}

type grantsData struct {
	Rows     []grantRow
	Total    int
	Programs []projections.ProgramView
	States   []string
	Q        string
	Program  string
	State    string
	AsOf     string
	Offset   int
	Next     string
	Prev     string
}

const pageSize = 50

// views returns the read models to answer from: the live ones, or for
// ?as_of= models replayed from the log up to that business date.
func (c *Console) views(r *http.Request) (*projections.Projector, string, error) {
	asOf := r.URL.Query().Get("as_of")
	if asOf == "" || c.store == nil {
		return c.proj, "", nil
	}
	pt, err := projections.ParsePointInTime(asOf, "")
	if err != nil {
		return nil, asOf, err
	}
	select {
	case c.replays <- struct{}{}:
	case <-r.Context().Done():
		return nil, asOf, r.Context().Err()
	}
	defer func() { <-c.replays }()
	v, err := projections.Replay(r.Context(), c.store, pt.Keep)
	return v, asOf, err
}

// handleGrants lists grants by program and state, searched by the talent's
// name (Chinese too), employer or ID, optionally as of a past date.
func (c *Console) handleGrants(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	v, asOf, err := c.views(r)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, domain.ErrorCode(err), domain.ErrorMessage(err))
		return
	}
	d := grantsData{Programs: v.Programs(), States: domain.GrantStates, Q: strings.TrimSpace(q.Get("q")),
		Program: q.Get("program"), State: q.Get("status"), AsOf: asOf}
	if d.State != "" && !slices.Contains(domain.GrantStates, d.State) {
		c.fail(w, r, s, http.StatusBadRequest, domain.EINVALID, "status")
		return
	}
	d.Offset, _ = strconv.Atoi(q.Get("offset"))
	if d.Offset < 0 {
		d.Offset = 0
	}
	all, _ := v.Grants(projections.GrantFilter{ProgramID: d.Program, State: d.State})
	names := programNames(v)
	needle := strings.ToLower(d.Q)
	var rows []grantRow
	for _, g := range all {
		t, _ := v.Talent(g.TalentID)
		if needle != "" && !strings.Contains(strings.ToLower(t.Name), needle) && !strings.Contains(strings.ToLower(t.Employer), needle) &&
			!strings.Contains(g.ID, needle) {
			continue
		}
		rows = append(rows, grantRow{GrantView: g, TalentName: t.Name, ProgramName: names[g.ProgramID]})
	}
	d.Total = len(rows)
	end := min(d.Offset+pageSize, len(rows))
	if d.Offset < len(rows) {
		d.Rows = rows[d.Offset:end]
	}
	page := func(off int) string {
		u := url.Values{}
		for k, vs := range q {
			u[k] = vs
		}
		u.Set("offset", strconv.Itoa(off))
		return "/grants?" + u.Encode()
	}
	if end < len(rows) {
		d.Next = page(end)
	}
	if d.Offset > 0 {
		d.Prev = page(max(0, d.Offset-pageSize))
	}
	c.render(w, r, s, http.StatusOK, "grants", "grants.title", d)
}

func programNames(v *projections.Projector) map[string]string {
	m := map[string]string{}
	for _, p := range v.Programs() {
		m[p.ID] = p.Name
	}
	return m
}

// button is an action on a page: enabled, or disabled with the reason.
type button struct {
	Action   string // message key of the label
	Path     string
	Fields   []string // the form's inputs, by name
	Disabled string   // message key of the reason it may not be used
	Danger   bool
}

// trailView is a grant's trail as the timeline shows it.
type trailView struct {
	Events []trailEvent
	// Head is the signed tree head the proofs are against; HeadChecked
	// says whether its signature was checked, HeadOK whether it held.
	HeadSize    uint64
	HeadChecked bool
	HeadOK      bool
	// Denied is set when the caller's role may not read trails.
	Denied bool
}

type trailEvent struct {
	Type, Principal, Role, RecordedAt, EffectiveDate, Reason, DocumentRef, Hash, Position, Source string
	Postings                                                                                      []domain.Posting
	HashValid                                                                                     bool
	// Included says the event's inclusion proof was checked against the
	// signed head; Verified that and everything else held.
	Included bool
	Verified bool
}

type grantData struct {
	Grant       projections.GrantView
	Talent      projections.TalentView
	Program     projections.ProgramView
	Actions     []button
	PayActions  map[string][]button // by payment ID
	InstActions map[int]button      // prepare, by installment
	Trail       trailView
	EnteredBy   string
}

func (c *Console) handleGrant(w http.ResponseWriter, r *http.Request, s *session) {
	id := mux.Vars(r)["id"]
	g, ok := c.proj.Grant(id)
	if !ok {
		c.fail(w, r, s, http.StatusNotFound, domain.ENOTFOUND, "")
		return
	}
	d := grantData{Grant: g, PayActions: map[string][]button{}, InstActions: map[int]button{}}
	d.Talent, _ = c.proj.Talent(g.TalentID)
	d.Program, _ = c.proj.Program(g.ProgramID)
	d.Trail = c.trail(r, s, id)
	for _, ev := range d.Trail.Events {
		if ev.Type == domain.TypeGrantApplied {
			d.EnteredBy = ev.Principal
		}
	}
	c.grantButtons(s, &d)
	c.render(w, r, s, http.StatusOK, "grant", "grant.title", d)
}

// grantButtons lists the actions the grant's state allows, each disabled
// with its reason when the principal may not use it.
func (c *Console) grantButtons(s *session, d *grantData) {
	g := d.Grant
	base := "/grants/" + g.ID
	role := func(b button, roles ...string) button {
		if !anyOf(s, roles) {
			b.Disabled = "reason.role." + roles[0]
		}
		return b
	}
	sod := func(b button) button {
		if b.Disabled == "" && g.Review != nil && g.Review.ReviewedBy == s.principal {
			b.Disabled = "reason.reviewed"
		}
		if b.Disabled == "" && d.EnteredBy == s.principal {
			b.Disabled = "reason.entered"
		}
		return b
	}
	switch g.State {
	case domain.GrantStateApplied:
		b := role(button{Action: "action.review", Path: base + "/review", Fields: []string{"decision", "note"}}, domain.RoleReviewer)
		if b.Disabled == "" && d.EnteredBy == s.principal {
			b.Disabled = "reason.entered"
		}
		d.Actions = append(d.Actions, b)
	case domain.GrantStateReviewed:
		if g.Review != nil && g.Review.Decision == "reject" {
			d.Actions = append(d.Actions, sod(role(button{Action: "action.reject", Path: base + "/reject", Fields: []string{"reason"}, Danger: true}, domain.RoleApprover)))
		} else {
			d.Actions = append(d.Actions, role(button{Action: "action.notice", Path: base + "/notice"}, domain.RoleReviewer))
		}
	case domain.GrantStateInNotice:
		d.Actions = append(d.Actions, role(button{Action: "action.notice_close", Path: base + "/notice/close"}, domain.RoleReviewer))
	case domain.GrantStateNoticeClosed:
		d.Actions = append(d.Actions,
			sod(role(button{Action: "action.approve", Path: base + "/approve", Fields: []string{"award", "document_ref"}}, domain.RoleApprover)),
			sod(role(button{Action: "action.reject", Path: base + "/reject", Fields: []string{"reason"}, Danger: true}, domain.RoleApprover)))
	case domain.GrantStateApproved:
		if d.Talent.DepartureDate == "" {
			d.Actions = append(d.Actions, role(button{Action: "action.departure", Path: "/talents/" + g.TalentID + "/departure",
				Fields: []string{"departure_date"}}, domain.RoleClerk))
		}
		d.Actions = append(d.Actions, role(button{Action: "action.terminate", Path: base + "/terminate", Fields: []string{"reason"}, Danger: true}, domain.RoleApprover))
		for _, in := range g.Installments {
			if in.State == projections.InstallmentScheduled {
				d.InstActions[in.N] = role(button{Action: "action.prepare", Path: fmt.Sprintf("%s/installments/%d/payments", base, in.N)}, domain.RoleClerk)
			}
		}
	}
	if g.Clawback.Outstanding.Sign() > 0 {
		d.Actions = append(d.Actions,
			role(button{Action: "action.recover", Path: base + "/recoveries", Fields: []string{"amount", "bank_reference"}}, domain.RoleTreasurer),
			role(button{Action: "action.waive", Path: base + "/waive", Fields: []string{"amount", "reason"}}, domain.RoleApprover))
	}
	for _, p := range g.Payments {
		d.PayActions[p.ID] = paymentButtons(s, p)
	}
}

// paymentButtons lists a payment's next step, disabled with its reason
// when the principal may not take it.
func paymentButtons(s *session, p projections.PaymentView) []button {
	base := "/payments/" + p.ID
	switch p.State {
	case domain.PaymentStatePrepared:
		b := button{Action: "action.pay_approve", Path: base + "/approve"}
		switch {
		case !s.has(domain.RoleApprover):
			b.Disabled = "reason.role.approver"
		case p.PreparedBy == s.principal:
			b.Disabled = "reason.prepared"
		}
		return []button{b}
	case domain.PaymentStateApproved:
		b := button{Action: "action.release", Path: base + "/release", Fields: []string{"bank_reference"}}
		f := button{Action: "action.fail", Path: base + "/fail", Fields: []string{"reason"}, Danger: true}
		switch {
		case !s.has(domain.RoleTreasurer):
			b.Disabled, f.Disabled = "reason.role.treasurer", "reason.role.treasurer"
		case p.ApprovedBy == s.principal || p.PreparedBy == s.principal:
			b.Disabled = "reason.approved"
		}
		return []button{b, f}
	}
	return nil
}

// trail reads the grant's trail through the API (auditors and approvers
// may) and checks every event: its hash chain, its inclusion proof
// against the signed tree head, and that head's signature.
func (c *Console) trail(r *http.Request, s *session, id string) trailView {
	if !anyOf(s, []string{domain.RoleAuditor, domain.RoleApprover}) {
		return trailView{Denied: true}
	}
	return c.trailAt(r, s, "/v1/grants/"+url.PathEscape(id)+"/trail")
}

// trailAt reads the trail the API answers at path and checks it.
func (c *Console) trailAt(r *http.Request, s *session, path string) trailView {
	var out struct {
		Events []struct {
			Stream        string                `json:"stream"`
			Version       int64                 `json:"version"`
			EventID       string                `json:"event_id"`
			Type          string                `json:"type"`
			Principal     string                `json:"principal"`
			Role          string                `json:"role"`
			RecordedAt    string                `json:"recorded_at"`
			EffectiveDate string                `json:"effective_date"`
			Reason        string                `json:"reason"`
			DocumentRef   string                `json:"document_ref"`
			Source        string                `json:"source"`
			Position      string                `json:"position"`
			Postings      []domain.Posting      `json:"postings"`
			Hash          string                `json:"hash"`
			HashValid     bool                  `json:"hash_valid"`
			LeafIndex     *uint64               `json:"leaf_index"`
			Proof         []auditproof.HexBytes `json:"proof"`
		} `json:"events"`
		TreeHead *auditproof.TreeHead `json:"tree_head"`
	}
	res := c.get(r, s, path, &out)
	if !res.ok() {
		return trailView{Denied: res.Status == http.StatusForbidden}
	}
	tv := trailView{}
	if h := out.TreeHead; h != nil {
		tv.HeadSize = h.TreeSize
		if c.pub != nil {
			tv.HeadChecked = true
			tv.HeadOK = auditproof.VerifyTreeHead(c.pub, *h) == nil
		}
	}
	for _, e := range out.Events {
		recorded := e.RecordedAt
		if t, err := time.Parse(time.RFC3339Nano, e.RecordedAt); err == nil {
			recorded = t.In(domain.CityTime).Format("2006-01-02 15:04:05")
		}
		te := trailEvent{Type: e.Type, Principal: e.Principal, Role: e.Role, RecordedAt: recorded, EffectiveDate: e.EffectiveDate,
			Reason: e.Reason, DocumentRef: e.DocumentRef, Hash: e.Hash, Position: e.Position, Source: e.Source, Postings: e.Postings, HashValid: e.HashValid}
		if out.TreeHead != nil && e.LeafIndex != nil {
			if eid, err := eventstore.ParseEventID(e.EventID); err == nil {
				ev := eventstore.Event{Stream: e.Stream, Version: eventstore.Version(e.Version), ID: eid}
				ev.Metadata.Hash = e.Hash
				te.Included = auditproof.VerifyInclusion(*out.TreeHead, *e.LeafIndex, auditproof.LeafHash(&ev), e.Proof) == nil
			}
		}
		te.Verified = te.HashValid && te.Included && tv.HeadChecked && tv.HeadOK
		tv.Events = append(tv.Events, te)
	}
	return tv
}

// grantAction is a form on the grant page and the API command it sends.
type grantActionDef struct {
	path   string
	roles  []string
	fields []string
}

var grantActions = []grantActionDef{
	{"/grants/{id}/review", reviewer, []string{"decision", "note", "reason", "document_ref"}},
	{"/grants/{id}/notice", reviewer, []string{"reason", "document_ref"}},
	{"/grants/{id}/notice/close", reviewer, []string{"reason", "document_ref"}},
	{"/grants/{id}/approve", approver, []string{"award", "reason", "document_ref"}},
	{"/grants/{id}/reject", approver, []string{"reason", "document_ref"}},
	{"/grants/{id}/terminate", approver, []string{"reason", "document_ref"}},
	{"/grants/{id}/waive", approver, []string{"amount", "reason", "document_ref"}},
	{"/grants/{id}/recoveries", treasurer, []string{"amount", "bank_reference", "reason", "document_ref"}},
	{"/grants/{id}/installments/{n}/payments", clerk, []string{"reason", "document_ref"}},
	{"/talents/{id}/departure", clerk, []string{"departure_date", "reason", "document_ref"}},
}

// formBody copies the named form fields that were filled in into a
// command's JSON body.
func formBody(r *http.Request, fields []string) map[string]any {
	body := map[string]any{}
	for _, f := range fields {
		if v := strings.TrimSpace(r.PostFormValue(f)); v != "" {
			body[f] = v
		}
	}
	return body
}

// grantAction sends the form to the API endpoint of the same path.
func (c *Console) grantAction(a grantActionDef) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		_, res := c.post(r, s, "/v1"+r.URL.Path, formBody(r, a.fields))
		if !res.ok() {
			c.failAPI(w, r, s, res)
			return
		}
		c.setFlash(s, "flash.done", "")
		http.Redirect(w, r, next(r, "/grants/"+url.PathEscape(mux.Vars(r)["id"])), http.StatusSeeOther)
	}
}

type newGrantData struct {
	Talents  []projections.TalentView
	Programs []projections.ProgramView
	Talent   string
	Tiers    []string
}

// handleGrantNew shows the clerk's forms: register a talent, record an
// application.
func (c *Console) handleGrantNew(w http.ResponseWriter, r *http.Request, s *session) {
	d := newGrantData{Programs: c.proj.Programs(), Talent: r.URL.Query().Get("talent"), Tiers: []string{"A", "B", "C", "D", "E"}}
	seen := map[string]bool{}
	gs, _ := c.proj.Grants(projections.GrantFilter{})
	ids := []string{}
	for _, g := range gs {
		if !seen[g.TalentID] {
			seen[g.TalentID] = true
			ids = append(ids, g.TalentID)
		}
	}
	if d.Talent != "" && !seen[d.Talent] {
		ids = append(ids, d.Talent)
	}
	for _, id := range ids {
		if t, ok := c.proj.Talent(id); ok {
			d.Talents = append(d.Talents, t)
		}
	}
	sort.Slice(d.Talents, func(i, j int) bool { return d.Talents[i].RegisteredOn > d.Talents[j].RegisteredOn })
	c.render(w, r, s, http.StatusOK, "newgrant", "newgrant.title", d)
}

func (c *Console) handleTalentCreate(w http.ResponseWriter, r *http.Request, s *session) {
	a, res := c.post(r, s, "/v1/talents", formBody(r, []string{"name", "permit_category", "tier", "employer", "effective_date"}))
	if !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	c.setFlash(s, "flash.talent", a.ID)
	http.Redirect(w, r, "/grants/new?talent="+url.QueryEscape(a.ID), http.StatusSeeOther)
}

func (c *Console) handleGrantApply(w http.ResponseWriter, r *http.Request, s *session) {
	a, res := c.post(r, s, "/v1/grants", formBody(r, []string{"talent_id", "program_id", "amount_requested", "document_ref", "effective_date"}))
	if !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	c.setFlash(s, "flash.applied", a.ID)
	http.Redirect(w, r, "/grants/"+url.PathEscape(a.ID), http.StatusSeeOther)
}

func hexShort(h string) string {
	if _, err := hex.DecodeString(h); err != nil {
		return ""
	}
	return shorten(h, 16)
}
