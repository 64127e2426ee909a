package esdb_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"talentledger/eventstore"
	"talentledger/eventstore/esdb"
	"talentledger/eventstore/esdb/esdbtest"
	"talentledger/eventstore/eventstoretest"
)

// TestContract runs the contract suite over the real client against the
// in-process test server, one server for all cases and one store per case,
// as applications share a cluster.
func TestContract(t *testing.T) {
	srv := esdbtest.New(t)
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store { return MustOpen(t, srv) })
}

// TestContractRealServer runs the contract suite against the EventStoreDB
// or KurrentDB server named by EVENTSTORE_URL, for instance one started
// with the repository's docker-compose.yml.
func TestContractRealServer(t *testing.T) {
	url := os.Getenv("EVENTSTORE_URL")
	if url == "" {
		t.Skip("no EventStoreDB server: to run the contract suite against the repository's cluster, start it " +
			"(docker compose up -d node1 node2 node3), make its nodes' names resolve " +
			"(127.0.0.1 node1 node2 node3 in /etc/hosts) and run " +
			"EVENTSTORE_URL='esdb://node1:2113,node2:2114,node3:2115?tls=false' go test ./eventstore/esdb/")
	}
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		s, err := esdb.New(ctx, url)
		if err != nil {
			t.Fatalf("esdb.New(%s): %v", url, err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil && !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}
