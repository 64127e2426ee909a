package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"talentledger/cmd/internal/loadgen"
)

func TestBenchDrivesTheMixWithoutErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "bench.json")
	code := run(context.Background(), []string{"bench", "--duration", "1500ms", "--clients", "6", "--programs", "2",
		"--quiet", "--json", out, "--data", filepath.Join(dir, "data")}, io.Discard, io.Discard)
	if code != exitOK {
		t.Fatalf("bench exited with %d", code)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res loadgen.Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Commands.Count == 0 || res.Queries.Count == 0 || res.Commands.Errors != 0 || res.Queries.Errors != 0 {
		t.Errorf("commands %+v, queries %+v: want some of each and no errors", res.Commands, res.Queries)
	}
	for _, k := range []string{"apply", "review", "approve", "budget", "grant", "fund"} {
		if res.Ops[k].Count == 0 {
			t.Errorf("no %s operation ran", k)
		}
	}
	// The server-side figures come from the metrics registry.
	if res.Server.Appends == 0 || res.Server.Batches == 0 || res.Server.EventsPerBatch < 1 {
		t.Errorf("server figures %+v: want appends and batches", res.Server)
	}
	// Every command wrote at least one event.
	if res.EventsWritten < res.Commands.Count {
		t.Errorf("%d events written by %d commands; want at least one each", res.EventsWritten, res.Commands.Count)
	}
}
