package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"talentledger/eventstore/pebble"
	"talentledger/projections"
	"talentledger/projections/projectionstest"
)

// foldChild folds the log of the store in the first directory into the
// views in the second, committing every few events, and says on stdout
// how far it has got, until it is killed. It is the child process of
// TestViewsSurviveSIGKILLMidFold.
func foldChild(env string) int {
	var dirs [2]string
	if err := json.Unmarshal([]byte(env), &dirs); err != nil {
		fmt.Println("error", err)
		return 2
	}
	store, err := pebble.Open(dirs[0], pebble.WithLogger(quietLogger()))
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	p := projections.New(store, quietLogger(), projections.WithCommitEvery(29))
	if err := p.OpenViews(dirs[1]); err != nil {
		fmt.Println("error", err)
		return 2
	}
	it := store.ReadAll(context.Background(), p.Position())
	n := 0
	for it.Next() {
		ev := it.Event()
		if err := p.Apply(&ev); err != nil {
			fmt.Println("error", err)
			return 2
		}
		if n++; n%50 == 0 {
			fmt.Println("folded", ev.Position.String())
		}
	}
	if err := it.Err(); err != nil {
		fmt.Println("error", err)
		return 2
	}
	if err := p.CloseViews(); err != nil {
		fmt.Println("error", err)
		return 2
	}
	fmt.Println("done")
	return 0
}

// A SIGKILL while the read models fold and commit their views leaves no
// model ahead of its checkpoint nor out of step with it: killed at three
// points of the fold, the models resumed from their views and fed the rest
// of the log answer every query as the models rebuilt from the log.
func TestViewsSurviveSIGKILLMidFold(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a history and runs a child process")
	}
	ctx := context.Background()
	storeDir, viewsDir := filepath.Join(t.TempDir(), "store"), filepath.Join(t.TempDir(), "views")
	store, err := pebble.Open(storeDir, pebble.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := generateScale(ctx, store, 3000, nil); err != nil {
		t.Fatal(err)
	}
	want, err := projections.Replay(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantDump := projectionstest.Dump(want)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal([2]string{storeDir, viewsDir})
	for round, killAfter := range []int{3, 11, 23} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TLTEST_FOLD_CHILD="+string(env))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for seen := 0; seen < killAfter && sc.Scan(); {
			line := sc.Text()
			if strings.HasPrefix(line, "error") {
				t.Fatalf("round %d: child: %s", round, line)
			}
			if strings.HasPrefix(line, "folded") {
				seen++
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()

		store, err := pebble.Open(storeDir, pebble.WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		p := projections.New(store, quietLogger())
		if err := p.OpenViews(viewsDir); err != nil {
			t.Fatal(err)
		}
		last, _ := store.LastPosition(ctx)
		if last.Before(p.Position()) {
			t.Fatalf("round %d: the views resume at %s, after the log's end %s", round, p.Position(), last)
		}
		it := store.ReadAll(ctx, p.Position())
		for it.Next() {
			ev := it.Event()
			if err := p.Apply(&ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		it.Close()
		if got := projectionstest.Dump(p); got != wantDump {
			t.Fatalf("round %d (killed after %d reports): the resumed models differ from the log's:\n%s", round, killAfter, firstDifference(got, wantDump))
		}
		// Each round folds afresh and is killed at another point.
		if err := p.CloseViews(); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(viewsDir); err != nil {
			t.Fatal(err)
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func firstDifference(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-300)
	return "got:  …" + got[lo:min(len(got), i+300)] + "\nwant: …" + want[lo:min(len(want), i+300)]
}
