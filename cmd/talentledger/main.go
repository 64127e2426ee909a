// Command talentledger is the ledger's one binary:
//
//	talentledger serve    run the API on the embedded store or EventStoreDB
//	talentledger demo     run the API on a data directory loaded with the demo data set
//	talentledger verify   check hash chains and the Merkle tree against signed heads
//	talentledger keygen   write a new key for signing audit tree heads
//	talentledger bench    measure throughput, latency, replay, cold start and memory
//	talentledger export   write the journal and the grants register of a data directory as CSV
//	talentledger import   append a file of past decisions to a data directory, offline
//	talentledger backup   copy a data directory, online, and verify the copy
//	talentledger restore  restore a backup into a new data directory, verified
//	talentledger keystore new-master-key, new-token, serve, backup, purge-backups and rotate-master of the talents' data keys
//	talentledger version  print the version, the Go version and the store format
//
// Every flag can also be set through an environment variable named
// TALENTLEDGER_<FLAG>, e.g. TALENTLEDGER_ADDR.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // verify: tampering found
	exitCantRun = 2 // bad usage or a fault
	// exitNoWitness (3): verify had neither a witness nor a head, so it
	// could not check for truncation or reordering. exitDamaged (4): serve
	// found its store damaged at start.
	exitNoWitness = 3
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitCantRun
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "keygen":
		err = runKeygen(args[1:], stdout, stderr)
	case "export":
		err = runExport(ctx, args[1:], stdout, stderr)
	case "import":
		err = runImport(ctx, args[1:], stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], stdout, stderr)
	case "backup":
		err = runBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		err = runRestore(ctx, args[1:], stdout, stderr)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "keystore":
		err = runKeystore(ctx, args[1:], stdout, stderr)
	case "version":
		err = runVersion(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "talentledger: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitCantRun
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if !exit.logged {
			fmt.Fprintf(stderr, "talentledger %s: %v\n", args[0], err)
		}
		return exit.code
	}
	return exitCode(args[0], err, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: talentledger <command> [flags]

commands:
  serve    run the HTTP API (embedded store in --data, or --store esdb://...)
  demo     run the HTTP API on a data directory loaded with the demo data set
  verify   check the hash chains and the Merkle tree, of a data directory or a server
  keygen   write a new Ed25519 key for signing audit tree heads
  bench    load an in-process server over loopback and report throughput and
           latency; --events N measures replay, cold start and memory instead
  export   write the journal and the grants register of a data directory as CSV
  import   append a JSON-lines file of past decisions to a data directory (server stopped)
  backup   copy a data directory (online, while serve runs) with its newest
           signed head, and verify the copy
  restore  restore a backup into a new data directory, verified against its
           head and the witness
  keystore the talents' data keys: new-master-key FILE, backup DIR,
           purge-backups DIR (remove from a backup the keys erasure destroyed),
           rotate-master (wrap the keys again under a new master key),
           new-token FILE, serve (the key service replicas share)
  version  print the version, the Go version and the store format

Run 'talentledger <command> -h' for a command's flags. Every flag can also
be set as an environment variable TALENTLEDGER_<FLAG> (e.g. TALENTLEDGER_ADDR).
`)
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
