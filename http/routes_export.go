package http

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"talentledger/domain"
	"talentledger/projections"
)

// exportWriteWindow is how long one flush of an export may take to reach
// the client. Each flush extends the connection's write deadline by it, so
// an export runs as long as the client keeps reading, past the server's
// WriteTimeout.
const exportWriteWindow = 60 * time.Second

func (s *Server) registerExportRoutes() {
	roles := []string{domain.RoleAuditor, domain.RoleApprover}
	s.handle("GET", "/v1/export/journal.csv", roles,
		"every posting of the events effective ?from= ?to= (inclusive, optional), as a CSV journal: a debit and a credit line per posting, with the bank reference, grant and talent it concerns",
		s.handleExportJournal, routeDoc{Response: csvAnswer{}, Query: []string{"min_position", "from", "to", "lang"}})
	s.handle("GET", "/v1/export/grants.csv", roles,
		"the grants register as CSV with talents' names and the documents of application and approval, also ?as_of= and ?recorded_as_of=",
		s.handleExportGrants, routeDoc{Response: csvAnswer{}, Query: append(slices.Clone(qPointTime), "lang")})
}

func (s *Server) handleExportJournal(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rng, err := projections.ParseJournalRange(q.Get("from"), q.Get("to"))
	if err == nil {
		err = s.waitMinPosition(r)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	header := projections.JournalHeader
	if r.URL.Query().Get("lang") == "zh" {
		header = projections.JournalHeaderZH
	}
	flush := s.startCSV(w, rng.Filename())
	st, err := s.proj.WriteJournal(r.Context(), w, rng, flush, header)
	s.endCSV(r, "journal", st.Rows, err)
}

func (s *Server) handleExportGrants(w http.ResponseWriter, r *http.Request) {
	v, pt, ok := s.query(w, r)
	if !ok {
		return
	}
	name := "grants"
	if pt.AsOf != "" {
		name += "_as_of_" + pt.AsOf
	}
	header := projections.GrantsHeader
	if r.URL.Query().Get("lang") == "zh" {
		header = projections.GrantsHeaderZH
	}
	flush := s.startCSV(w, name+".csv")
	n, err := projections.WriteGrantsCSVIn(r.Context(), w, v, flush, header)
	s.endCSV(r, "grants", int64(n), err)
}

// startCSV writes the headers of a CSV download and returns the flush to
// call as rows are written.
func (s *Server) startCSV(w http.ResponseWriter, filename string) func() error {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	// Registers hold personal data: no copy in any cache.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	extend := func() {
		// Not every writer has a deadline to extend (tests' recorders).
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
	}
	extend()
	return func() error {
		extend()
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
}

// endCSV finishes a streamed export. The status line has gone out, so a
// failure midway cannot become a problem answer: the connection is cut
// instead, so the client sees a failed download rather than a short file
// that looks complete.
func (s *Server) endCSV(r *http.Request, what string, rows int64, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
		s.log.Info("export abandoned by the client", "export", what, "rows", rows)
	} else {
		s.log.Error("export failed midway", "export", what, "rows", rows, "err", err)
	}
	panic(http.ErrAbortHandler)
}
