package console

import (
	"net/http"
	"net/url"
	"sort"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/projections"
)

// The fund pages show the API's figures: a fund, its projects, a project
// and an LP statement are the API's answers (GET /v1/funds/{id},
// /v1/funds/{id}/projects, /v1/projects/{id}, the LP statement) to the
// signed-in principal; the funds overview reads the read models as the
// API's lists do. Every figure, each measure (DPI, RVPI, TVPI, IRR)
// included, is the read models', for the day asked (?as_of=, today by
// default); the console computes none.

type fundsData struct {
	AsOf     string // the day asked for, if any
	Day      string // the day the figures are of
	Funds    []projections.FundView
	Totals   projections.FundTotals
	Alerts   []projections.Alert
	Sectors  []sectorRow
	BySector chart
	ByFund   chart
	Names    map[string]string // fund names by ID, for the alerts
	Report   bool              // the principal may download the fund report
}

// sectorRow is a sector with what its projects hold.
type sectorRow struct {
	ID        string
	Projects  int
	Cost      domain.Money
	Valuation domain.Money
}

// asOfQuery passes the page's ?as_of= on to the API.
func asOfQuery(r *http.Request) string {
	if d := r.URL.Query().Get("as_of"); d != "" {
		return "?as_of=" + url.QueryEscape(d)
	}
	return ""
}

// handleFunds shows a card per fund with its measures, the alerts, the
// sectors, and charts of what is invested, by sector and by fund. It
// reads the read models as GET /v1/funds, /v1/projects, /v1/funds/alerts
// and /v1/sectors answer from them, from one replay when a past day is
// asked for.
func (c *Console) handleFunds(w http.ResponseWriter, r *http.Request, s *session) {
	v, asOf, err := c.views(r)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, domain.ErrorCode(err), domain.ErrorMessage(err))
		return
	}
	day := asOf
	if day == "" {
		day = c.today()
	}
	d := fundsData{AsOf: asOf, Day: day, Alerts: v.FundAlerts(day), Names: map[string]string{}, Report: anyOf(s, fundReportRoles)}
	d.Funds, d.Totals = v.Funds(day)
	_, totals := v.Projects(projections.ProjectFilter{AsOf: day})
	for _, id := range domain.Sectors {
		row := sectorRow{ID: id, Cost: domain.Zero, Valuation: domain.Zero}
		if g := totals.BySector[id]; g != nil {
			row.Projects, row.Cost, row.Valuation = g.Projects, g.Cost, g.Valuation
		}
		d.Sectors = append(d.Sectors, row)
	}
	lang := langOf(r)
	d.BySector = groupChart(totals.BySector, func(k string) string { return msg(lang, "sector."+k) })
	for _, f := range d.Funds {
		d.Names[f.ID] = f.Name
	}
	d.ByFund = groupChart(totals.ByFund, func(k string) string {
		if n := d.Names[k]; n != "" {
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
	sort.Slice(keys, func(i, j int) bool {
		if n := m[keys[i]].Cost.Cmp(m[keys[j]].Cost); n != 0 {
			return n > 0
		}
		return keys[i] < keys[j]
	})
	var bars []bar
	for _, k := range keys {
		bars = append(bars, bar{Label: label(k), Values: []domain.Money{m[k].Cost, m[k].Valuation}})
	}
	return barChart(bars, []string{"chart.cost", "chart.valuation"})
}

type fundData struct {
	AsOf     string
	Fund     projections.FundView
	Projects []projections.ProjectView
	Sector   string // the sector the projects are narrowed to
	Sectors  []string
	Chart    chart
}

// handleFund shows one fund: its figures and measures, its alerts, its
// projects (each with its IRR, narrowed to a sector on ?sector=), and
// its LPs with theirs, each leading to the LP's capital statement.
func (c *Console) handleFund(w http.ResponseWriter, r *http.Request, s *session) {
	id := mux.Vars(r)["id"]
	d := fundData{AsOf: r.URL.Query().Get("as_of"), Sector: r.URL.Query().Get("sector"), Sectors: domain.Sectors}
	if res := c.get(r, s, "/v1/funds/"+url.PathEscape(id)+asOfQuery(r), &d.Fund); !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	pq := url.Values{}
	if d.AsOf != "" {
		pq.Set("as_of", d.AsOf)
	}
	if d.Sector != "" {
		pq.Set("sector", d.Sector)
	}
	path := "/v1/funds/" + url.PathEscape(id) + "/projects"
	if len(pq) > 0 {
		path += "?" + pq.Encode()
	}
	var ps struct {
		Projects []projections.ProjectView `json:"projects"`
	}
	if res := c.get(r, s, path, &ps); !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	d.Projects = ps.Projects
	var bars []bar
	for _, p := range d.Projects {
		bars = append(bars, bar{Label: p.Project, Values: []domain.Money{p.Cost, p.Valuation}})
	}
	d.Chart = barChart(bars, []string{"chart.cost", "chart.valuation"})
	c.render(w, r, s, http.StatusOK, "fund", "fund.title", d)
}

type projectData struct {
	AsOf    string
	Project projections.ProjectDetail
	Chart   chart
}

// handleProject shows a project: its figures and IRR, its valuation
// history (with a chart), its tranches, the cash it returned and its
// events.
func (c *Console) handleProject(w http.ResponseWriter, r *http.Request, s *session) {
	id := mux.Vars(r)["id"]
	d := projectData{AsOf: r.URL.Query().Get("as_of")}
	if res := c.get(r, s, "/v1/projects/"+url.PathEscape(id)+asOfQuery(r), &d.Project); !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	var bars []bar
	for _, v := range d.Project.Valuations {
		bars = append(bars, bar{Label: v.AsOf, Values: []domain.Money{v.Valuation}})
	}
	d.Chart = barChart(bars, []string{"chart.valuation"})
	c.render(w, r, s, http.StatusOK, "project", "project.title", d)
}

type statementData struct {
	FundName  string
	Statement projections.CapitalStatement
}

// handleStatement shows an LP's capital-account statement for ?from= to
// ?to= (the API's default: the year to today).
func (c *Console) handleStatement(w http.ResponseWriter, r *http.Request, s *session) {
	v := mux.Vars(r)
	q := url.Values{}
	for _, k := range []string{"from", "to"} {
		if x := r.URL.Query().Get(k); x != "" {
			q.Set(k, x)
		}
	}
	path := "/v1/funds/" + url.PathEscape(v["id"]) + "/lps/" + url.PathEscape(v["lp"]) + "/statement"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	d := statementData{}
	if res := c.get(r, s, path, &d.Statement); !res.ok() {
		c.failAPI(w, r, s, res)
		return
	}
	var f projections.FundView
	if res := c.get(r, s, "/v1/funds/"+url.PathEscape(v["id"]), &f); res.ok() {
		d.FundName = f.Name
	}
	c.render(w, r, s, http.StatusOK, "statement", "statement.title", d)
}

// fundReportRoles may download the fund report (the API's roles for it).
var fundReportRoles = []string{domain.RoleAuditor, domain.RoleApprover, domain.RoleFundManager}

// fundReports are the files of the fund report.
var fundReports = map[string]string{
	"funds.xlsx": "/v1/reports/funds.xlsx",
	"funds.csv":  "/v1/reports/funds.csv",
}

func (c *Console) handleFundReport(w http.ResponseWriter, r *http.Request, s *session) {
	c.passThrough(w, r, s, fundReports)
}
