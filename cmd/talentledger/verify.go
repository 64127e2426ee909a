package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"talentledger/domain"
	"talentledger/eventstore/pebble"
)

// runVerify checks every stream's hash chain in a data directory. Exit
// codes: 0 clean, 1 tampered, 2 could not run.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory of the embedded store")
	if err := parseFlags(fs, args); err != nil {
		return exitCantRun
	}
	store, err := pebble.Open(*data)
	if err != nil {
		fmt.Fprintf(stderr, "talentledger verify: %v\n", err)
		return exitCantRun
	}
	defer store.Close()
	rep, err := domain.VerifyLog(ctx, store)
	if err != nil {
		fmt.Fprintf(stderr, "talentledger verify: %v\n", err)
		return exitCantRun
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Fprintln(stdout, string(b))
	if !rep.OK {
		return exitFailed
	}
	return exitOK
}
