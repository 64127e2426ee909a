package pebble_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// crashDirEnv switches the test binary into the crashing child's role: it
// names the data directory to append to.
const crashDirEnv = "TALENTLEDGER_PEBBLE_CRASH_DIR"

// ack is one acknowledged event as the child reported it.
type ack struct {
	id      eventstore.EventID
	stream  string
	version eventstore.Version
	pos     uint64
}

// TestCrashRecovery kills a process appending under concurrent load with
// SIGKILL, several times at different points, reopening the same directory
// each time. Every acknowledged event must survive with the version and
// position it was acknowledged at, and the log must stay gapless.
func TestCrashRecovery(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	acked := map[eventstore.EventID]ack{}
	for round, killAfter := range []int{1, 40, 300, 1200, 2500} {
		n := runAndKill(t, dir, killAfter, acked)
		if n < killAfter {
			t.Fatalf("round %d: child acknowledged only %d events before dying", round, n)
		}
		last := verifyStore(t, func() (*pebble.Store, error) { return pebble.Open(dir) }, acked)
		t.Logf("round %d: killed after %d acks (%d read); log holds %d events", round, killAfter, n, last)
	}
}

// runAndKill starts the child, kills it once it has acknowledged killAfter
// events, and records every acknowledgement it printed before dying. It
// returns how many it printed.
func runAndKill(t *testing.T, dir string, killAfter int, acked map[eventstore.EventID]ack) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	guard := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer guard.Stop()
	n := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		a, ok := parseAck(sc.Text())
		if !ok {
			continue
		}
		if prev, seen := acked[a.id]; seen && prev != a {
			t.Fatalf("event %s acknowledged twice, differently: %+v and %+v", a.id, prev, a)
		}
		acked[a.id] = a
		n++
		if n == killAfter {
			// SIGKILL: no deferred code, no Close, no flush in the child.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Exited() {
		t.Fatalf("child ended with %v, want death by signal (acks: %d of %d)", err, n, killAfter)
	}
	return n
}

func parseAck(line string) (ack, bool) {
	f := strings.Fields(line)
	if len(f) != 5 || f[0] != "ack" {
		return ack{}, false
	}
	id, err1 := eventstore.ParseEventID(f[1])
	v, err2 := strconv.ParseInt(f[3], 10, 64)
	p, err3 := strconv.ParseUint(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return ack{}, false
	}
	return ack{id, f[2], eventstore.Version(v), p}, true
}

// verifyStore reopens a crashed store and checks it against everything
// acknowledged before the crash, then appends to it. It returns the log's
// length.
func verifyStore(t *testing.T, open func() (*pebble.Store, error), acked map[eventstore.EventID]ack) uint64 {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	log := mustRead(t, s.ReadAll(ctx, eventstore.Start))
	seen := make(map[eventstore.EventID]eventstore.Event, len(log))
	next := map[string]eventstore.Version{}
	for i, e := range log {
		if e.Position != (eventstore.Position{Commit: uint64(i + 1), Prepare: uint64(i + 1)}) {
			t.Fatalf("log event %d at position %v: gap or duplicate", i, e.Position)
		}
		if _, dup := seen[e.ID]; dup {
			t.Fatalf("event %s stored twice", e.ID)
		}
		seen[e.ID] = e
		if e.Version != next[e.Stream] {
			t.Fatalf("%s: version %d follows %d", e.Stream, e.Version, next[e.Stream]-1)
		}
		next[e.Stream]++
	}
	for _, a := range acked {
		e, ok := seen[a.id]
		if !ok {
			t.Fatalf("acknowledged event %s (%s/%d at %d) lost", a.id, a.stream, a.version, a.pos)
		}
		if e.Stream != a.stream || e.Version != a.version || e.Position.Commit != a.pos {
			t.Fatalf("acknowledged event %s was %s/%d at %d, now %s/%d at %v",
				a.id, a.stream, a.version, a.pos, e.Stream, e.Version, e.Position)
		}
	}
	for stream, n := range next {
		got := mustRead(t, s.ReadStream(ctx, stream, 0))
		if eventstore.Version(len(got)) != n {
			t.Fatalf("%s: ReadStream has %d events, the log %d", stream, len(got), n)
		}
	}
	last, err := s.LastPosition(ctx)
	if err != nil || last.Commit != uint64(len(log)) {
		t.Fatalf("LastPosition = %v, %v; want %d", last, err, len(log))
	}
	res, err := s.Append(ctx, "after-crash", eventstore.Any, newEvent("Recovered", len(log)))
	if err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if res.Position.Commit != uint64(len(log))+1 {
		t.Fatalf("append after recovery landed at %v, want %d", res.Position, len(log)+1)
	}
	return uint64(len(log)) + 1
}

// crashChild appends from several goroutines to a few shared streams until
// it is killed, printing each acknowledged event on stdout. It mixes exact
// versions (retrying conflicts), Any, several events per append and
// idempotent retries.
func crashChild(dir string) {
	s, err := pebble.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	report := func(evs []eventstore.EventData, stream string, res eventstore.AppendResult) {
		var b strings.Builder
		first := res.Version - eventstore.Version(len(evs)) + 1
		for i, e := range evs {
			fmt.Fprintf(&b, "ack %s %s %d %d\n", e.ID, stream, first+eventstore.Version(i),
				res.Position.Commit-uint64(len(evs)-1-i))
		}
		out.Lock()
		// One write per append: a line is never torn, whenever the kill
		// comes.
		os.Stdout.WriteString(b.String())
		out.Unlock()
	}
	ctx := context.Background()
	const writers = 6
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			// What this writer last saw of each stream, as a command
			// handler would have loaded it; conflicts correct it.
			known := map[string]eventstore.Version{}
			for i := 0; ; i++ {
				stream := fmt.Sprintf("crash-%d", rng.IntN(4))
				evs := make([]eventstore.EventData, 1+rng.IntN(3))
				for j := range evs {
					evs[j] = newEvent("Crashed", i)
				}
				expected := eventstore.Any
				if rng.IntN(3) > 0 {
					v, ok := known[stream]
					if !ok {
						v = currentVersion(ctx, s, stream)
					}
					expected = v
				}
				res, err := s.Append(ctx, stream, expected, evs...)
				var wrong *eventstore.WrongVersionError
				if errors.As(err, &wrong) {
					known[stream] = wrong.Actual
					continue
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "child: append:", err)
					os.Exit(2)
				}
				report(evs, stream, res)
				known[stream] = res.Version
				if rng.IntN(10) == 0 {
					// A retry of what just succeeded must change nothing.
					again, err := s.Append(ctx, stream, expected, evs...)
					if err != nil || again != res {
						fmt.Fprintf(os.Stderr, "child: retry gave %+v, %v; want %+v\n", again, err, res)
						os.Exit(2)
					}
				}
			}
		})
	}
	// The parent kills the child; this only guards against an orphan.
	time.Sleep(2 * time.Minute)
	os.Exit(3)
}

// currentVersion reads a stream's head the way a command handler would
// before deciding.
func currentVersion(ctx context.Context, s eventstore.Store, stream string) eventstore.Version {
	it := s.ReadStream(ctx, stream, 0)
	defer it.Close()
	v := eventstore.NoStream
	for it.Next() {
		v = it.Event().Version
	}
	return v
}
