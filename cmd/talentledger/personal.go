package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"talentledger/domain"
	"talentledger/domain/keystore"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	"talentledger/projections"
)

// personalConfig is how a command reaches the talents' data keys: the
// master key file and the key store directory, or no encryption at all.
type personalConfig struct {
	masterKey    string
	keystore     string
	noEncryption bool
}

func (c *personalConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.masterKey, "master-key", "", "file of the master key (64 hex digits, mode 600; see keystore new-master-key) that wraps the talents' data keys; required unless --no-encryption")
	fs.StringVar(&c.keystore, "keystore", "", "key store directory of the talents' data keys, apart from the log (default: beside --data, its path + \".keys\")")
	fs.BoolVar(&c.noEncryption, "no-encryption", false, "record personal data in plain text, without a key store: for tests only; such data cannot be erased")
}

// keystoreDir returns the key store directory for the data directory.
func (c *personalConfig) keystoreDir(data string) string {
	if c.keystore != "" {
		return filepath.Clean(c.keystore)
	}
	return filepath.Clean(data) + ".keys"
}

// open opens the key store and returns the cipher over it; nil for
// --no-encryption. makeKey, for the demo, writes a master key when the
// file is absent.
func (c *personalConfig) open(data string, makeKey bool) (*domain.Cipher, *keystore.Store, error) {
	switch {
	case c.noEncryption && (c.masterKey != "" || c.keystore != ""):
		return nil, nil, usagef("--no-encryption goes with neither --master-key nor --keystore")
	case c.noEncryption:
		return nil, nil, nil
	case c.masterKey == "":
		return nil, nil, usagef("--master-key is required: personal data is encrypted under keys it wraps (--no-encryption, for tests, records it in plain text)")
	}
	if makeKey {
		if _, err := os.Stat(c.masterKey); errors.Is(err, fs.ErrNotExist) {
			if err := keystore.WriteMasterKey(c.masterKey); err != nil {
				return nil, nil, err
			}
		}
	}
	k, err := keystore.ReadMasterKey(c.masterKey)
	if err != nil {
		return nil, nil, err
	}
	ks, err := keystore.Open(c.keystoreDir(data), k)
	if err != nil {
		return nil, nil, err
	}
	return domain.NewCipher(ks), ks, nil
}

// recoverKeyBindings binds to their talents the keys whose bindings a
// crash lost (the log names them), before anything is served or written;
// sole for the embedded store, the log's only writer.
func recoverKeyBindings(ctx context.Context, store eventstore.Store, c *domain.Cipher, sole bool, log *slog.Logger) error {
	n, err := domain.RecoverKeyBindings(ctx, store, c, sole)
	if err != nil {
		return fmt.Errorf("recovering the key store's bindings from the log: %w", err)
	}
	if n > 0 {
		log.Info("bound data keys to their talents from the log (bindings an interruption had not written)", "keys", n)
	}
	return nil
}

// runKeystore runs the key store's subcommands.
func runKeystore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("keystore: new-master-key FILE, new-token FILE, serve, backup DIR, purge-backups DIR or rotate-master")
	}
	switch args[0] {
	case "new-master-key":
		fs := newFlagSet("keystore new-master-key", stdout)
		if err := parseFlagsAnd(fs, args[1:], "FILE"); err != nil {
			return err
		}
		if err := keystore.WriteMasterKey(fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote a new master key to %s; keep it apart from the data and the key store, and back it up on its own\n", fs.Arg(0))
		return nil
	case "backup":
		fs := newFlagSet("keystore backup", stdout)
		var cfg personalConfig
		data := fs.String("data", "./data", "data directory whose key store is backed up (for the default --keystore)")
		cfg.register(fs)
		if err := parseFlagsAnd(fs, args[1:], "DIR"); err != nil {
			return err
		}
		if cfg.noEncryption || cfg.masterKey == "" {
			return usagef("--master-key is required")
		}
		k, err := keystore.ReadMasterKey(cfg.masterKey)
		if err != nil {
			return err
		}
		// Copied without opening it: the server may be writing to it.
		if err := keystore.BackupDir(cfg.keystoreDir(*data), fs.Arg(0), k); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backed up the key store %s to %s\n", cfg.keystoreDir(*data), fs.Arg(0))
		return nil
	case "purge-backups":
		fs := newFlagSet("keystore purge-backups", stdout)
		var cfg personalConfig
		data := fs.String("data", "./data", "data directory whose key store is the reference (for the default --keystore)")
		cfg.register(fs)
		if err := parseFlagsAnd(fs, args[1:], "DIR"); err != nil {
			return err
		}
		if cfg.noEncryption || cfg.masterKey == "" {
			return usagef("--master-key is required")
		}
		k, err := keystore.ReadMasterKey(cfg.masterKey)
		if err != nil {
			return err
		}
		// Read without writing to it: a server or the key service may
		// have it open.
		ks, err := keystore.OpenReference(cfg.keystoreDir(*data), k)
		if err != nil {
			return err
		}
		n, err := ks.PurgeBackup(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("%s: %w", fs.Arg(0), err)
		}
		fmt.Fprintf(stdout, "%s: removed %d destroyed keys\n", fs.Arg(0), n)
		return nil
	case "rotate-master":
		return runRotateMaster(ctx, args[1:], stdout)
	case "new-token":
		return runKeystoreNewToken(args[1:], stdout)
	case "serve":
		return runKeystoreServe(ctx, args[1:], stdout, stderr)
	}
	return usagef("keystore: unknown subcommand %q (new-master-key, new-token, serve, backup, purge-backups, rotate-master)", clipArg(args[0]))
}

// destroyErased destroys the keys of the talents the read models say are
// erased: an erasure whose key a crash kept is finished here.
func destroyErased(ctx context.Context, c *domain.Cipher, t *projections.Talents) (int, error) {
	if c == nil {
		return 0, nil
	}
	n := 0
	for _, e := range t.Erasures(projections.ErasureErased) {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if c.DestroyConfirmed(e.TalentID) {
			// Once confirmed is enough: a key store shared by replicas
			// (a key service) is not asked again at every check.
			continue
		}
		if err := c.Destroy(e.TalentID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// erasures carries out the approved erasures whose day has come, and
// finishes those a crash left with their key.
func (a *app) erasures(ctx context.Context) {
	if a.svc.Cipher() == nil {
		return
	}
	today := a.svc.Today()
	for _, e := range a.proj.Talents().Erasures(projections.ErasureScheduled) {
		if e.NotBefore > today {
			continue
		}
		out, err := a.svc.CarryOutErasure(ctx, e.TalentID)
		if err != nil {
			// Logged without the talent's personal data: there is
			// none in an erasure's ID or error.
			a.log.Warn("a scheduled erasure was not carried out", "talent", e.TalentID, "err", err.Error())
			continue
		}
		a.log.Info("carried out a scheduled erasure", "talent", e.TalentID, "erased", out.Erased, "not_before", out.NotBefore)
	}
	if _, err := destroyErased(ctx, a.svc.Cipher(), a.proj.Talents()); err != nil {
		a.log.Error("destroying the keys of erased talents", "err", err.Error())
	}
}

// revealFor is what a console session with roles sees of a sealed field:
// in full when one of its roles needs it (the clerk, the treasurer),
// masked otherwise, erased once the key is destroyed.
func (a *app) revealFor(sealed string, roles []string) string {
	role := ""
	for _, r := range roles {
		if role == "" || domain.SeesUnmasked(r) {
			role = r
		}
	}
	return a.svc.Cipher().Reveal(sealed, role, false)
}

// runRotateMaster wraps the key store's data keys again under a new master
// key, with the server stopped, and records MasterKeyRotated in the log.
func runRotateMaster(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("keystore rotate-master", stdout)
	var cfg personalConfig
	data := fs.String("data", "./data", "data directory (the server stopped): the rotation is recorded in its log")
	newKey := fs.String("new-master-key", "", "file of the new master key (see new-master-key)")
	principal := fs.String("principal", "", "who rotates, recorded as an admin (required)")
	cfg.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *newKey == "" || *principal == "" || cfg.masterKey == "" {
		return usagef("keystore rotate-master needs --master-key (the old), --new-master-key and --principal")
	}
	oldK, err := keystore.ReadMasterKey(cfg.masterKey)
	if err != nil {
		return err
	}
	newK, err := keystore.ReadMasterKey(*newKey)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(*data); err != nil || !fi.IsDir() {
		return fmt.Errorf("--data %s is not a data directory", *data)
	}
	// Opening the store first makes sure no server runs on it.
	store, err := pebble.Open(*data, pebble.WithLogger(quietLogger()))
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := keystore.Rotate(cfg.keystoreDir(*data), oldK, newK)
	if err != nil {
		return err
	}
	svc := domain.NewService(store)
	res, err := svc.RecordMasterKeyRotation(ctx, domain.CommandMeta{Actor: domain.Actor{Principal: *principal, Role: domain.RoleAdmin},
		Reason: "master key rotation"}, n)
	if err != nil {
		return fmt.Errorf("the keys were wrapped again under the new master key, but the rotation could not be recorded: %w", err)
	}
	fmt.Fprintf(stdout, "wrapped %d data keys again under %s; recorded at position %s; the old master key opens nothing now\n", n, *newKey, res.Position)
	return nil
}
