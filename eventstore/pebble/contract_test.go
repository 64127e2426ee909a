package pebble_test

import (
	"testing"

	"talentledger/eventstore"
	"talentledger/eventstore/eventstoretest"
	"talentledger/eventstore/pebble"
)

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store { return MustOpen(t, "") })
}

// TestContractTinyBuffer runs the suite with live buffers so small that
// subscriptions overflow all the time, so the fall back to disk and the
// re-attaching are taken on every path.
func TestContractTinyBuffer(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		return MustOpen(t, "", pebble.WithSubscriptionBuffer(1))
	})
}
