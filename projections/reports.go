package projections

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"talentledger/domain"
)

// Reports a finance bureau files, each as a table written either as an
// Excel workbook (.xlsx) or as CSV:
//
//   - the workbook has one sheet: a title row naming the report, the date
//     it is as of and the tree head it was drawn from (size and root hash
//     of the Merkle tree over the log), then the header row, frozen, then
//     one row per line. Amounts are numbers formatted #,##0.00, dates are
//     dates, counts are numbers, text is text (never a formula). Headers
//     are Chinese unless English is asked for;
//   - the CSV is the export format of export.go: a BOM, the header row,
//     the lines;
//   - both are streamed: excelize's stream writer keeps a bounded buffer
//     and spills the sheet to a temporary file beyond it, so memory does
//     not grow with the rows;
//   - both are reproducible: the same report, as-of date and head give
//     the same bytes (the workbook's properties carry the as-of date, not
//     the time it was written).

// ColumnKind says how a column's values are written.
type ColumnKind int

// Column kinds.
const (
	ColText  ColumnKind = iota
	ColMoney            // "1234.50": a number formatted #,##0.00
	ColDate             // "2024-03-01": a date
	ColInt              // "42": a whole number
	ColRatio            // "1.36", "0.2063": a number as it is
)

// Column is one column of a report: its key (the CSV header in English
// form and the JSON name), its Chinese and English headers, and its kind.
type Column struct {
	Key  string
	ZH   string
	EN   string
	Kind ColumnKind
}

// Report is a table to write: its name (the file's base name), its title
// in Chinese and English, its columns, and its rows, produced one at a
// time (a row's values are strings in the ledger's own forms).
type Report struct {
	Name    string
	TitleZH string
	TitleEN string
	Columns []Column
	Rows    func(ctx context.Context, yield func(row []string) error) error
}

// ReportHead says what a report was drawn from: the business date it is as
// of and the head of the Merkle tree over the log.
type ReportHead struct {
	AsOf     string
	TreeSize uint64
	RootHash string
}

// Lang selects the headers' language: "zh" (the default) or "en".
type Lang string

// Languages of the reports' headers.
const (
	LangZH Lang = "zh"
	LangEN Lang = "en"
)

// ParseLang validates ?lang=. Errors are EINVALID.
func ParseLang(s string) (Lang, error) {
	switch strings.ToLower(s) {
	case "", "zh":
		return LangZH, nil
	case "en":
		return LangEN, nil
	}
	return "", domain.Errorf(domain.EINVALID, "lang %q is not one of zh, en", s)
}

func (c Column) header(l Lang) string {
	if l == LangEN || c.ZH == "" {
		if c.EN != "" {
			return c.EN
		}
		return c.Key
	}
	return c.ZH
}

// Title is the report's title row: its name, as-of date and head.
func (r Report) Title(l Lang, h ReportHead) string {
	if l == LangEN {
		return fmt.Sprintf("%s — as of %s — tree head: size %d, root %s", r.TitleEN, h.AsOf, h.TreeSize, h.RootHash)
	}
	return fmt.Sprintf("%s — 截至 %s — 树头：大小 %d，根哈希 %s", r.TitleZH, h.AsOf, h.TreeSize, h.RootHash)
}

// ReportStats is what writing a report wrote.
type ReportStats struct {
	Rows int64
}

// WriteCSV writes the report as CSV (see export.go): BOM, headers in l,
// the rows; text cells are guarded against formulas. flush, which may be
// nil, is called every few hundred rows and at the end.
func (r Report) WriteCSV(ctx context.Context, w io.Writer, l Lang, flush func() error) (ReportStats, error) {
	var st ReportStats
	out, err := newCSVOut(w, flush)
	if err != nil {
		return st, err
	}
	head := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		head[i] = c.header(l)
	}
	if err := out.write(head); err != nil {
		return st, err
	}
	row := make([]string, len(r.Columns))
	err = r.Rows(ctx, func(vals []string) error {
		for i, c := range r.Columns {
			v := ""
			if i < len(vals) {
				v = vals[i]
			}
			if c.Kind == ColText {
				v = Text(v)
			}
			row[i] = v
		}
		st.Rows++
		return out.write(row)
	})
	if err != nil {
		return st, err
	}
	return st, out.flush()
}

// xlsxStyles are the workbook's cell styles.
type xlsxStyles struct {
	title, header, money, date, ratio int
}

func newXLSXStyles(f *excelize.File) (xlsxStyles, error) {
	var s xlsxStyles
	var err error
	moneyFmt, dateFmt := "#,##0.00", "yyyy-mm-dd"
	for _, x := range []struct {
		dst   *int
		style *excelize.Style
	}{
		{&s.title, &excelize.Style{Font: &excelize.Font{Bold: true, Size: 12}}},
		{&s.header, &excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}},
			Border: []excelize.Border{{Type: "bottom", Color: "000000", Style: 1}}}},
		{&s.money, &excelize.Style{CustomNumFmt: &moneyFmt}},
		{&s.date, &excelize.Style{CustomNumFmt: &dateFmt}},
		{&s.ratio, &excelize.Style{NumFmt: 0}},
	} {
		if *x.dst, err = f.NewStyle(x.style); err != nil {
			return s, err
		}
	}
	return s, nil
}

// WriteXLSX writes the report as an Excel workbook to w. It returns when
// the workbook is written; what w has received before an error is not a
// workbook.
func (r Report) WriteXLSX(ctx context.Context, w io.Writer, l Lang, h ReportHead) (ReportStats, error) {
	var st ReportStats
	f := excelize.NewFile()
	defer f.Close()
	base := "报表"
	if l == LangEN {
		base = "Report"
	}
	if err := f.SetSheetName("Sheet1", base); err != nil {
		return st, err
	}
	// The properties carry the report's date, not the time it was
	// written, so the same report is the same bytes.
	stamp := h.AsOf + "T00:00:00Z"
	if err := f.SetDocProps(&excelize.DocProperties{Title: r.TitleEN, Creator: "talentledger", Created: stamp, Modified: stamp,
		LastModifiedBy: "talentledger", Description: r.Title(LangEN, h)}); err != nil {
		return st, err
	}
	styles, err := newXLSXStyles(f)
	if err != nil {
		return st, err
	}
	// A sheet holds at most maxSheetRows rows: a longer report goes on
	// into further sheets ("报表 2", …), each with the title and header.
	var sw *excelize.StreamWriter
	n, sheets := 0, 0
	next := func() error {
		if sw != nil {
			if err := sw.Flush(); err != nil {
				return err
			}
		}
		sheets++
		sheet := base
		if sheets > 1 {
			sheet = fmt.Sprintf("%s %d", base, sheets)
			if _, err := f.NewSheet(sheet); err != nil {
				return err
			}
		}
		var err error
		if sw, err = f.NewStreamWriter(sheet); err != nil {
			return err
		}
		return r.startSheet(sw, l, h, styles)
	}
	if err := next(); err != nil {
		return st, err
	}
	n = 2
	cells := make([]any, len(r.Columns))
	err = r.Rows(ctx, func(vals []string) error {
		if n == maxSheetRows {
			if err := next(); err != nil {
				return err
			}
			n = 2
		}
		n++
		for i, c := range r.Columns {
			v := ""
			if i < len(vals) {
				v = vals[i]
			}
			cells[i] = xlsxCell(c.Kind, v, styles)
		}
		cell, err := excelize.CoordinatesToCellName(1, n)
		if err != nil {
			return err
		}
		st.Rows++
		return sw.SetRow(cell, cells)
	})
	if err != nil {
		return st, err
	}
	if err := sw.Flush(); err != nil {
		return st, err
	}
	// excelize assembles the whole archive in a buffer before writing it
	// out; its zip writer, given here, writes the archive straight to w
	// instead, the sheet copied from its temporary file, so that memory
	// stays flat however many rows there are. (The buffer then stays
	// empty: Write has nothing left to copy.)
	zw := zip.NewWriter(w)
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zw })
	return st, f.Write(io.Discard)
}

// maxSheetRows is the most rows a sheet holds (Excel's limit).
var maxSheetRows = excelize.TotalRows

// startSheet sets a sheet's column widths, freezes its two top rows and
// writes the title and the header.
func (r Report) startSheet(sw *excelize.StreamWriter, l Lang, h ReportHead, styles xlsxStyles) error {
	for i, c := range r.Columns {
		width := 14.0
		switch c.Kind {
		case ColText:
			width = 22
		case ColMoney:
			width = 18
		case ColDate:
			width = 12
		case ColInt, ColRatio:
			width = 10
		}
		if err := sw.SetColWidth(i+1, i+1, width); err != nil {
			return err
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 2, TopLeftCell: "A3", ActivePane: "bottomLeft",
		Selection: []excelize.Selection{{SQRef: "A3", ActiveCell: "A3", Pane: "bottomLeft"}}}); err != nil {
		return err
	}
	if err := sw.SetRow("A1", []any{excelize.Cell{StyleID: styles.title, Value: r.Title(l, h)}}); err != nil {
		return err
	}
	head := make([]any, len(r.Columns))
	for i, c := range r.Columns {
		head[i] = excelize.Cell{StyleID: styles.header, Value: c.header(l)}
	}
	return sw.SetRow("A2", head)
}

// xlsxCell is a value as its column's kind writes it; a value that does
// not parse as its kind is written as text rather than lost.
func xlsxCell(k ColumnKind, v string, s xlsxStyles) any {
	if v == "" {
		return nil
	}
	switch k {
	case ColMoney:
		if m, err := domain.ParseMoney(v); err == nil {
			return excelize.Cell{StyleID: s.money, Value: m.Decimal().InexactFloat64()}
		}
	case ColDate:
		if t, err := time.Parse(time.DateOnly, v); err == nil {
			return excelize.Cell{StyleID: s.date, Value: t}
		}
	case ColInt:
		if i, err := strconv.ParseInt(v, 10, 64); err == nil {
			return i
		}
	case ColRatio:
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			return x
		}
	}
	return excelize.Cell{Value: v}
}

// CSVReport turns a CSV export (a BOM, a header row, the rows) into a
// report, so that an export is also written as a workbook: columns are
// typed by their header through kinds (text when not named), and headers
// translated through names. write writes the CSV; it runs beside the
// report's reader, streaming.
func CSVReport(name, titleZH, titleEN string, header []string, kinds map[string]ColumnKind, names map[string][2]string,
	write func(ctx context.Context, w io.Writer) error) Report {
	cols := make([]Column, len(header))
	for i, h := range header {
		cols[i] = Column{Key: h, ZH: names[h][0], EN: names[h][1], Kind: kinds[h]}
	}
	return Report{Name: name, TitleZH: titleZH, TitleEN: titleEN, Columns: cols,
		Rows: func(ctx context.Context, yield func([]string) error) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				err := write(ctx, pw)
				pw.CloseWithError(err)
				done <- err
			}()
			stop := func(err error) error {
				cancel()
				pr.CloseWithError(err)
				<-done
				return err
			}
			cr := csv.NewReader(bomSkipper(pr))
			cr.FieldsPerRecord = -1
			if _, err := cr.Read(); err != nil {
				return stop(fmt.Errorf("projections: %s: header: %w", name, err))
			}
			for {
				rec, err := cr.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return stop(err)
				}
				for i, v := range rec {
					rec[i] = unguard(v)
				}
				if err := yield(rec); err != nil {
					return stop(err)
				}
			}
			return <-done
		}}
}

// unguard takes off the quote Text puts before a cell that would read as
// a formula: a workbook's text cells are never evaluated.
func unguard(v string) string {
	if len(v) >= 2 && v[0] == '\'' {
		switch v[1] {
		case '=', '+', '-', '@', '\t', '\r':
			return v[1:]
		}
	}
	return v
}

// bomSkipper reads r without its leading BOM.
func bomSkipper(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(len(BOM)); err == nil && string(b) == BOM {
		_, _ = br.Discard(len(BOM))
	}
	return br
}
