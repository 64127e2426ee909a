package domain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"talentledger/eventstore"
)

// A stream many commands write to at once (a program's budget for the
// year: every approval reserves there, every release charges there) would
// serialize them one durable sync each, since a command holds the
// stream's lock until its append is acknowledged. A sole writer instead
// combines them: the commands waiting for a stream are decided one after
// another on its state, each seeing the events of those before it, and
// their events go to the store in one append, one sync for all. Each
// command keeps its own metadata, event IDs and hash links, and is
// answered as if it had run alone; a command refused by its decision
// writes nothing and does not hold the others back.
//
// Only a sole writer combines (see WithSoleWriter): its cached state is
// exact, so an append at the version it decided on can only fail if the
// store fails, and then every command of the batch is answered with that
// failure and the cached state is dropped.

// combineReq is one command waiting for its stream.
type combineReq struct {
	m      *meta
	decide decideFunc
	res    eventstore.AppendResult
	err    error
	// done is closed once the command is answered; lead, when the
	// command is to run the stream's next batch itself.
	done, lead chan struct{}
}

func (c *combineReq) chans() (done, lead chan struct{}) { return c.done, c.lead }

// executeCombined runs a command through its stream's combiner.
func (r *repo) executeCombined(ctx context.Context, stream string, newAgg func() aggregate, m *meta, decide decideFunc) (eventstore.AppendResult, error) {
	req := &combineReq{m: m, decide: decide, done: make(chan struct{}), lead: make(chan struct{})}
	r.combine.join(stream, req, func(batch []*combineReq) func() {
		r.runBatch(context.WithoutCancel(ctx), stream, newAgg, batch)
		return nil
	})
	return req.res, req.err
}

// runBatch decides the commands of a batch in order on the stream's state
// and appends all their events at once.
func (r *repo) runBatch(ctx context.Context, stream string, newAgg func() aggregate, batch []*combineReq) {
	answer := func(req *combineReq, res eventstore.AppendResult, err error) {
		req.res, req.err = res, err
		close(req.done)
	}
	unlock := r.lock(stream)
	defer unlock()
	e, err := r.load(ctx, stream, newAgg)
	if err != nil {
		for _, req := range batch {
			answer(req, eventstore.AppendResult{}, err)
		}
		return
	}
	start := e.version
	var data []eventstore.EventData
	var writers []*combineReq
	var lastVersion []eventstore.Version
	// inBatch finds the writers of this batch by command, and twins are
	// retries of one of them, answered with it once the append is made.
	inBatch := map[string]int{}
	type twin struct {
		req    *combineReq
		writer int
	}
	var twins []twin
	for _, req := range batch {
		if w, ok := inBatch[req.m.CommandID]; ok {
			twins = append(twins, twin{req, w})
			continue
		}
		if pos, ok, err := e.replayedBy(req.m); ok {
			answer(req, eventstore.AppendResult{Version: e.version, Position: pos}, err)
			continue
		}
		if err := req.m.checkDate(e); err != nil {
			answer(req, eventstore.AppendResult{}, err)
			continue
		}
		events, err := req.decide(e)
		if err != nil {
			answer(req, eventstore.AppendResult{}, err)
			continue
		}
		if len(events) == 0 {
			answer(req, eventstore.AppendResult{Version: e.version}, nil)
			continue
		}
		// Fold the command's events now, so that the next command of the
		// batch decides on them; their position is known after the append.
		evs, err := r.proposed(e, req.m, events)
		if err != nil {
			r.cache.remove(stream)
			answer(req, eventstore.AppendResult{}, err)
			for _, w := range writers {
				answer(w, eventstore.AppendResult{}, err)
			}
			for _, rest := range batch {
				select {
				case <-rest.done:
				default:
					answer(rest, eventstore.AppendResult{}, fmt.Errorf("combined with a command that failed: %w", err))
				}
			}
			return
		}
		for i := range evs {
			data = append(data, eventstore.EventData{ID: evs[i].ID, Type: evs[i].Type, Data: evs[i].Data, Metadata: evs[i].Metadata, ValidJSON: true})
		}
		inBatch[req.m.CommandID] = len(writers)
		writers = append(writers, req)
		lastVersion = append(lastVersion, e.version)
	}
	defer func() {
		for _, tw := range twins {
			w := writers[tw.writer]
			if tw.req.m.RequestHash != w.m.RequestHash && tw.req.m.RequestHash != "" {
				answer(tw.req, eventstore.AppendResult{}, Errorf(EIDEMPOTENCYMISMATCH, "this Idempotency-Key was used with a different request"))
				continue
			}
			if w.err == nil {
				tw.req.m.Outcome.set(outcomeReplayed)
			}
			answer(tw.req, w.res, w.err)
		}
	}()
	if len(data) == 0 {
		return
	}
	res, err := r.store.Append(ctx, stream, start, data...)
	if err != nil {
		// The cached state holds events the store did not take.
		r.cache.remove(stream)
		if !errors.Is(err, eventstore.ErrWrongVersion) {
			for _, w := range writers {
				answer(w, eventstore.AppendResult{}, err)
			}
			return
		}
		// Someone wrote to the stream after all: each command decides
		// again on the stream as stored, on its own.
		for _, w := range writers {
			e, err := r.load(ctx, stream, newAgg)
			if err != nil {
				answer(w, eventstore.AppendResult{}, err)
				continue
			}
			res, err := r.executeLocked(ctx, e, w.m, w.decide)
			answer(w, res, err)
		}
		return
	}
	for i := range data {
		e.ids[data[i].ID] = res.Position
	}
	for i, w := range writers {
		w.m.Outcome.set(outcomeWrote)
		answer(w, eventstore.AppendResult{Version: lastVersion[i], Position: res.Position}, nil)
	}
}

// proposed builds a command's events as they will be stored, chained to
// the stream's state, and folds them into it.
func (r *repo) proposed(e *entry, m *meta, events []Event) ([]eventstore.Event, error) {
	out := make([]eventstore.Event, len(events))
	prev := e.lastHash
	for i, ev := range events {
		raw, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", ev.EventType(), err)
		}
		md := m.metadata()
		md.PrevHash = prev
		id := eventID(m.CommandID, e.stream, i)
		typ := r.codec.StoredType(ev)
		version := e.version + 1
		md.Hash = ChainHash(prev, e.stream, version, id, typ, raw, md)
		prev = md.Hash
		out[i] = eventstore.Event{ID: id, Stream: e.stream, Version: version, Type: typ, Data: raw, Metadata: md}
		if err := e.fold(&out[i], r.codec); err != nil {
			return nil, err
		}
	}
	return out, nil
}
