package eventstore_test

import (
	"testing"

	"talentledger/eventstore"
)

func TestFilterMatch(t *testing.T) {
	grantApproved := &eventstore.Event{Stream: "grant-1", Type: "GrantApproved"}
	grantApplied := &eventstore.Event{Stream: "grant-1", Type: "GrantApplied"}
	fundEstablished := &eventstore.Event{Stream: "fund-7", Type: "FundEstablished"}
	short := &eventstore.Event{Stream: "gr", Type: "GrantApproved"}

	for _, c := range []struct {
		name   string
		filter eventstore.Filter
		event  *eventstore.Event
		want   bool
	}{
		{"empty filter", eventstore.Filter{}, grantApproved, true},
		{"empty lists", eventstore.Filter{StreamPrefixes: []string{}, EventTypes: []string{}}, fundEstablished, true},
		{"prefix", eventstore.Filter{StreamPrefixes: []string{"grant-"}}, grantApproved, true},
		{"prefix, other stream", eventstore.Filter{StreamPrefixes: []string{"grant-"}}, fundEstablished, false},
		{"prefix longer than the stream", eventstore.Filter{StreamPrefixes: []string{"grant-"}}, short, false},
		{"whole stream name as prefix", eventstore.Filter{StreamPrefixes: []string{"grant-1"}}, grantApproved, true},
		{"empty prefix", eventstore.Filter{StreamPrefixes: []string{""}}, fundEstablished, true},
		{"any of several prefixes", eventstore.Filter{StreamPrefixes: []string{"budget-", "fund-"}}, fundEstablished, true},
		{"none of several prefixes", eventstore.Filter{StreamPrefixes: []string{"budget-", "talent-"}}, grantApproved, false},
		{"prefix is case-sensitive", eventstore.Filter{StreamPrefixes: []string{"Grant-"}}, grantApproved, false},
		{"type", eventstore.Filter{EventTypes: []string{"GrantApproved"}}, grantApproved, true},
		{"type, other type", eventstore.Filter{EventTypes: []string{"GrantApproved"}}, grantApplied, false},
		{"type is exact, not a prefix", eventstore.Filter{EventTypes: []string{"Grant"}}, grantApproved, false},
		{"any of several types", eventstore.Filter{EventTypes: []string{"FundEstablished", "GrantApplied"}}, grantApplied, true},
		{"prefix and type both match", eventstore.Filter{StreamPrefixes: []string{"grant-"}, EventTypes: []string{"GrantApproved"}}, grantApproved, true},
		{"prefix matches, type does not", eventstore.Filter{StreamPrefixes: []string{"grant-"}, EventTypes: []string{"GrantApproved"}}, grantApplied, false},
		{"type matches, prefix does not", eventstore.Filter{StreamPrefixes: []string{"fund-"}, EventTypes: []string{"GrantApproved"}}, grantApproved, false},
	} {
		if got := c.filter.Match(c.event); got != c.want {
			t.Errorf("%s: Match(%s, %s) = %v; want %v", c.name, c.event.Stream, c.event.Type, got, c.want)
		}
	}
}
