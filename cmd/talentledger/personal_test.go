package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/domain/keystore"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
)

// The personal data of the test talent: a name, an ID number and a bank
// account none of the files under the data directory may hold.
const (
	secretName    = "欧阳震华"
	secretID      = "330482199001011234"
	secretAccount = "6222020200112233445"
)

// grepTree returns the files under dirs whose bytes hold any of needles.
func grepTree(t *testing.T, needles []string, dirs ...string) []string {
	t.Helper()
	var hits []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, n := range needles {
				if bytes.Contains(b, []byte(n)) {
					hits = append(hits, fmt.Sprintf("%s holds %q", path, n))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return hits
}

// apiClient calls a running server as the holders of tokens.
type apiClient struct {
	t      *testing.T
	base   string
	tokens map[string]string
}

func (c apiClient) do(who, method, path string, body any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	req.Header.Set("Authorization", "Bearer "+c.tokens[who])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// must calls and decodes the answer, failing unless the status is want.
func (c apiClient) must(want int, who, method, path string, body any) map[string]any {
	c.t.Helper()
	code, b := c.do(who, method, path, body)
	if code != want {
		c.t.Fatalf("%s %s as %s: %d %s", method, path, who, code, b)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func (c apiClient) get(who, path string) []byte {
	c.t.Helper()
	code, b := c.do(who, "GET", path, nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET %s as %s: %d %s", path, who, code, b)
	}
	return b
}

// TestPersonalDataErasedWhileProofsHold runs the binary's serve with a
// master key, records two talents, and checks: no file of the data
// directory, its views, its key store or a backup holds a talent's name,
// ID number or bank account in plain text; each role sees what it may;
// an erasure needs four eyes, waits while a grant is open and for the
// retention after a payment, and once carried out leaves every answer
// showing the talent erased while the log verifies, the talent's events
// are still proven in the tree, and the books are unchanged to the fen.
func TestPersonalDataErasedWhileProofsHold(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	master := filepath.Join(dir, "master.key")
	keyFile := filepath.Join(dir, "audit-key.pem")
	witness := filepath.Join(dir, "witness")
	if code, msg := runCmd(t, "keystore", "new-master-key", master); code != exitOK {
		t.Fatalf("new-master-key: %d %s", code, msg)
	}
	if code, msg := runCmd(t, "keygen", "--out", keyFile); code != exitOK {
		t.Fatalf("keygen: %d %s", code, msg)
	}
	auditKey, err := loadAuditKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, id := range []string{"admin", "clerk", "clerk2", "reviewer", "approver", "approver2", "treasurer", "auditor", "fund_manager"} {
		tokens[id] = ledgerhttp.NewToken()
	}
	principals := writePrincipals(t, dir, tokens)

	// Without a master key (or --no-encryption) serve does not start.
	if code, msg := runCmd(t, "serve", "--data", data, "--principals", principals, "--no-witness"); code != exitCantRun || !strings.Contains(msg, "--master-key") {
		t.Fatalf("serve without a master key: exit %d; %s", code, msg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--principals", principals, "--addr", "127.0.0.1:0",
			"--master-key", master, "--audit-key", keyFile, "--witness", witness, "--head-interval", "100ms"}, io.Discard, &logs)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited %d; log:\n%s", code, logs.String())
		}
	}
	t.Cleanup(stop)
	c := apiClient{t: t, base: "http://" + logAddr(t, &logs, "serving"), tokens: tokens}
	fy := domain.Today(time.Now())[:4]

	c.must(201, "admin", "POST", "/v1/programs", map[string]any{"id": "transport", "name": "Transport subsidy", "kind": "transport",
		"caps": map[string]string{"B": "6000.00", "C": "6000.00"}, "schedule": map[string]any{"percentages": []int{100}}})
	c.must(201, "approver", "POST", "/v1/programs/transport/budgets", map[string]any{"fiscal_year": json.Number(fy), "amount": "100000.00", "document_ref": "PHCZ-1"})

	// Talent A is paid; talent B (the secret one) only applies, and is refused.
	a := c.must(201, "clerk", "POST", "/v1/talents", map[string]any{"name": "Ada Lovelace", "tier": "B", "employer": "Pinghu Optics",
		"bank_account": "6222000011112222333", "bank_name": "ICBC Pinghu"})["id"].(string)
	regB := c.must(201, "clerk", "POST", "/v1/talents", map[string]any{"name": secretName, "tier": "C", "employer": "平湖精密机械",
		"id_number": secretID, "bank_account": secretAccount, "bank_name": "中国工商银行平湖支行", "phone": "13900001111"})
	b := regB["id"].(string)
	ga := c.must(201, "clerk", "POST", "/v1/grants", map[string]any{"talent_id": a, "program_id": "transport", "amount_requested": "6000.00", "document_ref": "APP-A"})["id"].(string)
	gb := c.must(201, "clerk", "POST", "/v1/grants", map[string]any{"talent_id": b, "program_id": "transport", "amount_requested": "6000.00", "document_ref": "APP-B"})["id"].(string)
	c.must(200, "reviewer", "POST", "/v1/grants/"+gb+"/review", map[string]any{"decision": "reject", "note": "申请人" + secretName + "材料不全"})
	c.must(200, "reviewer", "POST", "/v1/grants/"+ga+"/review", map[string]any{"decision": "approve"})
	c.must(200, "approver", "POST", "/v1/grants/"+ga+"/approve", map[string]any{})

	// An open grant holds A's erasure back.
	c.must(201, "clerk", "POST", "/v1/talents/"+a+"/erasure", map[string]any{"reason": "asked by the person", "document_ref": "DEL-A"})
	if code, body := c.do("approver", "POST", "/v1/talents/"+a+"/erasure/approve", map[string]any{}); code != http.StatusConflict {
		t.Fatalf("erasure with an open grant: %d %s", code, body)
	}
	pay := c.must(201, "clerk", "POST", "/v1/grants/"+ga+"/installments/1/payments", map[string]any{})["id"].(string)
	c.must(200, "approver", "POST", "/v1/payments/"+pay+"/approve", map[string]any{})
	rel := c.must(200, "treasurer", "POST", "/v1/payments/"+pay+"/release", map[string]any{"bank_reference": "BK-1"})
	minPos := fmt.Sprint(rel["position"])

	// Who sees what of B: route × role × field.
	masked := func(v string) string { return domain.Mask(v) }
	for _, tc := range []struct {
		who               string
		name, id, account string
	}{
		{"clerk", secretName, secretID, secretAccount},
		{"treasurer", secretName, secretID, secretAccount},
		{"approver", secretName, masked(secretID), masked(secretAccount)},
		{"auditor", secretName, masked(secretID), masked(secretAccount)},
		{"reviewer", secretName, masked(secretID), masked(secretAccount)},
		{"admin", secretName, masked(secretID), masked(secretAccount)},
		{"fund_manager", secretName, masked(secretID), masked(secretAccount)},
	} {
		var v struct{ Name, IDNumber, BankAccount string }
		raw := c.get(tc.who, "/v1/talents/"+b+"?min_position="+minPos)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		v.Name, _ = m["name"].(string)
		v.IDNumber, _ = m["id_number"].(string)
		v.BankAccount, _ = m["bank_account"].(string)
		if v.Name != tc.name || v.IDNumber != tc.id || v.BankAccount != tc.account {
			t.Errorf("GET /v1/talents/{id} as %s: name %q id %q account %q; want %q %q %q", tc.who, v.Name, v.IDNumber, v.BankAccount, tc.name, tc.id, tc.account)
		}
	}
	if reg := c.get("auditor", "/v1/export/grants.csv"); !bytes.Contains(reg, []byte(secretName)) {
		t.Errorf("the grants register does not name the talent:\n%s", reg)
	}
	if trail := c.get("auditor", "/v1/grants/"+gb+"/trail"); !bytes.Contains(trail, []byte("申请人"+secretName+"材料不全")) {
		t.Errorf("the trail does not show the review's note:\n%s", trail)
	}
	// The auditor's unmasking answers in full and is itself recorded.
	if code, _ := c.do("auditor", "POST", "/v1/talents/"+b+"/unmask", map[string]any{}); code != http.StatusBadRequest {
		t.Errorf("an unmasking without a reason: %d", code)
	}
	un := c.must(200, "auditor", "POST", "/v1/talents/"+b+"/unmask", map[string]any{"reason": "reconciling a bank return"})
	if un["id_number"] != secretID || un["bank_account"] != secretAccount {
		t.Errorf("unmasked: %v", un)
	}

	// B's key rotated (by an admin, with a reason): what is recorded
	// from now on is sealed under the new key, and what was recorded
	// before still opens under the old one.
	if code, _ := c.do("clerk", "POST", "/v1/talents/"+b+"/key-rotation", map[string]any{"reason": "key exposed"}); code != http.StatusForbidden {
		t.Errorf("a clerk rotating a key: %d", code)
	}
	if code, _ := c.do("admin", "POST", "/v1/talents/"+b+"/key-rotation", map[string]any{}); code != http.StatusBadRequest {
		t.Errorf("a rotation without a reason: %d", code)
	}
	rot := c.must(200, "admin", "POST", "/v1/talents/"+b+"/key-rotation", map[string]any{"reason": "a laptop with an export was lost"})
	if rot["version"] != float64(2) || rot["key_id"] == "" {
		t.Errorf("rotation: %v", rot)
	}
	gb2 := c.must(201, "clerk", "POST", "/v1/grants", map[string]any{"talent_id": b, "program_id": "transport", "amount_requested": "6000.00", "document_ref": "APP-B2"})["id"].(string)
	rej2 := c.must(200, "reviewer", "POST", "/v1/grants/"+gb2+"/review", map[string]any{"decision": "reject", "note": "复核" + secretName + "仍不全"})
	rotPos := fmt.Sprint(rej2["position"])
	for path, want := range map[string]string{"/v1/grants/" + gb + "/trail": "申请人" + secretName + "材料不全", "/v1/grants/" + gb2 + "/trail": "复核" + secretName + "仍不全"} {
		if trail := c.get("auditor", path+"?min_position="+rotPos); !bytes.Contains(trail, []byte(want)) {
			t.Errorf("after the rotation %s does not show %q:\n%s", path, want, trail)
		}
	}

	// Before the erasure: a backup of the data and one of the key store.
	backup := filepath.Join(dir, "backup")
	if code, msg := runCmd(t, "backup", "--data", data, "--out", backup, "--public-key", publicKeyString(auditKey)); code != exitOK {
		t.Fatalf("backup: %d %s", code, msg)
	}
	keysBackup := filepath.Join(dir, "keys-backup")
	// The key store directory is the server's; its backup copies files.
	if code, msg := runCmd(t, "keystore", "backup", "--data", data, "--master-key", master, keysBackup); code != exitOK {
		t.Fatalf("keystore backup: %d %s", code, msg)
	}
	secrets := []string{secretName, secretID, secretAccount}
	if hits := grepTree(t, secrets, data, backup); len(hits) > 0 {
		t.Errorf("plain personal data before the erasure:\n%s", strings.Join(hits, "\n"))
	}
	keysOf, _, err := keystore.WrappedKeys(data + ".keys")
	if err != nil || len(keysOf[b]) != 2 {
		t.Fatalf("the talent's two key versions are not in the key store: %d (%v)", len(keysOf[b]), err)
	}
	var wrapped []string
	for _, w := range keysOf[b] {
		wrapped = append(wrapped, string(w))
	}
	balances := func() []byte {
		var tb map[string]any
		if err := json.Unmarshal(c.get("auditor", "/v1/ledger/balances"), &tb); err != nil {
			t.Fatal(err)
		}
		delete(tb, "position")
		out, _ := json.Marshal(tb)
		return out
	}
	booksBefore, budgetBefore := balances(), c.get("auditor", "/v1/programs/transport/budgets/"+fy)

	// Four eyes: the clerk who asks may not approve; another approver does.
	c.must(201, "clerk", "POST", "/v1/talents/"+b+"/erasure", map[string]any{"reason": "asked by the person (PIPL art. 47)", "document_ref": "DEL-B"})
	if code, _ := c.do("clerk", "POST", "/v1/talents/"+b+"/erasure/approve", map[string]any{}); code != http.StatusForbidden {
		t.Errorf("a clerk approving an erasure: %d", code)
	}
	out := c.must(200, "approver2", "POST", "/v1/talents/"+b+"/erasure/approve", map[string]any{})
	if out["erased"] != true {
		t.Fatalf("B's erasure: %v", out)
	}
	// A, paid today, waits for the retention: scheduled and listed.
	outA := c.must(200, "approver", "POST", "/v1/talents/"+a+"/erasure/approve", map[string]any{})
	if outA["erased"] != false || outA["not_before"] != domain.AddMonths(domain.Today(time.Now()), domain.DefaultRetentionMonths) {
		t.Errorf("A's erasure: %v", outA)
	}
	pos := fmt.Sprint(outA["position"])
	var list []map[string]any
	if err := json.Unmarshal(c.get("approver", "/v1/erasures?state=scheduled&min_position="+pos), &list); err != nil || len(list) != 1 || list[0]["talent_id"] != a {
		t.Errorf("scheduled erasures: %v %v", list, err)
	}
	if keysOf, dead, err := keystore.WrappedKeys(data + ".keys"); err != nil || keysOf[b] != nil || !dead[b] || keysOf[a] == nil {
		t.Errorf("after the erasure the key store has B's key %v, destroyed %v, A's key %v (%v)", keysOf[b] != nil, dead[b], keysOf[a] != nil, err)
	}
	if hits := grepTree(t, wrapped, data+".keys"); len(hits) > 0 {
		t.Errorf("a destroyed key is still in the key store: %v", hits)
	}

	// After: every answer shows B erased, the books are as they were.
	for _, who := range []string{"clerk", "auditor", "treasurer"} {
		var m map[string]any
		_ = json.Unmarshal(c.get(who, "/v1/talents/"+b+"?min_position="+pos), &m)
		for _, f := range []string{"name", "employer", "id_number", "bank_account", "bank_name", "phone"} {
			if m[f] != domain.Erased {
				t.Errorf("as %s after the erasure, %s is %v", who, f, m[f])
			}
		}
		if m["tier"] != "C" {
			t.Errorf("the tier went with the erasure: %v", m["tier"])
		}
	}
	for path, who := range map[string]string{"/v1/export/grants.csv": "auditor", "/v1/grants/" + gb + "/trail": "auditor", "/v1/grants/" + gb2 + "/trail": "auditor"} {
		body := c.get(who, path)
		if bytes.Contains(body, []byte(secretName)) || !bytes.Contains(body, []byte(domain.Erased)) {
			t.Errorf("%s after the erasure:\n%s", path, body)
		}
	}
	if code, _ := c.do("auditor", "POST", "/v1/talents/"+b+"/unmask", map[string]any{"reason": "again"}); code != http.StatusConflict {
		t.Errorf("an unmasking after the erasure: %d", code)
	}
	if got := balances(); !bytes.Equal(got, booksBefore) {
		t.Errorf("the trial balance changed:\n%s\n%s", booksBefore, got)
	}
	if got := c.get("auditor", "/v1/programs/transport/budgets/"+fy); !bytes.Equal(got, budgetBefore) {
		t.Errorf("the budget changed:\n%s\n%s", budgetBefore, got)
	}
	// B's registration is still proven in the tree, from its stored bytes.
	regPos := fmt.Sprint(regB["position"])
	var proof struct {
		Head     auditproof.TreeHead   `json:"tree_head"`
		Index    uint64                `json:"leaf_index"`
		LeafHash auditproof.HexBytes   `json:"leaf_hash"`
		Proof    []auditproof.HexBytes `json:"proof"`
		Event    eventstore.Event      `json:"event"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := c.do("auditor", "GET", "/v1/audit/proofs/inclusion?position="+regPos, nil)
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &proof); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inclusion proof: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if proof.Event.Type != domain.TypeTalentRegistered || !strings.Contains(string(proof.Event.Data), b) {
		t.Fatalf("the proven event: %s %s", proof.Event.Type, proof.Event.Data)
	}
	if err := auditproof.VerifyTreeHead(auditKey.Public().(ed25519.PublicKey), proof.Head); err != nil {
		t.Error(err)
	}
	leaf := auditproof.LeafHash(&proof.Event)
	if !bytes.Equal(leaf, proof.LeafHash) {
		t.Error("the leaf hash is not that of the event as served")
	}
	if err := auditproof.VerifyInclusion(proof.Head, proof.Index, leaf, proof.Proof); err != nil {
		t.Errorf("inclusion of the erased talent's registration: %v", err)
	}

	stop()
	// Stopped: every file holds no plain personal data, the views written
	// at the stop included; the log verifies against the witness.
	if hits := grepTree(t, secrets, data, data+".views", data+".keys", backup); len(hits) > 0 {
		t.Errorf("plain personal data after the erasure:\n%s", strings.Join(hits, "\n"))
	}
	if code, msg := runVerifyCmd(t, "--data", data, "--witness", witness, "--public-key", publicKeyString(auditKey)); code != exitOK {
		t.Errorf("verify after the erasure: exit %d; %s", code, msg)
	}
	// The master key rotated: A's key opens under the new one only, the
	// rotation is in the log, and the log still verifies.
	newMaster := filepath.Join(dir, "master2.key")
	if code, msg := runCmd(t, "keystore", "new-master-key", newMaster); code != exitOK {
		t.Fatalf("new-master-key: %d %s", code, msg)
	}
	if code, msg := runCmd(t, "keystore", "rotate-master", "--data", data, "--master-key", master, "--new-master-key", newMaster,
		"--principal", "admin"); code != exitOK || !strings.Contains(msg, "wrapped 1 data keys") {
		t.Fatalf("rotate-master: %d %s", code, msg)
	}
	newK, _ := keystore.ReadMasterKey(newMaster)
	ks, err := keystore.Open(data+".keys", newK)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ks.DataKey(a, false); err != nil {
		t.Errorf("A's key under the new master key: %v", err)
	}
	ks.Close()
	if code, msg := runVerifyCmd(t, "--data", data, "--witness", witness, "--public-key", publicKeyString(auditKey)); code != exitOK {
		t.Errorf("verify after the rotation: exit %d; %s", code, msg)
	}

	// The key store backup still holds B's key until purged.
	if hits := grepTree(t, wrapped, keysBackup); len(hits) != 2 {
		t.Fatalf("the key store backup lacks the keys it was taken with: %v", hits)
	}
	code, msg := runCmd(t, "keystore", "purge-backups", "--data", data, "--master-key", newMaster, keysBackup)
	if code != exitOK || !strings.Contains(msg, "removed 2 destroyed keys") {
		t.Errorf("purge-backups: %d %s", code, msg)
	}
	if hits := grepTree(t, wrapped, keysBackup); len(hits) > 0 {
		t.Errorf("the purged backup still holds a key: %v", hits)
	}
}

func TestKeystoreCommandRefusesBadUsage(t *testing.T) {
	dir := t.TempDir()
	master := filepath.Join(dir, "m.key")
	if code, msg := runCmd(t, "keystore", "new-master-key", master); code != exitOK {
		t.Fatalf("new-master-key: %d %s", code, msg)
	}
	for _, args := range [][]string{
		{"keystore"},
		{"keystore", "rotate"},
		{"keystore", "new-master-key"},
		{"keystore", "new-master-key", master}, // exists: never overwritten
		{"keystore", "backup", "--data", dir},  // no master key
		{"keystore", "purge-backups", "--data", dir, "--master-key", master},
		{"keystore", "purge-backups", "--data", dir, "--master-key", master, filepath.Join(dir, "nothing")},
	} {
		if code, msg := runCmd(t, args...); code != exitCantRun {
			t.Errorf("%v: exit %d, want %d; %s", args, code, exitCantRun, msg)
		}
	}
	principals := writePrincipals(t, dir, map[string]string{"clerk": "tok"})
	code, msg := runCmd(t, "serve", "--data", filepath.Join(dir, "d"), "--principals", principals, "--no-witness", "--no-encryption", "--master-key", master)
	if code != exitCantRun || !strings.Contains(msg, "--no-encryption goes with neither") {
		t.Errorf("serve with --no-encryption and a master key: exit %d; %s", code, msg)
	}
}

// TestDemoLoadsSealed loads the demo data set with encryption on, as
// demo does: it loads, and its data directory names none of its talents.
func TestDemoLoadsSealed(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	store, err := pebble.Open(data, pebble.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Open(filepath.Join(dir, "keys"), bytes.Repeat([]byte{3}, keystore.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	svc := domain.NewService(store, domain.WithCipher(domain.NewCipher(ks)))
	if err := loadDemo(context.Background(), svc); err != nil {
		store.Close()
		t.Fatalf("loadDemo, sealed: %v", err)
	}
	store.Close()
	if hits := grepTree(t, []string{"Thomas Müller", "Lucía García"}, data); len(hits) > 0 {
		t.Errorf("the demo's names in plain text:\n%s", strings.Join(hits, "\n"))
	}
}
