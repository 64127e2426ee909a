package esdbtest_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"talentledger/eventstore/esdb/esdbtest"
)

// client connects the official client to srv.
func client(t *testing.T, srv *esdbtest.Server) *esdbclient.Client {
	t.Helper()
	cfg, err := esdbclient.ParseConnectionString(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// raw connects a bare gRPC Streams client to srv, to send what the
// official client never does.
func raw(t *testing.T, srv *esdbtest.Server) api.StreamsClient {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewStreamsClient(conn)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func events(types ...string) []esdbclient.EventData {
	out := make([]esdbclient.EventData, len(types))
	for i, typ := range types {
		out[i] = esdbclient.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdbclient.ContentTypeJson, Data: []byte(`{}`)}
	}
	return out
}

func readStream(t *testing.T, c *esdbclient.Client, stream string) []*esdbclient.RecordedEvent {
	t.Helper()
	rs, err := c.ReadStream(ctx(t), stream, esdbclient.ReadStreamOptions{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []*esdbclient.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Event)
	}
}

// TestAppendAnswers checks the answers the client sees: revisions,
// positions, idempotent retries without a position, and wrong expected
// versions with the current revision.
func TestAppendAnswers(t *testing.T) {
	srv := esdbtest.New(t)
	c := client(t, srv)
	batch := events("A", "B", "C")

	res, err := c.AppendToStream(ctx(t), "s-1", esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}, batch...)
	if err != nil {
		t.Fatal(err)
	}
	got := readStream(t, c, "s-1")
	if res.NextExpectedVersion != 2 || len(got) != 3 {
		t.Fatalf("append: %+v, %d events; want revision 2 and 3 events", res, len(got))
	}
	// Each event has its own position, commit and prepare alike, and the
	// answer carries the last one's.
	for i, e := range got {
		if e.EventID != batch[i].EventID || e.EventNumber != uint64(i) || e.Position.Commit != e.Position.Prepare {
			t.Errorf("event %d: %+v; want id %s and equal commit and prepare positions", i, e, batch[i].EventID)
		}
		if i > 0 && e.Position.Commit <= got[i-1].Position.Commit {
			t.Errorf("positions %d then %d", got[i-1].Position.Commit, e.Position.Commit)
		}
	}
	if last := got[2].Position; res.CommitPosition != last.Commit || res.PreparePosition != last.Prepare {
		t.Errorf("append answered %d/%d; want the last event's position %d/%d", res.CommitPosition, res.PreparePosition, last.Commit, last.Prepare)
	}
	if got[0].ContentType != "application/json" || got[0].CreatedDate.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("event metadata: content type %q, created %s", got[0].ContentType, got[0].CreatedDate)
	}

	for _, expected := range []esdbclient.ExpectedRevision{esdbclient.NoStream{}, esdbclient.Any{}} {
		retry, err := c.AppendToStream(ctx(t), "s-1", esdbclient.AppendToStreamOptions{ExpectedRevision: expected}, batch...)
		if err != nil {
			t.Fatalf("retry with %T: %v", expected, err)
		}
		if retry.NextExpectedVersion != 2 || retry.CommitPosition != 0 {
			t.Errorf("retry with %T: %+v; want revision 2 and no position", expected, retry)
		}
	}
	if n := len(readStream(t, c, "s-1")); n != 3 {
		t.Errorf("after retries the stream holds %d events; want 3", n)
	}

	for _, c2 := range []struct {
		expected esdbclient.ExpectedRevision
		events   []esdbclient.EventData
		want     string
	}{
		{esdbclient.Revision(0), events("D"), "expecting '0' but got '2'"},
		// Partial overlaps.
		{esdbclient.NoStream{}, append(batch[:2:2], events("D")...), "expecting 'no_stream' but got '2'"},
		{esdbclient.Any{}, append(batch[1:2:2], events("D")...), "expecting 'any' but got '2'"},
		{esdbclient.StreamExists{}, events("D"), ""},
	} {
		_, err := c.AppendToStream(ctx(t), "s-1", esdbclient.AppendToStreamOptions{ExpectedRevision: c2.expected}, c2.events...)
		if c2.want == "" {
			if err != nil {
				t.Errorf("%T: %v", c2.expected, err)
			}
			continue
		}
		var e *esdbclient.Error
		if !errors.As(err, &e) || e.Code() != esdbclient.ErrorCodeWrongExpectedVersion || !strings.Contains(err.Error(), c2.want) {
			t.Errorf("%T %v: error %v; want a wrong expected version %q", c2.expected, c2.events, err, c2.want)
		}
	}
	_, err = c.AppendToStream(ctx(t), "s-none", esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.StreamExists{}}, events("A")...)
	if err == nil || !strings.Contains(err.Error(), "but got 'no_stream'") {
		t.Errorf("stream exists on a missing stream: %v", err)
	}
}

// TestSystemEvents checks that the log holds system events where the
// package promises them.
func TestSystemEvents(t *testing.T) {
	srv := esdbtest.New(t)
	c := client(t, srv)
	if _, err := c.AppendToStream(ctx(t), "grant-1", esdbclient.AppendToStreamOptions{}, events("GrantApplied")...); err != nil {
		t.Fatal(err)
	}
	rs, err := c.ReadAll(ctx(t), esdbclient.ReadAllOptions{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var got []string
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Event.StreamID+" "+ev.Event.EventType)
	}
	want := []string{"$stats-" + srv.Addr() + " $statsCollected", "grant-1 GrantApplied", "$$grant-1 $metadata"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("$all = %v; want %v", got, want)
	}
	if err := srv.AppendSystemEvent("grant-2", "X", nil); err == nil {
		t.Errorf("AppendSystemEvent accepted a user stream")
	}
}

// TestSubscriptionMessages checks what a filtered subscription sends: a
// confirmation, the matching events, a checkpoint once the filter has
// skipped a window of events, and a caught-up once it reached the end.
func TestSubscriptionMessages(t *testing.T) {
	srv := esdbtest.New(t)
	c := client(t, srv)
	for range 4 {
		if _, err := c.AppendToStream(ctx(t), "other", esdbclient.AppendToStreamOptions{}, events("Noise")...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AppendToStream(ctx(t), "grant-1", esdbclient.AppendToStreamOptions{}, events("GrantApplied")...); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToAll(ctx(t), esdbclient.SubscribeToAllOptions{
		From:            esdbclient.Start{},
		Filter:          &esdbclient.SubscriptionFilter{Type: esdbclient.StreamFilterType, Prefixes: []string{"grant-"}},
		MaxSearchWindow: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []string
	for len(got) == 0 || got[len(got)-1] != "caught up" {
		e := sub.Recv()
		switch {
		case e.EventAppeared != nil:
			got = append(got, "event "+e.EventAppeared.Event.StreamID)
		case e.CheckPointReached != nil:
			got = append(got, "checkpoint")
		case e.CaughtUp != nil:
			got = append(got, "caught up")
		case e.SubscriptionDropped != nil:
			t.Fatalf("dropped after %v: %v", got, e.SubscriptionDropped.Error)
		}
	}
	// The log: $statsCollected, then other/0, $$other $metadata, other/1,
	// other/2, other/3, grant-1/0, $$grant-1 $metadata.
	want := "checkpoint checkpoint checkpoint event grant-1 caught up"
	if strings.Join(got, " ") != want {
		t.Errorf("subscription sent %q; want %q", strings.Join(got, " "), want)
	}
}

// TestRawProtocol checks what the official client never sends: string
// UUIDs, and events without the properties EventStoreDB requires.
func TestRawProtocol(t *testing.T) {
	srv := esdbtest.New(t)
	s := raw(t, srv)
	id := uuid.New()

	call, err := s.Append(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	call.Send(&api.AppendReq{Content: &api.AppendReq_Options_{Options: &api.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("s-1")},
		ExpectedStreamRevision: &api.AppendReq_Options_NoStream{NoStream: &shared.Empty{}},
	}}})
	call.Send(&api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: &api.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}},
		Metadata: map[string]string{"type": "A", "content-type": "application/json"},
		Data:     []byte(`{}`),
	}}})
	if _, err := call.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}

	call, err = s.Append(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	call.Send(&api.AppendReq{Content: &api.AppendReq_Options_{Options: &api.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("s-1")},
		ExpectedStreamRevision: &api.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}})
	call.Send(&api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: &api.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		Metadata: map[string]string{"type": "A"},
	}}})
	if _, err := call.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("append without a content type: %v; want InvalidArgument", err)
	}

	rd, err := s.Read(ctx(t), &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("s-1")},
			RevisionOption:   &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption:  &api.ReadReq_Options_Count{Count: 10},
		FilterOption: &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:   &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for {
		m, err := rd.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if got := m.GetEvent().GetEvent().GetId().GetString_(); got != id.String() {
			t.Errorf("event id %q; want %q", got, id)
		}
	}
	if n != 1 {
		t.Errorf("read %d events; want 1", n)
	}
}

// TestRestartKeepsData checks Stop and Restart on the same address.
func TestRestartKeepsData(t *testing.T) {
	srv := esdbtest.New(t)
	if err := srv.Restart(); err == nil {
		t.Errorf("Restart of a running server succeeded")
	}
	c := client(t, srv)
	if _, err := c.AppendToStream(ctx(t), "s-1", esdbclient.AppendToStreamOptions{}, events("A")...); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	srv.Stop()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// A fresh client: the first one may have given up on the server.
	if n := len(readStream(t, client(t, srv), "s-1")); n != 1 {
		t.Errorf("after a restart the stream holds %d events; want 1", n)
	}
}
