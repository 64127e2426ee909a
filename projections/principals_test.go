package projections_test

import (
	"slices"
	"testing"

	"talentledger/domain"
)

// TestPrincipalsByToken follows a principal through a request, its
// approval and enrollment, a second role, a rotation and its revocation:
// a token authenticates exactly while it is the principal's current one
// and the principal is active, and pending requests are listed until
// decided.
func TestPrincipalsByToken(t *testing.T) {
	e := newEnv(t)
	second := domain.Actor{Principal: "beatrice", Role: domain.RoleAdmin}
	// approve has the second admin approve a request; it returns the
	// code when the change issues one.
	approve := func(req domain.Requested, err error) string {
		t.Helper()
		e.do(req.Result, err)
		if got := e.proj.AccessRequests(); len(got) != 1 || got[0].RequestID != req.RequestID || got[0].RequestedBy != "arthur" {
			t.Fatalf("pending requests: %+v", got)
		}
		ok, err := e.svc.ApproveAccess(e.ctx, domain.AccessDecision{ActorInFile: true, Meta: e.on(second, "2026-01-10"), PrincipalID: "wang.li", RequestID: req.RequestID})
		e.do(ok.Result, err)
		if got := e.proj.AccessRequests(); len(got) != 0 {
			t.Fatalf("pending after approval: %+v", got)
		}
		return req.CodeHalf + ok.CodeHalf
	}
	redeem := func(code string) string {
		t.Helper()
		is, err := e.svc.Enroll(e.ctx, domain.Enroll{PrincipalID: "wang.li", Code: code})
		e.do(is.Result, err)
		return is.Token
	}
	code := approve(e.svc.CreatePrincipal(e.ctx, domain.CreatePrincipal{Meta: e.on(e.admin, "2026-01-10"), PrincipalID: "wang.li", Roles: []string{domain.RoleClerk}}))
	if v, ok := e.proj.Principal("wang.li"); !ok || !v.Active || v.TokenIssuedAt != nil || v.CreatedBy != "beatrice" {
		t.Fatalf("before enrollment: %+v %v", v, ok)
	}
	first := redeem(code)
	v, ok := e.proj.PrincipalByToken(domain.TokenSHA256(first))
	if !ok || v.ID != "wang.li" || !slices.Equal(v.Roles, []string{domain.RoleClerk}) || !v.Active || v.TokenIssuedAt == nil {
		t.Fatalf("by first token: %+v %v", v, ok)
	}
	if _, ok := e.proj.PrincipalByToken(first); ok {
		t.Error("the token itself, not its hash, authenticated")
	}

	approve(e.svc.GrantRole(e.ctx, domain.PrincipalRole{Meta: e.on(e.admin, "2026-01-10"), PrincipalID: "wang.li", Role: domain.RoleApprover}))
	v, _ = e.proj.PrincipalByToken(domain.TokenSHA256(first))
	if !slices.Equal(v.Roles, []string{domain.RoleClerk, domain.RoleApprover}) {
		t.Errorf("roles after the grant: %v", v.Roles)
	}
	e.do(e.svc.RevokeRole(e.ctx, domain.PrincipalRole{Meta: e.on(e.admin, "2026-01-10"), PrincipalID: "wang.li", Role: domain.RoleClerk}))
	if !slices.Equal(v.Roles, []string{domain.RoleClerk, domain.RoleApprover}) {
		t.Errorf("a view handed out earlier changed: %v", v.Roles)
	}

	code = approve(e.svc.RotateToken(e.ctx, domain.RotateToken{Meta: e.on(e.admin, "2026-01-10"), PrincipalID: "wang.li"}))
	if _, ok := e.proj.PrincipalByToken(domain.TokenSHA256(first)); !ok {
		t.Error("the old token stopped before the new one was redeemed")
	}
	rotated := redeem(code)
	if _, ok := e.proj.PrincipalByToken(domain.TokenSHA256(first)); ok {
		t.Error("the rotated-out token still authenticates")
	}
	v, ok = e.proj.PrincipalByToken(domain.TokenSHA256(rotated))
	if !ok || !slices.Equal(v.Roles, []string{domain.RoleApprover}) {
		t.Errorf("by the new token: %+v %v", v, ok)
	}
	req, err := e.svc.RotateToken(e.ctx, domain.RotateToken{Meta: e.on(e.admin, "2026-01-10"), PrincipalID: "wang.li", RevokeNow: true})
	e.do(req.Result, err)
	if _, ok := e.proj.PrincipalByToken(domain.TokenSHA256(rotated)); ok {
		t.Error("revoke_now left the token working")
	}
	e.do(e.svc.RejectAccess(e.ctx, domain.AccessDecision{ActorInFile: true, Meta: e.on(e.admin, "2026-01-10"), PrincipalID: "wang.li", RequestID: req.RequestID}))
	if got := e.proj.AccessRequests(); len(got) != 0 {
		t.Errorf("pending after withdrawal: %+v", got)
	}

	e.do(e.svc.RevokePrincipal(e.ctx, domain.PrincipalCommand{Meta: e.on(e.admin, "2026-01-10"), PrincipalID: "wang.li"}))
	v, ok = e.proj.Principal("wang.li")
	if !ok || v.Active || v.RevokedAt == nil || v.RevokedBy != "arthur" {
		t.Errorf("revoked principal: %+v", v)
	}
	restored := redeem(approve(e.svc.RestorePrincipal(e.ctx, domain.PrincipalCommand{Meta: e.on(e.admin, "2026-01-10"), PrincipalID: "wang.li"})))
	v, ok = e.proj.PrincipalByToken(domain.TokenSHA256(restored))
	if !ok || !v.Active || v.RevokedAt != nil {
		t.Errorf("restored principal: %+v %v", v, ok)
	}
	if all := e.proj.Principals(); len(all) != 1 || all[0].ID != "wang.li" {
		t.Errorf("Principals() = %+v", all)
	}
}
