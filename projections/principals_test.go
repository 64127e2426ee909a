package projections_test

import (
	"slices"
	"testing"

	"talentledger/domain"
)

// TestPrincipalsByToken follows a principal through creation, a second
// role, a rotation and its revocation: a token authenticates exactly while
// it is the principal's current one and the principal is active.
func TestPrincipalsByToken(t *testing.T) {
	e := newEnv(t)
	issue := func(is domain.Issued, err error) domain.Issued {
		t.Helper()
		e.do(is.Result, err)
		if is.Token == "" {
			t.Fatal("no token issued")
		}
		return is
	}
	first := issue(e.svc.CreatePrincipal(e.ctx, domain.CreatePrincipal{Meta: e.on(e.admin, "2024-01-02"), PrincipalID: "wang.li", Roles: []string{domain.RoleClerk}}))
	v, ok := e.proj.PrincipalByToken(domain.TokenSHA256(first.Token))
	if !ok || v.ID != "wang.li" || !slices.Equal(v.Roles, []string{domain.RoleClerk}) || !v.Active || v.CreatedBy != "arthur" {
		t.Fatalf("by first token: %+v %v", v, ok)
	}
	if _, ok := e.proj.PrincipalByToken(first.Token); ok {
		t.Error("the token itself, not its hash, authenticated")
	}

	e.do(e.svc.GrantRole(e.ctx, domain.PrincipalRole{Meta: e.on(e.admin, "2024-01-03"), PrincipalID: "wang.li", Role: domain.RoleApprover}))
	v, _ = e.proj.PrincipalByToken(domain.TokenSHA256(first.Token))
	if !slices.Equal(v.Roles, []string{domain.RoleClerk, domain.RoleApprover}) {
		t.Errorf("roles after the grant: %v", v.Roles)
	}
	e.do(e.svc.RevokeRole(e.ctx, domain.PrincipalRole{Meta: e.on(e.admin, "2024-01-03"), PrincipalID: "wang.li", Role: domain.RoleClerk}))
	if !slices.Equal(v.Roles, []string{domain.RoleClerk, domain.RoleApprover}) {
		t.Errorf("a view handed out earlier changed: %v", v.Roles)
	}

	second := issue(e.svc.RotateToken(e.ctx, domain.PrincipalCommand{Meta: e.on(e.admin, "2024-01-04"), PrincipalID: "wang.li"}))
	if _, ok := e.proj.PrincipalByToken(domain.TokenSHA256(first.Token)); ok {
		t.Error("the rotated-out token still authenticates")
	}
	v, ok = e.proj.PrincipalByToken(domain.TokenSHA256(second.Token))
	if !ok || !slices.Equal(v.Roles, []string{domain.RoleApprover}) {
		t.Errorf("by the new token: %+v %v", v, ok)
	}

	e.do(e.svc.RevokePrincipal(e.ctx, domain.PrincipalCommand{Meta: e.on(e.admin, "2024-01-05"), PrincipalID: "wang.li"}))
	if _, ok := e.proj.PrincipalByToken(domain.TokenSHA256(second.Token)); ok {
		t.Error("a revoked principal's token still authenticates")
	}
	v, ok = e.proj.Principal("wang.li")
	if !ok || v.Active || v.RevokedAt == nil || v.RevokedBy != "arthur" {
		t.Errorf("revoked principal: %+v", v)
	}
	if all := e.proj.Principals(); len(all) != 1 || all[0].ID != "wang.li" {
		t.Errorf("Principals() = %+v", all)
	}
}
