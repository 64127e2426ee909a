// Package eventstoretest checks that an eventstore.Store keeps the store's
// contract. Every backend runs the same suite, so they all behave alike:
//
//	func TestContract(t *testing.T) {
//		eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
//			return MustOpen(t)
//		})
//	}
//
// The cases cover appending and reading back every field of the envelope,
// reading from a version, optimistic concurrency (each expected version,
// stale versions, one winner among concurrent appenders), idempotent retries
// by event ID, appends to several streams at once (all or nothing, for
// stores that implement eventstore.MultiAppender), the order of the global log, LastPosition, subscriptions
// (from the start, from a checkpoint, catch-up then live, slow readers,
// filters, cancelling and closing), contexts that are done, bad input and
// closing the store.
//
// The suite assumes nothing about position values beyond their order, and
// nothing about what else the global log holds: each case writes to streams
// (and, where it filters by type, event types) whose names carry a random
// token of its own, and looks only at those. That is what lets it run
// against one shared EventStoreDB server, even while other tests write to it.
package eventstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"talentledger/eventstore"
)

// caseTimeout bounds each case, so that a subscription that never delivers
// fails the case instead of hanging the test binary. It is a guard against
// hangs, not a speed requirement: a healthy backend finishes every case far
// sooner.
const caseTimeout = 30 * time.Second

// Run runs the contract suite against stores made by newStore.
//
// newStore is called once per case, with that case's t, and returns a store
// ready for use. It may return a fresh store each time or a new connection
// to one shared server. It should register the store's Close with
// t.Cleanup; since some cases close their store themselves, that cleanup
// must tolerate eventstore.ErrClosed.
//
// The cases run in parallel with one another. Run returns when all of them
// have finished.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	// One enclosing subtest makes Run wait for its parallel cases, so a
	// caller's deferred clean-up (stopping a shared server) runs after them.
	t.Run("contract", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.run(t, newStore(t))
			})
		}
	})
}

var cases = []struct {
	name string
	run  func(t *testing.T, s eventstore.Store)
}{
	// Appending and reading.
	{"AppendAndRead", testAppendAndRead},
	{"BuffersNotRetained", testBuffersNotRetained},
	{"LargeEvent", testLargeEvent},
	{"StreamsAreSeparate", testStreamsAreSeparate},
	{"ReadStreamFromVersion", testReadStreamFromVersion},
	{"ReadMissingStream", testReadMissingStream},
	{"IteratorClose", testIteratorClose},

	// Optimistic concurrency.
	{"NoStreamOnExistingStream", testNoStreamOnExistingStream},
	{"ExactVersion", testExactVersion},
	{"StaleVersion", testStaleVersion},
	{"StreamExists", testStreamExists},
	{"AnyVersion", testAnyVersion},
	{"ConcurrentAppendersOneWinner", testConcurrentAppendersOneWinner},
	{"ConcurrentAnyAppends", testConcurrentAnyAppends},

	// Idempotent retries.
	{"IdempotentExactVersion", testIdempotentExactVersion},
	{"IdempotentNoStream", testIdempotentNoStream},
	{"IdempotentAny", testIdempotentAny},
	{"IdempotentStreamExists", testIdempotentStreamExists},
	{"PartialOverlap", testPartialOverlap},

	// Appending to several streams at once (stores that offer it).
	{"MultiAppendAndRead", testMultiAppendAndRead},
	{"MultiConflictWritesNothing", testMultiConflictWritesNothing},
	{"MultiRetry", testMultiRetry},
	{"MultiConcurrentOneWinner", testMultiConcurrentOneWinner},
	{"MultiBadInput", testMultiBadInput},
	{"MultiSubscribe", testMultiSubscribe},

	// The global log.
	{"GlobalOrder", testGlobalOrder},
	{"LastPosition", testLastPosition},

	// Subscriptions.
	{"SubscribeFromStart", testSubscribeFromStart},
	{"SubscribeFromCheckpoint", testSubscribeFromCheckpoint},
	{"CatchUpWhileWriting", testCatchUpWhileWriting},
	{"SlowSubscriber", testSlowSubscriber},
	{"ManySubscribers", testManySubscribers},
	{"FilterStreamPrefix", testFilterStreamPrefix},
	{"FilterEventType", testFilterEventType},
	{"SubscriptionCancel", testSubscriptionCancel},
	{"SubscriptionClose", testSubscriptionClose},

	// Contexts, bad input and closing.
	{"CancelledContext", testCancelledContext},
	{"BadInput", testBadInput},
	{"BadInputOnExistingStream", testBadInputOnExistingStream},
	{"Close", testClose},
	{"CloseDuringAppends", testCloseDuringAppends},
}

// scope names the streams and event types of one case. The random token
// keeps them apart from every other case and every earlier run against the
// same server.
type scope struct {
	prefix string // "<Case>-<token>-", the start of every stream name
	token  string
}

func newScope(t *testing.T) scope {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	token := hex.EncodeToString(b[:])
	name := t.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, name)
	if len(name) > 40 {
		name = name[:40]
	}
	return scope{prefix: "c" + name + "-" + token + "-", token: token}
}

// stream returns the full name of the case's stream called name.
func (sc scope) stream(name string) string { return sc.prefix + name }

// eventType returns an event type that only this case uses.
func (sc scope) eventType(name string) string { return name + "-" + sc.token }

// filter selects every event of the case's streams.
func (sc scope) filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{sc.prefix}}
}

// mine keeps the events of the case's streams, in their order.
func (sc scope) mine(events []eventstore.Event) []eventstore.Event {
	var out []eventstore.Event
	for _, e := range events {
		if strings.HasPrefix(e.Stream, sc.prefix) {
			out = append(out, e)
		}
	}
	return out
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), caseTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newEvent returns an event of type typ whose data records n.
func newEvent(typ string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:   eventstore.NewEventID(),
		Type: typ,
		Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

// newEvents returns count events of type "Recorded" numbered from first.
func newEvents(first, count int) []eventstore.EventData {
	out := make([]eventstore.EventData, count)
	for i := range out {
		out[i] = newEvent("Recorded", first+i)
	}
	return out
}

func mustAppend(t *testing.T, ctx context.Context, s eventstore.Store, stream string, expected eventstore.Version, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctx, stream, expected, events...)
	if err != nil {
		t.Fatalf("Append(%s, expected %s, %d events): %v", stream, expected, len(events), err)
	}
	return res
}

// collect drains and closes an iterator.
func collect(it eventstore.Iterator) ([]eventstore.Event, error) {
	defer it.Close()
	var out []eventstore.Event
	for it.Next() {
		out = append(out, it.Event())
	}
	return out, it.Err()
}

func mustReadStream(t *testing.T, ctx context.Context, s eventstore.Store, stream string, from eventstore.Version) []eventstore.Event {
	t.Helper()
	events, err := collect(s.ReadStream(ctx, stream, from))
	if err != nil {
		t.Fatalf("ReadStream(%s, from %s): %v", stream, from, err)
	}
	return events
}

// readMine reads the global log after after and keeps the case's events.
func readMine(t *testing.T, ctx context.Context, s eventstore.Store, sc scope, after eventstore.Position) []eventstore.Event {
	t.Helper()
	events, err := collect(s.ReadAll(ctx, after))
	if err != nil {
		t.Fatalf("ReadAll(after %s): %v", after, err)
	}
	for _, e := range events {
		if e.Position.Compare(after) <= 0 {
			t.Fatalf("ReadAll(after %s) returned %s at position %s, not after it", after, e.ID, e.Position)
		}
	}
	return sc.mine(events)
}

func mustLastPosition(t *testing.T, ctx context.Context, s eventstore.Store) eventstore.Position {
	t.Helper()
	p, err := s.LastPosition(ctx)
	if err != nil {
		t.Fatalf("LastPosition: %v", err)
	}
	return p
}

// wantStreamAbsent checks that stream does not exist.
func wantStreamAbsent(t *testing.T, ctx context.Context, s eventstore.Store, stream string) {
	t.Helper()
	events, err := collect(s.ReadStream(ctx, stream, 0))
	if !errors.Is(err, eventstore.ErrStreamNotFound) || len(events) > 0 {
		t.Fatalf("ReadStream(%s) = %d events, error %v; want the stream not to exist (ErrStreamNotFound)", stream, len(events), err)
	}
}

// wantStreamIDs checks that stream holds exactly the events with these IDs.
func wantStreamIDs(t *testing.T, ctx context.Context, s eventstore.Store, stream string, want ...eventstore.EventID) []eventstore.Event {
	t.Helper()
	got := mustReadStream(t, ctx, s, stream, 0)
	if !equalIDs(ids(got), want) {
		t.Fatalf("stream %s holds %v; want %v", stream, ids(got), want)
	}
	for i, e := range got {
		if e.Version != eventstore.Version(i) {
			t.Fatalf("stream %s: event %d has version %s", stream, i, e.Version)
		}
	}
	return got
}

// wantWrongVersion checks that err is a version conflict on stream with
// these expected and actual versions.
func wantWrongVersion(t *testing.T, err error, stream string, expected, actual eventstore.Version) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("error %v; want ErrWrongVersion", err)
	}
	var wv *eventstore.WrongVersionError
	if !errors.As(err, &wv) {
		t.Fatalf("error %v (%T) is not a *WrongVersionError", err, err)
	}
	if wv.Stream != stream || wv.Expected != expected || wv.Actual != actual {
		t.Fatalf("WrongVersionError{Stream: %q, Expected: %s, Actual: %s}; want {%q, %s, %s}",
			wv.Stream, wv.Expected, wv.Actual, stream, expected, actual)
	}
}

func ids[E eventstore.Event | eventstore.EventData](events []E) []eventstore.EventID {
	out := make([]eventstore.EventID, len(events))
	for i, e := range events {
		switch e := any(e).(type) {
		case eventstore.Event:
			out[i] = e.ID
		case eventstore.EventData:
			out[i] = e.ID
		}
	}
	return out
}

func equalIDs(a, b []eventstore.EventID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkEvent compares a stored event with what was appended.
func checkEvent(t *testing.T, got eventstore.Event, want eventstore.EventData, stream string, version eventstore.Version) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("event %s/%s: ID %s; want %s", stream, version, got.ID, want.ID)
	}
	if got.Stream != stream {
		t.Errorf("event %s: Stream %q; want %q", want.ID, got.Stream, stream)
	}
	if got.Version != version {
		t.Errorf("event %s: Version %s; want %s", want.ID, got.Version, version)
	}
	if got.Type != want.Type {
		t.Errorf("event %s: Type %q; want %q", want.ID, got.Type, want.Type)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("event %s: Data %q; want %q", want.ID, abbreviate(got.Data), abbreviate(want.Data))
	}
	if d := diffMetadata(got.Metadata, want.Metadata); d != "" {
		t.Errorf("event %s: metadata differs: %s", want.ID, d)
	}
}

// sameEvent compares two reads of one stored event, positions included.
func sameEvent(t *testing.T, what string, got, want eventstore.Event) {
	t.Helper()
	if got.Position != want.Position {
		t.Errorf("%s: event %s at position %s; want %s", what, got.ID, got.Position, want.Position)
	}
	if got.ID != want.ID || got.Stream != want.Stream || got.Version != want.Version || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || diffMetadata(got.Metadata, want.Metadata) != "" {
		t.Errorf("%s: got %s/%s %s %s; want %s/%s %s %s", what,
			got.Stream, got.Version, got.ID, got.Type, want.Stream, want.Version, want.ID, want.Type)
	}
}

func diffMetadata(got, want eventstore.Metadata) string {
	var diffs []string
	field := func(name, g, w string) {
		if g != w {
			diffs = append(diffs, fmt.Sprintf("%s %q, want %q", name, g, w))
		}
	}
	field("Principal", got.Principal, want.Principal)
	field("Role", got.Role, want.Role)
	field("CorrelationID", got.CorrelationID, want.CorrelationID)
	field("CausationID", got.CausationID, want.CausationID)
	field("EffectiveDate", got.EffectiveDate, want.EffectiveDate)
	field("Reason", got.Reason, want.Reason)
	field("DocumentRef", got.DocumentRef, want.DocumentRef)
	field("PrevHash", got.PrevHash, want.PrevHash)
	field("Hash", got.Hash, want.Hash)
	field("Source", got.Source, want.Source)
	field("CompletedBy", got.CompletedBy, want.CompletedBy)
	// Backends may change the time's location, never the instant.
	if !got.RecordedAt.Equal(want.RecordedAt) {
		diffs = append(diffs, fmt.Sprintf("RecordedAt %s, want %s",
			got.RecordedAt.Format(time.RFC3339Nano), want.RecordedAt.Format(time.RFC3339Nano)))
	}
	return strings.Join(diffs, "; ")
}

func abbreviate(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%s… (%d bytes)", b[:80], len(b))
	}
	return string(b)
}

// wantIncreasing checks that positions grow strictly, in the order given.
func wantIncreasing(t *testing.T, what string, events []eventstore.Event) {
	t.Helper()
	for i := 1; i < len(events); i++ {
		if events[i].Position.Compare(events[i-1].Position) <= 0 {
			t.Fatalf("%s: position %s of %s/%s does not follow %s of %s/%s", what,
				events[i].Position, events[i].Stream, events[i].Version,
				events[i-1].Position, events[i-1].Stream, events[i-1].Version)
		}
	}
}

// receive takes n events from a subscription.
func receive(t *testing.T, sub eventstore.Subscription, n int) []eventstore.Event {
	t.Helper()
	out := make([]eventstore.Event, 0, n)
	for len(out) < n {
		if !sub.Next() {
			t.Fatalf("subscription ended after %d of %d events: %v", len(out), n, sub.Err())
		}
		out = append(out, sub.Event())
	}
	return out
}

// wantSameIDs checks that got holds exactly the events of want, in order.
func wantSameIDs(t *testing.T, what string, got []eventstore.Event, want []eventstore.EventID) {
	t.Helper()
	if !equalIDs(ids(got), want) {
		t.Fatalf("%s: got events\n\t%v\nwant\n\t%v", what, ids(got), want)
	}
}

// letNextWait gives a Next just started in another goroutine time to begin
// waiting, so that what the test does next (cancel, close) finds it
// waiting, the case worth testing. Correctness never depends on it: a Next
// that has not begun waiting must end the same way.
func letNextWait() { time.Sleep(20 * time.Millisecond) }

// waitFor waits for done, failing the test if it takes longer than the
// case's guard timeout (which only a hang would reach).
func waitFor[T any](t *testing.T, ctx context.Context, done <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-done:
		return v
	case <-ctx.Done():
		t.Fatalf("%s: gave up waiting: %v", what, ctx.Err())
		panic("unreachable")
	}
}

// reader takes events from a subscription in a goroutine of its own, so
// that the subscription waits in Next while the test appends: that is what
// exercises live delivery, which reading only after appending may never
// reach.
type reader struct {
	events chan eventstore.Event // closed when the reader stops
	err    error                 // why the subscription ended early; set before events closes
}

// startReader reads n events from sub.
func startReader(sub eventstore.Subscription, n int) *reader {
	r := &reader{events: make(chan eventstore.Event, n)}
	go func() {
		defer close(r.events)
		for i := range n {
			if !sub.Next() {
				r.err = fmt.Errorf("subscription ended after %d of %d events: %v", i, n, sub.Err())
				return
			}
			r.events <- sub.Event()
		}
	}()
	return r
}

// next returns the reader's next event.
func (r *reader) next(t *testing.T, ctx context.Context) eventstore.Event {
	t.Helper()
	select {
	case e, ok := <-r.events:
		if !ok {
			t.Fatalf("reader: %v", r.failure())
		}
		return e
	case <-ctx.Done():
		t.Fatalf("reader: gave up waiting for an event: %v", ctx.Err())
		panic("unreachable")
	}
}

// wait waits for the reader to stop and returns the events it read and
// nobody took yet.
func (r *reader) wait(t *testing.T, ctx context.Context) []eventstore.Event {
	t.Helper()
	var out []eventstore.Event
	for {
		select {
		case e, ok := <-r.events:
			if !ok {
				if r.err != nil {
					t.Fatalf("reader: %v", r.err)
				}
				return out
			}
			out = append(out, e)
		case <-ctx.Done():
			t.Fatalf("reader: gave up waiting after %d events: %v", len(out), ctx.Err())
		}
	}
}

func (r *reader) failure() error {
	if r.err != nil {
		return r.err
	}
	return errors.New("read more events than expected")
}
