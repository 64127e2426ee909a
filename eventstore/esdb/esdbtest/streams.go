package esdbtest

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streams implements the Streams gRPC service over a Server.
type streams struct {
	api.UnimplementedStreamsServer
	s *Server
}

// Append reads the options, then the proposed events, and commits them
// atomically if the expected revision allows.
func (h *streams) Append(call api.Streams_AppendServer) error {
	req, err := call.Recv()
	if err != nil {
		return err
	}
	opts := req.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the first append message must carry the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" {
		return status.Error(codes.InvalidArgument, "empty stream name")
	}
	var recs []*record
	for {
		req, err := call.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		msg := req.GetProposedMessage()
		if msg == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		id, err := fromUUID(msg.GetId())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		// EventStoreDB refuses events without these two properties.
		typ, ok := msg.GetMetadata()["type"]
		if !ok {
			return status.Error(codes.InvalidArgument, "required metadata property type is missing")
		}
		ct, ok := msg.GetMetadata()["content-type"]
		if !ok {
			return status.Error(codes.InvalidArgument, "required metadata property content-type is missing")
		}
		recs = append(recs, &record{
			id:          id,
			eventType:   typ,
			contentType: ct,
			data:        clone(msg.GetData()),
			meta:        clone(msg.GetCustomMetadata()),
		})
	}
	resp, err := h.s.append(name, opts, recs)
	if err != nil {
		return err
	}
	return call.SendAndClose(resp)
}

// append checks the expected revision as EventStoreDB does and commits the
// records, or answers an idempotent success or a wrong expected version.
func (s *Server) append(name string, opts *api.AppendReq_Options, recs []*record) (*api.AppendResp, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	existing := s.streams[name]
	cur := int64(len(existing)) - 1 // -1: no stream

	wrong := func() *api.AppendResp { return wrongExpectedVersion(opts, cur) }
	idempotent := func(last int64) *api.AppendResp {
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
			CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(last)},
			PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
		}}}
	}

	// exact checks an expected revision exp (-1 for no stream).
	exact := func(exp int64) *api.AppendResp {
		switch {
		case exp == cur:
			return nil
		case exp > cur || len(recs) == 0:
			return wrong()
		}
		// A retry: each event must already sit right after exp. A
		// partial match is a wrong expected version too.
		for i, r := range recs {
			n := exp + 1 + int64(i)
			if n > cur || existing[n].id != r.id {
				return wrong()
			}
		}
		return idempotent(exp + int64(len(recs)))
	}
	// loose checks any and stream-exists: if the first event is in the
	// stream already, all must be, and the append is a retry.
	loose := func() *api.AppendResp {
		last := int64(-1)
		for i, r := range recs {
			n, ok := s.revisionOf(name, r.id)
			if !ok {
				if i == 0 {
					return nil
				}
				return wrong()
			}
			last = n
		}
		if len(recs) == 0 {
			return nil
		}
		return idempotent(last)
	}

	var resp *api.AppendResp
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		resp = exact(int64(e.Revision))
	case *api.AppendReq_Options_NoStream:
		resp = exact(-1)
	case *api.AppendReq_Options_Any:
		resp = loose()
	case *api.AppendReq_Options_StreamExists:
		if cur < 0 {
			resp = wrong()
		} else {
			resp = loose()
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "missing expected stream revision")
	}
	if resp != nil {
		return resp, nil
	}

	success := &api.AppendResp_Success{}
	if len(recs) == 0 {
		if cur < 0 {
			success.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		} else {
			success.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(cur)}
		}
		success.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: success}}, nil
	}
	s.commitLocked(name, recs, false)
	last := recs[len(recs)-1]
	success.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision}
	success.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
		CommitPosition:  last.commit,
		PreparePosition: last.prepare,
	}}
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: success}}, nil
}

// revisionOf finds the revision of event id in stream name. The caller
// holds s.mu.
func (s *Server) revisionOf(name string, id [16]byte) (int64, bool) {
	if r := s.byID[id]; r != nil && r.stream == name {
		return int64(r.revision), true
	}
	return 0, false
}

func wrongExpectedVersion(opts *api.AppendReq_Options, cur int64) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{}
	if cur < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(cur)}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(cur)}
	}
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: e.Revision}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: e.Revision}
	case *api.AppendReq_Options_NoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case *api.AppendReq_Options_Any:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	case *api.AppendReq_Options_StreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

// Read serves plain reads (with a count) and subscriptions.
func (h *streams) Read(req *api.ReadReq, out api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "missing read options")
	}
	f, err := newFilter(o.GetFilter())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	w := &writer{out: out, structured: o.GetUuidOption().GetString_() == nil}
	switch o.GetCountOption().(type) {
	case *api.ReadReq_Options_Count:
		h.s.mu.Lock()
		h.s.reads++
		h.s.mu.Unlock()
		if so := o.GetStream(); so != nil {
			return h.s.readStream(w, so, o.GetReadDirection(), o.GetCount())
		}
		if ao := o.GetAll(); ao != nil {
			return h.s.readAll(w, ao, o.GetReadDirection(), o.GetCount(), f)
		}
	case *api.ReadReq_Options_Subscription:
		if o.GetReadDirection() != api.ReadReq_Options_Forwards {
			return status.Error(codes.InvalidArgument, "subscriptions read forwards")
		}
		if so := o.GetStream(); so != nil {
			return h.s.subscribeStream(w, so)
		}
		if ao := o.GetAll(); ao != nil {
			return h.s.subscribeAll(w, ao, f)
		}
	}
	return status.Error(codes.InvalidArgument, "unsupported read options")
}

// readStream sends one stream's events, or StreamNotFound.
func (s *Server) readStream(w *writer, so *api.ReadReq_Options_StreamOptions, dir api.ReadReq_Options_ReadDirection, count uint64) error {
	name := string(so.GetStreamIdentifier().GetStreamName())
	s.mu.Lock()
	recs := s.streams[name]
	s.mu.Unlock()
	if len(recs) == 0 {
		return w.send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
		}}})
	}
	n := int64(len(recs))
	if dir == api.ReadReq_Options_Forwards {
		var from int64
		switch r := so.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Revision:
			from = int64(min(r.Revision, uint64(n)))
		case *api.ReadReq_Options_StreamOptions_End:
			from = n
		}
		for i := from; i < n && count > 0; i, count = i+1, count-1 {
			if err := w.event(recs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	from := n - 1
	switch r := so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		from = int64(min(r.Revision, uint64(n-1)))
	case *api.ReadReq_Options_StreamOptions_Start:
		from = 0
	}
	for i := from; i >= 0 && count > 0; i, count = i-1, count-1 {
		if err := w.event(recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// readAll sends $all's events: forwards from a position inclusive,
// backwards from a position exclusive.
func (s *Server) readAll(w *writer, ao *api.ReadReq_Options_AllOptions, dir api.ReadReq_Options_ReadDirection, count uint64, f *filter) error {
	s.mu.Lock()
	log := s.log
	s.mu.Unlock()
	n := len(log)
	if dir == api.ReadReq_Options_Forwards {
		from := 0
		switch a := ao.GetAllOption().(type) {
		case *api.ReadReq_Options_AllOptions_Position:
			from = searchLog(log, a.Position.CommitPosition, a.Position.PreparePosition, false)
		case *api.ReadReq_Options_AllOptions_End:
			from = n
		}
		for i := from; i < n && count > 0; i++ {
			if f.match(log[i]) {
				if err := w.event(log[i]); err != nil {
					return err
				}
				count--
			}
		}
		return nil
	}
	from := n - 1
	switch a := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		from = searchLog(log, a.Position.CommitPosition, a.Position.PreparePosition, false) - 1
	case *api.ReadReq_Options_AllOptions_Start:
		from = -1
	}
	for i := from; i >= 0 && count > 0; i-- {
		if f.match(log[i]) {
			if err := w.event(log[i]); err != nil {
				return err
			}
			count--
		}
	}
	return nil
}

// searchLog returns the index of the first record at or after (after
// false) or strictly after (after true) the position commit/prepare.
func searchLog(log []*record, commit, prepare uint64, after bool) int {
	return sort.Search(len(log), func(i int) bool {
		r := log[i]
		if r.commit != commit {
			return r.commit > commit
		}
		if after {
			return r.prepare > prepare
		}
		return r.prepare >= prepare
	})
}

// subscribeAll serves a catch-up subscription to $all: events after the
// starting position, then live ones, until the client goes away or the
// server stops.
func (s *Server) subscribeAll(w *writer, ao *api.ReadReq_Options_AllOptions, f *filter) error {
	s.mu.Lock()
	s.subs++
	next := 0
	switch a := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		// Subscription positions are exclusive.
		next = searchLog(s.log, a.Position.CommitPosition, a.Position.PreparePosition, true)
	case *api.ReadReq_Options_AllOptions_End:
		next = len(s.log)
	}
	s.mu.Unlock()
	if err := w.confirm(); err != nil {
		return err
	}
	skipped, caughtUp := 0, false
	for {
		s.mu.Lock()
		batch, changed := s.log[next:], s.changed
		s.mu.Unlock()
		for _, r := range batch {
			next++
			if f.match(r) {
				if err := w.event(r); err != nil {
					return err
				}
				continue
			}
			// A filtered subscription reports its progress through
			// events it skips, so clients can checkpoint.
			if skipped++; skipped >= f.checkpointEvery() {
				skipped = 0
				if err := w.send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
					CommitPosition: r.commit, PreparePosition: r.prepare,
				}}}); err != nil {
					return err
				}
			}
		}
		if len(batch) > 0 {
			continue
		}
		if !caughtUp {
			caughtUp = true
			if err := w.send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-w.out.Context().Done():
			return status.FromContextError(w.out.Context().Err()).Err()
		}
	}
}

// subscribeStream serves a catch-up subscription to one stream, which may
// not exist yet.
func (s *Server) subscribeStream(w *writer, so *api.ReadReq_Options_StreamOptions) error {
	name := string(so.GetStreamIdentifier().GetStreamName())
	s.mu.Lock()
	s.subs++
	next := 0
	switch r := so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		next = int(r.Revision) + 1
	case *api.ReadReq_Options_StreamOptions_End:
		next = len(s.streams[name])
	}
	s.mu.Unlock()
	if err := w.confirm(); err != nil {
		return err
	}
	for {
		s.mu.Lock()
		recs, changed := s.streams[name], s.changed
		s.mu.Unlock()
		for ; next < len(recs); next++ {
			if err := w.event(recs[next]); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-w.out.Context().Done():
			return status.FromContextError(w.out.Context().Err()).Err()
		}
	}
}

// writer sends read responses in the form the client asked for.
type writer struct {
	out        api.Streams_ReadServer
	structured bool
}

func (w *writer) send(m *api.ReadResp) error { return w.out.Send(m) }

func (w *writer) confirm() error {
	return w.send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString(),
	}}})
}

func (w *writer) event(r *record) error {
	id := &shared.UUID{}
	if w.structured {
		id.Value = &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
			MostSignificantBits:  int64(binary.BigEndian.Uint64(r.id[:8])),
			LeastSignificantBits: int64(binary.BigEndian.Uint64(r.id[8:])),
		}}
	} else {
		id.Value = &shared.UUID_String_{String_: uuid.UUID(r.id).String()}
	}
	return w.send(&api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               id,
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			CommitPosition:   r.commit,
			PreparePosition:  r.prepare,
			Metadata: map[string]string{
				"type":         r.eventType,
				"content-type": r.contentType,
				// The client parses this as an integer and exits the
				// process if it cannot.
				"created": strconv.FormatInt(r.created, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.commit},
	}}})
}

// filter is a server-side filter on the stream name or the event type.
// A nil filter matches everything.
type filter struct {
	onStream bool
	prefixes []string
	re       *regexp.Regexp
	window   int
}

func newFilter(o *api.ReadReq_Options_FilterOptions) (*filter, error) {
	if o == nil {
		return nil, nil
	}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	f := &filter{window: 32}
	switch e := o.GetFilter().(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		f.onStream, expr = true, e.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr = e.EventType
	default:
		return nil, errors.New("filter without a stream or event type expression")
	}
	if expr.GetRegex() != "" {
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, err
		}
		f.re = re
	} else {
		f.prefixes = expr.GetPrefix()
	}
	if m, ok := o.GetWindow().(*api.ReadReq_Options_FilterOptions_Max); ok && m.Max > 0 {
		f.window = int(m.Max)
	}
	f.window *= max(1, int(o.GetCheckpointIntervalMultiplier()))
	return f, nil
}

func (f *filter) match(r *record) bool {
	if f == nil {
		return true
	}
	v := r.eventType
	if f.onStream {
		v = r.stream
	}
	if f.re != nil {
		return f.re.MatchString(v)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// checkpointEvery is how many skipped events make a checkpoint.
func (f *filter) checkpointEvery() int {
	if f == nil {
		return int(^uint(0) >> 1)
	}
	return f.window
}

func fromUUID(u *shared.UUID) ([16]byte, error) {
	var id [16]byte
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		binary.BigEndian.PutUint64(id[:8], uint64(v.Structured.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(v.Structured.GetLeastSignificantBits()))
		return id, nil
	case *shared.UUID_String_:
		p, err := uuid.Parse(v.String_)
		if err != nil {
			return id, err
		}
		return p, nil
	}
	return id, errors.New("missing event id")
}

func newUUID() [16]byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append([]byte(nil), b...)
}
