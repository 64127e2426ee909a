package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// getBody fetches path as the holder of token and returns the body.
func getBody(t *testing.T, base, token, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// TestExportMatchesHTTP checks that talentledger export writes, from a data
// directory, the very bytes the API serves for the same data.
func TestExportMatchesHTTP(t *testing.T) {
	dir := t.TempDir()
	served := map[string][]byte{}
	// The sub-test's cleanup stops the server, and closes the store,
	// before the export opens the directory.
	t.Run("serve", func(t *testing.T) {
		base, token := demoServer(t, dir, true)
		served["journal.csv"] = getBody(t, base, token, "/v1/export/journal.csv")
		served["journal_from_2024-01-01_to_2024-06-30.csv"] = getBody(t, base, token, "/v1/export/journal.csv?from=2024-01-01&to=2024-06-30")
		served["grants.csv"] = getBody(t, base, token, "/v1/export/grants.csv")
	})
	if t.Failed() {
		t.FailNow()
	}

	out := t.TempDir()
	for _, args := range [][]string{
		{"export", "--data", dir, "--out", out},
		{"export", "--data", dir, "--out", out, "--from", "2024-01-01", "--to", "2024-06-30"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "grants.csv: ") || !strings.Contains(stdout.String(), " lines; debits ") {
			t.Errorf("%v printed %q", args, stdout.String())
		}
	}
	for name, want := range served {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the CLI wrote %d bytes, the API served %d; they differ", name, len(got), len(want))
		}
		if !bytes.HasPrefix(got, []byte("\xEF\xBB\xBF")) {
			t.Errorf("%s: no BOM", name)
		}
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v, want 0640", name, fi.Mode())
		}
	}
	if !bytes.Contains(served["grants.csv"], []byte("Thomas Müller")) || !bytes.Contains(served["grants.csv"], []byte("Lucía García")) {
		t.Error("grants.csv does not name the demo's talents as written")
	}
	// A ranged journal is a part of the whole.
	if whole, part := served["journal.csv"], served["journal_from_2024-01-01_to_2024-06-30.csv"]; len(part) >= len(whole) || bytes.Count(whole, []byte("\n")) < 100 {
		t.Errorf("journal %d bytes, ranged %d bytes", len(whole), len(part))
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 3 {
		t.Errorf("%d files in the output directory, want 3 and no temporary file left", len(entries))
	}
}

func TestExportRefusesBadUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"export", "--data", dir},
		{"export", "--data", filepath.Join(dir, "missing"), "--out", t.TempDir()},
		{"export", "--data", dir, "--out", t.TempDir(), "--from", "2024-02-30"},
		{"export", "--data", dir, "--out", t.TempDir(), "--from", "2024-12-31", "--to", "2024-01-01"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitCantRun {
			t.Errorf("%v: exit %d, want %d", args, code, exitCantRun)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); err == nil {
		t.Error("export created the missing data directory")
	}
}
