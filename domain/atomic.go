package domain

import (
	"context"
	"errors"
	"slices"

	"talentledger/eventstore"
)

// Some commands write to several streams in a fixed order: a release
// charges its year's budget, then records the release on the grant; an
// approval reserves the talent's entitlement and its year's budget,
// commits the later years' budgets, then records the approval. Appended
// one stream at a time, such a command waits for one durable append per
// stream, in a row, and must be able to finish an interruption between
// them (see Reconcile).
//
// On a store that appends to several streams at once
// (eventstore.MultiAppender) a sole writer does better: every step of the
// command is decided on its stream's state, and if none refuses, all their
// events go to the store in one atomic append, in the order of the steps,
// with each stream's expected version; if one refuses, nothing is written.
// There is then nothing to finish after a crash and one sync to wait for.
//
// The commands waiting to do so are combined, as combine.go combines those
// of one stream: the commands queue by the stream they contend for most,
// a program's budget for the year; one of them takes every command
// waiting in its queue, locks the streams they need (those their callers
// do not hold already, in name order, so that two queues' batches never
// wait on each other in a circle), decides them in turn, each on the
// states the ones before it left, and appends all their steps in one
// call, so that a budget every approval and release of a program writes
// to takes one sync for all of them. A command refused by one of its
// steps writes nothing and holds no other back.
//
// A store without the capability, or a repo that is not the sole writer,
// keeps the stream-by-stream path.

// step is one stream's part of a command that writes to several streams.
// A command's steps name distinct streams: each decides on its stream's
// state before any of them is folded.
type step struct {
	stream string
	newAgg func() aggregate
	m      *meta
	decide decideFunc
	// held is the stream's state when the caller holds its lock (a
	// grant's, which is always taken first); nil when the repo is to lock
	// the stream. A stream the repo locks must never be one that a caller
	// holds while it waits for a command to be carried out.
	held *entry
}

// errStepwise is returned by a step's decision, or by executeAtomic, when
// the command must be carried out stream by stream instead: the state
// shows an earlier, interrupted attempt for the stepwise path to finish,
// or the store refused the combined append. Nothing was written.
var errStepwise = errors.New("carried out stream by stream")

// multi returns the store's multi-stream append when this repo may use it.
func (r *repo) multi() eventstore.MultiAppender {
	if !r.soleWriter {
		return nil
	}
	m, _ := r.store.(eventstore.MultiAppender)
	return m
}

// atomicReq is one command waiting to be carried out.
type atomicReq struct {
	steps []step
	// res holds each step's result: the stream's version after the
	// command and the position of its last event there.
	res []eventstore.AppendResult
	err error
	// done is closed once the command is answered; lead, when the
	// command is to run the next batch itself.
	done, lead chan struct{}
	// parts are the indexes of the command's parts in the batch's
	// append, one per step (-1 for a step that writes nothing).
	parts []int
}

func (a *atomicReq) chans() (done, lead chan struct{}) { return a.done, a.lead }

// executeAtomic carries out a command's steps in one atomic append, in a
// batch with the commands queued under the same key: the stream they
// contend for most, a program's budget for the year. Batches of different
// keys run side by side, and the store's group commit still makes their
// appends share a sync. It returns each step's result, or the refusal of
// the first step that refused, or errStepwise. The caller holds the locks
// of the held steps' streams until it returns.
func (r *repo) executeAtomic(ctx context.Context, key string, steps []step) ([]eventstore.AppendResult, error) {
	req := &atomicReq{steps: steps, done: make(chan struct{}), lead: make(chan struct{})}
	r.atomic.join(key, req, func(batch []*atomicReq) func() {
		return r.runAtomic(context.WithoutCancel(ctx), batch)
	})
	return req.res, req.err
}

// runAtomic decides the commands of a batch in order and appends all
// their events in one call. On a store that reports an append's place in
// the log before its sync (eventstore.OrderedAppender), it returns once
// the append is ordered, with the streams unlocked and their states
// holding the batch's events, so that the key's next batch is decided
// and goes to the store while this one syncs, and may share its sync;
// finish then waits for the sync and answers the batch. Nothing is
// answered before the state it rests on is durable: a writer once its own
// append is, a refusal once the appends it saw in flight are. If one of
// those appends fails, the state held events the store did not take:
// every command resting on it is answered with the store's error, never
// with a refusal or a success.
func (r *repo) runAtomic(ctx context.Context, batch []*atomicReq) (finish func()) {
	answer := func(req *atomicReq, err error) {
		req.err = err
		if err != nil {
			req.res = nil
		}
		close(req.done)
	}
	// The streams' states: those held by the callers, and the others,
	// locked here in name order.
	entries := map[string]*entry{}
	aggs := map[string]func() aggregate{}
	for _, req := range batch {
		for _, s := range req.steps {
			if s.held != nil {
				entries[s.stream] = s.held
			} else {
				aggs[s.stream] = s.newAgg
			}
		}
	}
	var lock []string
	for stream := range aggs {
		if entries[stream] == nil {
			lock = append(lock, stream)
		}
	}
	slices.Sort(lock)
	unlocks := make([]func(), 0, len(lock))
	unlock := func() {
		for _, u := range unlocks {
			u()
		}
		unlocks = nil
	}
	defer unlock()
	for _, stream := range lock {
		unlocks = append(unlocks, r.lock(stream))
	}
	for _, stream := range lock {
		e, err := r.loadOrdered(ctx, stream, aggs[stream])
		if err != nil {
			for _, req := range batch {
				answer(req, err)
			}
			return nil
		}
		entries[stream] = e
	}
	// inFlight are the appends, ordered but maybe not yet durable, that
	// the batch decides on.
	var inFlight []*outcome
	for _, e := range entries {
		if e.durable != nil {
			inFlight = append(inFlight, e.durable)
		}
	}
	// settle waits for the appends in flight and returns the error of
	// one that failed.
	settle := func() error {
		var failure error
		for _, o := range inFlight {
			if err := o.wait(); err != nil && failure == nil {
				failure = err
			}
		}
		return failure
	}

	var parts []eventstore.AppendPart
	var writers, refused []*atomicReq
	// failed answers every command not yet answered with err, and drops
	// every state the batch touched, since they may hold events the store
	// did not take. A held state is read again in place, for its caller
	// goes on with it. The appends in flight are waited for first, so
	// that what is read back holds them; if one of them failed, every
	// command, a refused one too, is answered with its error, for what
	// it was decided on is lost.
	failed := func(err error) {
		lost := settle()
		if lost != nil {
			err = lost
		}
		for _, stream := range lock {
			r.cache.remove(stream)
		}
		for _, req := range batch {
			select {
			case <-req.done:
				continue
			default:
			}
			reqErr := err
			refused := req.err != nil
			if refused && lost == nil {
				reqErr = req.err
			}
			for _, s := range req.steps {
				if s.held == nil || refused {
					continue
				}
				if rerr := r.reread(ctx, s.held, s.newAgg); rerr != nil {
					r.cache.remove(s.stream)
					if errors.Is(reqErr, errStepwise) {
						reqErr = rerr
					}
				}
			}
			answer(req, reqErr)
		}
	}
	for _, req := range batch {
		req.res = make([]eventstore.AppendResult, len(req.steps))
		req.parts = make([]int, len(req.steps))
		events := make([][]Event, len(req.steps))
		var refusal error
		for i, s := range req.steps {
			e := entries[s.stream]
			req.parts[i] = -1
			if _, ok := e.replayed(s.m.CommandID); ok {
				// An earlier attempt of the command wrote here: the
				// stepwise path finds what it did and continues it.
				refusal = errStepwise
				break
			}
			if refusal = s.m.checkDate(e); refusal != nil {
				break
			}
			if events[i], refusal = s.decide(e); refusal != nil {
				break
			}
			req.res[i] = eventstore.AppendResult{Version: e.version}
		}
		if refusal != nil {
			// Answered once what it was decided on is durable.
			req.err = refusal
			refused = append(refused, req)
			continue
		}
		// Every step accepted: fold the command's events now, so that the
		// next command decides on them; their positions are known after
		// the append.
		for i, s := range req.steps {
			if len(events[i]) == 0 {
				continue
			}
			e := entries[s.stream]
			expected := e.version
			evs, err := r.proposed(e, s.m, events[i])
			if err != nil {
				failed(err)
				return nil
			}
			data := make([]eventstore.EventData, len(evs))
			for j := range evs {
				data[j] = eventstore.EventData{ID: evs[j].ID, Type: evs[j].Type, Data: evs[j].Data, Metadata: evs[j].Metadata, ValidJSON: true}
			}
			req.parts[i] = len(parts)
			parts = append(parts, eventstore.AppendPart{Stream: s.stream, Expected: expected, Events: data})
		}
		writers = append(writers, req)
	}
	// answerRefused answers the refusals once what they were decided on
	// is durable, or with the store's error if it was lost.
	answerRefused := func(lost error) {
		for _, req := range refused {
			if lost != nil {
				req.err = lost
			}
			answer(req, req.err)
		}
	}
	if len(parts) == 0 {
		unlock()
		return func() {
			// The commands that write nothing rest on the states as
			// ordered too.
			lost := settle()
			answerRefused(lost)
			for _, req := range writers {
				answer(req, lost)
			}
		}
	}
	var res []eventstore.AppendResult
	var wait func() error
	var err error
	if o, ok := r.store.(eventstore.OrderedAppender); ok {
		res, wait, err = o.AppendMultiOrdered(ctx, len(writers), parts...)
	} else {
		res, err = r.multi().AppendMulti(ctx, parts...)
	}
	if err != nil {
		if errors.Is(err, eventstore.ErrWrongVersion) {
			// Someone else wrote after all: each command decides again,
			// stream by stream.
			err = errStepwise
		}
		failed(err)
		return nil
	}
	// The states hold the batch's events from now on: the next batch, and
	// any other command, waits for their sync before answering on them.
	synced := newOutcome()
	for k, p := range parts {
		e := entries[p.Stream]
		if e.durable != synced {
			e.durable = synced
			r.cache.pin(p.Stream, e)
		}
		last := res[k].Position.Commit
		for j, ev := range p.Events {
			at := last - uint64(len(p.Events)-1-j)
			e.ids[ev.ID] = eventstore.Position{Commit: at, Prepare: at}
		}
	}
	for _, req := range writers {
		for i, k := range req.parts {
			if k >= 0 {
				req.res[i] = res[k]
			}
		}
	}
	unlock()
	unpin := func() {
		seen := map[string]bool{}
		for _, p := range parts {
			if !seen[p.Stream] {
				seen[p.Stream] = true
				r.cache.unpin(p.Stream, entries[p.Stream])
			}
		}
	}
	return func() {
		if wait != nil {
			if err := wait(); err != nil {
				// The store failed and acknowledges nothing more; every
				// state the batch wrote to is dropped, to be read again
				// once it is reopened, so that no retry is answered from
				// events the store did not take, and marked failed before
				// its waiters wake: whoever still holds it (a load waiting
				// for it, the next batch) gets the store's error. A held
				// state is read again in place, as failed does, for its
				// caller still holds it.
				for _, p := range parts {
					r.cache.remove(p.Stream)
				}
				synced.settle(err)
				answerRefused(err)
				for _, req := range writers {
					for _, s := range req.steps {
						if s.held != nil {
							if rerr := r.reread(ctx, s.held, s.newAgg); rerr != nil {
								r.cache.remove(s.stream)
							}
						}
					}
					answer(req, err)
				}
				return
			}
		}
		// The batch's append is durable, and with it every append the
		// store ordered before it.
		synced.settle(nil)
		unpin()
		answerRefused(settle())
		for _, req := range writers {
			for i, k := range req.parts {
				if k >= 0 {
					req.steps[i].m.Outcome.set(outcomeWrote)
				}
			}
			answer(req, nil)
		}
	}
}

// reread replaces e's state with the stream as stored.
func (r *repo) reread(ctx context.Context, e *entry, newAgg func() aggregate) error {
	fresh := &entry{stream: e.stream, agg: newAgg(), version: eventstore.NoStream, ids: map[eventstore.EventID]eventstore.Position{}}
	if err := r.catchUp(ctx, fresh); err != nil {
		return err
	}
	*e = *fresh
	r.cache.put(e.stream, e)
	return nil
}

// lastPosition is the latest position among results.
func lastPosition(res []eventstore.AppendResult) eventstore.Position {
	var last eventstore.Position
	for _, r := range res {
		if last.Before(r.Position) {
			last = r.Position
		}
	}
	return last
}
