package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// importHistory is a small history of past decisions: a rent program, its
// 2024 budget, a talent, and a grant approved and paid once.
const importHistory = `{"date":"2024-01-02","principal":"ada","role":"admin","path":"/v1/programs","body":{"id":"rent","name":"Rent","kind":"rent","caps":{"B":"30000.00"},"schedule":{"monthly_amount":"2500.00","months":12},"entitlement":{"max_months":36}}}
{"date":"2024-01-02","principal":"zhao.min","role":"approver","path":"/v1/programs/rent/budgets","body":{"fiscal_year":2024,"amount":"1000000.00"}}
{"date":"2024-01-03","principal":"wang.li","role":"clerk","path":"/v1/talents","body":{"name":"Lin Qiao","permit_category":"A","tier":"B","employer":"Pinghu Optics"},"as":"lin"}
{"date":"2024-01-04","principal":"wang.li","role":"clerk","path":"/v1/grants","body":{"talent_id":"@lin","program_id":"rent","amount_requested":"30000.00","document_ref":"APP-1"},"as":"g1"}
{"date":"2024-01-05","principal":"li.na","role":"reviewer","path":"/v1/grants/@g1/review","body":{"decision":"approve"}}
{"date":"2024-01-08","principal":"zhao.min","role":"approver","path":"/v1/grants/@g1/approve","body":{"document_ref":"APR-1"}}
{"date":"2024-01-08","principal":"wang.li","role":"clerk","path":"/v1/grants/@g1/installments/1/payments","body":{}}
{"date":"2024-01-09","principal":"zhao.min","role":"approver","path":"/v1/payments/@g1-1-1/approve","body":{}}
{"date":"2024-01-10","principal":"chen.yu","role":"treasurer","path":"/v1/payments/@g1-1-1/release","body":{"bank_reference":"BANK-1"}}
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runImportCmd(t *testing.T, dir, file string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"import", "--no-encryption", "--data", dir, file}, &out, &errb)
	return code, out.String() + errb.String()
}

func storeEvents(t *testing.T, dir string) []eventstore.Event {
	t.Helper()
	store, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var evs []eventstore.Event
	it := store.ReadAll(context.Background(), eventstore.Start)
	defer it.Close()
	for it.Next() {
		evs = append(evs, it.Event())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestImportHistory: past decisions enter with their dates, each event
// marked source "import" and dated as the line says; importing the file
// again appends nothing.
func TestImportHistory(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "history.jsonl", importHistory)
	if code, out := runImportCmd(t, dir, file); code != exitOK {
		t.Fatalf("import exited %d: %s", code, out)
	}
	evs := storeEvents(t, dir)
	released := false
	for _, e := range evs {
		if e.Metadata.Source != domain.SourceImport {
			t.Errorf("%s %s is marked source %q, want import", e.Stream, e.Type, e.Metadata.Source)
		}
		if e.Type == domain.TypePaymentReleased {
			released = true
			if e.Metadata.EffectiveDate != "2024-01-10" || e.Metadata.Principal != "chen.yu" {
				t.Errorf("release dated %s by %s, want 2024-01-10 by chen.yu", e.Metadata.EffectiveDate, e.Metadata.Principal)
			}
		}
	}
	if !released {
		t.Fatal("the history's payment was not released")
	}
	if code, out := runImportCmd(t, dir, file); code != exitOK {
		t.Fatalf("second import exited %d: %s", code, out)
	}
	if again := storeEvents(t, dir); len(again) != len(evs) {
		t.Errorf("importing the same file again appended %d events", len(again)-len(evs))
	}
}

// TestImportRefusesBadFiles: a file with any bad line appends nothing, and
// every bad line is reported with its number.
func TestImportRefusesBadFiles(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(importHistory), "\n")
	for name, tc := range map[string]struct {
		edit func([]string) []string
		want []string
	}{
		"dates backwards in a stream": {func(l []string) []string {
			// The review is dated before the application.
			l[4] = strings.Replace(l[4], `"2024-01-05"`, `"2024-01-01"`, 1)
			return l
		}, []string{"line 5: 422 effective_date_before_stream"}},
		"a date in the future": {func(l []string) []string {
			l[8] = strings.Replace(l[8], `"2024-01-10"`, `"2099-01-10"`, 1)
			return l
		}, []string{"line 9: 422 effective_date_in_future"}},
		"an unknown field and an unknown label": {func(l []string) []string {
			l[1] = strings.Replace(l[1], `"role"`, `"rôle":"x","role"`, 1)
			l[5] = strings.Replace(l[5], "@g1", "@g9", 1)
			return l
		}, []string{"line 2:", "line 6: @g9"}},
		"a role the route does not allow": {func(l []string) []string {
			l[7] = strings.Replace(l[7], `"role":"approver"`, `"role":"clerk"`, 1)
			return l
		}, []string{"line 8: 403 forbidden"}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			// Something in the store already, which must stay as it is.
			seed := writeFile(t, "seed.jsonl", lines[0]+"\n")
			if code, out := runImportCmd(t, dir, seed); code != exitOK {
				t.Fatalf("seed import exited %d: %s", code, out)
			}
			before := len(storeEvents(t, dir))
			file := writeFile(t, "bad.jsonl", strings.Join(tc.edit(append([]string(nil), lines...)), "\n"))
			code, out := runImportCmd(t, dir, file)
			if code != exitCantRun {
				t.Errorf("import exited %d, want %d", code, exitCantRun)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if after := len(storeEvents(t, dir)); after != before {
				t.Errorf("a refused import appended %d events", after-before)
			}
		})
	}
}
