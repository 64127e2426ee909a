package projections

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"sync"

	"talentledger/domain"
	"talentledger/eventstore"
)

// Exports for auditors: the journal of every posting and the grants
// register, as CSV files that spreadsheet programs open as they are.
//
//   - UTF-8 with a byte-order mark, so that Excel reads Chinese names and
//     reasons as UTF-8 rather than the machine's legacy code page;
//   - RFC 4180: comma-separated, fields quoted when needed, CRLF line ends;
//   - a text cell that starts with = + - @ (or a tab or carriage return) is
//     prefixed with a single quote, so that a spreadsheet shows it as text
//     rather than evaluate it as a formula (CSV injection). Amounts and other
//     numbers are written by the ledger itself and never prefixed.
//   - streamed: rows are written as the log (or the register) is read, and
//     flushed every few hundred rows; memory does not grow with the rows.

// BOM is the UTF-8 byte-order mark every export starts with.
const BOM = "\xEF\xBB\xBF"

// JournalHeader names the journal's columns. Each posting of an event is
// two lines in journal form: a debit line for the destination account and
// a credit line for the source account, with the posting's number in the
// event ("posting", from 1) on both. So every event's lines, and the whole
// file, have equal debit and credit totals.
var JournalHeader = []string{
	"event_id", "position", "stream", "version", "type", "principal", "role",
	"recorded_at", "effective_date", "posting", "account", "debit", "credit",
	"reason", "document_ref", "correlation_id",
	"bank_reference", "grant_id", "talent_id", "talent_name",
}

// JournalHeaderZH is JournalHeader in Chinese (?lang=zh).
var JournalHeaderZH = []string{
	"事件编号", "日志位置", "流", "流内序号", "事件类型", "操作人", "角色",
	"记录时间", "业务日期", "分录序号", "科目", "借方", "贷方",
	"事由", "文件编号", "关联编号",
	"银行流水号", "补贴编号", "人才编号", "人才姓名",
}

// GrantsHeader names the grants register's columns: one row per grant in
// the order applied for. Amounts are in yuan with two decimals; dates are
// YYYY-MM-DD; fiscal_year and approved_on are empty until approval.
var GrantsHeader = []string{
	"grant_id", "talent_id", "talent_name", "program_id", "state",
	"amount_requested", "award", "deduction", "amount", "fiscal_year",
	"applied_on", "approved_on", "paid", "due",
	"clawback_assessed", "clawback_recovered", "clawback_waived", "clawback_outstanding",
	"application_document_ref", "approval_document_ref",
}

// GrantsHeaderZH is GrantsHeader in Chinese (?lang=zh).
var GrantsHeaderZH = []string{
	"补贴编号", "人才编号", "人才姓名", "补贴项目", "状态",
	"申请金额", "核定金额", "抵扣金额", "应发金额", "预算年度",
	"申请日期", "批准日期", "已发放", "待发放",
	"应追回", "已追回", "已豁免", "未追回",
	"申请文件编号", "批准文件编号",
}

// flushEvery is how many rows are written between flushes to the client.
const flushEvery = 512

// JournalRange selects events by effective date, both bounds inclusive and
// optional (YYYY-MM-DD).
type JournalRange struct {
	From, To string
}

// ParseJournalRange validates a range. Errors are EINVALID.
func ParseJournalRange(from, to string) (JournalRange, error) {
	for _, d := range []string{from, to} {
		if d != "" {
			if _, err := domain.ParseDate(d); err != nil {
				return JournalRange{}, err
			}
		}
	}
	if from != "" && to != "" && from > to {
		return JournalRange{}, domain.Errorf(domain.EINVALID, "from (%s) is after to (%s)", from, to)
	}
	return JournalRange{From: from, To: to}, nil
}

// Filename is the journal file's name: journal.csv, or with the range's
// bounds, e.g. journal_from_2024-01-01_to_2024-12-31.csv.
func (jr JournalRange) Filename() string {
	name := "journal"
	if jr.From != "" {
		name += "_from_" + jr.From
	}
	if jr.To != "" {
		name += "_to_" + jr.To
	}
	return name + ".csv"
}

// Keep reports whether ev's effective date is in the range.
func (jr JournalRange) Keep(ev *eventstore.Event) bool {
	d := EffectiveDate(ev)
	return (jr.From == "" || d >= jr.From) && (jr.To == "" || d <= jr.To)
}

// JournalStats sums what a journal export wrote.
type JournalStats struct {
	// Events counts events with postings in the range; Postings their
	// postings; Rows the lines written (two per posting), header excluded.
	Events   int64
	Postings int64
	Rows     int64
	Debits   domain.Money
	Credits  domain.Money
	// Last is the position of the last event read.
	Last eventstore.Position
}

// csvOut is a CSV writer that flushes to its destination every flushEvery
// rows.
type csvOut struct {
	cw    *csv.Writer
	flush func() error
	rows  int
}

func newCSVOut(w io.Writer, flush func() error) (*csvOut, error) {
	bw := bufio.NewWriterSize(w, 32<<10)
	if _, err := bw.WriteString(BOM); err != nil {
		return nil, err
	}
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	return &csvOut{cw: cw, flush: func() error {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if flush != nil {
			return flush()
		}
		return nil
	}}, nil
}

func (o *csvOut) write(row []string) error {
	if err := o.cw.Write(row); err != nil {
		return err
	}
	o.rows++
	if o.rows%flushEvery == 0 {
		return o.flush()
	}
	return nil
}

// Text guards a text cell against formula injection: a cell starting with
// = + - @, a tab or a carriage return gets a leading single quote.
func Text(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// WriteJournalCSV writes every posting of every event in rng to w, in log
// order, as the journal described by JournalHeader, after a BOM and the
// header. It streams: one event is held at a time, and flush (which may be
// nil) is called, after the writer's own buffer is flushed, every few
// hundred rows and at the end, so that an HTTP answer reaches the client as
// it is written. Errors are the store's, ctx's or w's.
func WriteJournalCSV(ctx context.Context, w io.Writer, store eventstore.Store, rng JournalRange, flush func() error) (JournalStats, error) {
	return WriteJournalCSVIn(ctx, w, store, rng, flush, JournalHeader)
}

// WriteJournalCSVIn is WriteJournalCSV with the header given (JournalHeader
// or JournalHeaderZH). Talents' names and grants' talents are learnt as
// the log is read (a talent is registered before anything is paid to it),
// so memory grows with the talents and grants, not with the postings.
func WriteJournalCSVIn(ctx context.Context, w io.Writer, store eventstore.Store, rng JournalRange, flush func() error, header []string) (JournalStats, error) {
	var st JournalStats
	st.Debits, st.Credits = domain.Zero, domain.Zero
	out, err := newCSVOut(w, flush)
	if err != nil {
		return st, err
	}
	if err := out.write(header); err != nil {
		return st, err
	}
	names := map[string]string{}       // talent → name
	grantTalent := map[string]string{} // grant → talent
	it := store.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	row := make([]string, len(JournalHeader))
	for it.Next() {
		ev := it.Event()
		st.Last = ev.Position
		switch ev.Type {
		case domain.TypeTalentRegistered, domain.TypeGrantApplied:
			// Learnt whatever the range, for the lines within it.
			switch e := decodeQuiet(&ev).(type) {
			case *domain.TalentRegistered:
				names[e.TalentID] = e.Name
			case *domain.GrantApplied:
				grantTalent[e.GrantID] = e.TalentID
			}
		}
		if !rng.Keep(&ev) {
			continue
		}
		payload, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			// A type this version does not know: it cannot say what it
			// posts. Refuse rather than export a journal missing lines.
			return st, fmt.Errorf("projections: journal: event at %s (%s): %w", ev.Position, ev.Type, err)
		}
		ps := domain.Postings(payload)
		if len(ps) == 0 {
			continue
		}
		st.Events++
		fillEventColumns(row, &ev)
		sub := subjectOf(payload)
		if sub.talent == "" {
			sub.talent = grantTalent[sub.grant]
		}
		row[16], row[17], row[18], row[19] = Text(sub.bankRef), Text(sub.grant), Text(sub.talent), Text(names[sub.talent])
		for i, p := range ps {
			st.Postings++
			amount := p.Amount.String()
			row[9] = strconv.Itoa(i + 1)
			for _, line := range [2]struct{ account, debit, credit string }{
				{p.Destination, amount, ""}, {p.Source, "", amount},
			} {
				row[10], row[11], row[12] = Text(line.account), line.debit, line.credit
				if err := out.write(row); err != nil {
					return st, err
				}
				st.Rows++
			}
			st.Debits = st.Debits.Add(p.Amount)
			st.Credits = st.Credits.Add(p.Amount)
		}
	}
	if err := it.Err(); err != nil {
		return st, err
	}
	return st, out.flush()
}

// decodeQuiet decodes an event, or returns nil when it cannot: the
// journal's own decoding reports it when the event is in range.
func decodeQuiet(ev *eventstore.Event) domain.Event {
	p, err := domain.DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		return nil
	}
	return p
}

// subject is what an event is about, as far as its payload names it.
type subject struct{ grant, talent, bankRef string }

// subjectFields caches, by payload type, the indexes of its GrantID,
// TalentID and BankReference fields (-1 when it has none).
var subjectFields sync.Map // reflect.Type → [3]int

// subjectOf reads the grant, talent and bank reference an event names.
// Every event type names them with these fields, so they are found by
// name rather than listed type by type.
func subjectOf(payload domain.Event) subject {
	v := reflect.ValueOf(payload)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return subject{}
	}
	t := v.Type()
	idx, ok := subjectFields.Load(t)
	if !ok {
		var f [3]int
		for i, name := range []string{"GrantID", "TalentID", "BankReference"} {
			f[i] = -1
			if sf, ok := t.FieldByName(name); ok && len(sf.Index) == 1 && sf.Type.Kind() == reflect.String {
				f[i] = sf.Index[0]
			}
		}
		idx, _ = subjectFields.LoadOrStore(t, f)
	}
	f := idx.([3]int)
	get := func(i int) string {
		if f[i] < 0 {
			return ""
		}
		return v.Field(f[i]).String()
	}
	return subject{grant: get(0), talent: get(1), bankRef: get(2)}
}

// fillEventColumns sets the columns every line of an event shares.
func fillEventColumns(row []string, ev *eventstore.Event) {
	recorded := ""
	if !ev.Metadata.RecordedAt.IsZero() {
		recorded = ev.Metadata.RecordedAt.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	row[0] = ev.ID.String()
	row[1] = ev.Position.String()
	row[2] = Text(ev.Stream)
	row[3] = strconv.FormatInt(int64(ev.Version), 10)
	row[4] = Text(ev.Type)
	row[5] = Text(ev.Metadata.Principal)
	row[6] = Text(ev.Metadata.Role)
	row[7] = recorded
	row[8] = EffectiveDate(ev)
	row[13] = Text(ev.Metadata.Reason)
	row[14] = Text(ev.Metadata.DocumentRef)
	row[15] = Text(ev.Metadata.CorrelationID)
}

// grantRow is one line of the register, copied under the lock.
type grantRow [20]string

// grantRows copies the register rows of up to n grants from index i of
// the application order, and the index to continue from: the grants under
// the grants model's lock, then their talents' names under the talents'.
func (p *Projector) grantRows(i, n int) ([]grantRow, int) {
	var out []grantRow
	var talents []string
	i = p.grants.page(i, n, func(g *GrantView) {
		fy := ""
		if g.FiscalYear != 0 {
			fy = strconv.Itoa(g.FiscalYear)
		}
		talents = append(talents, g.TalentID)
		out = append(out, grantRow{
			Text(g.ID), Text(g.TalentID), "", Text(g.ProgramID), Text(g.State),
			g.AmountRequested.String(), g.Award.String(), g.Deduction.String(), g.Amount.String(), fy,
			g.AppliedOn, g.ApprovedOn, g.Paid.String(), g.Due.String(),
			g.Clawback.Assessed.String(), g.Clawback.Recovered.String(), g.Clawback.Waived.String(), g.Clawback.Outstanding.String(),
			Text(g.DocumentRef), Text(g.ApprovalDocumentRef),
		})
	})
	for k, name := range p.talents.Names(talents) {
		out[k][2] = Text(name)
	}
	return out, i
}

// WriteGrantsCSV writes the grants register of p to w, as described by
// GrantsHeader, after a BOM and the header, and returns the number of
// grants written. It copies a page of rows at a time under p's read lock and
// writes it with the lock released, so a slow reader never holds up the
// projector; on a live projector, a grant applied for while the export runs
// may appear at the end. flush is as for WriteJournalCSV. Errors are ctx's
// or w's.
func WriteGrantsCSV(ctx context.Context, w io.Writer, p *Projector, flush func() error) (int, error) {
	return WriteGrantsCSVIn(ctx, w, p, flush, GrantsHeader)
}

// WriteGrantsCSVIn is WriteGrantsCSV with the header given (GrantsHeader
// or GrantsHeaderZH).
func WriteGrantsCSVIn(ctx context.Context, w io.Writer, p *Projector, flush func() error, header []string) (int, error) {
	out, err := newCSVOut(w, flush)
	if err != nil {
		return 0, err
	}
	if err := out.write(header); err != nil {
		return 0, err
	}
	n := 0
	for i := 0; ; {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		var rows []grantRow
		rows, i = p.grantRows(i, flushEvery)
		if len(rows) == 0 {
			break
		}
		for k := range rows {
			if err := out.write(rows[k][:]); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, out.flush()
}
