package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String() + errb.String()
}

// TestBackupRestoreOnline backs a running server's directory up through its
// socket, restores the backup and verifies what was restored.
func TestBackupRestoreOnline(t *testing.T) {
	d := buildWitnessedDir(t).clone(t)
	principals := writePrincipals(t, t.TempDir(), map[string]string{"auditor": "tok-auditor"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--no-encryption", "--data", d.data, "--principals", principals, "--addr", "127.0.0.1:0",
			"--witness", d.witness, "--audit-key", d.keyFile, "--scrub-rate", "0"}, io.Discard, &logs)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited %d; log:\n%s", code, logs.String())
		}
	})
	sock := filepath.Join(d.data, controlSocket)
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 6000 { // a minute: a loaded machine starts slowly
			t.Fatalf("the server opened no backup socket; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	out := filepath.Join(t.TempDir(), "backup")
	code, msg := runCmd(t, "backup", "--data", d.data, "--out", out, "--public-key", publicKeyString(d.key))
	if code != exitOK || !strings.Contains(msg, fmt.Sprintf("holds %d events", d.events)) {
		t.Fatalf("backup: exit %d; %s", code, msg)
	}
	if code, msg := runCmd(t, "backup", "--data", d.data, "--out", out); code != exitCantRun || !strings.Contains(msg, "exists") {
		t.Fatalf("backup into an existing directory: exit %d; %s", code, msg)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	code, msg = runCmd(t, "restore", "--from", out, "--data", restored, "--witness", d.witness, "--public-key", publicKeyString(d.key))
	if code != exitOK || !strings.Contains(msg, fmt.Sprintf("restored %d events", d.events)) {
		t.Fatalf("restore: exit %d; %s", code, msg)
	}
	code, msg = runVerifyCmd(t, "--data", restored, "--witness", d.witness, "--public-key", publicKeyString(d.key))
	if code != exitOK {
		t.Fatalf("verify of the restored directory: exit %d; %s", code, msg)
	}
	if code, msg := runCmd(t, "restore", "--from", out, "--data", restored); code != exitCantRun || !strings.Contains(msg, "not empty") {
		t.Fatalf("restore into a non-empty directory: exit %d; %s", code, msg)
	}
}

// TestRestoreRefusesDamagedBackup restores nothing from a backup whose log
// was changed.
func TestRestoreRefusesDamagedBackup(t *testing.T) {
	d := buildWitnessedDir(t).clone(t)
	out := filepath.Join(t.TempDir(), "backup")
	if code, msg := runCmd(t, "backup", "--data", d.data, "--out", out, "--witness", d.witness); code != exitOK {
		t.Fatalf("offline backup: exit %d; %s", code, msg)
	}
	db := rawDB(t, filepath.Join(out, "data"))
	pos, rec := findRecord(t, db, `"Elena Petrova"`)
	if err := db.Set(logKey(pos), bytes.Replace(rec, []byte("Elena"), []byte("Elenb"), 1), nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	restored := filepath.Join(t.TempDir(), "restored")
	code, msg := runCmd(t, "restore", "--from", out, "--data", restored)
	if code != exitCantRun || !strings.Contains(msg, fmt.Sprintf("position %d ", pos)) {
		t.Fatalf("restore of a damaged backup: exit %d; %s", code, msg)
	}
	if _, err := os.Stat(restored); !os.IsNotExist(err) {
		t.Errorf("a failed restore left %s behind", restored)
	}
}
