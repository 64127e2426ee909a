package domain

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"talentledger/eventstore"
)

func TestCheckRoles(t *testing.T) {
	for _, c := range []struct {
		roles []string
		code  string
	}{
		{[]string{RoleClerk}, ""},
		{[]string{RoleAdmin}, ""},
		{[]string{RoleAuditor}, ""},
		{[]string{RoleClerk, RoleApprover}, ""},
		{[]string{RoleReviewer, RoleTreasurer, RoleFundManager}, ""},
		{nil, EINVALID},
		{[]string{"root"}, EINVALID},
		{[]string{RoleClerk, RoleClerk}, EINVALID},
		{[]string{RoleAdmin, RoleClerk}, ESEGREGATION},
		{[]string{RoleReviewer, RoleAdmin}, ESEGREGATION},
		{[]string{RoleAdmin, RoleApprover}, ESEGREGATION},
		{[]string{RoleAdmin, RoleTreasurer}, ESEGREGATION},
		{[]string{RoleFundManager, RoleAdmin}, ESEGREGATION},
		{[]string{RoleAuditor, RoleClerk}, ESEGREGATION},
		{[]string{RoleAdmin, RoleAuditor}, ESEGREGATION},
	} {
		if got := ErrorCode(CheckRoles(c.roles)); got != c.code {
			t.Errorf("CheckRoles(%v) = %q, want %q", c.roles, got, c.code)
		}
	}
}

func TestValidPrincipalID(t *testing.T) {
	for id, want := range map[string]bool{
		"wang.li": true, "a": true, "demo-fund_manager": true, "z.zhao@finance": true, "007": true,
		strings.Repeat("a", 64): true, strings.Repeat("a", 65): false,
		"": false, "Wang.Li": false, "wang li": false, ".hidden": false, "-x": false, "a/b": false,
		"a\x00b": false, "a\nb": false, "王力": false, "a:b": false,
	} {
		if got := ValidPrincipalID(id); got != want {
			t.Errorf("ValidPrincipalID(%q) = %v, want %v", id, got, want)
		}
	}
}

// principalEvents returns the events of a principal's stream.
func principalEvents(t *testing.T, s *Service, id string) []eventstore.Event {
	t.Helper()
	it := s.Store().ReadStream(context.Background(), streamPrincipal(id), 0)
	defer it.Close()
	var out []eventstore.Event
	for it.Next() {
		out = append(out, it.Event())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return out
}

func TestCreatePrincipalIssuesATokenStoredOnlyAsItsHash(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	m := on(admin, "2024-01-02")
	m.CommandID = "create-wang"
	m.Reason = "new finance officer"
	got, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: m, PrincipalID: "wang.li", Roles: []string{RoleClerk, RoleApprover}})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := hex.DecodeString(got.Token); err != nil || len(b) != 32 {
		t.Fatalf("token %q is not 256 bits in hex", got.Token)
	}
	if got.ID != "wang.li" || got.Position == eventstore.Start {
		t.Errorf("result = %+v", got.Result)
	}
	evs := principalEvents(t, s, "wang.li")
	if len(evs) != 1 || evs[0].Type != TypePrincipalCreated {
		t.Fatalf("events = %v", evs)
	}
	if bytes.Contains(evs[0].Data, []byte(got.Token)) {
		t.Errorf("the log holds the token: %s", evs[0].Data)
	}
	p, err := DecodeEvent(evs[0].Type, evs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	c := p.(*PrincipalCreated)
	if c.TokenSHA256 != TokenSHA256(got.Token) || c.PrincipalID != "wang.li" || len(c.Roles) != 2 {
		t.Errorf("event = %+v", c)
	}
	if md := evs[0].Metadata; md.Principal != admin.Principal || md.Role != RoleAdmin || md.Reason != "new finance officer" || md.Hash == "" {
		t.Errorf("metadata = %+v", md)
	}

	// A retry writes nothing and shows no token: the one issued went to
	// the first attempt, and the log does not keep it.
	again, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: m, PrincipalID: "wang.li", Roles: []string{RoleClerk, RoleApprover}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Token != "" || again.Position != got.Position {
		t.Errorf("retry = %+v, want no token and position %s", again, got.Position)
	}
	if n := len(principalEvents(t, s, "wang.li")); n != 1 {
		t.Errorf("%d events after the retry, want 1", n)
	}

	// Another command for the same ID is a conflict.
	_, err = s.CreatePrincipal(ctx, CreatePrincipal{Meta: on(admin, "2024-01-02"), PrincipalID: "wang.li", Roles: []string{RoleClerk}})
	wantCode(t, err, ECONFLICT)
}

func TestRotateTokenReplacesTheHash(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	first, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: on(admin, "2024-01-02"), PrincipalID: "zhao", Roles: []string{RoleTreasurer}})
	if err != nil {
		t.Fatal(err)
	}
	m := on(admin, "2024-01-03")
	m.CommandID = "rotate-zhao"
	rot, err := s.RotateToken(ctx, PrincipalCommand{Meta: m, PrincipalID: "zhao"})
	if err != nil {
		t.Fatal(err)
	}
	if rot.Token == "" || rot.Token == first.Token {
		t.Fatalf("rotated token %q, first %q", rot.Token, first.Token)
	}
	evs := principalEvents(t, s, "zhao")
	last, err := DecodeEvent(evs[len(evs)-1].Type, evs[len(evs)-1].Data)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := last.(*TokenRotated); !ok || r.TokenSHA256 != TokenSHA256(rot.Token) {
		t.Errorf("last event = %#v", last)
	}
	retry, err := s.RotateToken(ctx, PrincipalCommand{Meta: m, PrincipalID: "zhao"})
	if err != nil || retry.Token != "" || retry.Position != rot.Position {
		t.Errorf("retried rotation = %+v, %v; want no token at %s", retry, err, rot.Position)
	}
	_, err = s.RotateToken(ctx, PrincipalCommand{Meta: on(admin, "2024-01-03"), PrincipalID: "nobody"})
	wantCode(t, err, ENOTFOUND)
}

func TestPrincipalRules(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	meta := on(admin, "2024-01-02")
	create := func(id string, roles ...string) error {
		_, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: meta, PrincipalID: id, Roles: roles})
		return err
	}
	for _, id := range []string{"clerk.a", "admin.b"} {
		if err := create(id, map[string]string{"clerk.a": RoleClerk, "admin.b": RoleAdmin}[id]); err != nil {
			t.Fatal(err)
		}
	}
	// The admin "ada" of the tests, created as a principal too.
	if err := create(admin.Principal, RoleAdmin); err != nil {
		t.Fatal(err)
	}
	grant := func(by Actor, id, role string) error {
		_, err := s.GrantRole(ctx, PrincipalRole{Meta: on(by, "2024-01-03"), PrincipalID: id, Role: role})
		return err
	}
	revokeRole := func(by Actor, id, role string) error {
		_, err := s.RevokeRole(ctx, PrincipalRole{Meta: on(by, "2024-01-03"), PrincipalID: id, Role: role})
		return err
	}
	revoke := func(by Actor, id string) error {
		_, err := s.RevokePrincipal(ctx, PrincipalCommand{Meta: on(by, "2024-01-03"), PrincipalID: id})
		return err
	}
	other := Actor{"admin.b", RoleAdmin}

	for _, c := range []struct {
		name string
		err  error
		code string
	}{
		{"a clerk creates a principal", func() error {
			_, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: on(clerk, "2024-01-02"), PrincipalID: "x", Roles: []string{RoleClerk}})
			return err
		}(), EFORBIDDEN},
		{"an auditor rotates a token", func() error {
			_, err := s.RotateToken(ctx, PrincipalCommand{Meta: on(auditor, "2024-01-02"), PrincipalID: "clerk.a"})
			return err
		}(), EFORBIDDEN},
		{"bad id", create("Clerk A", RoleClerk), EINVALID},
		{"admin with a money role", create("mixed", RoleAdmin, RoleTreasurer), ESEGREGATION},
		{"auditor with another role", create("mixed", RoleAuditor, RoleReviewer), ESEGREGATION},
		{"an admin creates themself as approver", func() error {
			_, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: on(Actor{"newadmin", RoleAdmin}, "2024-01-02"), PrincipalID: "newadmin", Roles: []string{RoleApprover}})
			return err
		}(), ESEGREGATION},
		{"an admin grants themself a money role", grant(admin, admin.Principal, RoleApprover), ESEGREGATION},
		{"a money role for another admin", grant(admin, "admin.b", RoleTreasurer), ESEGREGATION},
		{"admin for a clerk", grant(admin, "clerk.a", RoleAdmin), ESEGREGATION},
		{"auditor for a clerk", grant(admin, "clerk.a", RoleAuditor), ESEGREGATION},
		{"a role already held", grant(admin, "clerk.a", RoleClerk), ECONFLICT},
		{"an unknown role", grant(admin, "clerk.a", "superuser"), EINVALID},
		{"a role for nobody", grant(admin, "nobody", RoleClerk), ENOTFOUND},
		{"the only role", revokeRole(admin, "clerk.a", RoleClerk), ECONFLICT},
		{"a role not held", revokeRole(admin, "clerk.a", RoleTreasurer), ECONFLICT},
		{"one's own admin role", revokeRole(admin, admin.Principal, RoleAdmin), ECONFLICT},
		{"oneself", revoke(admin, admin.Principal), ECONFLICT},
		{"nobody", revoke(admin, "nobody"), ENOTFOUND},
	} {
		if got := ErrorCode(c.err); got != c.code {
			t.Errorf("%s: %q (%v), want %q", c.name, got, c.err, c.code)
		}
	}

	// What is allowed: a second role, then taking it back; another admin
	// revoking this one.
	if err := grant(admin, "clerk.a", RoleApprover); err != nil {
		t.Fatal(err)
	}
	if err := revokeRole(admin, "clerk.a", RoleClerk); err != nil {
		t.Fatal(err)
	}
	if err := revoke(other, admin.Principal); err != nil {
		t.Fatal(err)
	}
	// A revoked principal stays revoked, and its ID is not given out again.
	wantCode(t, revoke(other, admin.Principal), ECONFLICT)
	wantCode(t, grant(other, admin.Principal, RoleAdmin), ECONFLICT)
	_, err := s.RotateToken(ctx, PrincipalCommand{Meta: on(other, "2024-01-04"), PrincipalID: admin.Principal})
	wantCode(t, err, ECONFLICT)
	wantCode(t, create(admin.Principal, RoleAdmin), ECONFLICT)

	var types []string
	for _, ev := range principalEvents(t, s, "clerk.a") {
		types = append(types, ev.Type)
	}
	if got, want := strings.Join(types, " "), "PrincipalCreated RoleGranted RoleRevoked"; got != want {
		t.Errorf("clerk.a's events: %s, want %s", got, want)
	}
}
