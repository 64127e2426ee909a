package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/memstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// importLine is one line of an import file: a command of the API as it was
// decided on a past date.
//
//	{"date": "2024-01-15", "principal": "zhao.min", "role": "approver",
//	 "path": "/v1/grants/@g1/approve", "body": {"document_ref": "PHCZ-APR-7"}, "as": "a1"}
//
// Method defaults to POST. As names the ID the command answers with, so
// that later lines can use it as @name in their path or body (in a longer
// string too: "@g1-1-1" is the first payment of @g1's first installment).
type importLine struct {
	Date      string          `json:"date"`
	Principal string          `json:"principal"`
	Role      string          `json:"role"`
	Method    string          `json:"method"`
	Path      string          `json:"path"`
	Body      json.RawMessage `json:"body"`
	As        string          `json:"as"`
}

var (
	reImportLabel = regexp.MustCompile(`@([a-z][a-z0-9_]{0,39})`)
	reLabel       = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

// maxImportLines bounds an import file.
const maxImportLines = 1_000_000

// runImport appends a JSON-lines file of past decisions to a data
// directory, the server stopped. Each command is reckoned at its own date
// (the public notice, due dates and the fiscal year by that date), and each
// event is marked source "import". Nothing is appended unless every line
// goes through: the file is first run against a copy of the log in memory,
// and every bad line is reported with its number. Importing the same file
// again appends nothing.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", stdout)
	data := fs.String("data", "./data", "data directory of the embedded store (the server stopped)")
	var personal personalConfig
	personal.register(fs)
	if err := parseFlagsAnd(fs, args, "FILE"); err != nil {
		return err
	}
	cipher, keys, err := personal.open(*data, false)
	if err != nil {
		return err
	}
	if keys != nil {
		defer keys.Close()
	}
	lines, err := readImportFile(fs.Arg(0))
	if err != nil {
		return err
	}
	if fi, err := os.Stat(*data); err != nil || !fi.IsDir() {
		return fmt.Errorf("--data %s is not a data directory", *data)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := pebble.Open(*data, pebble.WithLogger(log))
	if err != nil {
		return err
	}
	defer store.Close()
	if err := recoverKeyBindings(ctx, store, cipher, true, log); err != nil {
		return err
	}

	// A rehearsal on a copy of the log: every bad line is found, and
	// nothing is written, before the store is touched.
	copyOf, err := copyLog(ctx, store)
	if err != nil {
		return err
	}
	defer copyOf.Close()
	if bad := importInto(ctx, copyOf, lines, log, cipher); len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintln(stderr, b)
		}
		return fmt.Errorf("%d of %d lines refused; nothing was imported", len(bad), len(lines))
	}
	if bad := importInto(ctx, store, lines, log, cipher); len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintln(stderr, b)
		}
		return fmt.Errorf("the import stopped at a line its rehearsal accepted: %s", bad[0])
	}
	last, err := store.LastPosition(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d commands; the log is at position %s\n", len(lines), last)
	return nil
}

// numberedLine is an import line with its number and its raw bytes.
type numberedLine struct {
	n   int
	raw []byte
	importLine
}

// readImportFile reads and checks the shape of every line, reporting every
// bad one.
func readImportFile(path string) ([]numberedLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []numberedLine
	var bad []string
	labels := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		if len(lines) >= maxImportLines {
			return nil, fmt.Errorf("more than %d lines", maxImportLines)
		}
		l := numberedLine{n: n, raw: append([]byte(nil), raw...)}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l.importLine); err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v", n, err))
			continue
		}
		if msg := l.check(labels); msg != "" {
			bad = append(bad, fmt.Sprintf("line %d: %s", n, msg))
			continue
		}
		if l.As != "" {
			labels[l.As] = true
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s\n%d bad lines; nothing was imported", strings.Join(bad, "\n"), len(bad))
	}
	if len(lines) == 0 {
		return nil, errors.New("the file holds no command")
	}
	return lines, nil
}

// check returns what is wrong with a line's shape, or "".
func (l *numberedLine) check(labels map[string]bool) string {
	if _, err := domain.ParseDate(l.Date); err != nil {
		return "date: " + domain.ErrorMessage(err)
	}
	if l.Principal == "" {
		return "principal is required"
	}
	if !slices.Contains(domain.Roles, l.Role) || l.Role == domain.RoleAuditor || l.Role == domain.RoleAdmin && strings.HasPrefix(l.Path, "/v1/principals") {
		return fmt.Sprintf("role %q may not be imported", l.Role)
	}
	if l.Method == "" {
		l.Method = "POST"
	}
	if l.Method != "POST" {
		return "method must be POST: an import records decisions"
	}
	if !strings.HasPrefix(l.Path, "/v1/") || strings.HasPrefix(l.Path, "/v1/principals") || strings.HasPrefix(l.Path, "/v1/enroll") {
		return "path must be a command under /v1/ (access is never imported)"
	}
	if l.As != "" && (!reLabel.MatchString(l.As) || labels[l.As]) {
		return fmt.Sprintf("as %q must be a new name of lower-case letters, digits and _", l.As)
	}
	for _, m := range reImportLabel.FindAllStringSubmatch(string(l.Body)+" "+l.Path, -1) {
		if !labels[m[1]] {
			return fmt.Sprintf("@%s is not named by an earlier line", m[1])
		}
	}
	if len(l.Body) == 0 {
		l.Body = json.RawMessage(`{}`)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(l.Body, &body); err != nil {
		return "body must be a JSON object"
	}
	if _, ok := body["effective_date"]; ok {
		return "body must not name effective_date: the line's date is the command's"
	}
	return ""
}

// importInto runs the lines against store through the API's routes, as
// their principals on their dates, and returns every refusal.
func importInto(ctx context.Context, store eventstore.Store, lines []numberedLine, log *slog.Logger, cipher *domain.Cipher) []string {
	svc := domain.NewService(store, domain.WithImport(), domain.WithLogger(log), domain.WithCipher(cipher))
	api := ledgerhttp.New(ledgerhttp.Config{Service: svc, Projector: projections.New(store, log), Logger: log})
	ids := map[string]string{}
	subst := func(s string) string {
		return reImportLabel.ReplaceAllStringFunc(s, func(m string) string { return ids[m[1:]] })
	}
	var bad []string
	for _, l := range lines {
		if m := missingLabel(l, ids); m != "" {
			bad = append(bad, fmt.Sprintf("line %d: @%s was not created: its line was refused", l.n, m))
			continue
		}
		var body map[string]any
		dec := json.NewDecoder(strings.NewReader(subst(string(l.Body))))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			bad = append(bad, fmt.Sprintf("line %d: body: %v", l.n, err))
			continue
		}
		body["effective_date"] = l.Date
		raw, _ := json.Marshal(body)
		sum := sha256.Sum256(l.raw)
		commandID := fmt.Sprintf("import:%d:%s", l.n, hex.EncodeToString(sum[:8]))
		status, answer := api.Import(ctx, l.Principal, l.Role, l.Method, subst(l.Path), raw, commandID)
		if status >= 300 {
			var p struct{ Code, Detail string }
			_ = json.Unmarshal(answer, &p)
			bad = append(bad, fmt.Sprintf("line %d: %d %s: %s", l.n, status, p.Code, p.Detail))
			continue
		}
		if l.As != "" {
			var a struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(answer, &a)
			ids[l.As] = a.ID
		}
	}
	return bad
}

// missingLabel returns a label the line uses that no line has created.
func missingLabel(l numberedLine, ids map[string]string) string {
	for _, m := range reImportLabel.FindAllStringSubmatch(string(l.Body)+" "+l.Path, -1) {
		if ids[m[1]] == "" {
			return m[1]
		}
	}
	return ""
}

// copyLog returns an in-memory store holding the events of store, stream
// by stream as they were appended.
func copyLog(ctx context.Context, store eventstore.Store) (*memstore.Store, error) {
	m := memstore.New()
	it := store.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	for it.Next() {
		ev := it.Event()
		expected := ev.Version - 1
		if ev.Version == 0 {
			expected = eventstore.NoStream
		}
		if _, err := m.Append(ctx, ev.Stream, expected, eventstore.EventData{ID: ev.ID, Type: ev.Type, Data: ev.Data, Metadata: ev.Metadata}); err != nil {
			m.Close()
			return nil, fmt.Errorf("copy %s@%d: %w", ev.Stream, ev.Version, err)
		}
	}
	if err := it.Err(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}
