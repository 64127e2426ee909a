package http_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/domain/keystore"
)

func cipherFor(t *testing.T) *domain.Cipher {
	t.Helper()
	ks, err := keystore.Open(filepath.Join(t.TempDir(), "keys"), bytes.Repeat([]byte{7}, keystore.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return domain.NewCipher(ks)
}

// TestMaskingByRoleFieldAndRoute is the table of what each role sees of a
// talent's ID number and bank account on each route that shows them: in
// full for the clerk who enters them and the treasurer who pays to them,
// masked for every other role; names are never masked.
func TestMaskingByRoleFieldAndRoute(t *testing.T) {
	e := newTestServer(t, withCipher(cipherFor(t)))
	const (
		name    = "司马相如"
		id      = "330482199001011234"
		account = "6222020200112233445"
		bank    = "中国工商银行平湖支行"
	)
	e.setupProgram(quickProgram("q", "6000.00"), "100000.00")
	talent := e.as(clerk1).command(http.StatusCreated, "/v1/talents", map[string]any{"name": name, "tier": "B", "employer": "平湖光学",
		"id_number": id, "bank_account": account, "bank_name": bank, "effective_date": "2024-01-02"})
	g := e.approvedGrant(talent, "q", "6000.00")
	pid := e.as(clerk1).command(http.StatusCreated, "/v1/grants/"+g+"/installments/1/payments", map[string]any{"effective_date": "2024-02-06"})
	e.as(approver1).command(http.StatusOK, "/v1/payments/"+pid+"/approve", map[string]any{"effective_date": "2024-02-06"})
	r := e.as(treasurer1).post("/v1/payments/batch-release", map[string]any{"payment_ids": []string{pid}, "effective_date": "2024-02-06"})
	if r.status != http.StatusMultiStatus {
		t.Fatalf("batch release: %s", r)
	}
	batch := decodeAs[struct{ Batch string }](t, r).Batch

	maskedID, maskedAccount := "3304**********1234", "6222***********3445"
	type row struct {
		route, who          string
		wantID, wantAccount string // "" when the route does not show the field
		status              int
	}
	var rows []row
	for _, who := range []string{clerk1, treasurer1, approver1, auditor, reviewer1, admin, fundManager} {
		full := who == clerk1 || who == treasurer1
		wid, wacc := maskedID, maskedAccount
		if full {
			wid, wacc = id, account
		}
		rows = append(rows, row{"/v1/talents/" + talent, who, wid, wacc, http.StatusOK})
		bankStatus := http.StatusForbidden
		if who == treasurer1 || who == approver1 || who == auditor {
			bankStatus = http.StatusOK
		}
		rows = append(rows, row{"/v1/payments/bank-file?batch=" + batch + "&columns=payee_name,account,bank,amount", who, "", wacc, bankStatus})
	}
	for _, tc := range rows {
		r := e.as(tc.who).get(tc.route)
		if r.status != tc.status {
			t.Errorf("%s as %s: %s, want %d", tc.route, tc.who, r, tc.status)
			continue
		}
		if r.status != http.StatusOK {
			continue
		}
		body := string(r.body)
		if !strings.Contains(body, name) {
			t.Errorf("%s as %s: the name is not shown: %s", tc.route, tc.who, body)
		}
		for _, f := range []struct{ want, full, masked string }{{tc.wantID, id, maskedID}, {tc.wantAccount, account, maskedAccount}} {
			if f.want == "" {
				continue
			}
			if !strings.Contains(body, f.want) {
				t.Errorf("%s as %s: want %q in %s", tc.route, tc.who, f.want, body)
			}
			if f.want == f.masked && strings.Contains(body, f.full) {
				t.Errorf("%s as %s: %q shown in full", tc.route, tc.who, f.full)
			}
		}
		if strings.Contains(body, domain.SealedMarker) {
			t.Errorf("%s as %s: a sealed value went out unopened", tc.route, tc.who)
		}
	}
	// The store holds none of it in plain text.
	for _, ev := range e.events() {
		for _, s := range []string{name, id, account, bank} {
			if bytes.Contains(ev.Data, []byte(s)) {
				t.Errorf("%s holds %q in plain text", ev.Type, s)
			}
		}
	}
}

// TestKeyServiceDownIsSaidSo: a command refused because the key service
// cannot be reached is answered 503 unavailable naming the key service,
// and logged as such, not as the event store (which answers fine).
func TestKeyServiceDownIsSaidSo(t *testing.T) {
	var logged bytes.Buffer
	// Nothing listens on port 1 of the loopback address.
	ks, err := keystore.NewClient("http://127.0.0.1:1", strings.Repeat("t", keystore.MinTokenLength), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestServer(t, withCipher(domain.NewCipherTTL(ks, time.Second)), withLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	r := e.as(clerk1).post("/v1/talents", map[string]any{"name": "司马相如", "tier": "B", "employer": "平湖光学", "effective_date": "2024-01-02"})
	wantProblem(t, r, http.StatusServiceUnavailable, "unavailable")
	if !strings.Contains(string(r.body), "key service") || strings.Contains(string(r.body), "event store") {
		t.Errorf("the answer does not say the key service is down: %s", r.body)
	}
	if !strings.Contains(logged.String(), "key service unavailable") || strings.Contains(logged.String(), "event store unavailable") {
		t.Errorf("the log does not say the key service is down: %s", logged.String())
	}
}
