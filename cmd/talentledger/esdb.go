package main

import (
	"context"
	"log/slog"

	"talentledger/eventstore"
	"talentledger/eventstore/esdb"
)

// openESDB connects to EventStoreDB / KurrentDB.
func openESDB(ctx context.Context, url string, log *slog.Logger) (eventstore.Store, error) {
	return esdb.New(ctx, url, esdb.WithLogger(log))
}
