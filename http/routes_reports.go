package http

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"talentledger/domain"
	"talentledger/projections"
)

// xlsxType is the media type of an Excel workbook.
const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

func (s *Server) registerReportRoutes() {
	finance := []string{domain.RoleAuditor, domain.RoleApprover}
	funds := []string{domain.RoleAuditor, domain.RoleApprover, domain.RoleFundManager}
	for _, f := range []string{"xlsx", "csv"} {
		var answer any = csvAnswer{}
		if f == "xlsx" {
			answer = xlsxAnswer{}
		}
		s.handle("GET", "/v1/reports/budget-execution."+f, finance,
			"budget execution (预算执行情况) per program and fiscal year (?fiscal_year=): appropriated, budget, reserved, paid, released, recovered, available, execution rate, as "+f,
			s.reportHandler(f, func(r *http.Request, v *projections.Projector, _ string) (projections.Report, error) {
				fy := 0
				if q := r.URL.Query().Get("fiscal_year"); q != "" {
					n, err := strconv.Atoi(q)
					if err != nil || n < 2000 || n > 2200 {
						return projections.Report{}, domain.Errorf(domain.EINVALID, "fiscal_year %q is not a year", clip(q))
					}
					fy = n
				}
				return v.BudgetExecutionReport(fy), nil
			}), routeDoc{Response: answer, Query: append([]string{"fiscal_year", "lang"}, qPointTime...)})
		s.handle("GET", "/v1/reports/clawbacks."+f, finance,
			"clawbacks receivable with their ageing (0–90, 91–180, 181–365, over 365 days) at ?as_of= (the server's date by default), as "+f,
			s.reportHandler(f, func(_ *http.Request, v *projections.Projector, asOf string) (projections.Report, error) {
				return v.ClawbacksReport(asOf), nil
			}), routeDoc{Response: answer, Query: append([]string{"lang"}, qPointTime...)})
		s.handle("GET", "/v1/reports/payments."+f, finance,
			"the payments register of a period: every payment released from ?from= to ?to= (inclusive; to defaults to the report's date), reversed ones with their state, and a total line, as "+f,
			s.reportHandler(f, func(r *http.Request, v *projections.Projector, asOf string) (projections.Report, error) {
				q := r.URL.Query()
				from, to := q.Get("from"), q.Get("to")
				if to == "" {
					to = asOf
				}
				if from != "" && from > to {
					return projections.Report{}, paramErrorf(EBADPARAM, "from", nil, "from (%s) is after to (%s)", from, to)
				}
				return v.PaymentsRegisterReport(from, to), nil
			}), routeDoc{Response: answer, Query: append([]string{"from", "to", "lang"}, qPointTime...)})
		s.handle("GET", "/v1/reports/funds."+f, funds,
			"per fund and per project: paid-in, cost, valuation, distributions, NAV, stake, multiple, DPI, RVPI, TVPI, IRR, as "+f,
			s.reportHandler(f, func(_ *http.Request, v *projections.Projector, asOf string) (projections.Report, error) {
				return v.FundReport(asOf), nil
			}), routeDoc{Response: answer, Query: append([]string{"lang"}, qPointTime...)})
	}
	s.handle("GET", "/v1/reports/grants.xlsx", finance, "the grants register as an Excel workbook (the columns of /v1/export/grants.csv)",
		s.reportHandler("xlsx", func(_ *http.Request, v *projections.Projector, _ string) (projections.Report, error) {
			return v.GrantsRegisterReport(), nil
		}), routeDoc{Response: xlsxAnswer{}, Query: append([]string{"lang"}, qPointTime...)})
	s.handle("GET", "/v1/reports/journal.xlsx", finance, "the journal of the postings effective ?from= ?to= as an Excel workbook (the columns of /v1/export/journal.csv)",
		s.handleJournalXLSX, routeDoc{Response: xlsxAnswer{}, Query: []string{"min_position", "from", "to", "lang"}})
}

// reportHandler answers a report as format (xlsx or csv), drawn from the
// read models of ?as_of= / ?recorded_as_of=, with headers in ?lang= (zh
// by default, or en).
func (s *Server) reportHandler(format string, build func(r *http.Request, v *projections.Projector, asOf string) (projections.Report, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lang, err := projections.ParseLang(r.URL.Query().Get("lang"))
		if err != nil {
			s.Error(w, r, err)
			return
		}
		head := s.reportHead()
		v, pt, ok := s.query(w, r)
		if !ok {
			return
		}
		head.AsOf = pt.AsOf
		if head.AsOf == "" {
			head.AsOf = s.svc.Today()
		}
		rep, err := build(r, v, head.AsOf)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		s.writeReport(w, r, rep, format, lang, head)
	}
}

func (s *Server) handleJournalXLSX(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lang, err := projections.ParseLang(q.Get("lang"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	rng, err := projections.ParseJournalRange(q.Get("from"), q.Get("to"))
	if err == nil {
		err = s.waitMinPosition(r)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	head := s.reportHead()
	head.AsOf = rng.To
	if head.AsOf == "" {
		head.AsOf = s.svc.Today()
	}
	s.writeReport(w, r, s.proj.JournalReport(rng), "xlsx", lang, head)
}

// reportHead is the head of the tree over the log as far as the read
// models have reached.
func (s *Server) reportHead() projections.ReportHead {
	size := s.proj.TreeSize()
	root, _, err := s.proj.TreeRoot(size)
	if err != nil {
		return projections.ReportHead{TreeSize: size}
	}
	return projections.ReportHead{TreeSize: size, RootHash: hex.EncodeToString(root)}
}

// writeReport streams a report. A CSV goes out as it is drawn; a workbook
// is assembled (its sheet spilling to a temporary file beyond a bounded
// buffer) and then sent, so an error while drawing it is still answered
// as a problem.
func (s *Server) writeReport(w http.ResponseWriter, r *http.Request, rep projections.Report, format string, lang projections.Lang, head projections.ReportHead) {
	name := rep.Name + "_" + head.AsOf
	h := w.Header()
	h.Set("X-Report-As-Of", head.AsOf)
	h.Set("X-Report-Tree-Size", strconv.FormatUint(head.TreeSize, 10))
	h.Set("X-Report-Root-Hash", head.RootHash)
	if format == "csv" {
		flush := s.startCSV(w, name+".csv")
		st, err := rep.WriteCSV(r.Context(), w, lang, flush)
		s.endCSV(r, rep.Name, st.Rows, err)
		return
	}
	h.Set("Content-Type", xlsxType)
	h.Set("Content-Disposition", `attachment; filename="`+name+`.xlsx"`)
	h.Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
	sw := &startedWriter{w: w}
	st, err := rep.WriteXLSX(r.Context(), sw, lang, head)
	if err != nil && !sw.started {
		h.Del("Content-Type")
		h.Del("Content-Disposition")
		s.Error(w, r, err)
		return
	}
	s.endCSV(r, rep.Name, st.Rows, err)
}

// startedWriter notes whether anything was written.
type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (sw *startedWriter) Write(p []byte) (int, error) {
	sw.started = true
	return sw.w.Write(p)
}
