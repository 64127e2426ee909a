package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"talentledger/domain"
	"talentledger/projections"
)

// browserCtx starts Debian's Chromium headless at 1280×800. Without it
// the test skips on a developer's machine, naming the command that
// installs it, and fails in CI (CI=true).
func browserCtx(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		const how = "browser tests need Chromium: apt-get update && apt-get install -y chromium fonts-noto-cjk"
		if os.Getenv("CI") == "true" {
			t.Fatal(how)
		}
		t.Skip(how)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 800), chromedp.Flag("lang", "zh-CN"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser: no deadline on it, or the
	// deadline would end the browser too.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// driver runs a journey's steps in the browser, each bounded in time.
type driver struct {
	t    *testing.T
	ctx  context.Context
	e    *env
	shot string // the screenshot directory
	// docs, when set, also receives the screenshots the README shows.
	docs string
}

// readmeShots are the screenshots committed in docs/screenshots.
var readmeShots = map[string]bool{"grants": true, "grant-trail": true, "payments-result": true, "funds": true,
	"audit-en": true, "inbox-phone": true}

func (d *driver) do(steps ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		d.t.Fatalf("browser: %v", err)
	}
}

func run[T any](d *driver, a chromedp.Action[T]) T {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		d.t.Fatalf("browser: %v", err)
	}
	return v
}

func (d *driver) open(path string) { d.t.Helper(); d.do(chromedp.Navigate(d.e.srv.URL + path)) }

func (d *driver) text(sel string) string {
	d.t.Helper()
	return run(d, chromedp.Text(chromedp.CSS(sel)))
}

func (d *driver) count(sel string) int {
	d.t.Helper()
	return run(d, chromedp.Evaluate[int](`document.querySelectorAll(`+quoteJS(sel)+`).length`))
}

func (d *driver) location() string { d.t.Helper(); return run(d, chromedp.Location()) }

func quoteJS(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// signIn signs out whoever is signed in and signs in as principal.
func (d *driver) signIn(principal string) {
	d.t.Helper()
	d.open("/login")
	if d.count("#logout") > 0 {
		d.do(chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	}
	d.do(chromedp.SendKeys(chromedp.CSS("#token"), d.e.tokens[principal]), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#whoami")))
	if got := d.text("#whoami"); got != principal {
		d.t.Fatalf("signed in as %q, want %q", got, principal)
	}
}

// click clicks what leads to another page and waits until that page
// has loaded.
func (d *driver) click(sel string) {
	d.t.Helper()
	run(d, chromedp.Evaluate[bool](`(document.body.dataset.stale = 'yes') === 'yes'`))
	d.do(chromedp.Click(chromedp.CSS(sel)))
	d.until(`document.readyState === 'complete' && !!document.body && !document.body.dataset.stale`)
}

// until waits for a condition of the page, across the navigations that
// make the page it was asked of go away.
func (d *driver) until(cond string) {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("browser: still not %s: %v", cond, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot saves the viewport as name.png.
func (d *driver) screenshot(name string) {
	d.t.Helper()
	png := run(d, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(d.shot, name+".png"), png, 0o644); err != nil {
		d.t.Fatal(err)
	}
	if d.docs != "" && readmeShots[name] {
		if err := os.WriteFile(filepath.Join(d.docs, name+".png"), png, 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
}

var reHan = regexp.MustCompile(`\p{Han}`)

// TestBrowserJourneys drives the console in Chromium through the day of
// each role, checking what each page shows and what the ledger holds
// afterwards. Screenshots of the main pages, in Chinese and in English,
// go to a directory named in the log; with $CONSOLE_SCREENSHOTS set, the
// README's few go there too (see docs/console.md).
func TestBrowserJourneys(t *testing.T) {
	ctx := browserCtx(t)
	e := newEnv(t)
	s := e.seedLedger()
	dir, err := os.MkdirTemp("", "console-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	d := &driver{t: t, ctx: ctx, e: e, shot: dir, docs: os.Getenv("CONSOLE_SCREENSHOTS")}
	var entered string

	t.Run("clerk enters an application", func(t *testing.T) {
		d.t = t
		d.signIn("clerk")
		d.screenshot("inbox-clerk")
		d.open("/grants/new")
		d.do(chromedp.SendKeys(chromedp.CSS("#t-name"), "陈静"), chromedp.SendKeys(chromedp.CSS("#t-employer"), "平湖智能装备"))
		d.click("#talent-submit")
		if f := d.text(".flash"); !strings.Contains(f, "人才已登记") {
			t.Fatalf("after registering: %q", f)
		}
		d.do(chromedp.SendKeys(chromedp.CSS("#a-amount"), "600000.00"), chromedp.SendKeys(chromedp.CSS("#a-doc"), "PHRS-APP-0099"))
		d.click("#apply-submit")
		if st := d.text("#grant-state"); st != "已申请" {
			t.Fatalf("the new grant's state reads %q", st)
		}
		entered = d.text("#grant-id")
		g, ok := e.proj.Grant(entered)
		tv, _ := e.proj.Talent(g.TalentID)
		if !ok || g.State != domain.GrantStateApplied || g.AmountRequested.String() != "600000.00" || tv.Name != "陈静" {
			t.Fatalf("the ledger holds %+v for %s (talent %q)", g.State, entered, tv.Name)
		}
	})

	t.Run("reviewer runs the notice", func(t *testing.T) {
		d.t = t
		d.signIn("reviewer")
		if n := d.count(`#sec-applications-to-review a[href="/grants/` + entered + `"]`); n != 1 {
			t.Fatalf("the reviewer's inbox lists the new application %d times", n)
		}
		d.open("/grants/" + entered)
		d.click(`form[action$="/review"] button`)
		d.click(`form[action$="/notice"] button`)
		if st := d.text("#grant-state"); st != "公示中" {
			t.Fatalf("after opening the notice: %q", st)
		}
		e.clock.advance(10 * 24 * time.Hour) // past five working days; the session has ended
		d.signIn("reviewer")
		d.open("/grants/" + entered)
		d.click(`form[action$="/notice/close"] button`)
		if g, _ := e.proj.Grant(entered); g.State != domain.GrantStateNoticeClosed {
			t.Fatalf("the ledger holds %s after the notice", g.State)
		}
	})

	t.Run("approver approves and is refused on their own entry", func(t *testing.T) {
		d.t = t
		d.signIn("approver")
		d.open("/grants/" + entered)
		d.click(`form[action$="/approve"] button`)
		if g, _ := e.proj.Grant(entered); g.State != domain.GrantStateApproved || g.Award.String() != "600000.00" {
			t.Fatalf("after approval the ledger holds %s, award %s", g.State, g.Award)
		}
		d.screenshot("grant-approved")

		d.signIn("clerkapprover")
		d.open("/grants/" + s.ownEntry)
		btn := `form[action$="/approve"] button`
		if disabled := run(d, chromedp.AttributeValue(chromedp.CSS(btn), "disabled")); !disabled.Exists {
			t.Fatal("the approve button of one's own entry is enabled")
		}
		if why := d.text(`form[action$="/approve"] .why`); !strings.Contains(why, "此申请由您录入") {
			t.Fatalf("the reason shown: %q", why)
		}
		// Forced anyway, the server refuses, in words.
		d.do(chromedp.RemoveAttribute(chromedp.CSS(btn), "disabled"))
		d.click(btn)
		if p := d.text("#problem h2"); !strings.Contains(p, "不相容职务分离") {
			t.Fatalf("forcing one's own approval shows %q", p)
		}
		if g, _ := e.proj.Grant(s.ownEntry); g.State != domain.GrantStateNoticeClosed {
			t.Fatalf("the refused approval left the grant %s", g.State)
		}
	})

	t.Run("treasurer releases a batch and sees a failed item explained", func(t *testing.T) {
		d.t = t
		g1, _ := e.proj.Grant(s.paid)
		g2, _ := e.proj.Grant(s.paid2)
		p1, p2 := g1.Payments[0].ID, g2.Payments[0].ID
		d.signIn("treasurer")
		d.open("/payments")
		d.do(chromedp.Click(chromedp.CSS(`input[value="`+p1+`"]`)), chromedp.Click(chromedp.CSS(`input[value="`+p2+`"]`)))
		d.screenshot("payments-batch")
		// Another treasurer releases one of them first.
		e.do("treasurer2", "/v1/payments/"+p2+"/release", map[string]any{"bank_reference": "ZJRCB-OTHER"})
		d.click("#batch-submit-release")
		if ok, failed := d.count("#batch-result li.ok"), d.count("#batch-result li.failed"); ok != 1 || failed != 1 {
			t.Fatalf("batch result: %d done, %d failed", ok, failed)
		}
		why := d.text("#batch-result li.failed")
		if !strings.Contains(why, p2) || !strings.Contains(why, "与当前状态冲突") || !strings.Contains(why, "not approved") {
			t.Fatalf("the failed item reads %q", why)
		}
		g1, _ = e.proj.Grant(s.paid)
		if p := g1.Payments[0]; p.State != domain.PaymentStateReleased || p.ReleasedBy != "treasurer" || !strings.Contains(d.text("#batch-result li.ok"), p.BankReference) {
			t.Fatalf("the ledger holds payment %s %s by %s ref %s", p.ID, p.State, p.ReleasedBy, p.BankReference)
		}
		d.screenshot("payments-result")
	})

	t.Run("auditor searches a Chinese name and checks the trail", func(t *testing.T) {
		d.t = t
		d.signIn("auditor")
		d.open("/grants")
		d.screenshot("grants")
		// htmx narrows the table as the name is typed.
		d.do(chromedp.SendKeys(chromedp.CSS("#q"), "张伟"))
		d.until(`!document.body.innerText.includes('王芳')`)
		if n := d.count("#grant-table td.talent"); n != 1 || d.text("#grant-table td.talent") != "张伟" {
			t.Fatalf("searching 张伟 lists %d rows", n)
		}
		if !strings.Contains(d.location(), "q=") {
			t.Errorf("the search is not in the address: %s", d.location())
		}
		d.click("#grant-table td a")
		events, verified := d.count("#trail .event"), d.count("#trail .verified")
		if events < 4 || verified != events || d.count("#trail .unverified") != 0 {
			t.Fatalf("trail: %d events, %d verified against the signed head", events, verified)
		}
		d.do(chromedp.ScrollIntoView(chromedp.CSS("#trail")))
		d.screenshot("grant-trail")
		d.open("/audit")
		if d.count("#chain-ok") != 1 || d.count("#head-ok") != 1 {
			t.Fatal("the audit page does not show the chain and the head's signature verified")
		}
		d.screenshot("audit")
		// The grants register workbook, from the page's link, downloaded
		// with the browser's session: its rows are the ledger's grants.
		link := run(d, chromedp.AttributeValue(chromedp.CSS("#dl-grants-xlsx"), "href"))
		if !link.Exists || d.text("#downloads") == "" || !strings.Contains(d.text("#downloads"), "补助登记簿") {
			t.Fatalf("the audit page offers no grants register workbook (%q)", link.Value)
		}
		cookies, err := chromedp.Call(d.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.srv.URL}})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", e.srv.URL+link.Value, nil)
		for _, c := range cookies.Cookies {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), ".xlsx") {
			t.Fatalf("grants register: %d %s", resp.StatusCode, resp.Header.Get("Content-Disposition"))
		}
		ids := workbookIDs(t, resp.Body)
		gs, _ := e.proj.Grants(projections.GrantFilter{})
		for _, g := range gs {
			if !ids[g.ID] {
				t.Errorf("the register lacks grant %s", g.ID)
			}
		}
		if len(ids) != len(gs) || !ids[s.noticed] {
			t.Fatalf("the register holds %d grants, the ledger %d", len(ids), len(gs))
		}
	})

	t.Run("fund manager reads the direct fund's IRR and a project's valuation history", func(t *testing.T) {
		d.t = t
		// A year on, the project has returned cash and been valued again.
		e.clock.advance(365 * 24 * time.Hour)
		e.do("fund_manager", "/v1/funds/direct/investments/"+s.project+"/distributions", map[string]any{"amount": "3000000.00"})
		e.do("fund_manager", "/v1/funds/direct/investments/"+s.project+"/valuations", map[string]any{"valuation": "52000000.00"})
		f, _ := e.proj.Fund("direct", e.today())
		if f.IRR == "" {
			t.Fatal("the ledger gives the direct fund no IRR")
		}
		d.signIn("fund_manager")
		d.open("/funds")
		d.screenshot("funds")
		if irr := d.text("#fund-direct .irr"); irr != percentOf(t, f.IRR) {
			t.Fatalf("the direct fund's card reads IRR %q, the ledger %s", irr, f.IRR)
		}
		d.click("#fund-direct")
		if irr, tvpi := d.text("#fund-irr"), d.text("#fund-tvpi"); irr != percentOf(t, f.IRR) || tvpi != f.TVPI+"×" {
			t.Fatalf("the fund page reads IRR %q, TVPI %q; the ledger %s, %s", irr, tvpi, f.IRR, f.TVPI)
		}
		row := d.text("#projects tbody tr")
		if !strings.Contains(row, "光刻胶项目") || !strings.Contains(row, "¥52,000,000.00") || !strings.Contains(row, "半导体") {
			t.Fatalf("the project row reads %q", row)
		}
		d.click("#unit-wan")
		if row := d.text("#projects tbody tr"); !strings.Contains(row, "5,200.00万元") {
			t.Fatalf("in 万元 the project row reads %q", row)
		}
		d.click("#projects .project-link")
		p, _ := e.proj.Project(s.project, e.today())
		if n := d.count("#valuations tbody tr"); n != len(p.Valuations) || n != 2 {
			t.Fatalf("the valuation history shows %d rows, the ledger holds %d valuations", n, len(p.Valuations))
		}
		for i, v := range p.Valuations {
			row := d.text(fmt.Sprintf("#valuations tbody tr:nth-child(%d)", i+1))
			if !strings.Contains(row, v.AsOf) || !strings.Contains(row, yuan(t, v.Valuation.String())) {
				t.Fatalf("valuation %d reads %q, the ledger holds %s on %s", i+1, row, v.Valuation, v.AsOf)
			}
		}
		if irr := d.text("#project-irr"); irr != percentOf(t, p.IRR) {
			t.Fatalf("the project's IRR reads %q, the ledger %s", irr, p.IRR)
		}
		d.do(chromedp.ScrollIntoView(chromedp.CSS("#valuation-history")))
		d.screenshot("project")
	})

	t.Run("an expired session and a CSRF-less POST are refused", func(t *testing.T) {
		d.t = t
		e.clock.advance(31 * time.Minute)
		d.open("/funds")
		if loc := d.location(); !strings.Contains(loc, "/login") {
			t.Fatalf("after 31 minutes idle the console shows %s", loc)
		}
		d.signIn("approver")
		d.open("/grants/" + s.ownEntry)
		d.do(chromedp.SetAttributeValue(chromedp.CSS(`form[action$="/approve"] input[name=csrf]`), "value", ""))
		d.click(`form[action$="/approve"] button`)
		if code := run(d, chromedp.AttributeValue(chromedp.CSS("#problem"), "data-code")); code.Value != "csrf" {
			t.Fatalf("a POST without its CSRF token answered %q", code.Value)
		}
		if g, _ := e.proj.Grant(s.ownEntry); g.State != domain.GrantStateNoticeClosed {
			t.Fatalf("the refused POST left the grant %s", g.State)
		}
	})

	t.Run("English on request, remembered", func(t *testing.T) {
		d.t = t
		d.signIn("auditor")
		d.open("/audit")
		d.click("#lang-switch")
		d.signIn("auditor") // signing in again keeps the language
		d.open("/audit")
		if lang := run(d, chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "en" {
			t.Fatalf("html lang %q after switching to English", lang)
		}
		// All but the switch, which names the other language in it.
		body := run(d, chromedp.Evaluate[string](`document.querySelector('nav').innerText + document.querySelector('main').innerText`))
		if han := reHan.FindAllString(body, -1); len(han) > 0 {
			t.Fatalf("the English audit page still shows Chinese: %q", strings.Join(han, ""))
		}
		d.screenshot("audit-en")
		d.open("/grants")
		d.screenshot("grants-en")
		d.open("/")
		d.screenshot("inbox-en")
		d.click("#lang-switch")
		if lang := run(d, chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "zh-CN" {
			t.Fatalf("html lang %q after switching back", lang)
		}
	})

	t.Run("usable on a phone", func(t *testing.T) {
		d.t = t
		d.signIn("treasurer")
		d.do(chromedp.EmulateViewport(390, 844))
		for _, p := range []string{"/", "/grants/" + s.paid, "/funds", "/funds/direct", "/projects/" + s.project, "/apartments", "/budgets"} {
			d.open(p)
			if w := run(d, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
				t.Errorf("%s is %d px wide on a 390 px phone", p, w)
			}
		}
		d.open("/")
		d.screenshot("inbox-phone")
		d.do(chromedp.EmulateViewport(1280, 800))
	})
}
