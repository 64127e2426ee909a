package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"
)

// Kinds of sign-in records.
const (
	eventSignIn       = "sign_in"
	eventSignInFailed = "sign_in_failed"
	eventSignOut      = "sign_out"
	eventSessionEnded = "session_ended"
	eventSessionRevok = "session_revoked"
)

// signin is one line of the sign-in journal.
type signin struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Principal string    `json:"principal,omitempty"`
	Addr      string    `json:"addr"`
	// Detail says why: the way of sign-in, why a session ended, or why a
	// sign-in failed.
	Detail string `json:"detail,omitempty"`
}

// maxKept bounds the records kept in memory for listing; the file keeps
// them all.
const maxKept = 10000

// failLimit bounds the failed sign-ins recorded per client address and
// minute; more are refused unrecorded, so a flood cannot fill the disk.
const failLimit = 10

// signinLog is the sign-in journal: an append-only file of JSON lines,
// each written and synced before the sign-in is answered.
type signinLog struct {
	mu    sync.Mutex
	f     *os.File
	kept  []signin
	fails map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

func openSigninLog(path string) (*signinLog, error) {
	l := &signinLog{fails: map[string]*failWindow{}}
	if path == "" {
		return l, nil
	}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("sign-in journal: %w", err)
	}
	good := 0
	for n, line := 1, b; len(line) > 0; n++ {
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			// A last line without its newline is what a crash mid-write
			// leaves; it was never acknowledged, so it is cut off.
			break
		}
		var e signin
		if err := json.Unmarshal(line[:i], &e); err != nil {
			return nil, fmt.Errorf("sign-in journal %s: line %d is damaged", path, n)
		}
		l.keep(e)
		good += i + 1
		line = line[i+1:]
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sign-in journal: %w", err)
	}
	if err := f.Truncate(int64(good)); err != nil {
		f.Close()
		return nil, fmt.Errorf("sign-in journal: %w", err)
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("sign-in journal: %w", err)
	}
	l.f = f
	return l, nil
}

func (l *signinLog) keep(e signin) {
	l.kept = append(l.kept, e)
	if len(l.kept) > maxKept {
		l.kept = slices.Delete(l.kept, 0, len(l.kept)-maxKept)
	}
}

var errThrottled = errors.New("too many failed sign-ins from this address")

// record appends a record and syncs it.
func (l *signinLog) record(now time.Time, kind, principal, addr, detail string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if kind == eventSignInFailed {
		w := l.fails[addr]
		if w == nil || now.Sub(w.start) >= time.Minute {
			if len(l.fails) > 10000 {
				clear(l.fails)
			}
			w = &failWindow{start: now}
			l.fails[addr] = w
		}
		w.n++
		if w.n > failLimit {
			return errThrottled
		}
	}
	e := signin{Time: now.UTC(), Kind: kind, Principal: principal, Addr: addr, Detail: detail}
	if l.f != nil {
		b, _ := json.Marshal(e)
		if _, err := l.f.Write(append(b, '\n')); err != nil {
			return err
		}
		if err := l.f.Sync(); err != nil {
			return err
		}
	}
	l.keep(e)
	return nil
}

// throttled reports whether addr has used up its failed sign-ins.
func (l *signinLog) throttled(now time.Time, addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.fails[addr]
	return w != nil && now.Sub(w.start) < time.Minute && w.n >= failLimit
}

// list returns the records, newest first, those of principal only when it
// is set.
func (l *signinLog) list(principal string, limit int) []signin {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []signin
	for i := len(l.kept) - 1; i >= 0 && len(out) < limit; i-- {
		if principal == "" || l.kept[i].Principal == principal {
			out = append(out, l.kept[i])
		}
	}
	return out
}

func (l *signinLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
