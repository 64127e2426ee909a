package eventstore_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"talentledger/eventstore"
)

func TestVersionRoundTrip(t *testing.T) {
	for _, c := range []struct {
		v eventstore.Version
		s string
	}{
		{eventstore.NoStream, "no_stream"},
		{eventstore.Any, "any"},
		{eventstore.StreamExists, "stream_exists"},
		{0, "0"},
		{1, "1"},
		{41, "41"},
		{math.MaxInt64, "9223372036854775807"},
	} {
		if got := c.v.String(); got != c.s {
			t.Errorf("Version(%d).String() = %q; want %q", int64(c.v), got, c.s)
		}
		got, err := eventstore.ParseVersion(c.s)
		if err != nil || got != c.v {
			t.Errorf("ParseVersion(%q) = %d, %v; want %d", c.s, int64(got), err, int64(c.v))
		}
	}
}

func TestParseVersionRejects(t *testing.T) {
	for _, s := range []string{"", "-1", "-2", "1.5", "abc", "NoStream", "no-stream", " 1", "9223372036854775808",
		"+5", "-0", "+0", "05", "00", "1 ", "1_000", "0x10", "１"} {
		if v, err := eventstore.ParseVersion(s); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("ParseVersion(%q) = %d, %v; want ErrInvalid", s, int64(v), err)
		}
	}
}

func TestVersionValid(t *testing.T) {
	for _, c := range []struct {
		v    eventstore.Version
		want bool
	}{
		{0, true},
		{7, true},
		{eventstore.NoStream, true},
		{eventstore.Any, true},
		{eventstore.StreamExists, true},
		{-3, false},
		{-5, false},
		{math.MinInt64, false},
	} {
		if got := c.v.Valid(); got != c.want {
			t.Errorf("Version(%d).Valid() = %v; want %v", int64(c.v), got, c.want)
		}
	}
}

func TestPositionRoundTrip(t *testing.T) {
	for _, c := range []struct {
		p eventstore.Position
		s string
	}{
		{eventstore.Start, "0"},
		{eventstore.Position{Commit: 1, Prepare: 1}, "1"},
		{eventstore.Position{Commit: 1024, Prepare: 980}, "1024/980"},
		{eventstore.Position{Commit: 5, Prepare: 9}, "5/9"},
		{eventstore.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}, "18446744073709551615"},
	} {
		if got := c.p.String(); got != c.s {
			t.Errorf("%+v.String() = %q; want %q", c.p, got, c.s)
		}
		got, err := eventstore.ParsePosition(c.s)
		if err != nil || got != c.p {
			t.Errorf("ParsePosition(%q) = %+v, %v; want %+v", c.s, got, err, c.p)
		}

		// Positions travel in JSON as their string form.
		b, err := json.Marshal(struct{ P eventstore.Position }{c.p})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"P":"` + c.s + `"}`; string(b) != want {
			t.Errorf("JSON %s; want %s", b, want)
		}
		var back struct{ P eventstore.Position }
		if err := json.Unmarshal(b, &back); err != nil || back.P != c.p {
			t.Errorf("JSON round trip of %+v gave %+v, %v", c.p, back.P, err)
		}
	}
}

func TestParsePositionRejects(t *testing.T) {
	for _, s := range []string{"", "-1", "a", "1/", "/1", "1/2/3", "1.5", " 1", "+1", "18446744073709551616",
		"01", "1/02", "-0", "1/+2", "1 /2", "0x1"} {
		if p, err := eventstore.ParsePosition(s); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("ParsePosition(%q) = %+v, %v; want ErrInvalid", s, p, err)
		}
	}
	var p eventstore.Position
	if err := json.Unmarshal([]byte(`"x"`), &p); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("unmarshalling \"x\": %v; want ErrInvalid", err)
	}
}

func TestPositionCompare(t *testing.T) {
	pos := func(c, p uint64) eventstore.Position { return eventstore.Position{Commit: c, Prepare: p} }
	for _, c := range []struct {
		p, q eventstore.Position
		want int
	}{
		{eventstore.Start, eventstore.Start, 0},
		{eventstore.Start, pos(1, 1), -1},
		{pos(1, 1), eventstore.Start, 1},
		{pos(5, 5), pos(5, 5), 0},
		{pos(5, 3), pos(5, 4), -1}, // one commit, several events: prepare orders them
		{pos(5, 9), pos(5, 4), 1},
		{pos(4, 9), pos(5, 0), -1}, // commit decides first
		{pos(6, 0), pos(5, 9), 1},
	} {
		if got := c.p.Compare(c.q); got != c.want {
			t.Errorf("%s.Compare(%s) = %d; want %d", c.p, c.q, got, c.want)
		}
		if got := c.p.Before(c.q); got != (c.want < 0) {
			t.Errorf("%s.Before(%s) = %v; want %v", c.p, c.q, got, c.want < 0)
		}
	}
}
