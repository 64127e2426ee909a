package domain

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"talentledger/eventstore"
)

// memKeys is a key store in memory for the tests: each talent's keys by
// version, oldest first.
type memKeys struct {
	mu   sync.Mutex
	keys map[string][]memKey
	dead map[string]bool
	n    int
}

type memKey struct {
	id string
	k  []byte
}

var _ KeyStore = (*memKeys)(nil)

func newMemKeys() *memKeys { return &memKeys{keys: map[string][]memKey{}, dead: map[string]bool{}} }

func (m *memKeys) DataKey(id string, create bool) (string, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead[id] {
		return "", nil, ErrKeyDestroyed
	}
	if v := m.keys[id]; len(v) > 0 {
		return v[len(v)-1].id, v[len(v)-1].k, nil
	}
	if !create {
		return "", nil, ErrNoKey
	}
	return m.newLocked(id)
}

func (m *memKeys) newLocked(id string) (string, []byte, error) {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	m.n++
	kid := fmt.Sprintf("k%024d", m.n)
	m.keys[id] = append(m.keys[id], memKey{kid, k})
	return kid, k, nil
}

func (m *memKeys) BindKey(id string, rotate bool) (string, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead[id] {
		return "", nil, ErrKeyDestroyed
	}
	if v := m.keys[id]; len(v) > 0 && !rotate {
		return v[len(v)-1].id, v[len(v)-1].k, nil
	}
	return m.newLocked(id)
}

func (m *memKeys) Key(id, keyID string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead[id] {
		return nil, ErrKeyDestroyed
	}
	for _, k := range m.keys[id] {
		if k.id == keyID {
			return k.k, nil
		}
	}
	return nil, ErrNoKey
}

func (m *memKeys) Destroy(id string, _ ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, id)
	m.dead[id] = true
	return nil
}

func (m *memKeys) has(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys[id]) > 0
}

const (
	chineseName = "欧阳震华"
	idNumber    = "330482199001011234"
)

func TestSealOpenAndMask(t *testing.T) {
	c := NewCipher(newMemKeys())
	a, err := c.Seal("t0000000000000001", "id_number", idNumber)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Seal("t0000000000000001", "id_number", idNumber)
	if a == b {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	if strings.Contains(a, idNumber) || !Sealed(a) {
		t.Errorf("sealed value %q", a)
	}
	if got, field, hidden := c.Open(a); got != idNumber || field != "id_number" || hidden {
		t.Errorf("Open = %q %q %v", got, field, hidden)
	}
	// The talent and the field are authenticated: a value moved to
	// another talent or field does not open.
	for _, moved := range []string{
		strings.Replace(a, "t0000000000000001", "t0000000000000002", 1),
		strings.Replace(a, ":id_number:", ":bank_account:", 1),
	} {
		if got, _, hidden := c.Open(moved); got == idNumber || !hidden {
			t.Errorf("a moved sealed value opened: %q", got)
		}
	}
	for _, tc := range []struct{ role, want string }{
		{RoleClerk, idNumber}, {RoleTreasurer, idNumber},
		{RoleAuditor, "3304**********1234"}, {RoleApprover, "3304**********1234"}, {RoleReviewer, "3304**********1234"},
		{RoleAdmin, "3304**********1234"}, {RoleFundManager, "3304**********1234"}, {"", "3304**********1234"},
	} {
		if got := c.Reveal(a, tc.role, false); got != tc.want {
			t.Errorf("%s sees %q, want %q", tc.role, got, tc.want)
		}
	}
	if got := c.Reveal(a, RoleAuditor, true); got != idNumber {
		t.Errorf("unmasked: %q", got)
	}
	name, _ := c.Seal("t0000000000000001", "name", chineseName)
	if got := c.Reveal(name, RoleAuditor, false); got != chineseName {
		t.Errorf("a name is not masked: %q", got)
	}
	if err := c.Destroy("t0000000000000001"); err != nil {
		t.Fatal(err)
	}
	if got := c.Reveal(a, RoleClerk, false); got != Erased {
		t.Errorf("after the key is destroyed: %q, want %q", got, Erased)
	}
	if _, err := c.Seal("t0000000000000001", "name", "x"); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("seal after destruction: %v", err)
	}
	// A plain value (a ledger run without encryption) is shown as it is.
	if got := c.Reveal("plain", RoleAuditor, false); got != "plain" {
		t.Errorf("plain value: %q", got)
	}
	// No input can pass for a sealed value.
	if err := checkText("name", SealedMarker+"pd1:x", true); err == nil {
		t.Error("a value beginning with the sealed marker is accepted as text")
	}
}

func TestRegistrationSealsPersonalFields(t *testing.T) {
	keys := newMemKeys()
	st := newTestStore(t)
	s := newServiceOver(st, WithCipher(NewCipher(keys)))
	r := must(t)(s.RegisterTalent(context.Background(), RegisterTalent{Meta: on(clerk, "2024-01-02"), Name: chineseName,
		Tier: "B", PermitCategory: "A", Employer: "嘉兴精工", IDNumber: idNumber, Phone: "13800000000"}))
	evs := readAll(t, st)
	if len(evs) != 2 || evs[0].Type != TypeTalentKeyCreated || evs[1].Type != TypeTalentRegistered {
		t.Fatalf("events: %v", evs)
	}
	for _, e := range evs {
		for _, plain := range []string{chineseName, "嘉兴精工", idNumber, "13800000000"} {
			if bytes.Contains(e.Data, []byte(plain)) {
				t.Errorf("%s holds %q in plain text", e.Type, plain)
			}
		}
	}
	if !keys.has(r.ID) {
		t.Error("no data key was made")
	}
	// Tier and permit category decide eligibility: they stay plain.
	if !bytes.Contains(evs[1].Data, []byte(`"tier":"B"`)) || !bytes.Contains(evs[1].Data, []byte(`"permit_category":"A"`)) {
		t.Errorf("tier or permit category sealed: %s", evs[1].Data)
	}
}

// erasureSetup is a talent with a housing grant whose first installment
// was paid on 2024-01-20, and a service with a cipher over keys.
func erasureSetup(t *testing.T) (s *Service, st eventstore.Store, keys *memKeys, talentID, grantID string) {
	t.Helper()
	keys = newMemKeys()
	st = newTestStore(t)
	s = newServiceOver(st, WithCipher(NewCipher(keys)))
	talentID, grantID = approvedHousing(t, s)
	payInstallment(t, s, grantID, 1, "2024-01-20")
	return s, st, keys, talentID, grantID
}

func erasureMeta(a Actor, date string) CommandMeta {
	m := on(a, date)
	m.Reason, m.DocumentRef = "the person asked for erasure (PIPL art. 47)", "PH-DEL-2024-7"
	return m
}

func TestErasureRules(t *testing.T) {
	ctx := context.Background()
	s, st, keys, tid, gid := erasureSetup(t)

	// A request needs a reason and a document, and only a clerk makes it.
	_, err := s.RequestErasure(ctx, RequestErasure{Meta: on(clerk, "2024-02-01"), TalentID: tid})
	wantCode(t, err, EINVALID)
	_, err = s.RequestErasure(ctx, RequestErasure{Meta: erasureMeta(approver, "2024-02-01"), TalentID: tid})
	wantCode(t, err, EFORBIDDEN)
	_, err = s.ApproveErasure(ctx, ApproveErasure{Meta: on(approver, "2024-02-01"), TalentID: tid})
	wantCode(t, err, ECONFLICT) // nothing requested
	must(t)(s.RequestErasure(ctx, RequestErasure{Meta: erasureMeta(clerk, "2024-02-01"), TalentID: tid}))
	_, err = s.RequestErasure(ctx, RequestErasure{Meta: erasureMeta(clerk2, "2024-02-01"), TalentID: tid})
	wantCode(t, err, ECONFLICT) // already requested

	// Four eyes: the requesting clerk may not approve, even as an approver.
	_, err = s.ApproveErasure(ctx, ApproveErasure{Meta: on(as(clerk, RoleApprover), "2024-02-01"), TalentID: tid})
	wantCode(t, err, ESEGREGATION)

	// An open grant refuses the approval.
	_, err = s.ApproveErasure(ctx, ApproveErasure{Meta: on(approver, "2024-02-01"), TalentID: tid})
	wantCode(t, err, ECONFLICT)

	// Departed and terminated: a clawback is outstanding, which refuses it
	// too.
	must(t)(s.ReportDeparture(ctx, ReportDeparture{Meta: on(clerk, "2024-09-20"), TalentID: tid, DepartureDate: "2024-09-20"}))
	must(t)(s.TerminateGrant(ctx, TerminateGrant{Meta: on(approver, "2024-09-21"), GrantID: gid}))
	_, err = s.ApproveErasure(ctx, ApproveErasure{Meta: on(approver, "2024-09-22"), TalentID: tid})
	wantCode(t, err, ECONFLICT)
	if !strings.Contains(err.Error(), "clawback") {
		t.Errorf("refusal %q does not name the clawback", err)
	}
	g := grantState(t, s, gid)
	due := g.outstanding()
	must(t)(s.RecordRecovery(ctx, RecoveryCommand{Meta: on(treasurer, "2024-10-08"), GrantID: gid, Amount: due, BankReference: "RC-1"}))

	// Settled: the erasure is scheduled for the end of the retention
	// after the last movement of money (the recovery), not carried out.
	out, err := s.ApproveErasure(ctx, ApproveErasure{Meta: on(approver, "2024-10-10"), TalentID: tid})
	if err != nil {
		t.Fatal(err)
	}
	if out.Erased || out.NotBefore != AddMonths("2024-10-08", DefaultRetentionMonths) {
		t.Fatalf("approval: %+v, want scheduled for %s", out, AddMonths("2024-10-08", DefaultRetentionMonths))
	}
	if !keys.has(tid) {
		t.Fatal("the key was destroyed before the retention ended")
	}
	// Scheduled: nothing more is applied for or paid to the talent.
	defineHousing(t, s, "housing2", 0)
	_, err = s.ApplyGrant(ctx, ApplyGrant{Meta: onDoc(clerk, "2024-10-11"), TalentID: tid, ProgramID: "housing2", AmountRequested: money(t, "1000.00")})
	wantCode(t, err, ECONFLICT)

	// The day before, the check leaves it scheduled; on the day, it is
	// carried out.
	testClock.setDate(AddDays(out.NotBefore, -1))
	if got, err := s.CarryOutErasure(ctx, tid); err != nil || got.Erased {
		t.Fatalf("a day early: %+v %v", got, err)
	}
	before := readAll(t, st)
	testClock.setDate(out.NotBefore)
	got, err := s.CarryOutErasure(ctx, tid)
	if err != nil || !got.Erased {
		t.Fatalf("on the day: %+v %v", got, err)
	}
	if keys.has(tid) {
		t.Error("the key survived the erasure")
	}
	// Erasing changed no stored event: it appended one.
	after := readAll(t, st)
	if len(after) != len(before)+1 || after[len(after)-1].Type != TypeTalentKeyDestroyed {
		t.Fatalf("erasure appended %d events", len(after)-len(before))
	}
	for i := range before {
		if !bytes.Equal(before[i].Data, after[i].Data) || before[i].Metadata.Hash != after[i].Metadata.Hash {
			t.Fatalf("event %d changed", i)
		}
	}
	_, err = s.CarryOutErasure(ctx, tid)
	wantCode(t, err, ECONFLICT)
	_, err = s.UnmaskPersonalData(ctx, UnmaskPersonalData{Meta: erasureMeta(auditor, out.NotBefore), TalentID: tid})
	wantCode(t, err, ECONFLICT)
}

func TestErasureWithoutGrantsIsImmediate(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	s := newServiceOver(newTestStore(t), WithCipher(NewCipher(keys)))
	tid := registerTalent(t, s, "C")
	must(t)(s.RequestErasure(ctx, RequestErasure{Meta: erasureMeta(clerk, "2024-02-01"), TalentID: tid}))
	out, err := s.ApproveErasure(ctx, ApproveErasure{Meta: on(approver, "2024-02-01"), TalentID: tid})
	if err != nil || !out.Erased {
		t.Fatalf("%+v %v", out, err)
	}
	if keys.has(tid) {
		t.Error("key kept")
	}
}

func TestErasureNeedsEncryption(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	tid := registerTalent(t, s, "C")
	_, err := s.RequestErasure(ctx, RequestErasure{Meta: erasureMeta(clerk, "2024-02-01"), TalentID: tid})
	wantCode(t, err, ECONFLICT)
}

func TestUnmaskingIsRecordedWithItsReason(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	s := newServiceOver(st, WithCipher(NewCipher(newMemKeys())))
	tid := registerTalent(t, s, "C")
	_, err := s.UnmaskPersonalData(ctx, UnmaskPersonalData{Meta: on(auditor, "2024-02-01"), TalentID: tid})
	wantCode(t, err, EINVALID)
	_, err = s.UnmaskPersonalData(ctx, UnmaskPersonalData{Meta: erasureMeta(approver, "2024-02-01"), TalentID: tid})
	wantCode(t, err, EFORBIDDEN)
	must(t)(s.UnmaskPersonalData(ctx, UnmaskPersonalData{Meta: erasureMeta(auditor, "2024-02-01"), TalentID: tid}))
	evs := readAll(t, st)
	last := evs[len(evs)-1]
	if last.Type != TypePersonalDataUnmasked || last.Metadata.Principal != auditor.Principal || last.Metadata.Reason == "" {
		t.Errorf("last event %s by %s, reason %q", last.Type, last.Metadata.Principal, last.Metadata.Reason)
	}
}

// TestErasureRacesApproval runs an erasure's approval against the
// approval of a pending grant of the same talent, many times: either the
// grant is approved and the erasure refused (an open grant), or the
// erasure is carried out and the approval refused, never both.
func TestErasureRacesApproval(t *testing.T) {
	ctx := context.Background()
	for round := range 8 {
		keys := newMemKeys()
		s := newServiceOver(newTestStore(t), WithCipher(NewCipher(keys)))
		defineHousing(t, s, "housing", 5)
		appropriate(t, s, "housing", 2024, "30000000")
		appropriateOn(t, s, "housing", 2025, "30000000", "2024-01-02")
		appropriateOn(t, s, "housing", 2026, "30000000", "2024-01-02")
		tid := registerTalent(t, s, "B")
		gid := apply(t, s, tid, "housing", "600000")
		toNoticeClosed(t, s, gid)
		must(t)(s.RequestErasure(ctx, RequestErasure{Meta: erasureMeta(clerk, "2024-01-15"), TalentID: tid}))
		var wg sync.WaitGroup
		var approveErr, eraseErr error
		var out ErasureOutcome
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, approveErr = s.ApproveGrant(ctx, ApproveGrant{Meta: CommandMeta{Actor: approver}, GrantID: gid})
		}()
		go func() {
			defer wg.Done()
			out, eraseErr = s.ApproveErasure(ctx, ApproveErasure{Meta: CommandMeta{Actor: approver2}, TalentID: tid})
		}()
		wg.Wait()
		state := grantState(t, s, gid).state
		switch {
		case approveErr == nil && eraseErr == nil:
			t.Fatalf("round %d: both the approval and the erasure (%+v) went through", round, out)
		case approveErr == nil:
			wantCode(t, eraseErr, ECONFLICT)
			if state != GrantStateApproved || !keys.has(tid) {
				t.Fatalf("round %d: approved, but state %s, key kept %v", round, state, keys.has(tid))
			}
		case eraseErr == nil:
			wantCode(t, approveErr, ECONFLICT)
			if state == GrantStateApproved || !out.Erased || keys.has(tid) {
				t.Fatalf("round %d: erased (%+v), but grant %s, key kept %v", round, out, state, keys.has(tid))
			}
		default:
			t.Fatalf("round %d: both refused: %v; %v", round, approveErr, eraseErr)
		}
	}
}

// TestErasureRacesPayment releases a grant's last installment while its
// talent's erasure is approved, many times: the payment always goes
// through, and the erasure is refused (the grant still open when it was
// decided) or scheduled after the retention (the payment seen), never
// carried out beside it. With two replicas on one log sharing one key
// store, each with a cipher of its own (its own cache of keys), the
// payment on one and the erasure on the other, the outcome is the same —
// the decision is the log's — and what the paying replica sealed opens on
// the other.
func TestErasureRacesPayment(t *testing.T) {
	ctx := context.Background()
	for _, replicas := range []int{1, 2} {
		for round := range 5 {
			keys := newMemKeys()
			st := newTestStore(t)
			a := newServiceOver(st, WithCipher(NewCipher(keys)))
			b := a
			if replicas == 2 {
				b = newServiceOver(st, WithCipher(NewCipher(keys)))
			}
			tid, gid := approvedHousing(t, a)
			payInstallment(t, b, gid, 1, "2024-01-20")
			payInstallment(t, a, gid, 2, "2025-01-20")
			p := must(t)(b.PreparePayment(ctx, PreparePayment{Meta: on(clerk, "2026-01-20"), GrantID: gid, Installment: 3}))
			must(t)(a.ApprovePayment(ctx, PaymentCommand{Meta: on(approver, "2026-01-20"), PaymentID: p.ID}))
			must(t)(a.RequestErasure(ctx, RequestErasure{Meta: erasureMeta(clerk, "2026-01-20"), TalentID: tid}))
			var wg sync.WaitGroup
			var payErr, eraseErr error
			var out ErasureOutcome
			wg.Go(func() {
				_, payErr = b.ReleasePayment(ctx, PaymentCommand{Meta: CommandMeta{Actor: treasurer}, PaymentID: p.ID, BankReference: "BK-3"})
			})
			wg.Go(func() {
				out, eraseErr = a.ApproveErasure(ctx, ApproveErasure{Meta: CommandMeta{Actor: approver2}, TalentID: tid})
			})
			wg.Wait()
			if payErr != nil {
				t.Fatalf("%d replicas, round %d: the payment was refused: %v", replicas, round, payErr)
			}
			if !keys.has(tid) || out.Erased {
				t.Fatalf("%d replicas, round %d: the talent was erased beside a payment: %+v", replicas, round, out)
			}
			if eraseErr != nil {
				wantCode(t, eraseErr, ECONFLICT)
			} else if want := AddMonths("2024-01-15", 60); out.NotBefore < want {
				t.Fatalf("%d replicas, round %d: scheduled for %s, before the service ends on %s", replicas, round, out.NotBefore, want)
			}
			for _, ev := range readAll(t, st) {
				for _, v := range sealedIn(ev.Data) {
					if plain, _, hidden := a.Cipher().Open(v); hidden {
						t.Fatalf("%d replicas, round %d: a value sealed by one shows %q to the other", replicas, round, plain)
					}
				}
			}
		}
	}
}

// sealedIn returns the sealed string values in an event's JSON.
func sealedIn(data []byte) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if Sealed(v) {
				out = append(out, v)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var v any
	_ = json.Unmarshal(data, &v)
	walk(v)
	return out
}
