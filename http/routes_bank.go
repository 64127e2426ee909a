package http

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/projections"
)

// Bank files and statements. A release batch (POST
// /v1/payments/batch-release) gives its payments the bank references
// <batch>-001, <batch>-002, …; GET /v1/payments/bank-file?batch= writes
// them as the bank's payment instructions. The bank's statement, imported
// with POST /v1/bank/statements, is matched line by line to released
// payments and recoveries by reference and amount.

// MaxStatementBytes bounds a statement file.
const MaxStatementBytes = 4 << 20

// MaxStatementLines bounds a statement's lines.
const MaxStatementLines = 20000

// maxLineProblems bounds the malformed lines a refusal lists.
const maxLineProblems = 100

// statementColumns are the columns a statement may have: the first three
// are required; counterparty and description are the bank's words,
// checked as text and not matched on.
var statementColumns = []string{"value_date", "reference", "amount", "counterparty", "description"}

func (s *Server) registerBankRoutes() {
	readers := []string{domain.RoleTreasurer, domain.RoleApprover, domain.RoleAuditor}
	s.handle("GET", "/v1/payments/bank-file", readers, "a release batch's payment instructions as CSV, in a chosen column layout", s.handleBankFile,
		routeDoc{Response: csvAnswer{}, Query: []string{"min_position", "batch", "columns", "lang"}, Errors: []string{domain.ENOTFOUND}, Example: exampleBankFile})
	s.handle("POST", "/v1/bank/statements", []string{domain.RoleTreasurer},
		"import a bank statement (CSV): every line matched to a released payment or a recovery by reference and amount, the match recorded",
		s.commandOf(readStatementBody, s.handleStatementImport),
		routeDoc{Request: csvBody{}, Response: statementAnswer{}, Status: http.StatusCreated, RequestExample: exampleStatement})
	s.handle("GET", "/v1/bank/statements", readers, "the imported bank statements with their counts", s.handleStatementList,
		routeDoc{Response: statementListAnswer{}, Query: qMin})
	s.handle("GET", "/v1/bank/statements/{id}", readers, "an imported bank statement, line by line", s.handleStatementGet,
		routeDoc{Response: domain.BankStatementReconciled{}, Query: qMin, Errors: []string{domain.ENOTFOUND}})
}

func readStatementBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return readBodyOf(w, r, "text/csv", true, MaxStatementBytes)
}

func (s *Server) handleBankFile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	batch := q.Get("batch")
	if batch == "" {
		s.Error(w, r, paramErrorf(EBADPARAM, "batch", nil, "batch is required: the name a release batch answered"))
		return
	}
	columns := projections.DefaultBankFileColumns
	if c := q.Get("columns"); c != "" {
		columns = strings.Split(c, ",")
		for i, name := range columns {
			if !slices.Contains(projections.BankFileColumns, name) {
				s.Error(w, r, paramErrorf(EBADPARAM, "columns", projections.BankFileColumns, "column %q is not one of %s",
					clip(name), strings.Join(projections.BankFileColumns, ", ")))
				return
			}
			if slices.Contains(columns[:i], name) {
				s.Error(w, r, paramErrorf(EBADPARAM, "columns", projections.BankFileColumns, "column %q is named twice", name))
				return
			}
		}
	}
	rows := s.proj.Work().BankFile(batch)
	if len(rows) == 0 {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "no released payment belongs to batch %q", clip(batch)))
		return
	}
	var buf bytes.Buffer
	if err := projections.WriteBankFile(&buf, rows, columns, q.Get("lang") == "en"); err != nil {
		s.Error(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="bank-file_`+batch+`.csv"`)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// statementAnswer answers an imported statement.
type statementAnswer struct {
	ID        string                         `json:"id"`
	Position  string                         `json:"position"`
	Statement domain.BankStatementReconciled `json:"statement"`
}

// statementImports serializes imports in this process, so that two
// statements never both match one payment: each matches against the
// models that include the one before.
var statementImports sync.Mutex

func (s *Server) handleStatementImport(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	entries, err := parseStatement(body)
	if err != nil {
		return 0, nil, err
	}
	statementImports.Lock()
	defer statementImports.Unlock()
	// Match against models that have every event the log holds now.
	if err := s.catchUp(r.Context()); err != nil {
		return 0, nil, err
	}
	sum := sha256.Sum256(body)
	st := domain.NewBankStatement(hex.EncodeToString(sum[:]), s.proj.Work().MatchStatement(entries))
	res, err := s.svc.ReconcileStatement(r.Context(), domain.ReconcileStatement{Meta: m, Statement: st})
	if err != nil {
		return 0, nil, err
	}
	// The next import matches against this one.
	if err := s.proj.WaitFor(r.Context(), res.Position, s.wait); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, statementAnswer{ID: res.ID, Position: res.Position.String(), Statement: st}, nil
}

// ParseStatement reads a bank statement as POST /v1/bank/statements does,
// for tools that import one through the domain: its entries, or EINVALID
// naming every malformed line (a *LinesError).
func ParseStatement(body []byte) ([]projections.StatementEntry, error) { return parseStatement(body) }

// parseStatement reads a statement: a header naming its columns, then a
// line per movement. Every malformed line is reported, with its number,
// and nothing is imported.
func parseStatement(body []byte) ([]projections.StatementEntry, error) {
	body = bytes.TrimPrefix(body, []byte(projections.BOM))
	cr := csv.NewReader(bytes.NewReader(body))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, domain.Errorf(domain.EINVALID, "the statement has no header line naming its columns (%s)", strings.Join(statementColumns, ", "))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if !slices.Contains(statementColumns, h) {
			return nil, &LinesError{Err: domain.Errorf(domain.EINVALID, "column %q is not one of %s", clip(h), strings.Join(statementColumns, ", ")),
				Lines: []ProblemLine{{Line: 1, Detail: fmt.Sprintf("unknown column %q", clip(h))}}}
		}
		if _, dup := col[h]; dup {
			return nil, &LinesError{Err: domain.Errorf(domain.EINVALID, "column %q is named twice", h),
				Lines: []ProblemLine{{Line: 1, Detail: fmt.Sprintf("column %q is named twice", h)}}}
		}
		col[h] = i
	}
	for _, req := range statementColumns[:3] {
		if _, ok := col[req]; !ok {
			return nil, &LinesError{Err: domain.Errorf(domain.EINVALID, "the header lacks the column %s", req),
				Lines: []ProblemLine{{Line: 1, Detail: "missing column " + req}}}
		}
	}
	var entries []projections.StatementEntry
	var bad []ProblemLine
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, ProblemLine{Line: pe.Line, Detail: pe.Err.Error()})
			} else {
				bad = append(bad, ProblemLine{Line: line, Detail: "unreadable"})
			}
			break // the rest of a broken CSV cannot be told apart
		}
		if len(entries)+len(bad) >= MaxStatementLines {
			return nil, domain.Errorf(domain.EINVALID, "the statement has more than %d lines", MaxStatementLines)
		}
		if problem := checkStatementLine(rec, len(header), col, &entries, line); problem != "" {
			bad = append(bad, ProblemLine{Line: line, Detail: problem})
		}
	}
	if len(bad) > 0 {
		msg := fmt.Sprintf("%d malformed line(s); nothing was imported", len(bad))
		if len(bad) > maxLineProblems {
			bad = bad[:maxLineProblems]
			msg += fmt.Sprintf(" (the first %d are listed)", maxLineProblems)
		}
		return nil, &LinesError{Err: domain.Errorf(domain.EINVALID, "%s", msg), Lines: bad}
	}
	if len(entries) == 0 {
		return nil, domain.Errorf(domain.EINVALID, "the statement has no lines after its header")
	}
	return entries, nil
}

// checkStatementLine checks one line and appends its entry, or says what
// is wrong with it.
func checkStatementLine(rec []string, width int, col map[string]int, entries *[]projections.StatementEntry, line int) string {
	if len(rec) != width {
		return fmt.Sprintf("%d fields, the header has %d", len(rec), width)
	}
	for i, f := range rec {
		if p := domain.TextProblem(f); p != "" {
			return fmt.Sprintf("field %d %s", i+1, p)
		}
		if len(f) > domain.MaxTextLen {
			return fmt.Sprintf("field %d is longer than %d bytes", i+1, domain.MaxTextLen)
		}
	}
	date := strings.TrimSpace(rec[col["value_date"]])
	if _, err := domain.ParseDate(date); err != nil {
		return "value_date: " + domain.ErrorMessage(err)
	}
	ref := strings.TrimSpace(rec[col["reference"]])
	if ref == "" {
		return "reference is empty"
	}
	amt, err := domain.ParseMoney(strings.TrimSpace(rec[col["amount"]]))
	if err != nil {
		return "amount: " + domain.ErrorMessage(err)
	}
	if amt.IsZero() {
		return "amount is zero"
	}
	if _, ok := amt.Fen(); !ok {
		return "amount is out of range"
	}
	*entries = append(*entries, projections.StatementEntry{Line: line, ValueDate: date, Reference: ref, Amount: amt})
	return ""
}

func (s *Server) handleStatementList(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, statementListAnswer{Statements: s.proj.Work().Statements(), Position: s.proj.Position().String()})
}

// statementListAnswer lists imported statements.
type statementListAnswer struct {
	Statements []projections.StatementSummary `json:"statements"`
	Position   string                         `json:"position"`
}

func (s *Server) handleStatementGet(w http.ResponseWriter, r *http.Request) {
	if err := s.waitMinPosition(r); err != nil {
		s.Error(w, r, err)
		return
	}
	id := mux.Vars(r)["id"]
	st, ok := s.proj.Work().Statement(id)
	if !ok {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "statement %q not found", clip(id)))
		return
	}
	writeJSON(w, http.StatusOK, st)
}
