package memstore

import (
	"context"
	"testing"
	"time"

	"talentledger/eventstore"
)

func (s *Store) isLive(sub *subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.live[sub]
	return ok
}

// waitLive waits until sub has joined the live set; only a hang reaches the
// deadline.
func waitLive(t *testing.T, s *Store, sub *subscription) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !s.isLive(sub); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the subscription never joined the live set")
		}
	}
}

func appendOne(t *testing.T, s *Store, n int) eventstore.EventData {
	t.Helper()
	e := eventstore.EventData{ID: eventstore.NewEventID(), Type: "A", Data: []byte(`{}`)}
	if _, err := s.Append(context.Background(), "s", eventstore.Version(n)-1, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestOverflow checks the bounded live buffer: a subscriber that does not
// read is dropped from live delivery instead of blocking writers or
// growing, gets every event from the log when it reads again, and then
// rejoins live delivery.
func TestOverflow(t *testing.T) {
	const buffer = 4
	s := New(SubscriberBuffer(buffer))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{}).(*subscription)
	defer sub.Close()

	// Make it live: Next waits in another goroutine for the first event.
	first := make(chan eventstore.EventID)
	go func() {
		if sub.Next() {
			first <- sub.Event().ID
		}
		close(first)
	}()
	waitLive(t, s, sub)
	want := []eventstore.EventID{appendOne(t, s, 0).ID}
	if got := <-first; got != want[0] {
		t.Fatalf("first event %s; want %s", got, want[0])
	}
	if !s.isLive(sub) {
		t.Fatal("the subscription left the live set after a live event")
	}

	// Nobody reads: the writer must neither block nor queue without bound.
	for i := 1; i <= 1000; i++ {
		want = append(want, appendOne(t, s, i).ID)
		if len(sub.ch) > buffer {
			t.Fatalf("buffer holds %d events; limit %d", len(sub.ch), buffer)
		}
	}
	if s.isLive(sub) {
		t.Fatal("the overflowing subscription is still in the live set")
	}

	for i, id := range want[1:] {
		if !sub.Next() {
			t.Fatalf("Next = false after %d events: %v", i, sub.Err())
		}
		if got := sub.Event().ID; got != id {
			t.Fatalf("event %d: got %s; want %s", i+1, got, id)
		}
	}

	// Caught up, it rejoins live delivery.
	next := make(chan eventstore.EventID)
	go func() {
		if sub.Next() {
			next <- sub.Event().ID
		}
		close(next)
	}()
	waitLive(t, s, sub)
	e := appendOne(t, s, len(want))
	if got := <-next; got != e.ID {
		t.Fatalf("live event %s; want %s", got, e.ID)
	}
}

// TestEndedSubscriptionsLeave checks that closing a subscription or
// cancelling its context removes it from the live set.
func TestEndedSubscriptionsLeave(t *testing.T) {
	s := New()
	defer s.Close()
	for _, how := range []string{"close", "cancel"} {
		ctx, cancel := context.WithCancel(context.Background())
		sub := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{}).(*subscription)
		ended := make(chan bool)
		go func() { ended <- sub.Next() }()
		waitLive(t, s, sub)
		if how == "close" {
			sub.Close()
		} else {
			cancel()
		}
		if <-ended {
			t.Fatalf("%s: Next = true", how)
		}
		if s.isLive(sub) {
			t.Errorf("%s: the subscription is still in the live set", how)
		}
		cancel()
	}
}
