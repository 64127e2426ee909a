package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	"talentledger/projections"
)

type budgetsData struct {
	Years   []int
	Year    int
	Budgets []budgetRow
	Chart   chart
	AsOf    string
}

type budgetRow struct {
	projections.BudgetView
	ProgramName string
	Href        string // the program's grants
}

// handleBudgets shows each program's budget execution in a fiscal year,
// with a chart; each row drills down to the program's grants.
func (c *Console) handleBudgets(w http.ResponseWriter, r *http.Request, s *session) {
	v, asOf, err := c.views(r)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, domain.ErrorCode(err), domain.ErrorMessage(err))
		return
	}
	d := budgetsData{AsOf: asOf}
	years := map[int]bool{}
	for _, p := range v.Programs() {
		for _, b := range p.Budgets {
			years[b.FiscalYear] = true
		}
	}
	for y := range years {
		d.Years = append(d.Years, y)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(d.Years)))
	d.Year, _ = strconv.Atoi(r.URL.Query().Get("fy"))
	if !years[d.Year] {
		d.Year, _ = strconv.Atoi(c.today()[:4])
		if !years[d.Year] && len(d.Years) > 0 {
			d.Year = d.Years[0]
		}
	}
	var bars []bar
	for _, p := range v.Programs() {
		for _, b := range p.Budgets {
			if b.FiscalYear != d.Year {
				continue
			}
			d.Budgets = append(d.Budgets, budgetRow{BudgetView: b, ProgramName: p.Name,
				Href: "/grants?program=" + url.QueryEscape(p.ID)})
			total := b.Appropriated.Add(b.CarriedOver).Add(b.Adjustments)
			bars = append(bars, bar{Label: p.Name, Values: []domain.Money{total, b.Reserved, b.Paid}})
		}
	}
	d.Chart = barChart(bars, []string{"chart.appropriated", "chart.reserved", "chart.paid"})
	c.render(w, r, s, http.StatusOK, "budgets", "budgets.title", d)
}

type fundsData struct {
	Funds    []projections.FundView
	Totals   projections.FundTotals
	BySector chart
	ByFund   chart
}

// handleFunds shows a card per fund and charts of what is invested, by
// sector and by fund.
func (c *Console) handleFunds(w http.ResponseWriter, r *http.Request, s *session) {
	v, _, err := c.views(r)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, domain.ErrorCode(err), domain.ErrorMessage(err))
		return
	}
	d := fundsData{}
	d.Funds, d.Totals = v.Funds(r.URL.Query().Get("as_of"))
	_, pt := v.Projects(projections.ProjectFilter{})
	lang := langOf(r)
	d.BySector = groupChart(pt.BySector, func(k string) string { return msg(lang, "sector."+k) })
	names := map[string]string{}
	for _, f := range d.Funds {
		names[f.ID] = f.Name
	}
	d.ByFund = groupChart(pt.ByFund, func(k string) string {
		if n := names[k]; n != "" {
			return n
		}
		return k
	})
	c.render(w, r, s, http.StatusOK, "funds", "funds.title", d)
}

func groupChart(m map[string]*projections.GroupTotal, label func(string) string) chart {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]].Cost.Cmp(m[keys[j]].Cost) > 0 })
	var bars []bar
	for _, k := range keys {
		bars = append(bars, bar{Label: label(k), Values: []domain.Money{m[k].Cost, m[k].Valuation}})
	}
	return barChart(bars, []string{"chart.cost", "chart.valuation"})
}

type fundData struct {
	Fund     projections.FundView
	Projects []projections.ProjectView
	Chart    chart
}

func (c *Console) handleFund(w http.ResponseWriter, r *http.Request, s *session) {
	id := mux.Vars(r)["id"]
	f, ok := c.proj.Fund(id, "")
	if !ok {
		c.fail(w, r, s, http.StatusNotFound, domain.ENOTFOUND, "")
		return
	}
	ps, _ := c.proj.Projects(projections.ProjectFilter{FundID: id})
	var bars []bar
	for _, p := range ps {
		bars = append(bars, bar{Label: p.Project, Values: []domain.Money{p.Cost, p.Valuation}})
	}
	c.render(w, r, s, http.StatusOK, "fund", "fund.title", fundData{Fund: f, Projects: ps,
		Chart: barChart(bars, []string{"chart.cost", "chart.valuation"})})
}

type apartmentsData struct {
	Rows []grantRow
}

// handleApartments lists the talent apartments' rent grants.
func (c *Console) handleApartments(w http.ResponseWriter, r *http.Request, s *session) {
	d := apartmentsData{}
	names := programNames(c.proj)
	for _, p := range c.proj.Programs() {
		if p.Kind != domain.KindApartmentRent {
			continue
		}
		gs, _ := c.proj.Grants(projections.GrantFilter{ProgramID: p.ID})
		for _, g := range gs {
			t, _ := c.proj.Talent(g.TalentID)
			d.Rows = append(d.Rows, grantRow{GrantView: g, TalentName: t.Name, ProgramName: names[g.ProgramID]})
		}
	}
	c.render(w, r, s, http.StatusOK, "apartments", "apartments.title", d)
}

type auditData struct {
	Verify struct {
		OK            bool   `json:"ok"`
		Events        int    `json:"events"`
		Streams       int    `json:"streams"`
		Head          string `json:"head"`
		FirstMismatch *struct {
			Stream   string `json:"stream"`
			Position string `json:"position"`
			Problem  string `json:"problem"`
		} `json:"first_mismatch"`
		Integrity json.RawMessage `json:"integrity"`
	}
	VerifyCode  string
	Head        auditproof.TreeHead
	HeadCode    string
	HeadChecked bool
	HeadOK      bool
	HeadTime    string
	SignIns     []signin
}

// handleAudit shows the chain and witness status, the latest signed head
// with its signature checked, the downloads and the sign-in history.
func (c *Console) handleAudit(w http.ResponseWriter, r *http.Request, s *session) {
	d := auditData{}
	if res := c.get(r, s, "/v1/audit/verify", &d.Verify); !res.ok() {
		d.VerifyCode = res.Code
	}
	if res := c.get(r, s, "/v1/audit/tree-head", &d.Head); !res.ok() {
		d.HeadCode = res.Code
	} else {
		d.HeadTime = d.Head.Timestamp.In(domain.CityTime).Format("2006-01-02 15:04:05")
		if c.pub != nil {
			d.HeadChecked = true
			d.HeadOK = auditproof.VerifyTreeHead(c.pub, d.Head) == nil
		}
	}
	d.SignIns = c.signins.list(r.URL.Query().Get("principal"), 200)
	c.render(w, r, s, http.StatusOK, "audit", "audit.title", d)
}

// downloads are the files the console passes through from the API.
var downloads = map[string]string{
	"grants.csv":  "/v1/export/grants.csv",
	"journal.csv": "/v1/export/journal.csv",
}

// handleDownload streams an export of the API through, as the principal:
// its answer goes straight to the browser unless it is a refusal, which
// is shown as a page.
func (c *Console) handleDownload(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["file"]
	p, ok := downloads[name]
	if !ok {
		c.fail(w, r, s, http.StatusNotFound, domain.ENOTFOUND, "")
		return
	}
	if q := r.URL.RawQuery; q != "" {
		p += "?" + q
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, p, nil)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, domain.EINVALID, "")
		return
	}
	req.RequestURI, req.Host, req.RemoteAddr = p, r.Host, r.RemoteAddr
	req.Header.Set("Authorization", "Bearer "+s.token)
	sw := &streamWriter{w: w, name: name}
	c.api.ServeHTTP(sw, req)
	if sw.refused != nil {
		res := apiResult{Status: sw.refused.code(), Body: sw.refused.body.Bytes()}
		var pr struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(res.Body, &pr)
		res.Code, res.Detail = pr.Code, pr.Detail
		c.failAPI(w, r, s, res)
	}
}

// streamWriter passes a successful answer through to the browser as a
// download, and keeps a refusal aside.
type streamWriter struct {
	w       http.ResponseWriter
	name    string
	header  http.Header
	started bool
	refused *recorder
}

func (sw *streamWriter) Header() http.Header {
	if sw.header == nil {
		sw.header = http.Header{}
	}
	return sw.header
}

func (sw *streamWriter) WriteHeader(code int) {
	if sw.started || sw.refused != nil {
		return
	}
	if code >= 300 {
		sw.refused = &recorder{header: sw.header, status: code}
		return
	}
	sw.started = true
	h := sw.w.Header()
	for _, k := range []string{"Content-Type", "Content-Disposition"} {
		if v := sw.Header().Get(k); v != "" {
			h.Set(k, v)
		}
	}
	if h.Get("Content-Disposition") == "" {
		h.Set("Content-Disposition", `attachment; filename="`+sw.name+`"`)
	}
	h.Set("Cache-Control", "no-store")
	sw.w.WriteHeader(code)
}

func (sw *streamWriter) Write(b []byte) (int, error) {
	if !sw.started && sw.refused == nil {
		sw.WriteHeader(http.StatusOK)
	}
	if sw.refused != nil {
		return sw.refused.Write(b)
	}
	return sw.w.Write(b)
}

// Flush and Unwrap let the API stream and extend its write deadline.
func (sw *streamWriter) Flush() {
	if f, ok := sw.w.(http.Flusher); ok && sw.started {
		f.Flush()
	}
}

func (sw *streamWriter) Unwrap() http.ResponseWriter { return sw.w }

// handleProof downloads the inclusion proof of the event at ?position=.
func (c *Console) handleProof(w http.ResponseWriter, r *http.Request, s *session) {
	pos := r.URL.Query().Get("position")
	if _, ok := eventstore.ParseUint(pos); !ok {
		c.fail(w, r, s, http.StatusBadRequest, domain.EINVALID, "position must be a log position such as 42")
		return
	}
	res := c.call(r.Context(), r, s, http.MethodGet, "/v1/audit/proofs/inclusion?position="+url.QueryEscape(pos), nil)
	if !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="proof-`+pos+`.json"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(res.Body)
}

type accessData struct {
	Principals []struct {
		ID     string   `json:"id"`
		Roles  []string `json:"roles"`
		Active bool     `json:"active"`
		Source string   `json:"source"`
	}
	FourEyes string
	Requests []projections.AccessRequestView
	Sessions []sessionView
	Issued   string // a code half an approval just issued, shown once
	IssuedTo string
}

// handleAccess shows the principals, the requests waiting for a second
// admin, and the live sessions.
func (c *Console) handleAccess(w http.ResponseWriter, r *http.Request, s *session) {
	d := accessData{}
	c.accessInto(r, s, &d)
	c.render(w, r, s, http.StatusOK, "access", "access.title", d)
}

func (c *Console) accessInto(r *http.Request, s *session, d *accessData) {
	var list struct {
		Principals json.RawMessage `json:"principals"`
		FourEyes   string          `json:"four_eyes"`
	}
	if res := c.get(r, s, "/v1/principals", &list); res.ok() {
		_ = json.Unmarshal(list.Principals, &d.Principals)
		d.FourEyes = list.FourEyes
	}
	d.Requests = c.proj.AccessRequests()
	if s.has(domain.RoleAdmin) {
		d.Sessions = c.listSessions()
	}
}

type principalData struct {
	ID    string
	Trail trailView
}

// handlePrincipal shows a principal's trail: every change of its access,
// checked as a grant's is.
func (c *Console) handlePrincipal(w http.ResponseWriter, r *http.Request, s *session) {
	id := mux.Vars(r)["id"]
	tv := c.trailAt(r, s, "/v1/principals/"+url.PathEscape(id)+"/trail")
	if tv.Events == nil && !tv.Denied {
		c.fail(w, r, s, http.StatusNotFound, domain.ENOTFOUND, "")
		return
	}
	c.render(w, r, s, http.StatusOK, "principal", "principal.title", principalData{ID: id, Trail: tv})
}

// accessDecision approves or rejects a request of another admin. An
// approval that issues a token shows the approver's half of the
// enrollment code this once; the token itself never passes here.
func (c *Console) accessDecision(verb string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		v := mux.Vars(r)
		res := c.call(r.Context(), r, s, http.MethodPost, "/v1/principals/"+url.PathEscape(v["pid"])+"/requests/"+url.PathEscape(v["rid"])+"/"+verb,
			formBody(r, []string{"reason", "document_ref"}))
		if !res.ok() {
			c.failAPI(w, r, s, res)
			return
		}
		var out struct {
			CodeHalf string `json:"code_half"`
		}
		_ = json.Unmarshal(res.Body, &out)
		d := accessData{Issued: out.CodeHalf, IssuedTo: v["pid"]}
		c.accessInto(r, s, &d)
		c.render(w, r, s, http.StatusOK, "access", "access.title", d)
	}
}

// handleSessionRevoke ends another session at once.
func (c *Console) handleSessionRevoke(w http.ResponseWriter, r *http.Request, s *session) {
	who, ok := c.revokeSession(mux.Vars(r)["handle"])
	if !ok {
		c.fail(w, r, s, http.StatusNotFound, domain.ENOTFOUND, "")
		return
	}
	if err := c.signins.record(c.now(), eventSessionRevok, who, r.RemoteAddr, "by "+s.principal); err != nil {
		c.log.Error("console: sign-in journal", "err", err)
	}
	c.setFlash(s, "flash.revoked", who)
	http.Redirect(w, r, "/access", http.StatusSeeOther)
}
