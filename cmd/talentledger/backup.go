package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"talentledger/domain/auditproof"
	"talentledger/domain/integrity"
	"talentledger/eventstore/pebble"
)

// A backup is a directory holding
//
//	data/       a Pebble checkpoint of the data directory: a consistent copy
//	head.json   the newest signed tree head over a prefix of it (when the
//	            ledger has an audit key), as a witness line
//
// While a server runs, the data directory is locked to it, so backup asks
// it, through a Unix socket it listens on inside the data directory
// (controlSocket, mode 0600, so only the server's own user can), to sign
// and witness a head and make the checkpoint; with the server stopped,
// backup opens the directory itself. Either way the copy is verified whole
// before backup reports success.

// controlSocket is the name, inside the data directory, of the socket
// through which a running server takes backup requests.
const controlSocket = "talentledger.sock"

// backupRequest and backupAnswer are the control socket's protocol: one
// JSON line each way.
type backupRequest struct {
	Op  string `json:"op"`  // "backup"
	Out string `json:"out"` // absolute path of the checkpoint directory to create
}

type backupAnswer struct {
	Head  *integrity.Head `json:"head,omitempty"`
	Error string          `json:"error,omitempty"`
}

// serveControl takes backup requests on the control socket until ctx is
// done.
func (g *guard) serveControl(ctx context.Context, dataDir string) {
	path := filepath.Join(dataDir, controlSocket)
	os.Remove(path) // a socket left by a crash
	ln, err := net.Listen("unix", path)
	if err != nil {
		g.log.Warn("no backup socket: online backups need the server stopped", "err", err.Error())
		return
	}
	os.Chmod(path, 0o600)
	go func() { <-ctx.Done(); ln.Close() }()
	defer os.Remove(path)
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		g.handleControl(ctx, conn)
	}
}

func (g *guard) handleControl(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Minute))
	var req backupRequest
	line, err := bufio.NewReader(io.LimitReader(conn, 64<<10)).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	var ans backupAnswer
	switch {
	case err != nil:
		ans.Error = "bad request: " + err.Error()
	case req.Op != "backup" || !filepath.IsAbs(req.Out):
		ans.Error = "bad request: want {\"op\":\"backup\",\"out\":\"/absolute/path\"}"
	default:
		h, err := g.backup(ctx, req.Out)
		if err != nil {
			ans.Error = err.Error()
		} else {
			ans.Head = h
		}
	}
	b, _ := json.Marshal(ans)
	conn.Write(append(b, '\n'))
}

// backup verifies the log appended since the last head, signs and
// witnesses a head over it, and checkpoints the store into out. The
// checkpoint holds at least the events the head signs.
func (g *guard) backup(ctx context.Context, out string) (*integrity.Head, error) {
	if g.pstore == nil {
		return nil, errors.New("backup is for the embedded store; back EventStoreDB up with its own tools")
	}
	if err := g.damagedErr(); err != nil {
		return nil, fmt.Errorf("the store is damaged, no backup of it is taken: %w", err)
	}
	if err := g.signHead(ctx); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var head *integrity.Head
	if g.witness != nil {
		if h, ok := g.witness.Last(); ok {
			head = &h
		}
	} else if g.key != nil {
		h := integrity.Head{TreeHead: auditproof.Sign(g.key, g.checker.Size(), g.checker.Root(), timeNow()),
			Position: g.checker.Position().String()}
		head = &h
	}
	if err := g.pstore.Checkpoint(out); err != nil {
		return nil, err
	}
	g.log.Info("backup checkpoint written", "dir", out, "events", g.checker.Size())
	return head, nil
}

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", stdout)
	data := fs.String("data", "", "data directory of the embedded store (the server may be running)")
	out := fs.String("out", "", "backup directory to create; it must not exist")
	witness := fs.String("witness", "", "with the server stopped: the witness file to take the newest head from (default: DIR.witness.jsonl when it exists)")
	pub := fs.String("public-key", "", "the ledger's Ed25519 public key (base64), to check the head with")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *out == "" {
		return usagef("--data DIR and --out BACKUP are required")
	}
	if _, err := os.Stat(*data); err != nil {
		return err
	}
	outAbs, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if _, err := os.Stat(outAbs); err == nil {
		return fmt.Errorf("%s exists: a backup goes into a new directory", *out)
	}
	if err := checkWitnessPath(outAbs, *data); err != nil {
		return errors.New("--out must be outside the data directory")
	}
	if err := os.MkdirAll(outAbs, 0o700); err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(outAbs)
		}
	}()
	copyDir := filepath.Join(outAbs, "data")
	var head *integrity.Head
	// A server running on the directory answers on its socket; else the
	// directory is opened here.
	var store *pebble.Store
	online := false
	if _, serr := os.Stat(filepath.Join(*data, controlSocket)); serr == nil {
		head, err = askBackup(ctx, *data, copyDir)
		online = err == nil || !errors.Is(err, errNoServer)
	}
	if !online {
		store, err = pebble.Open(*data, pebble.WithLogger(quietLogger()))
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			err = fmt.Errorf("%s is locked by a running server without a backup socket: %w", *data, err)
		}
	}
	switch {
	case err != nil:
		return err
	case online:
	default:
		w := *witness
		if w == "" {
			w = defaultWitness(*data)
		}
		var key ed25519.PublicKey
		if *pub != "" {
			if key, err = parsePublicKey(*pub); err != nil {
				store.Close()
				return err
			}
		}
		if wit, err := integrity.ReadWitness(w, key); err == nil {
			if h, ok := wit.Last(); ok {
				head = &h
			}
		} else if !errors.Is(err, integrity.ErrNoWitness) || *witness != "" {
			store.Close()
			return err
		}
		err = store.Checkpoint(copyDir)
		store.Close()
		if err != nil {
			return err
		}
	}
	if head != nil {
		b, _ := json.MarshalIndent(head, "", "  ")
		if err := writeFileSync(filepath.Join(outAbs, "head.json"), append(b, '\n')); err != nil {
			return err
		}
	}
	n, err := verifyCopy(ctx, copyDir, head, *pub, nil, stderr)
	if err != nil {
		return fmt.Errorf("the backup does not verify, it was removed: %w", err)
	}
	ok = true
	fmt.Fprintf(stdout, "OK: backup %s holds %d events; every hash chain verifies", *out, n)
	if head != nil {
		fmt.Fprintf(stdout, "; it extends the head of %d events signed %s", head.TreeSize, head.Timestamp.Format(time.RFC3339))
	} else {
		fmt.Fprint(stdout, "; no signed head was available (no witness): keep one with the backup")
	}
	fmt.Fprintln(stdout)
	return nil
}

// errNoServer reports a backup socket nobody listens on (left by a crash).
var errNoServer = errors.New("no server answers on the backup socket")

// askBackup asks the server running on data for a checkpoint into out.
func askBackup(ctx context.Context, data, out string) (*integrity.Head, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", filepath.Join(data, controlSocket))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoServer, err)
	}
	defer conn.Close()
	b, _ := json.Marshal(backupRequest{Op: "backup", Out: out})
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(io.LimitReader(conn, 1<<20)).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("the server's answer: %w", err)
	}
	var ans backupAnswer
	if err := json.Unmarshal(line, &ans); err != nil {
		return nil, fmt.Errorf("the server's answer: %w", err)
	}
	if ans.Error != "" {
		return nil, fmt.Errorf("the server: %s", ans.Error)
	}
	return ans.Head, nil
}

// verifyCopy checks a copy of a store whole: every chain and index, that
// it extends head (when given) and each of the witness's heads it reaches.
// It returns the number of events.
func verifyCopy(ctx context.Context, dir string, head *integrity.Head, pub string, wit *integrity.Witness, stderr io.Writer) (uint64, error) {
	var expects []integrity.Expect
	if head != nil {
		key := head.PublicKey
		if pub != "" {
			var err error
			if key, err = parsePublicKey(pub); err != nil {
				return 0, err
			}
		} else {
			fmt.Fprintln(stderr, "warning: no --public-key; checking the head with the key it carries")
		}
		if err := auditproof.VerifyTreeHead(key, head.TreeHead); err != nil {
			return 0, fmt.Errorf("the backup's head: %w", err)
		}
		expects = append(expects, integrity.Expect{Size: head.TreeSize, Root: head.RootHash, Name: "the backup's head"})
	}
	store, err := pebble.Open(dir, pebble.WithLogger(quietLogger()))
	if err != nil {
		return 0, err
	}
	defer store.Close()
	all := expects
	if wit != nil {
		// The witness's heads the copy reaches must match it; heads past
		// it sign events acknowledged after the backup.
		for i, h := range wit.Heads {
			all = append(all, integrity.Expect{Size: h.TreeSize, Root: h.RootHash, Name: fmt.Sprintf("witness line %d", i+1)})
		}
	}
	c := integrity.NewChecker(store)
	if err := c.Extend(ctx, 0, all...); err != nil {
		return 0, err
	}
	if err := c.Finish(ctx, expects...); err != nil {
		return 0, err
	}
	return c.Size(), nil
}

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", stdout)
	from := fs.String("from", "", "backup directory made by talentledger backup")
	data := fs.String("data", "", "new data directory to restore into; it must not exist or be empty")
	witness := fs.String("witness", "", "the ledger's witness file: the restored log must agree with every head of it that it reaches")
	pub := fs.String("public-key", "", "the ledger's Ed25519 public key (base64), to check heads with")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || *data == "" {
		return usagef("--from BACKUP and --data NEWDIR are required")
	}
	src := filepath.Join(*from, "data")
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("%s is not a backup: %w", *from, err)
	}
	if ents, err := os.ReadDir(*data); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is not empty: restore goes into a new or empty directory", *data)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var head *integrity.Head
	if b, err := os.ReadFile(filepath.Join(*from, "head.json")); err == nil {
		head = new(integrity.Head)
		if err := json.Unmarshal(b, head); err != nil {
			return fmt.Errorf("the backup's head.json: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	} else {
		fmt.Fprintln(stderr, "warning: the backup holds no signed head; only its hash chains can be checked")
	}
	var wit *integrity.Witness
	if *witness != "" {
		var key ed25519.PublicKey
		if *pub != "" {
			var err error
			if key, err = parsePublicKey(*pub); err != nil {
				return err
			}
		}
		var err error
		if wit, err = integrity.ReadWitness(*witness, key); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(*data)
		}
	}()
	if err := copyFiles(src, *data); err != nil {
		return err
	}
	n, err := verifyCopy(ctx, *data, head, *pub, wit, stderr)
	if err != nil {
		return fmt.Errorf("the backup does not verify, nothing was restored: %w", err)
	}
	// The checkpoint names the head the copy was witnessed at; the
	// restored store starts afresh with whichever witness it is given.
	store, err := pebble.Open(*data, pebble.WithLogger(quietLogger()))
	if err != nil {
		return err
	}
	err = store.PutMeta(checkpointMeta, nil)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	ok = true
	fmt.Fprintf(stdout, "OK: restored %d events into %s; every hash chain verifies", n, *data)
	if head != nil {
		fmt.Fprintf(stdout, "; it extends the backup's head (%d events)", head.TreeSize)
	}
	fmt.Fprintln(stdout)
	if h, ok := wit.Last(); ok && h.TreeSize > n {
		fmt.Fprintf(stdout, "NOTE: the witness signs %d events, %d more than the backup holds: they were acknowledged after the backup "+
			"and are not restored. serve refuses that witness for this directory; start it with a new witness file and keep the old one.\n",
			h.TreeSize, h.TreeSize-n)
	}
	return nil
}

// copyFiles copies the regular files of dir from into dir to, syncing each
// and the directory.
func copyFiles(from, to string) error {
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := writeFileSync(filepath.Join(to, e.Name()), b); err != nil {
			return err
		}
	}
	d, err := os.Open(to)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func parsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("--public-key must be a base64 Ed25519 public key")
	}
	return b, nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
