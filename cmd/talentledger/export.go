package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"talentledger/domain"
	"talentledger/domain/keystore"
	"talentledger/eventstore/pebble"
	"talentledger/projections"
)

// runExport writes, from a data directory, the same files as
// GET /v1/export/journal.csv and GET /v1/export/grants.csv: the journal of
// every posting (of the events effective --from --to) and the grants
// register as the log stands. The journal is streamed from the log; the
// register comes from read models replayed from it.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", stdout)
	data := fs.String("data", "./data", "data directory of the embedded store")
	out := fs.String("out", "", "directory to write the files to (created if needed)")
	from := fs.String("from", "", "journal: first effective date (YYYY-MM-DD), inclusive")
	to := fs.String("to", "", "journal: last effective date (YYYY-MM-DD), inclusive")
	var personal personalConfig
	fs.StringVar(&personal.masterKey, "master-key", "", "file of the master key: names in the register are then opened (ID numbers and bank accounts masked, as an auditor sees them); without it they read "+domain.Unreadable)
	fs.StringVar(&personal.keystore, "keystore", "", "key store directory (default: beside --data, its path + \".keys\")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var cipher *domain.Cipher
	if personal.masterKey != "" {
		var err error
		var keys *keystore.Store
		if cipher, keys, err = personal.open(*data, false); err != nil {
			return err
		}
		defer keys.Close()
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	rng, err := projections.ParseJournalRange(*from, *to)
	if err != nil {
		return err
	}
	// Opening a missing directory would create an empty store and export
	// nothing; a typo must not look like an empty ledger.
	if fi, err := os.Stat(*data); err != nil || !fi.IsDir() {
		return fmt.Errorf("--data %s is not a data directory", *data)
	}
	store, err := pebble.Open(*data, pebble.WithLogger(newLogger(stderr)))
	if err != nil {
		return err
	}
	defer store.Close()
	if err := os.MkdirAll(*out, 0o750); err != nil {
		return err
	}

	var st projections.JournalStats
	journal := filepath.Join(*out, rng.Filename())
	err = writeFileAtomic(journal, func(w io.Writer) error {
		st, err = projections.WriteJournalCSV(ctx, w, store, rng, nil)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d postings of %d events, %d lines; debits %s = credits %s\n",
		journal, st.Postings, st.Events, st.Rows, st.Debits, st.Credits)

	p, err := projections.Replay(ctx, store, nil)
	if err != nil {
		return err
	}
	var n int
	grants := filepath.Join(*out, "grants.csv")
	err = writeFileAtomic(grants, func(w io.Writer) error {
		rw := &projections.RevealWriter{W: w, Reveal: func(dst []byte, v string) []byte {
			return projections.AppendCSVField(dst, cipher.Reveal(v, domain.RoleAuditor, false))
		}}
		if n, err = projections.WriteGrantsCSV(ctx, rw, p, nil); err != nil {
			return err
		}
		return rw.Close()
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d grants, log at position %s\n", grants, n, p.Position())
	return nil
}

// writeFileAtomic writes path through a temporary file in the same
// directory, synced and renamed into place, so that a failed or
// interrupted export never leaves a short file under the final name.
// Exports hold personal data: the file is readable by its owner and group
// only.
func writeFileAtomic(path string, write func(w io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o640); err != nil {
		return err
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
