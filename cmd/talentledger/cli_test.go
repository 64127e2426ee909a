package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// subcommands are every subcommand of the binary.
var subcommands = []string{"serve", "demo", "verify", "keygen", "bench", "export", "import", "version", "backup", "restore"}

// runCLI runs the binary's entry point and returns the exit code and what
// it printed.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// wantOneLine checks a refusal: exit 2 and one line on stderr that
// contains want.
func wantOneLine(t *testing.T, args []string, want string) {
	t.Helper()
	code, _, stderr := runCLI(t, args...)
	if code != exitCantRun {
		t.Errorf("%v: exit %d, want %d; stderr %q", args, code, exitCantRun, stderr)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		t.Errorf("%v: stderr %q, want one line naming %q", args, stderr, want)
	}
}

func TestEverySubcommandRefusesStrayArguments(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range subcommands {
		if cmd != "import" { // import's one argument is its file
			wantOneLine(t, []string{cmd, "oops"}, `"oops"`)
		}
		wantOneLine(t, []string{cmd, "--no-such-flag"}, "no-such-flag")
		wantOneLine(t, []string{cmd, "-no-such-flag=1"}, "no-such-flag")
	}
	// A stray argument used to end the flags silently: the head was never
	// opened and verify said OK; serve started without its signing key.
	data := filepath.Join(dir, "data")
	wantOneLine(t, []string{"verify", "--data", data, "oops", "--head", filepath.Join(dir, "nonexistent.json")}, `"oops"`)
	wantOneLine(t, []string{"serve", "--principals", filepath.Join(dir, "p.json"), "--addr", "127.0.0.1:0", "--data", data, "extra", "--audit-key", "x"}, `"extra"`)
	wantOneLine(t, []string{"import", "--data", data, "file.jsonl", "--data", "other"}, `"--data"`)
	wantOneLine(t, []string{"import", "--data", data}, "missing FILE")
	if _, err := os.Stat(data); err == nil {
		t.Error("a refused command created its data directory")
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, cmd := range subcommands {
		for _, h := range []string{"-h", "--help", "-help"} {
			code, stdout, stderr := runCLI(t, cmd, h)
			if code != exitOK || stderr != "" || !strings.Contains(stdout, "usage: talentledger "+cmd) {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", cmd, h, code, stdout, stderr)
			}
		}
	}
	if code, stdout, _ := runCLI(t, "--help"); code != exitOK || !strings.Contains(stdout, "version") {
		t.Errorf("--help: exit %d, %q", code, stdout)
	}
}

func TestNumbersAreStrict(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--max-in-flight", "abc"}, "max-in-flight"},
		{[]string{"serve", "--max-in-flight", "+5"}, "max-in-flight"},
		{[]string{"serve", "--max-in-flight", "0x10"}, "max-in-flight"},
		{[]string{"serve", "--max-in-flight", "1_000"}, "max-in-flight"},
		{[]string{"serve", "--max-in-flight", "064"}, "max-in-flight"},
		{[]string{"serve", "--max-in-flight", "-0"}, "max-in-flight"},
		{[]string{"serve", "--max-in-flight", " 5"}, "max-in-flight"},
		{[]string{"bench", "--clients", "+2"}, "clients"},
		{[]string{"bench", "--read-ratio", "0x1p-1"}, "read-ratio"},
		{[]string{"bench", "--read-ratio", "NaN"}, "read-ratio"},
		{[]string{"bench", "--duration", "+1s"}, "duration"},
		{[]string{"bench", "--duration", "-1s"}, "duration"},
	} {
		wantOneLine(t, c.args, c.want)
	}
}

func TestEnvironmentIsParsedLikeFlags(t *testing.T) {
	t.Setenv("TALENTLEDGER_MAX_IN_FLIGHT", "abc")
	wantOneLine(t, []string{"serve", "--principals", "p.json"}, "TALENTLEDGER_MAX_IN_FLIGHT")
	t.Setenv("TALENTLEDGER_MAX_IN_FLIGHT", "+5")
	wantOneLine(t, []string{"demo"}, "TALENTLEDGER_MAX_IN_FLIGHT")
	t.Setenv("TALENTLEDGER_MAX_IN_FLIGHT", "")
	wantOneLine(t, []string{"serve"}, "TALENTLEDGER_MAX_IN_FLIGHT")
}

func TestVersion(t *testing.T) {
	code, stdout, stderr := runCLI(t, "version")
	if code != exitOK || stderr != "" {
		t.Fatalf("version: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"talentledger ", runtime.Version(), "store format 3"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("version printed %q, want %q in it", stdout, want)
		}
	}
}

// The profiles a bench serves (--pprof-addr) stay on the machine: an
// address off loopback, or one that is no address, is refused in one line,
// before a bench writes anything.
func TestPprofAddrIsLoopbackOnly(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--pprof-addr", "8.8.8.8:6060", "--duration", "1s"}, "loopback"},
		{[]string{"bench", "scale", "--events", "10", "--pprof-addr", "8.8.8.8:6060"}, "loopback"},
		{[]string{"bench", "scale", "--events", "10", "--pprof-addr", "0.0.0.0:6060"}, "loopback"},
		{[]string{"bench", "scale", "--events", "10", "--pprof-addr", "nonsense"}, "nonsense"},
	} {
		data := filepath.Join(t.TempDir(), "scale")
		if c.args[1] == "scale" {
			c.args = append(c.args, "--data", data)
		}
		wantOneLine(t, c.args, c.want)
		if _, err := os.Stat(data); err == nil {
			t.Errorf("%v: a refused bench created %s", c.args, data)
		}
	}
}
