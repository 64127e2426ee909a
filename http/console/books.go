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
	Report  bool // the principal may download the budget-execution report
}

type budgetRow struct {
	projections.BudgetExecutionRow
	CarriedOver domain.Money
	Adjustments domain.Money
	Closed      bool
	Href        string // the program's grants
}

// handleBudgets shows each program's budget execution in a fiscal year —
// the figures of the budget-execution report (appropriated, carried over,
// adjustments, the budget they make, reserved, paid, released,
// recovered, available, execution rate) — with a chart; each row drills
// down to the program's grants.
func (c *Console) handleBudgets(w http.ResponseWriter, r *http.Request, s *session) {
	v, asOf, err := c.views(r)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, domain.ErrorCode(err), domain.ErrorMessage(err))
		return
	}
	d := budgetsData{AsOf: asOf, Report: anyOf(s, []string{domain.RoleAuditor, domain.RoleApprover})}
	years := map[int]bool{}
	views := map[string]projections.BudgetView{}
	for _, p := range v.Programs() {
		for _, b := range p.Budgets {
			years[b.FiscalYear] = true
			views[p.ID+"/"+strconv.Itoa(b.FiscalYear)] = b
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
	for _, row := range v.BudgetExecution(d.Year) {
		b := views[row.ProgramID+"/"+strconv.Itoa(row.FiscalYear)]
		d.Budgets = append(d.Budgets, budgetRow{BudgetExecutionRow: row, CarriedOver: b.CarriedOver, Adjustments: b.Adjustments,
			Closed: b.Closed, Href: "/grants?program=" + url.QueryEscape(row.ProgramID)})
		bars = append(bars, bar{Label: row.ProgramName, Values: []domain.Money{row.Budget, row.Reserved, row.Paid}})
	}
	d.Chart = barChart(bars, []string{"chart.appropriated", "chart.reserved", "chart.paid"})
	c.render(w, r, s, http.StatusOK, "budgets", "budgets.title", d)
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
	Downloads   []downloadRow
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
	d.Downloads = downloadRows
	c.render(w, r, s, http.StatusOK, "audit", "audit.title", d)
}

// downloads are the files the Audit page offers, passed through from the
// API: the exports and the reports, each as a workbook (.xlsx) and as
// CSV, with Chinese headers or, with ?lang=en, English ones.
var downloads = map[string]string{
	"grants.csv":            "/v1/export/grants.csv",
	"journal.csv":           "/v1/export/journal.csv",
	"grants.xlsx":           "/v1/reports/grants.xlsx",
	"journal.xlsx":          "/v1/reports/journal.xlsx",
	"budget-execution.xlsx": "/v1/reports/budget-execution.xlsx",
	"budget-execution.csv":  "/v1/reports/budget-execution.csv",
	"clawbacks.xlsx":        "/v1/reports/clawbacks.xlsx",
	"clawbacks.csv":         "/v1/reports/clawbacks.csv",
	"funds.xlsx":            "/v1/reports/funds.xlsx",
	"funds.csv":             "/v1/reports/funds.csv",
}

// downloadRow is one report of the Audit page: its title and the files
// it comes as.
type downloadRow struct {
	Key   string // message key of its title
	Files []downloadFile
}

// downloadFile is a name in downloads, its kind (xlsx, csv; the key of
// its link's text, and ExtEN that of its English headers' link) and the
// ID of its link.
type downloadFile struct{ Name, Ext, ExtEN, ID string }

func reportFiles(base string) []downloadFile {
	return []downloadFile{{base + ".xlsx", "xlsx", "xlsx_en", "dl-" + base + "-xlsx"}, {base + ".csv", "csv", "csv_en", "dl-" + base + "-csv"}}
}

var downloadRows = []downloadRow{
	{"report.grants", reportFiles("grants")},
	{"report.journal", reportFiles("journal")},
	{"report.budget_execution", reportFiles("budget-execution")},
	{"report.clawbacks", reportFiles("clawbacks")},
	{"report.funds", reportFiles("funds")},
}

// handleDownload streams an export or a report of the API through.
func (c *Console) handleDownload(w http.ResponseWriter, r *http.Request, s *session) {
	c.passThrough(w, r, s, downloads)
}

// passThrough streams the API's answer for the file named in the path
// through, as the principal: it goes straight to the browser unless it
// is a refusal, which is shown as a page. The query goes to the API,
// which checks it.
func (c *Console) passThrough(w http.ResponseWriter, r *http.Request, s *session, files map[string]string) {
	name := mux.Vars(r)["file"]
	p, ok := files[name]
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
	for _, k := range []string{"Content-Type", "Content-Disposition", "X-Report-As-Of", "X-Report-Tree-Size", "X-Report-Root-Hash"} {
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
