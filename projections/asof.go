package projections

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
)

// PointInTime selects the events the books held at a past moment. An event
// has two times: its business date (EffectiveDate: the metadata's effective
// date, or the city date it was recorded on) and when it was recorded. A
// correction recorded today can be effective last month, so the two
// questions differ:
//
//   - AsOf (YYYY-MM-DD) keeps events effective on or before that date: the
//     books as they stand now for the end of that business day, corrections
//     recorded since included;
//   - RecordedAsOf keeps events recorded at or before that instant: the
//     books as anyone could have read them then.
//
// Both together keep events that pass both. The zero PointInTime keeps
// every event.
type PointInTime struct {
	AsOf         string
	RecordedAsOf time.Time
}

// IsZero reports whether pt keeps every event.
func (pt PointInTime) IsZero() bool { return pt.AsOf == "" && pt.RecordedAsOf.IsZero() }

// Keep reports whether ev belongs to the books at pt.
func (pt PointInTime) Keep(ev *eventstore.Event) bool {
	if pt.AsOf != "" && EffectiveDate(ev) > pt.AsOf {
		return false
	}
	if !pt.RecordedAsOf.IsZero() && ev.Metadata.RecordedAt.After(pt.RecordedAsOf) {
		return false
	}
	return true
}

// RecordedAsOfString is RecordedAsOf as RFC 3339 in UTC, or "" when unset.
func (pt PointInTime) RecordedAsOfString() string {
	if pt.RecordedAsOf.IsZero() {
		return ""
	}
	return pt.RecordedAsOf.UTC().Format(time.RFC3339Nano)
}

// ParsePointInTime reads a business date (YYYY-MM-DD) and a recording time
// (RFC 3339, with an offset or Z); either may be empty. It returns a
// domain error with code EINVALID for anything else.
func ParsePointInTime(asOf, recordedAsOf string) (PointInTime, error) {
	var pt PointInTime
	if asOf != "" {
		if _, err := domain.ParseDate(asOf); err != nil {
			return PointInTime{}, err
		}
		pt.AsOf = asOf
	}
	if recordedAsOf != "" {
		t, err := time.Parse(time.RFC3339Nano, recordedAsOf)
		if err != nil || t.Year() < 2000 || t.Year() > 2100 {
			if len(recordedAsOf) > 40 {
				recordedAsOf = recordedAsOf[:40] + "…"
			}
			return PointInTime{}, domain.Errorf(domain.EINVALID,
				"recorded_as_of %q is not an RFC 3339 time like 2024-03-01T18:00:00+08:00", recordedAsOf)
		}
		pt.RecordedAsOf = t
	}
	return pt, nil
}

// Replay builds a fresh Projector from the log, applying only the events
// keep accepts (every event when keep is nil), and returns it once the log
// has been read to its end. It answers every query the live Projector
// answers, as the kept events have it; a point-in-time view is
// Replay(ctx, store, pt.Keep).
//
// It reads the whole log and holds models as large as the live ones, so
// it suits audit queries, not hot paths (the trial balance and budgets at
// a point in time come from the as-of index instead: see AsOfIndex). With
// keep set it folds every model but that index. The returned Projector is not
// subscribed: it does not change afterwards. Errors are the store's, or
// that of an event it cannot read.
func Replay(ctx context.Context, store eventstore.Store, keep func(*eventstore.Event) bool) (*Projector, error) {
	// Replayed views warn about nothing the live one has not warned about.
	// A replay for one point in time has no use for the as-of index;
	// a replay of the whole log folds it like every model.
	p := New(store, slog.New(slog.NewTextHandler(io.Discard, nil)), func(o *options) { o.noAsOf = keep != nil })
	it := store.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	if err := p.feed(it, keep, false); err != nil {
		return nil, fmt.Errorf("projections: replay: %w", err)
	}
	p.markReady()
	return p, nil
}

// ReplayInto folds the whole log into models, fresh ones of their kind,
// and returns once the log has been read to its end: for a tool that needs
// a model or two, not every view. Errors are the store's, or that of an
// event it cannot read.
func ReplayInto(ctx context.Context, store eventstore.Store, models ...Model) error {
	f := NewFeed(store, slog.New(slog.NewTextHandler(io.Discard, nil)), domain.Codec{}, models...)
	it := store.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	if err := f.feed(it, nil, false); err != nil {
		return fmt.Errorf("projections: replay: %w", err)
	}
	return nil
}

// BalancesAt computes the trial balance of the books at pt. It streams the
// log and keeps only the balances, so its memory does not grow with the
// log. Errors are the store's, or that of an event it cannot read.
func BalancesAt(ctx context.Context, store eventstore.Store, pt PointInTime) (TrialBalance, error) {
	l := NewLedger()
	it := store.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	var last eventstore.Position
	for it.Next() {
		ev := it.Event()
		if !pt.Keep(&ev) {
			continue
		}
		payload, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			return TrialBalance{}, fmt.Errorf("projections: balances: event at position %s: %w", ev.Position, err)
		}
		l.Post(domain.Postings(payload))
		if err := l.Err(); err != nil {
			return TrialBalance{}, fmt.Errorf("projections: balances: event at position %s: %w", ev.Position, err)
		}
		last = ev.Position
	}
	if err := it.Err(); err != nil {
		return TrialBalance{}, err
	}
	tb := l.TrialBalance()
	tb.AsOf = pt.AsOf
	tb.RecordedAsOf = pt.RecordedAsOfString()
	tb.Position = last.String()
	return tb, nil
}

// FundsAt returns read models that answer the questions about funds and
// projects (funds, projects, sectors, alerts, the funds' measures) at pt:
// p itself when pt is zero, else models fed the events of the funds'
// streams alone, those kept at pt, in log order. Every event the funds and
// fund-flows models fold lies in a fund's stream, and every fund at a past
// point is a fund now, so these answer as a replay of the whole log would,
// at a cost that follows the funds' own events rather than the log. Only
// those two models of the answer hold anything; its Position is that of
// the last fund event it holds.
func (p *Projector) FundsAt(ctx context.Context, pt PointInTime) (*Projector, error) {
	if pt.IsZero() {
		return p, nil
	}
	var evs []eventstore.Event
	for _, id := range p.funds.ids() {
		it := p.store.ReadStream(ctx, domain.FundStream(id), 0)
		for it.Next() {
			if ev := it.Event(); pt.Keep(&ev) {
				evs = append(evs, ev)
			}
		}
		err := it.Err()
		it.Close()
		if err != nil {
			return nil, fmt.Errorf("projections: funds at a point in time: %w", err)
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Position.Before(evs[j].Position) })
	q := New(p.store, slog.New(slog.NewTextHandler(io.Discard, nil)), func(o *options) { o.noAsOf = true })
	if err := q.feed(&eventList{evs: evs, i: -1}, nil, false); err != nil {
		return nil, fmt.Errorf("projections: funds at a point in time: %w", err)
	}
	q.markReady()
	return q, nil
}

// eventList is an Iterator over events in memory.
type eventList struct {
	evs []eventstore.Event
	i   int
}

func (l *eventList) Next() bool {
	l.i++
	return l.i < len(l.evs)
}

func (l *eventList) Event() eventstore.Event { return l.evs[l.i] }
func (l *eventList) Err() error              { return nil }
func (l *eventList) Close() error            { return nil }
