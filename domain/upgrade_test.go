package domain

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// newerReviews is the Codec of a build one step ahead of this one: it
// writes GrantReviewed at version 2.
var newerReviews = Codec{}.WithType(TypeGrantReviewed, 2, func() Event { return &GrantReviewed{} },
	map[int]Upcaster{1: func(b []byte) ([]byte, error) { return b, nil }})

// A replica of an older build refuses to decide on a stream that holds an
// event a newer replica wrote, rather than decide on a state without it;
// once upgraded, it decides again.
func TestOlderServiceRefusesAStreamWithANewerEvent(t *testing.T) {
	st := newTestStore(t)
	old := newServiceOver(st)
	newer := newServiceOver(st, WithCodec(newerReviews))
	defineHousing(t, old, "housing", 5)
	appropriate(t, old, "housing", 2024, "10000000")
	talent := registerTalent(t, old, "B")
	grant := apply(t, old, talent, "housing", "600000")

	ctx := context.Background()
	must(t)(newer.ReviewGrant(ctx, ReviewGrant{Meta: on(reviewer, "2024-01-04"), GrantID: grant, Decision: "approve"}))
	if n := countEvents(t, st, "GrantReviewed.v2"); n != 1 {
		t.Fatalf("the newer build wrote %d GrantReviewed.v2", n)
	}

	_, err := old.OpenNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-05"), GrantID: grant})
	if !errors.Is(err, ErrUpgradeRequired) || !strings.Contains(err.Error(), "upgrade required: event GrantReviewed version 2") {
		t.Fatalf("the older build opening the notice: %v, want upgrade required", err)
	}
	if n := countGrantEvents(t, st, TypePublicNoticeOpened, grant); n != 0 {
		t.Fatalf("the older build wrote %d events on the stream", n)
	}
	// Streams without newer events are unaffected.
	registerTalent(t, old, "C")

	// Upgraded (a process of the newer build), it decides on the stream,
	// and the earlier version 1 events upcast as they are read.
	upgraded := newServiceOver(st, WithCodec(newerReviews))
	must(t)(upgraded.OpenNotice(ctx, NoticeCommand{Meta: on(reviewer, "2024-01-05"), GrantID: grant}))
	if g := grantState(t, upgraded, grant); g.noticeOpen != "2024-01-05" || g.reviewedBy != reviewer.Principal {
		t.Errorf("after the upgrade the grant has notice %q, reviewed by %q", g.noticeOpen, g.reviewedBy)
	}
}
