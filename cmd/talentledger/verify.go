package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/domain/integrity"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// headFiles collects repeated --head flags.
type headFiles []string

func (h *headFiles) String() string     { return strings.Join(*h, ",") }
func (h *headFiles) Set(v string) error { *h = append(*h, v); return nil }

// runVerify checks the ledger's log. With --data it reads a data directory
// (the server must be stopped): it recomputes every stream's hash chain and
// the Merkle tree over the whole log, and checks the tree against each
// signed head given with --head. With --url it asks a running server for
// its current signed head and a consistency proof from each saved head.
//
// With --data it also reads the witness file (by default the one demo keeps
// beside the directory) and checks the log against its newest head.
//
// Exit codes: 0 clean, 1 tampered or damaged, 2 could not run, 3 the
// chains verify but there was neither a witness nor a head to check the
// log's length and order against.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", stdout)
	data := fs.String("data", "", "data directory of the embedded store (the server must be stopped)")
	url := fs.String("url", "", "base URL of a running server, e.g. http://127.0.0.1:8080")
	token := fs.String("token", "", "auditor's bearer token, with --url")
	pub := fs.String("public-key", "", "the ledger's Ed25519 public key (base64), obtained out of band; default: the key in the head file")
	save := fs.String("save", "", "with --url: write the server's current signed head to this file")
	proofFile := fs.String("proof", "", "an inclusion proof saved from GET /v1/audit/proofs/inclusion: check it offline")
	var heads headFiles
	fs.Var(&heads, "head", "a previously saved signed tree head (JSON); may be repeated")
	witness := fs.String("witness", "", "with --data: the witness file of signed heads (default: DIR.witness.jsonl, where demo keeps it)")
	if err := parseFlags(fs, args); err != nil {
		return exitCode("verify", err, stderr)
	}
	v := &verifier{out: stdout, errw: stderr}
	var err error
	switch {
	case *proofFile != "" && *data == "" && *url == "":
		err = v.verifyProof(*proofFile, *pub)
	case *data != "" && *url == "":
		w, given := *witness, *witness != ""
		if !given {
			w = defaultWitness(*data)
		}
		err = v.verifyData(ctx, *data, w, given, heads, *pub)
	case *url != "" && *data == "":
		err = v.verifyURL(ctx, *url, *token, heads, *pub, *save)
	default:
		err = errors.New("give one of --data DIR, --url URL or --proof FILE")
	}
	var t *tampered
	switch {
	case errors.Is(err, errNoWitness):
		fmt.Fprintf(stdout, "UNWITNESSED: %v\n", err)
		return exitNoWitness
	case errors.Is(err, pebble.ErrCorrupt):
		fmt.Fprintf(stdout, "TAMPERED: the stored log is not what the store wrote (events were removed, changed or reordered): %v\n", err)
		return exitFailed
	case errors.As(err, &t):
		fmt.Fprintf(stdout, "TAMPERED: %s\n", t.msg)
		return exitFailed
	case err != nil:
		fmt.Fprintf(stderr, "talentledger verify: %v\n", err)
		return exitCantRun
	}
	return exitOK
}

// tampered is a failed check: the log is not what was signed or chained.
type tampered struct{ msg string }

func (t *tampered) Error() string { return t.msg }

func tamperedf(format string, args ...any) error { return &tampered{fmt.Sprintf(format, args...)} }

type verifier struct {
	out, errw io.Writer
}

// savedHead is a tree head as the server answers it and an auditor saves it.
type savedHead struct {
	auditproof.TreeHead
	Position string `json:"position"`
}

func readHead(path string) (savedHead, error) {
	var h savedHead
	b, err := os.ReadFile(path)
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("head %s: %w", path, err)
	}
	return h, nil
}

// trustedKey returns the key to check heads with: the one given, or else
// the head's own (with a warning: it proves integrity, not origin).
func (v *verifier) trustedKey(given string, h savedHead) (ed25519.PublicKey, error) {
	if given == "" {
		fmt.Fprintln(v.errw, "warning: no --public-key; checking the head with the key it carries")
		return h.PublicKey, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(given))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("--public-key must be a base64 Ed25519 public key")
	}
	return b, nil
}

func (v *verifier) verifyData(ctx context.Context, dir, witnessPath string, witnessGiven bool, headPaths []string, pub string) error {
	var heads []savedHead
	for _, p := range headPaths {
		h, err := readHead(p)
		if err != nil {
			return err
		}
		key, err := v.trustedKey(pub, h)
		if err != nil {
			return err
		}
		if err := auditproof.VerifyTreeHead(key, h.TreeHead); err != nil {
			return tamperedf("head %s: %v", p, err)
		}
		heads = append(heads, h)
	}
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	var wit *integrity.Witness
	missing := false
	if witnessPath != "" {
		var key ed25519.PublicKey
		if pub != "" {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(pub))
			if err != nil || len(b) != ed25519.PublicKeySize {
				return errors.New("--public-key must be a base64 Ed25519 public key")
			}
			key = b
		}
		w, err := integrity.ReadWitness(witnessPath, key)
		switch {
		case errors.Is(err, integrity.ErrNoWitness) && !witnessGiven:
			// The default place holds none: the directory was never
			// witnessed there, unless the store says otherwise below.
		case errors.Is(err, integrity.ErrNoWitness):
			missing = true
		case err != nil:
			var p *integrity.Problem
			if errors.As(err, &p) {
				return tamperedf("%v", err)
			}
			return err
		default:
			if pub == "" && len(w.Heads) > 0 {
				fmt.Fprintln(v.errw, "warning: no --public-key; checking the witness with the key its heads carry")
			}
			if w.Torn {
				fmt.Fprintln(v.errw, "warning: the witness file ends in an incomplete line (a crash while appending); it is ignored")
			}
			wit = w
		}
	}
	store, err := pebble.Open(dir, pebble.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%s is locked by a running server: stop it, or verify a copy of the directory (%w)", dir, err)
	}
	if errors.Is(err, pebble.ErrFormat) {
		return err
	}
	if err != nil {
		return tamperedf("the store in %s cannot be opened, it is damaged or incomplete: %v", dir, err)
	}
	defer store.Close()
	var cp *integrity.Checkpoint
	if b, err := store.Meta(checkpointMeta); err != nil {
		return tamperedf("the store's integrity checkpoint cannot be read: %v", err)
	} else if len(b) > 0 {
		cp = new(integrity.Checkpoint)
		if err := json.Unmarshal(b, cp); err != nil {
			return tamperedf("the store's integrity checkpoint is unreadable: %v", err)
		}
	}
	if cp != nil && cp.Size > 0 {
		if last, ok := wit.Last(); !ok || last.TreeSize < cp.Size {
			where := "no witness file was found at " + witnessPath
			if ok {
				where = fmt.Sprintf("the witness %s holds heads up to %d events only", witnessPath, last.TreeSize)
			}
			return tamperedf("the store was witnessed at %d events, but %s: the witness file was rolled back, replaced or removed "+
				"(give the right one with --witness)", cp.Size, where)
		}
	}
	if missing {
		return tamperedf("the witness file %s is missing: it was removed or never written there", witnessPath)
	}
	last, err := store.LastPosition(ctx)
	if err != nil {
		return err
	}
	expects := wit.Expect(witnessPath)
	for i, h := range heads {
		expects = append(expects, integrity.Expect{Size: h.TreeSize, Root: h.RootHash,
			Name: fmt.Sprintf("the tree head signed %s (%s)", h.Timestamp.Format(time.RFC3339), headPaths[i])})
	}
	c := integrity.NewChecker(store)
	tick := time.Now()
	c.Pace = func(context.Context) error {
		if c.Size()%4096 == 0 && time.Since(tick) > time.Second {
			tick = time.Now()
			fmt.Fprintf(v.errw, "verified %d of %d events…\n", c.Size(), last.Commit)
		}
		return nil
	}
	if err := c.Extend(ctx, 0, expects...); err != nil {
		return asTampered(err)
	}
	if err := c.Finish(ctx, expects...); err != nil {
		return asTampered(err)
	}
	fmt.Fprintf(v.out, "OK: %d events in %d streams; every hash chain verifies; every index entry points at its event; Merkle root %x",
		c.Size(), c.Streams(), c.Root())
	if n := len(heads) + len(wit.Expect(witnessPath)); n > 0 {
		fmt.Fprintf(v.out, "; consistent with %d signed head(s)", n)
		if wit != nil {
			fmt.Fprintf(v.out, " (the witness %s: %d heads)", witnessPath, len(wit.Heads))
		}
		fmt.Fprintln(v.out)
		return nil
	}
	fmt.Fprintln(v.out)
	return errNoWitness
}

// errNoWitness is a clean log checked without a witness or a head: its
// chains verify, but nothing shows that events were not removed from its
// end or reordered.
var errNoWitness = errors.New("no witness and no --head: the hash chains verify, but events removed from the end of the log, " +
	"lost with its write-ahead log, or reordered across streams cannot be detected without a witness file (--witness) or a saved head (--head)")

// asTampered turns damage found by the checker into a tampered result.
func asTampered(err error) error {
	if errors.Is(err, integrity.ErrDamaged) {
		return tamperedf("%v", err)
	}
	return err
}

func (v *verifier) verifyURL(ctx context.Context, base, token string, headPaths []string, pub, save string) error {
	if token == "" {
		return errors.New("--url needs --token (an auditor's)")
	}
	get := func(path string, out any) error {
		req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(base, "/")+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
		}
		return json.Unmarshal(body, out)
	}
	var current savedHead
	if err := get("/v1/audit/tree-head", &current); err != nil {
		return err
	}
	var key ed25519.PublicKey
	var err error
	if len(headPaths) > 0 {
		h, err := readHead(headPaths[0])
		if err != nil {
			return err
		}
		if key, err = v.trustedKey(pub, h); err != nil {
			return err
		}
	} else if key, err = v.trustedKey(pub, current); err != nil {
		return err
	}
	if err := auditproof.VerifyTreeHead(key, current.TreeHead); err != nil {
		return tamperedf("the server's current head: %v", err)
	}
	for _, p := range headPaths {
		old, err := readHead(p)
		if err != nil {
			return err
		}
		if err := auditproof.VerifyTreeHead(key, old.TreeHead); err != nil {
			return tamperedf("head %s: %v", p, err)
		}
		if old.TreeSize > current.TreeSize {
			return tamperedf("head %s signs %d events but the server's tree holds %d: events were removed", p, old.TreeSize, current.TreeSize)
		}
		var cons struct {
			ToHead auditproof.TreeHead   `json:"to_head"`
			Proof  []auditproof.HexBytes `json:"proof"`
		}
		if err := get(fmt.Sprintf("/v1/audit/proofs/consistency?from=%d&to=%d", old.TreeSize, current.TreeSize), &cons); err != nil {
			return err
		}
		if err := auditproof.VerifyTreeHead(key, cons.ToHead); err != nil || string(cons.ToHead.RootHash) != string(current.RootHash) {
			return tamperedf("the consistency answer's head does not match the server's current head")
		}
		if err := auditproof.VerifyConsistency(old.TreeHead, current.TreeHead, cons.Proof); err != nil {
			return tamperedf("the log is not an extension of head %s (signed %s): history was rewritten (%v)", p, old.Timestamp.Format(time.RFC3339), err)
		}
	}
	if save != "" {
		b, _ := json.MarshalIndent(current, "", "  ")
		if err := os.WriteFile(save, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(v.out, "OK: the server's head (%d events, root %x) is signed by the ledger's key", current.TreeSize, []byte(current.RootHash))
	if len(headPaths) > 0 {
		fmt.Fprintf(v.out, " and extends %d saved head(s)", len(headPaths))
	}
	fmt.Fprintln(v.out)
	return nil
}

// verifyProof checks, offline, an inclusion proof as the server answers it:
// the event's hash matches its content, its leaf is in the tree the head
// commits to, and the head is signed by the ledger's key.
func (v *verifier) verifyProof(path, pub string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var p struct {
		TreeHead  savedHead             `json:"tree_head"`
		LeafIndex uint64                `json:"leaf_index"`
		Proof     []auditproof.HexBytes `json:"proof"`
		Event     eventstore.Event      `json:"event"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("proof %s: %w", path, err)
	}
	key, err := v.trustedKey(pub, p.TreeHead)
	if err != nil {
		return err
	}
	ev := &p.Event
	at := fmt.Sprintf("stream %s version %d position %s", ev.Stream, ev.Version, ev.Position)
	if err := auditproof.VerifyTreeHead(key, p.TreeHead.TreeHead); err != nil {
		return tamperedf("the proof's tree head: %v", err)
	}
	if !domain.VerifyEventHash(ev.Metadata.PrevHash, ev) {
		return tamperedf("%s: the event's hash does not match its content", at)
	}
	if err := auditproof.VerifyInclusion(p.TreeHead.TreeHead, p.LeafIndex, auditproof.LeafHash(ev), p.Proof); err != nil {
		return tamperedf("%s: not in the signed tree: %v", at, err)
	}
	fmt.Fprintf(v.out, "OK: %s (%s) is leaf %d of the tree of %d events signed %s\n", at, ev.Type, p.LeafIndex,
		p.TreeHead.TreeSize, p.TreeHead.Timestamp.Format(time.RFC3339))
	return nil
}

// timeNow is the clock tree heads are signed with (a variable for tests).
var timeNow = time.Now

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func itoa(n uint64) string { return fmt.Sprint(n) }
