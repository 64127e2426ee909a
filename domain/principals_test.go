package domain

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// admin2 is a second admin, who approves what admin requests.
var admin2 = Actor{"bob", RoleAdmin}

// enroll has admin request the change, admin2 approve it, and the person
// redeem both halves of the code, if it issues one; it returns the token.
func enroll(t *testing.T, s *Service, id string, ask func(m CommandMeta) (Requested, error)) string {
	t.Helper()
	ctx := context.Background()
	req, err := ask(on(admin, "2026-01-10"))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin2, "2026-01-10"), PrincipalID: id, RequestID: req.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	if req.CodeHalf == "" {
		return ""
	}
	is, err := s.Enroll(ctx, Enroll{PrincipalID: id, Code: req.CodeHalf + ok.CodeHalf})
	if err != nil {
		t.Fatal(err)
	}
	return is.Token
}

// create requests a principal as admin.
func create(s *Service, id string, roles ...string) func(m CommandMeta) (Requested, error) {
	return func(m CommandMeta) (Requested, error) {
		return s.CreatePrincipal(context.Background(), CreatePrincipal{Meta: m, PrincipalID: id, Roles: roles})
	}
}

// stateOf returns a principal's state as a fresh load from the store has
// it.
func stateOf(t *testing.T, s *Service, id string) *principal {
	t.Helper()
	p := newPrincipal().(*principal)
	for _, ev := range principalEvents(t, s, id) {
		payload, err := DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		p.apply(payload)
	}
	return p
}

func eventTypes(t *testing.T, s *Service, id string) string {
	t.Helper()
	var types []string
	for _, ev := range principalEvents(t, s, id) {
		types = append(types, ev.Type)
	}
	return strings.Join(types, " ")
}

// TestCreatePrincipalNeedsASecondAdmin: a principal exists only once an
// admin other than the requester approves it, the trail names both, and
// its token comes from the person redeeming both halves of the code; the
// log holds only hashes.
func TestCreatePrincipalNeedsASecondAdmin(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	m := on(admin, "2026-01-10")
	m.CommandID = "create-wang"
	m.Reason = "new finance officer"
	m.DocumentRef = "HR-2024-17"
	req, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: m, PrincipalID: "wang.li", Roles: []string{RoleClerk, RoleApprover}})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.CodeHalf) != 32 || !ValidAccessRequestID(req.RequestID) || req.Change != ChangeCreate {
		t.Fatalf("request answer %+v", req)
	}
	if p := stateOf(t, s, "wang.li"); p.Created {
		t.Fatal("the principal exists before approval")
	}
	// A retry shows no half: it went to the first attempt.
	again, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: m, PrincipalID: "wang.li", Roles: []string{RoleClerk, RoleApprover}})
	if err != nil || again.CodeHalf != "" || again.RequestID != req.RequestID || again.Position != req.Position {
		t.Fatalf("retry = %+v, %v", again, err)
	}
	// The requester may not approve their own request.
	_, err = s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin, "2026-01-10"), PrincipalID: "wang.li", RequestID: req.RequestID})
	wantCode(t, err, ESEGREGATION)
	// Nor may a non-admin, nor may anyone approve a request that is not.
	_, err = s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(approver, "2026-01-10"), PrincipalID: "wang.li", RequestID: req.RequestID})
	wantCode(t, err, EFORBIDDEN)
	_, err = s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin2, "2026-01-10"), PrincipalID: "wang.li", RequestID: "r0123456789abcdef"})
	wantCode(t, err, ENOTFOUND)
	if got := eventTypes(t, s, "wang.li"); got != TypeAccessRequested {
		t.Fatalf("events after refusals: %s", got)
	}

	am := on(admin2, "2026-01-10")
	am.CommandID = "approve-wang"
	am.Reason = "checked with HR"
	ok, err := s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: am, PrincipalID: "wang.li", RequestID: req.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	if len(ok.CodeHalf) != 32 || ok.CodeHalf == req.CodeHalf || ok.ExpiresAt == nil || !ok.ExpiresAt.Equal(testClock.Now().UTC().Truncate(time.Microsecond).Add(DefaultEnrollmentTTL)) {
		t.Fatalf("approval answer %+v", ok)
	}
	retry, err := s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: am, PrincipalID: "wang.li", RequestID: req.RequestID})
	if err != nil || retry.CodeHalf != "" || retry.Position != ok.Position {
		t.Fatalf("retried approval = %+v, %v", retry, err)
	}
	_, err = s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(Actor{"cy", RoleAdmin}, "2026-01-10"), PrincipalID: "wang.li", RequestID: req.RequestID})
	wantCode(t, err, ECONFLICT)

	// Either half alone, or a code of another's halves, is no code.
	for _, code := range []string{req.CodeHalf + req.CodeHalf, ok.CodeHalf + ok.CodeHalf, strings.Repeat("0", 64)} {
		_, err := s.Enroll(ctx, Enroll{PrincipalID: "wang.li", Code: code})
		wantCode(t, err, EUNAUTHENTICATED)
	}
	_, err = s.Enroll(ctx, Enroll{PrincipalID: "nobody", Code: req.CodeHalf + ok.CodeHalf})
	wantCode(t, err, EUNAUTHENTICATED)
	_, err = s.Enroll(ctx, Enroll{PrincipalID: "wang.li", Code: req.CodeHalf})
	wantCode(t, err, EINVALID)

	// The halves in either order.
	is, err := s.Enroll(ctx, Enroll{PrincipalID: "wang.li", Code: ok.CodeHalf + req.CodeHalf})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := hex.DecodeString(is.Token); err != nil || len(b) != 32 {
		t.Fatalf("token %q is not 256 bits in hex", is.Token)
	}
	// Once only.
	_, err = s.Enroll(ctx, Enroll{PrincipalID: "wang.li", Code: req.CodeHalf + ok.CodeHalf})
	wantCode(t, err, ECONFLICT)

	evs := principalEvents(t, s, "wang.li")
	want := []struct{ typ, by, reason string }{
		{TypeAccessRequested, admin.Principal, "new finance officer"},
		{TypeAccessApproved, admin2.Principal, "checked with HR"},
		{TypePrincipalCreated, admin2.Principal, "checked with HR"},
		{TypeEnrollmentRedeemed, "wang.li", ""},
	}
	if len(evs) != len(want) {
		t.Fatalf("events: %s", eventTypes(t, s, "wang.li"))
	}
	for i, w := range want {
		ev := evs[i]
		if ev.Type != w.typ || ev.Metadata.Principal != w.by || ev.Metadata.Reason != w.reason || ev.Metadata.Hash == "" {
			t.Errorf("event %d: %s by %s (%q), want %s by %s (%q)", i, ev.Type, ev.Metadata.Principal, ev.Metadata.Reason, w.typ, w.by, w.reason)
		}
		for _, secret := range []string{is.Token, req.CodeHalf, ok.CodeHalf} {
			if bytes.Contains(ev.Data, []byte(secret)) {
				t.Errorf("%s holds a secret: %s", ev.Type, ev.Data)
			}
		}
	}
	if evs[0].Metadata.DocumentRef != "HR-2024-17" {
		t.Errorf("the request lost its document: %+v", evs[0].Metadata)
	}
	p := stateOf(t, s, "wang.li")
	if !p.Created || p.TokenSHA256 != TokenSHA256(is.Token) || !slices.Equal(p.Roles, []string{RoleClerk, RoleApprover}) {
		t.Errorf("state %+v", p)
	}
	// Another request for the same ID is a conflict.
	_, err = s.CreatePrincipal(ctx, CreatePrincipal{Meta: on(admin, "2026-01-10"), PrincipalID: "wang.li", Roles: []string{RoleClerk}})
	wantCode(t, err, ECONFLICT)
}

// TestEnrollmentExpiresOnTheServersClock: a code redeemed at its expiry
// by the server's clock is refused, and nothing is written.
func TestEnrollmentExpiresOnTheServersClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 10, 9, 30, 0, 0, CityTime)
	s := newTestService(t, WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now }), WithEnrollmentTTL(time.Hour))
	ctx := context.Background()
	req, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: on(admin, "2026-01-10"), PrincipalID: "wang.li", Roles: []string{RoleClerk}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(24 * time.Hour) // the request waited a day; the hour runs from the approval
	mu.Unlock()
	ok, err := s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin2, "2026-01-10"), PrincipalID: "wang.li", RequestID: req.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	before := len(principalEvents(t, s, "wang.li"))
	_, err = s.Enroll(ctx, Enroll{PrincipalID: "wang.li", Code: req.CodeHalf + ok.CodeHalf})
	wantCode(t, err, ECONFLICT)
	if n := len(principalEvents(t, s, "wang.li")); n != before {
		t.Errorf("%d events after an expired code, want %d", n, before)
	}
	mu.Lock()
	now = now.Add(-time.Microsecond)
	mu.Unlock()
	if _, err := s.Enroll(ctx, Enroll{PrincipalID: "wang.li", Code: req.CodeHalf + ok.CodeHalf}); err != nil {
		t.Errorf("just before expiry: %v", err)
	}
}

// TestConcurrentRedemptionsOneWins: fifty redemptions of one code, half
// through a second service over the same store (another process), give
// exactly one token.
func TestConcurrentRedemptionsOneWins(t *testing.T) {
	st := newTestStore(t)
	s := newServiceOver(st)
	other := newServiceOver(st)
	ctx := context.Background()
	req, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: on(admin, "2026-01-10"), PrincipalID: "wang.li", Roles: []string{RoleTreasurer}})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin2, "2026-01-10"), PrincipalID: "wang.li", RequestID: req.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	// Load the stream into the second service before anyone redeems, so
	// that its cache is stale when it decides.
	if _, err := other.Enroll(ctx, Enroll{PrincipalID: "wang.li", Code: strings.Repeat("0", 64)}); ErrorCode(err) != EUNAUTHENTICATED {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	tokens := make(chan string, 50)
	codes := make(chan string, 50)
	for i := range 50 {
		svc := s
		if i%2 == 1 {
			svc = other
		}
		wg.Go(func() {
			is, err := svc.Enroll(ctx, Enroll{PrincipalID: "wang.li", Code: req.CodeHalf + ok.CodeHalf})
			if err == nil {
				tokens <- is.Token
			}
			codes <- ErrorCode(err)
		})
	}
	wg.Wait()
	close(tokens)
	close(codes)
	var won []string
	for tok := range tokens {
		won = append(won, tok)
	}
	for c := range codes {
		if c != "" && c != ECONFLICT {
			t.Errorf("a losing redemption answered %q", c)
		}
	}
	if len(won) != 1 || won[0] == "" {
		t.Fatalf("%d redemptions won: %q", len(won), won)
	}
	if got := eventTypes(t, s, "wang.li"); got != "AccessRequested AccessApproved PrincipalCreated EnrollmentRedeemed" {
		t.Errorf("events: %s", got)
	}
	if p := stateOf(t, s, "wang.li"); p.TokenSHA256 != TokenSHA256(won[0]) {
		t.Error("the recorded token is not the one handed out")
	}
}

// TestRotationKeepsTheOldTokenUntilRedeemed: a rotation needs a second
// admin, the old token works until the new one is redeemed (or stops at
// once with RevokeNow), and a newer code replaces an older one.
func TestRotationKeepsTheOldTokenUntilRedeemed(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	first := enroll(t, s, "zhao", create(s, "zhao", RoleTreasurer))
	rotate := func(revokeNow bool) func(m CommandMeta) (Requested, error) {
		return func(m CommandMeta) (Requested, error) {
			return s.RotateToken(ctx, RotateToken{Meta: m, PrincipalID: "zhao", RevokeNow: revokeNow})
		}
	}
	req, err := rotate(false)(on(admin, "2026-01-10"))
	if err != nil {
		t.Fatal(err)
	}
	if stateOf(t, s, "zhao").TokenSHA256 != TokenSHA256(first) {
		t.Fatal("the old token stopped at the request")
	}
	_, err = s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(Actor{"zhao", RoleAdmin}, "2026-01-10"), PrincipalID: "zhao", RequestID: req.RequestID})
	wantCode(t, err, ESEGREGATION) // the principal concerned
	ok, err := s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin2, "2026-01-10"), PrincipalID: "zhao", RequestID: req.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	if stateOf(t, s, "zhao").TokenSHA256 != TokenSHA256(first) {
		t.Fatal("the old token stopped at the approval")
	}
	// A newer rotation replaces the code approved before it.
	second := enroll(t, s, "zhao", rotate(false))
	_, err = s.Enroll(ctx, Enroll{PrincipalID: "zhao", Code: req.CodeHalf + ok.CodeHalf})
	wantCode(t, err, ECONFLICT)
	if second == first || stateOf(t, s, "zhao").TokenSHA256 != TokenSHA256(second) {
		t.Fatal("the redeemed token is not the principal's")
	}

	if _, err := rotate(true)(on(admin, "2026-01-10")); err != nil {
		t.Fatal(err)
	}
	if stateOf(t, s, "zhao").TokenSHA256 != "" {
		t.Error("revoke_now left the old token working")
	}
	_, err = s.RotateToken(ctx, RotateToken{Meta: on(admin, "2026-01-10"), PrincipalID: "nobody"})
	wantCode(t, err, ENOTFOUND)
}

// TestRevocationIsImmediateAndRestoreNeedsTwo: one admin revokes at once,
// which also ends an open enrollment; bringing the principal back is a
// request another admin approves, with a new enrollment.
func TestRevocationIsImmediateAndRestoreNeedsTwo(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	enroll(t, s, "li", create(s, "li", RoleClerk))
	rot, err := s.RotateToken(ctx, RotateToken{Meta: on(admin, "2026-01-10"), PrincipalID: "li"})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin2, "2026-01-10"), PrincipalID: "li", RequestID: rot.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokePrincipal(ctx, PrincipalCommand{Meta: on(admin, "2026-01-10"), PrincipalID: "li"}); err != nil {
		t.Fatal(err)
	}
	if p := stateOf(t, s, "li"); !p.Revoked || p.TokenSHA256 != "" {
		t.Fatalf("after revocation: %+v", p)
	}
	_, err = s.Enroll(ctx, Enroll{PrincipalID: "li", Code: rot.CodeHalf + ok.CodeHalf})
	wantCode(t, err, ECONFLICT)

	restore := func(m CommandMeta) (Requested, error) {
		return s.RestorePrincipal(ctx, PrincipalCommand{Meta: m, PrincipalID: "li"})
	}
	req, err := restore(on(admin, "2026-01-10"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = restore(on(admin, "2026-01-10"))
	wantCode(t, err, ECONFLICT) // one pending restore at a time
	_, err = s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin, "2026-01-10"), PrincipalID: "li", RequestID: req.RequestID})
	wantCode(t, err, ESEGREGATION)
	if _, err := s.RejectAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin, "2026-01-10"), PrincipalID: "li", RequestID: req.RequestID}); err != nil {
		t.Fatal(err) // the requester withdraws
	}
	_, err = s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin2, "2026-01-10"), PrincipalID: "li", RequestID: req.RequestID})
	wantCode(t, err, ECONFLICT)

	tok := enroll(t, s, "li", restore)
	p := stateOf(t, s, "li")
	if p.Revoked || p.TokenSHA256 != TokenSHA256(tok) || !slices.Equal(p.Roles, []string{RoleClerk}) {
		t.Errorf("after restore: %+v", p)
	}
	_, err = restore(on(admin, "2026-01-10"))
	wantCode(t, err, ECONFLICT) // not revoked
}

// TestGrantRoleNeedsASecondAdmin: a role is in force only once another
// admin approves, and the approval re-checks the roles on the stream as
// it is then.
func TestGrantRoleNeedsASecondAdmin(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	enroll(t, s, "li", create(s, "li", RoleClerk))
	grant := func(by Actor, role string) (Requested, error) {
		return s.GrantRole(ctx, PrincipalRole{Meta: on(by, "2026-01-10"), PrincipalID: "li", Role: role})
	}
	req, err := grant(admin, RoleApprover)
	if err != nil {
		t.Fatal(err)
	}
	if req.CodeHalf != "" {
		t.Error("a role grant issued a code")
	}
	_, err = grant(admin2, RoleApprover)
	wantCode(t, err, ECONFLICT) // the same request is pending
	if contains(stateOf(t, s, "li").Roles, RoleApprover) {
		t.Fatal("the role is in force before approval")
	}
	ok, err := s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin2, "2026-01-10"), PrincipalID: "li", RequestID: req.RequestID})
	if err != nil || ok.CodeHalf != "" || ok.ExpiresAt != nil {
		t.Fatalf("approval %+v, %v", ok, err)
	}
	if !slices.Equal(stateOf(t, s, "li").Roles, []string{RoleClerk, RoleApprover}) {
		t.Fatal("the approved role is not held")
	}
	// Revoked between request and approval: the approval is refused.
	req, err = grant(admin, RoleTreasurer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokePrincipal(ctx, PrincipalCommand{Meta: on(admin2, "2026-01-10"), PrincipalID: "li"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(admin2, "2026-01-10"), PrincipalID: "li", RequestID: req.RequestID})
	wantCode(t, err, ECONFLICT)
}

func TestPrincipalRules(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	enroll(t, s, "clerk.a", create(s, "clerk.a", RoleClerk))
	enroll(t, s, "admin.b", create(s, "admin.b", RoleAdmin))
	// The admin "ada" of the tests, created as a principal too.
	enroll(t, s, admin.Principal, create(s, admin.Principal, RoleAdmin))
	grant := func(by Actor, id, role string) error {
		_, err := s.GrantRole(ctx, PrincipalRole{Meta: on(by, "2026-01-10"), PrincipalID: id, Role: role})
		return err
	}
	revokeRole := func(by Actor, id, role string) error {
		_, err := s.RevokeRole(ctx, PrincipalRole{Meta: on(by, "2026-01-10"), PrincipalID: id, Role: role})
		return err
	}
	revoke := func(by Actor, id string) error {
		_, err := s.RevokePrincipal(ctx, PrincipalCommand{Meta: on(by, "2026-01-10"), PrincipalID: id})
		return err
	}
	request := func(id string, roles ...string) error {
		_, err := create(s, id, roles...)(on(admin, "2026-01-10"))
		return err
	}
	other := Actor{"admin.b", RoleAdmin}

	for _, c := range []struct {
		name string
		err  error
		code string
	}{
		{"a clerk creates a principal", func() error {
			_, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: on(clerk, "2026-01-10"), PrincipalID: "x", Roles: []string{RoleClerk}})
			return err
		}(), EFORBIDDEN},
		{"an auditor rotates a token", func() error {
			_, err := s.RotateToken(ctx, RotateToken{Meta: on(auditor, "2026-01-10"), PrincipalID: "clerk.a"})
			return err
		}(), EFORBIDDEN},
		{"a clerk approves", func() error {
			_, err := s.ApproveAccess(ctx, AccessDecision{ActorInFile: true, Meta: on(clerk, "2026-01-10"), PrincipalID: "clerk.a", RequestID: "r0123456789abcdef"})
			return err
		}(), EFORBIDDEN},
		{"bad id", request("Clerk A", RoleClerk), EINVALID},
		{"admin with a money role", request("mixed", RoleAdmin, RoleTreasurer), ESEGREGATION},
		{"auditor with another role", request("mixed", RoleAuditor, RoleReviewer), ESEGREGATION},
		{"an admin creates themself as approver", func() error {
			_, err := s.CreatePrincipal(ctx, CreatePrincipal{Meta: on(Actor{"newadmin", RoleAdmin}, "2026-01-10"), PrincipalID: "newadmin", Roles: []string{RoleApprover}})
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

	// Taking away is at once: a second role taken back, another admin
	// revoking this one.
	enroll(t, s, "clerk.a", func(m CommandMeta) (Requested, error) {
		return s.GrantRole(ctx, PrincipalRole{Meta: m, PrincipalID: "clerk.a", Role: RoleApprover})
	})
	if err := revokeRole(admin, "clerk.a", RoleClerk); err != nil {
		t.Fatal(err)
	}
	if err := revoke(other, admin.Principal); err != nil {
		t.Fatal(err)
	}
	// A revoked principal stays revoked until restored, and its ID is not
	// given out again.
	wantCode(t, revoke(other, admin.Principal), ECONFLICT)
	wantCode(t, grant(other, admin.Principal, RoleAdmin), ECONFLICT)
	_, err := s.RotateToken(ctx, RotateToken{Meta: on(other, "2026-01-10"), PrincipalID: admin.Principal})
	wantCode(t, err, ECONFLICT)
	wantCode(t, request(admin.Principal, RoleAdmin), ECONFLICT)

	if got, want := eventTypes(t, s, "clerk.a"), "AccessRequested AccessApproved PrincipalCreated EnrollmentRedeemed AccessRequested AccessApproved RoleGranted RoleRevoked"; got != want {
		t.Errorf("clerk.a's events: %s, want %s", got, want)
	}
}

// TestOlderPrincipalEventsStillFold: a log written before four eyes
// (a token hash in PrincipalCreated, TokenRotated) folds as it did.
func TestOlderPrincipalEventsStillFold(t *testing.T) {
	p := newPrincipal().(*principal)
	for _, e := range []Event{
		&PrincipalCreated{PrincipalID: "old", Roles: []string{RoleClerk}, TokenSHA256: TokenSHA256("a")},
		&TokenRotated{PrincipalID: "old", TokenSHA256: TokenSHA256("b")},
	} {
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := DecodeEvent(e.EventType(), raw)
		if err != nil {
			t.Fatal(err)
		}
		p.apply(payload)
	}
	if !p.Created || p.TokenSHA256 != TokenSHA256("b") {
		t.Errorf("state %+v", p)
	}
}

// TestApproverIsAnActiveAdminOnTheirStream: an approver of the log must be
// an admin on their own stream as the store has it, not merely as a read
// model that may lag a revocation saw them.
func TestApproverIsAnActiveAdminOnTheirStream(t *testing.T) {
	st := newTestStore(t)
	s := newServiceOver(st)
	other := newServiceOver(st) // another server, whose cache is stale
	ctx := context.Background()
	enroll(t, s, "carol", create(s, "carol", RoleAdmin))
	enroll(t, s, "li", create(s, "li", RoleClerk))
	carol := Actor{"carol", RoleAdmin}
	first, err := s.GrantRole(ctx, PrincipalRole{Meta: on(admin, "2026-01-10"), PrincipalID: "li", Role: RoleReviewer})
	if err != nil {
		t.Fatal(err)
	}
	// carol's stream is now in the other server's cache.
	if _, err := other.ApproveAccess(ctx, AccessDecision{Meta: on(carol, "2026-01-10"), PrincipalID: "li", RequestID: first.RequestID}); err != nil {
		t.Fatalf("an active admin of the log: %v", err)
	}
	second, err := s.GrantRole(ctx, PrincipalRole{Meta: on(admin, "2026-01-10"), PrincipalID: "li", Role: RoleApprover})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokePrincipal(ctx, PrincipalCommand{Meta: on(admin2, "2026-01-10"), PrincipalID: "carol"}); err != nil {
		t.Fatal(err)
	}
	before := len(principalEvents(t, s, "li"))
	_, err = other.ApproveAccess(ctx, AccessDecision{Meta: on(carol, "2026-01-10"), PrincipalID: "li", RequestID: second.RequestID})
	wantCode(t, err, EFORBIDDEN)
	// Nor does a principal of the log who is no admin pass for one.
	_, err = s.ApproveAccess(ctx, AccessDecision{Meta: on(Actor{"li", RoleAdmin}, "2026-01-10"), PrincipalID: "carol", RequestID: second.RequestID})
	wantCode(t, err, EFORBIDDEN)
	if n := len(principalEvents(t, s, "li")); n != before {
		t.Errorf("%d events after refused approvals, want %d", n, before)
	}
}
