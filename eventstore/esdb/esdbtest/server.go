// Package esdbtest runs an in-process stand-in for an EventStoreDB /
// KurrentDB node, so that the esdb backend can be tested through the real
// client (github.com/EventStore/EventStore-Client-Go/v4) over loopback
// gRPC, without a server installed.
//
// It serves the Streams service from the client module's generated stubs:
// Append, and Read both as a plain read (of one stream or of $all, forwards
// or backwards) and as a catch-up subscription (to one stream or to $all,
// with stream-name or event-type filters, prefixes or regular expressions).
// It behaves as the client and EventStoreDB expect:
//
//   - event IDs travel in the structured UUID form, and every recorded event
//     carries the type, content-type and created (.NET ticks) metadata;
//   - optimistic concurrency follows EventStoreDB: a wrong expected version
//     answers WrongExpectedVersion with the current revision, and appending
//     event IDs the stream already holds at the same expected version (or
//     with any/stream-exists when the first ID is found) is acknowledged
//     without writing, while a partial overlap is a wrong expected version;
//   - every success carries the stream's current revision and the position
//     of the append's last event; an idempotent success carries no
//     position, as some EventStoreDB versions answer, so clients must cope
//     with it;
//   - global positions are byte offsets in one growing log; an event
//     appended over gRPC has equal commit and prepare positions, as in
//     EventStoreDB, and AppendTransaction writes events as the legacy TCP
//     protocol's explicit transactions did, sharing a commit position
//     after their own prepare positions, so that clients must keep both;
//     events read from a stream carry their positions, as recent
//     EventStoreDB versions report them (older ones send all ones);
//   - a read of a missing stream sends StreamNotFound; subscriptions send a
//     Confirmation first, then events, a CaughtUp once caught up, and
//     Checkpoints while a filter skips events;
//   - the log holds system events, as a real one does: a "$statsCollected"
//     event in "$stats-<address>" each time the server starts, and a
//     "$metadata" event in "$$<stream>" right after each user stream is
//     created (as an application setting stream metadata would), so that
//     clients must filter them out of $all.
//
// Stop and Restart simulate a crash and recovery on the same address; the
// data survive, as they would on disk.
//
// What it does not emulate: clusters, gossip, leader election and
// not-leader redirects; TLS and authentication (it is insecure, like
// EVENTSTORE_INSECURE=true); ACLs and stream metadata semantics ($maxAge,
// $maxCount, $tb); deletes and tombstones; BatchAppend; persistent
// subscriptions, projections, the users, operations, gossip and server
// features services (the client accepts Unimplemented for the latter);
// link events and resolving them; the maximum append size; the
// read-only-replica, not-leader and timeout errors; durability on disk;
// and the "count" window of filtered reads. Idempotency is exact here,
// whereas EventStoreDB's check for any/stream-exists relies on a bounded
// cache and is best effort.
package esdbtest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
)

// Server is an in-memory EventStoreDB stand-in listening on loopback.
type Server struct {
	addr string

	// mu guards the log and the running server.
	mu      sync.Mutex
	log     []*record            // the global log, in position order
	streams map[string][]*record // each stream's events, by revision
	byID    map[[16]byte]*record // the latest event with each ID
	next    uint64               // log position of the next record
	changed chan struct{}        // closed and replaced at every append
	subs    int                  // subscriptions accepted since the start
	reads   int                  // plain reads served since the start

	grpc    *grpc.Server
	serving sync.WaitGroup
	starts  int
}

// record is one stored event. Records never change once appended.
type record struct {
	id          [16]byte
	stream      string
	revision    uint64
	commit      uint64
	prepare     uint64
	eventType   string
	contentType string
	created     int64 // .NET ticks (100 ns) since the Unix epoch
	data        []byte
	meta        []byte
}

// system reports whether the record is a system event, one that clients
// reading $all must leave out.
func (r *record) system() bool {
	return len(r.stream) > 0 && r.stream[0] == '$' || len(r.eventType) > 0 && r.eventType[0] == '$'
}

// Start starts a server on 127.0.0.1 with a port chosen by the system.
func Start() (*Server, error) {
	s := &Server{
		streams: make(map[string][]*record),
		byID:    make(map[[16]byte]*record),
		changed: make(chan struct{}),
		// A real log starts with an epoch record and others; user events
		// never sit at position 0.
		next: 1024,
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = lis.Addr().String()
	s.serve(lis)
	return s, nil
}

// New starts a server for a test and stops it when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start()
	if err != nil {
		tb.Fatalf("esdbtest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Addr returns the host:port the server listens on, across restarts.
func (s *Server) Addr() string { return s.addr }

// URL returns a connection string for the server, with client discovery
// tuned for tests: a stopped server is reported within a few tens of
// milliseconds instead of a second.
func (s *Server) URL() string {
	return "esdb://" + s.addr + "?tls=false&maxDiscoverAttempts=3&discoveryInterval=10&gossipTimeout=1"
}

// Stop stops the server abruptly, as a crash would: listeners and
// connections close, and live calls and subscriptions fail. The data are
// kept for Restart. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	g := s.grpc
	s.grpc = nil
	s.mu.Unlock()
	if g == nil {
		return
	}
	g.Stop()
	s.serving.Wait()
}

// Restart starts a stopped server again on the same address, with its
// data.
func (s *Server) Restart() error {
	s.mu.Lock()
	running := s.grpc != nil
	s.mu.Unlock()
	if running {
		return errors.New("esdbtest: server is running")
	}
	// The port was just released; another process may briefly race for
	// it, so try a few times.
	var lis net.Listener
	var err error
	for range 50 {
		if lis, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("esdbtest: restart on %s: %w", s.addr, err)
	}
	s.serve(lis)
	return nil
}

func (s *Server) serve(lis net.Listener) {
	g := grpc.NewServer()
	api.RegisterStreamsServer(g, &streams{s: s})
	s.mu.Lock()
	s.grpc = g
	s.starts++
	s.appendLocked("$stats-"+s.addr, "$statsCollected", []byte(fmt.Sprintf(`{"proc-startCount":%d}`, s.starts)), nil)
	s.mu.Unlock()
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		_ = g.Serve(lis)
	}()
}

// AppendSystemEvent appends an event to a system stream (one whose name
// starts with "$"), as EventStoreDB's own subsystems do, so that tests can
// place system events where they like.
func (s *Server) AppendSystemEvent(stream, eventType string, data []byte) error {
	if len(stream) == 0 || stream[0] != '$' {
		return fmt.Errorf("esdbtest: %q is not a system stream", stream)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appendLocked(stream, eventType, data, nil)
	return nil
}

// EventCount returns how many events the log holds, system events
// included.
func (s *Server) EventCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// Subscriptions returns how many subscriptions the server has accepted
// since it was created, so tests can see that a client resubscribed.
func (s *Server) Subscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs
}

// Reads returns how many plain reads (not subscriptions) the server has
// served since it was created, so tests can see that a client read again.
func (s *Server) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// appendLocked writes one system event. The caller holds s.mu.
func (s *Server) appendLocked(stream, eventType string, data, meta []byte) {
	id := newUUID()
	s.commitLocked(stream, []*record{{
		id:          id,
		eventType:   eventType,
		contentType: "application/json",
		data:        data,
		meta:        meta,
	}}, false)
}

// commitLocked appends records to stream atomically, numbering and
// positioning them, and wakes subscriptions. The caller holds s.mu and has
// checked the expected version.
//
// Positions are byte offsets in the log: each record takes its size. An
// append over gRPC writes self-committing records, so each event's commit
// and prepare positions are its own offset. An explicit transaction (the
// legacy TCP protocol's) writes its events, then a commit record, and its
// events all take the commit record's offset as commit position.
func (s *Server) commitLocked(stream string, recs []*record, explicit bool) {
	existing := s.streams[stream]
	created := time.Now().UnixNano() / 100
	for i, r := range recs {
		r.stream = stream
		r.revision = uint64(len(existing) + i)
		r.prepare = s.next
		r.commit = s.next
		r.created = created
		s.next += uint64(64 + len(stream) + len(r.eventType) + len(r.data) + len(r.meta))
	}
	if explicit {
		for _, r := range recs {
			r.commit = s.next
		}
		s.next += 40 // the commit record
	}
	for _, r := range recs {
		s.log = append(s.log, r)
		s.byID[r.id] = r
	}
	s.streams[stream] = append(existing, recs...)
	if len(existing) == 0 && stream[0] != '$' {
		// Stream metadata written right after creation: system events in
		// the middle of $all, which readers of $all must skip.
		meta := []byte(`{"writtenBy":"esdbtest"}`)
		s.appendLocked("$$"+stream, "$metadata", meta, nil)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// AppendTransaction appends events of the given types (with data "{}") to
// stream as one explicit transaction, as the legacy TCP protocol could, so
// that their commit positions differ from their prepare positions, as such
// events do in a real log. It ignores the stream's version.
func (s *Server) AppendTransaction(stream string, eventTypes ...string) error {
	if stream == "" || stream[0] == '$' || len(eventTypes) == 0 {
		return fmt.Errorf("esdbtest: a transaction needs a user stream and events")
	}
	recs := make([]*record, len(eventTypes))
	for i, t := range eventTypes {
		recs[i] = &record{id: newUUID(), eventType: t, contentType: "application/json", data: []byte(`{}`), meta: []byte(`{}`)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitLocked(stream, recs, true)
	return nil
}
