package console

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
)

var (
	clerk     = []string{domain.RoleClerk}
	reviewer  = []string{domain.RoleReviewer}
	approver  = []string{domain.RoleApprover}
	treasurer = []string{domain.RoleTreasurer}
	auditor   = []string{domain.RoleAuditor}
	admin     = []string{domain.RoleAdmin}
)

func (c *Console) handle(method, path string, roles []string, h func(http.ResponseWriter, *http.Request, *session)) {
	c.routes = append(c.routes, Route{Method: method, Path: path, Roles: roles, handler: h})
}

// registerRoutes lists every page and form. A form's roles are those of
// the API endpoint it calls, which checks them again.
func (c *Console) registerRoutes() {
	static := c.static()
	c.handle("GET", "/static/{file}", nil, func(w http.ResponseWriter, r *http.Request, _ *session) { static.ServeHTTP(w, r) })
	c.handle("GET", "/login", nil, c.handleLoginPage)
	c.handle("POST", "/login", nil, c.handleLogin)
	c.handle("POST", "/logout", AnyRole, c.handleLogout)
	c.handle("POST", "/lang", nil, c.handleLang)

	c.handle("GET", "/", AnyRole, c.handleInbox)
	c.handle("GET", "/grants", AnyRole, c.handleGrants)
	c.handle("GET", "/grants/new", clerk, c.handleGrantNew)
	c.handle("POST", "/talents", clerk, c.handleTalentCreate)
	c.handle("POST", "/grants", clerk, c.handleGrantApply)
	c.handle("GET", "/grants/{id}", AnyRole, c.handleGrant)
	for _, a := range grantActions {
		c.handle("POST", a.path, a.roles, c.grantAction(a))
	}
	c.handle("GET", "/payments", []string{domain.RoleClerk, domain.RoleApprover, domain.RoleTreasurer}, c.handlePayments)
	c.handle("POST", "/payments/batch", []string{domain.RoleApprover, domain.RoleTreasurer}, c.handlePaymentBatch)
	c.handle("POST", "/payments/{id}/approve", approver, c.paymentAction("approve"))
	c.handle("POST", "/payments/{id}/release", treasurer, c.paymentAction("release"))
	c.handle("POST", "/payments/{id}/fail", treasurer, c.paymentAction("fail"))

	c.handle("GET", "/budgets", AnyRole, c.handleBudgets)
	c.handle("GET", "/funds", AnyRole, c.handleFunds)
	c.handle("GET", "/funds/report/{file}", fundReportRoles, c.handleFundReport)
	c.handle("GET", "/funds/{id}", AnyRole, c.handleFund)
	c.handle("GET", "/funds/{id}/lps/{lp}", AnyRole, c.handleStatement)
	c.handle("GET", "/projects/{id}", AnyRole, c.handleProject)
	c.handle("GET", "/apartments", AnyRole, c.handleApartments)

	c.handle("GET", "/audit", auditor, c.handleAudit)
	c.handle("GET", "/audit/download/{file}", []string{domain.RoleAuditor, domain.RoleApprover}, c.handleDownload)
	c.handle("GET", "/audit/proof", auditor, c.handleProof)

	c.handle("GET", "/access", []string{domain.RoleAdmin, domain.RoleAuditor}, c.handleAccess)
	c.handle("GET", "/access/principals/{id}", []string{domain.RoleAdmin, domain.RoleAuditor}, c.handlePrincipal)
	c.handle("POST", "/access/requests/{pid}/{rid}/approve", admin, c.accessDecision("approve"))
	c.handle("POST", "/access/requests/{pid}/{rid}/reject", admin, c.accessDecision("reject"))
	c.handle("POST", "/access/sessions/{handle}/revoke", admin, c.handleSessionRevoke)
}

// next returns where a form asks to go afterwards, if it is on this site.
func next(r *http.Request, def string) string {
	if n := r.PostFormValue("next"); localPath(n) {
		return n
	}
	if n := r.URL.Query().Get("next"); localPath(n) {
		return n
	}
	return def
}

type loginData struct {
	Next   string
	Failed string // message key
	Token  string // the token an enrollment issued, shown once
	ID     string
}

func (c *Console) handleLoginPage(w http.ResponseWriter, r *http.Request, s *session) {
	if s != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, r, nil, http.StatusOK, "login", "login.title", loginData{Next: next(r, "/")})
}

// handleLogin signs in with a bearer token, or redeems an enrollment code
// for one (through the API's POST /v1/enroll) and signs in with it.
func (c *Console) handleLogin(w http.ResponseWriter, r *http.Request, s *session) {
	now := c.now()
	if c.signins.throttled(now, r.RemoteAddr) {
		c.render(w, r, nil, http.StatusTooManyRequests, "login", "login.title", loginData{Next: next(r, "/"), Failed: "login.throttled"})
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	claimed := strings.TrimSpace(r.PostFormValue("id"))
	code := strings.TrimSpace(r.PostFormValue("code"))
	how, issued := "token", ""
	if code != "" {
		how = "enrollment"
		res := c.call(r.Context(), r, nil, http.MethodPost, "/v1/enroll", map[string]string{"id": claimed, "code": code})
		if res.ok() {
			var out struct {
				Token string `json:"token"`
			}
			_ = json.Unmarshal(res.Body, &out)
			token, issued = out.Token, out.Token
		} else {
			token = ""
		}
	}
	id, roles, ok := "", []string(nil), false
	if token != "" {
		id, roles, ok = c.auth(token)
	}
	if !ok {
		if err := c.signins.record(now, eventSignInFailed, claimed, r.RemoteAddr, how); err == errThrottled {
			c.render(w, r, nil, http.StatusTooManyRequests, "login", "login.title", loginData{Next: next(r, "/"), Failed: "login.throttled"})
			return
		} else if err != nil {
			c.log.Error("console: sign-in journal", "err", err)
			c.fail(w, r, nil, http.StatusServiceUnavailable, "unavailable", "")
			return
		}
		c.render(w, r, nil, http.StatusUnauthorized, "login", "login.title", loginData{Next: next(r, "/"), Failed: "login.failed"})
		return
	}
	// Nothing is granted unless its sign-in is on record.
	if err := c.signins.record(now, eventSignIn, id, r.RemoteAddr, how); err != nil {
		c.log.Error("console: sign-in journal", "err", err)
		c.fail(w, r, nil, http.StatusServiceUnavailable, "unavailable", "")
		return
	}
	if s != nil {
		c.endSession(s)
	}
	ns := c.startSession(w, r, id, roles, token)
	if issued != "" {
		// The token is shown this once: the person needs it to sign in
		// again, and the server keeps only its hash.
		c.render(w, r, ns, http.StatusOK, "login", "login.issued", loginData{Token: issued, ID: id, Next: next(r, "/")})
		return
	}
	http.Redirect(w, r, next(r, "/"), http.StatusSeeOther)
}

func (c *Console) handleLogout(w http.ResponseWriter, r *http.Request, s *session) {
	c.endSession(s)
	if err := c.signins.record(c.now(), eventSignOut, s.principal, r.RemoteAddr, ""); err != nil {
		c.log.Error("console: sign-in journal", "err", err)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// handleLang remembers the language chosen, for a year.
func (c *Console) handleLang(w http.ResponseWriter, r *http.Request, s *session) {
	lang := r.PostFormValue("lang")
	if lang != "zh" && lang != "en" {
		c.fail(w, r, s, http.StatusBadRequest, "invalid", "lang must be zh or en")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "tl_lang", Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, Secure: r.TLS != nil,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next(r, "/"), http.StatusSeeOther)
}

// commandAnswer is the API's answer to a command.
type commandAnswer struct {
	ID       string `json:"id"`
	Position string `json:"position"`
}

// post makes a command's request to the API and, once it succeeded,
// waits until the read models hold it, so the next page shows it.
func (c *Console) post(r *http.Request, s *session, path string, body any, item ...string) (commandAnswer, apiResult) {
	res := c.call(r.Context(), r, s, http.MethodPost, path, body, item...)
	var a commandAnswer
	if res.ok() {
		_ = json.Unmarshal(res.Body, &a)
		if pos, err := eventstore.ParsePosition(a.Position); err == nil && c.proj != nil {
			_ = c.proj.WaitFor(r.Context(), pos, 5*time.Second)
		}
	}
	return a, res
}
