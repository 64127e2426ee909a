package main

import (
	"context"
	"testing"

	"talentledger/eventstore/esdb"
	"talentledger/eventstore/esdb/esdbtest"
)

// TestDemoOverEventStoreDB runs the whole ledger on the EventStoreDB
// backend, through the real client against the in-process test server:
// the demo data set is written through the command path, the read models
// are fed by the server's $all subscription, and every figure checked on
// the embedded store (budgets, the 220,000.00 clawback, the funds, a zero
// trial balance, the hash chains) comes out the same.
func TestDemoOverEventStoreDB(t *testing.T) {
	srv := esdbtest.New(t)
	store, err := esdb.New(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	base, token := storeServer(t, store, true, nil)
	checkDemoFigures(t, base, token)
}
