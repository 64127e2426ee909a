package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
)

// page is what every page template gets.
type page struct {
	Title   string // message key
	Lang    string
	Session *session
	Me      string   // the signed-in principal
	Roles   []string // and its roles
	CSRF    string
	Idem    string // a fresh Idempotency-Key for the page's forms
	Flash   string
	FlashA  string
	Path    string // the request's path and query, to come back to
	Nav     []navItem
	Unit    string // "yuan" or "wan" on fund pages
	Data    any
}

type navItem struct {
	Key, Href string
	Current   bool
}

// nav lists the screens, each shown to the roles that use it.
var nav = []struct {
	key, href string
	roles     []string
}{
	{"nav.inbox", "/", nil},
	{"nav.grants", "/grants", nil},
	{"nav.payments", "/payments", []string{domain.RoleClerk, domain.RoleApprover, domain.RoleTreasurer}},
	{"nav.budgets", "/budgets", nil},
	{"nav.funds", "/funds", nil},
	{"nav.apartments", "/apartments", nil},
	{"nav.audit", "/audit", []string{domain.RoleAuditor}},
	{"nav.access", "/access", []string{domain.RoleAdmin, domain.RoleAuditor}},
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs("zh")).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		pages[strings.TrimSuffix(base, ".html")] = t
	}
	return pages, nil
}

// funcs are the templates' functions in lang.
func funcs(lang string) template.FuncMap {
	return template.FuncMap{
		"t": func(key string) string { return msg(lang, key) },
		"tf": func(key string, args ...any) string {
			f := msg(lang, key)
			return fmt.Sprintf(f, args[:min(len(args), strings.Count(f, "%"))]...)
		},
		// tk translates a key made of a prefix and a value, e.g. a state.
		"tk":     func(prefix, v string) string { return msg(lang, prefix+"."+v) },
		"money":  func(v any) string { return formatMoney(toDecimal(v), "yuan", lang) },
		"moneyu": func(v any, unit string) string { return formatMoney(toDecimal(v), unit, lang) },
		"short":  func(s string, n int) string { return shorten(s, n) },
		"pct":    percent,
		"ratio":  ratio,
		"join":   strings.Join,
		"list1":  func(b button) []button { return []button{b} },
		// when shows an instant in the city's time.
		"when": func(t time.Time) string { return t.In(domain.CityTime).Format("2006-01-02 15:04:05") },
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		},
	}
}

// lang returns the language the visitor chose, Simplified Chinese unless
// they chose English.
func langOf(r *http.Request) string {
	if ck, err := r.Cookie("tl_lang"); err == nil && ck.Value == "en" {
		return "en"
	}
	return "zh"
}

// render writes a page with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title string, data any) {
	lang := langOf(r)
	p := page{Title: title, Lang: lang, Session: s, CSRF: c.csrfToken(w, r, s), Idem: randomHex(12), Path: r.URL.RequestURI(), Data: data}
	p.Flash, p.FlashA = c.takeFlash(s)
	if r.URL.Query().Get("unit") == "wan" {
		p.Unit = "wan"
	} else {
		p.Unit = "yuan"
	}
	if s != nil {
		p.Me, p.Roles = s.principal, s.roles
		for _, n := range nav {
			if n.roles == nil || anyOf(s, n.roles) {
				cur := n.href == r.URL.Path || (n.href != "/" && strings.HasPrefix(r.URL.Path, n.href+"/"))
				p.Nav = append(p.Nav, navItem{Key: n.key, Href: n.href, Current: cur})
			}
		}
	}
	t, ok := c.pages[name]
	if !ok {
		c.log.Error("console: no such page", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	t, err := t.Clone()
	if err == nil {
		t.Funcs(funcs(lang))
		var buf bytes.Buffer
		if err = t.ExecuteTemplate(&buf, "layout", p); err == nil {
			h := w.Header()
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Language", map[string]string{"zh": "zh-CN", "en": "en"}[lang])
			w.WriteHeader(status)
			_, _ = w.Write(buf.Bytes())
			return
		}
	}
	c.log.Error("console: render", "page", name, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// problemData is what the problem page shows.
type problemData struct {
	Status int
	Code   string
	Detail string
	Back   string
}

// fail renders a problem: the code's text in the visitor's language and
// the API's own detail, if any.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, status int, code, detail string) {
	back := r.Referer()
	if !localPath(back) {
		if u, err := url.Parse(back); err == nil && u.Host == r.Host && localPath(u.RequestURI()) {
			back = u.RequestURI()
		} else {
			back = "/"
		}
	}
	c.render(w, r, s, status, "problem", "problem.title", problemData{Status: status, Code: code, Detail: detail, Back: back})
}

// failAPI renders the API's refusal.
func (c *Console) failAPI(w http.ResponseWriter, r *http.Request, s *session, res apiResult) {
	c.fail(w, r, s, res.Status, res.Code, res.Detail)
}

// localPath reports whether p is a path on this site, safe to redirect to.
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "/\\") && !strings.ContainsAny(p, "\r\n")
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func anyOf(s *session, roles []string) bool {
	for _, r := range roles {
		if s.has(r) {
			return true
		}
	}
	return false
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func toDecimal(v any) decimal.Decimal {
	switch x := v.(type) {
	case domain.Money:
		return x.Decimal()
	case *domain.Money:
		if x == nil {
			return decimal.Zero
		}
		return x.Decimal()
	case decimal.Decimal:
		return x
	case string:
		d, err := decimal.NewFromString(x)
		if err != nil {
			return decimal.Zero
		}
		return d
	}
	return decimal.Zero
}

var tenThousand = decimal.NewFromInt(10000)

// percent shows a rate the API gives as a fraction ("0.2063") in percent
// (20.63%); an empty rate (none can be found) shows as a dash.
func percent(rate string) string {
	d, err := decimal.NewFromString(rate)
	if err != nil {
		return "—"
	}
	return d.Shift(2).StringFixed(2) + "%"
}

// ratio shows a multiple the API gives ("1.09"), or a dash when it has
// none (nothing paid in).
func ratio(m string) string {
	if m == "" {
		return "—"
	}
	return m + "×"
}

// formatMoney writes an amount as ¥1,234,567.00, or in 万元 (ten
// thousands of yuan) as 123.46万元, in English ¥123.46 ×10,000.
func formatMoney(d decimal.Decimal, unit, lang string) string {
	if unit == "wan" {
		s := group(d.Div(tenThousand).StringFixed(2))
		if lang == "en" {
			return "¥" + s + " ×10,000"
		}
		return s + "万元"
	}
	return "¥" + group(d.StringFixed(2))
}

// group puts thousands separators into a fixed-point number.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, ch := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	out := b.String()
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

// Can reports whether the signed-in principal holds role.
func (p page) Can(role string) bool { return p.Session != nil && p.Session.has(role) }
