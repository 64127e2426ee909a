package http_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

type talentsJSON struct {
	Talents []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"talents"`
	Total int `json:"total"`
}

func (l talentsJSON) names() []string {
	var out []string
	for _, t := range l.Talents {
		out = append(out, t.Name)
	}
	return out
}

// TestAuditorFindsTalents searches talents as an auditor types: part of a
// Chinese name, a Latin name in any case or in full-width letters, with
// the other filters matched in any case, page by page.
func TestAuditorFindsTalents(t *testing.T) {
	e := newTestServer(t)
	for _, n := range []string{"王小明", "Wang Xiaoming", "ＷＡＮＧ Li", "Sophie Martin"} {
		e.registerTalent(n, "B")
	}
	e.as(clerk1).command(http.StatusCreated, "/v1/talents", map[string]any{"name": "李王", "tier": "A",
		"employer": "Jiaxing Photonics", "overseas_engineer": true, "effective_date": "2024-01-02"})
	aud := e.as(auditor)
	cases := []struct {
		query string
		want  []string
	}{
		{"name=王小", []string{"王小明"}},
		{"name=王", []string{"王小明", "李王"}},
		{"name=wang", []string{"Wang Xiaoming", "ＷＡＮＧ Li"}},
		{"name=ｗａｎｇ", []string{"Wang Xiaoming", "ＷＡＮＧ Li"}},
		{"name=WANG%20%20LI", []string{"ＷＡＮＧ Li"}},
		{"tier=a", []string{"李王"}},
		{"overseas_engineer=true", []string{"李王"}},
		{"employer=photonics", []string{"李王"}},
		{"permit_category=A&tier=B&limit=2", []string{"王小明", "Wang Xiaoming"}},
		{"permit_category=A&tier=B&limit=2&offset=2", []string{"ＷＡＮＧ Li", "Sophie Martin"}},
		{"name=nobody", nil},
	}
	for _, c := range cases {
		got := fetch[talentsJSON](aud, "/v1/talents?"+c.query)
		if !slices.Equal(got.names(), c.want) {
			t.Errorf("?%s: %v, want %v", c.query, got.names(), c.want)
		}
	}
	if got := fetch[talentsJSON](aud, "/v1/talents?tier=B&limit=1"); got.Total != 4 {
		t.Errorf("total of tier B: %d, want 4 whatever the page", got.Total)
	}
	wantProblem(t, aud.get("/v1/talents?tier=Z"), 400, "invalid")
	wantProblem(t, aud.get("/v1/talents?q=wang"), 400, "unknown_parameter")
}

// TestGrantsAsOf reads a grant and the grants list as they stood on a
// past date, and filters grants by the dates of application and
// approval.
func TestGrantsAsOf(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(quickProgram("transport", "50000.00"), "1000000.00")
	early := e.apply(clerk1, e.registerTalent("Ana", "B"), "transport", "1000.00", "2024-01-08")
	e.review(early, "2024-01-09")
	e.as(approver1).command(http.StatusOK, "/v1/grants/"+early+"/approve", map[string]any{"effective_date": "2024-01-20"})
	late := e.apply(clerk1, e.registerTalent("Ben", "B"), "transport", "1000.00", "2024-02-01")

	aud := e.as(auditor)
	if g := fetch[grantJSON](aud, "/v1/grants/"+early+"?as_of=2024-01-10"); g.State != "reviewed" {
		t.Errorf("as of 2024-01-10: %s, want reviewed", g.State)
	}
	if g := fetch[grantJSON](aud, "/v1/grants/"+early); g.State != "approved" {
		t.Errorf("now: %s, want approved", g.State)
	}
	wantProblem(t, aud.get("/v1/grants/"+late+"?as_of=2024-01-31"), 404, "not_found")
	type list struct {
		Grants []struct {
			ID string `json:"id"`
		} `json:"grants"`
		Total int    `json:"total"`
		AsOf  string `json:"as_of"`
	}
	if l := fetch[list](aud, "/v1/grants?as_of=2024-01-31"); l.Total != 1 || l.Grants[0].ID != early || l.AsOf != "2024-01-31" {
		t.Errorf("grants as of 2024-01-31: %+v, want only %s", l, early)
	}
	if l := fetch[list](aud, "/v1/grants?applied_from=2024-01-15"); l.Total != 1 || l.Grants[0].ID != late {
		t.Errorf("applied from 2024-01-15: %+v, want only %s", l, late)
	}
	if l := fetch[list](aud, "/v1/grants?approved_from=2024-01-01&approved_to=2024-01-31"); l.Total != 1 || l.Grants[0].ID != early {
		t.Errorf("approved in January: %+v, want only %s", l, early)
	}
	wantProblem(t, aud.get("/v1/grants?applied_from=2024-02-01&applied_to=2024-01-01"), 400, "invalid")

	// The register names each grant's documents, headed in Chinese when asked.
	recs := readCSV(t, aud.get("/v1/export/grants.csv?lang=zh"), "grants.csv")
	if recs[0][0] != "补贴编号" || recs[0][len(recs[0])-2] != "申请文件编号" || len(recs) != 3 {
		t.Fatalf("register in Chinese: %q", recs)
	}
	if recs[1][0] != early || recs[1][len(recs[1])-2] != "PHRS-APP-1" {
		t.Errorf("the register's application document: %q, want PHRS-APP-1 for %s", recs[1], early)
	}
}

// TestEveryQueryHonoursOrRefusesPointInTime walks every GET route with
// ?as_of= and ?recorded_as_of=: a route the API description says takes
// them answers as it would without them (never 400), and every other
// refuses them with 400 unknown_parameter, so a point in time is never
// silently ignored.
func TestEveryQueryHonoursOrRefusesPointInTime(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(e.anonymous().get("/openapi.json").body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, rt := range e.api.Routes() {
		if rt.Method != "GET" {
			continue
		}
		var takes []string
		for _, p := range doc.Paths[rt.Path]["get"].Parameters {
			takes = append(takes, p.Name)
		}
		path := rePathVar.ReplaceAllStringFunc(rt.Path, func(v string) string { return pathValues[strings.Trim(v, "{}")] })
		c := e.anonymous()
		if id := caller(t, rt.Roles); id != "" {
			c = e.as(id)
		}
		for _, q := range []string{"as_of=2024-06-30", "recorded_as_of=2024-01-01T18:00:00%2B08:00"} {
			name, _, _ := strings.Cut(q, "=")
			r := c.get(path + "?" + q)
			if slices.Contains(takes, name) {
				if r.status == 400 {
					t.Errorf("%s takes %s but refused it: %s", rt.Path, name, r)
				}
				continue
			}
			wantProblem(t, r, 400, "unknown_parameter")
		}
	}
}
