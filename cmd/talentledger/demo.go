package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"talentledger/domain"
	ledgerhttp "talentledger/http"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("demo", stdout)
	var cfg serveConfig
	cfg.register(flags, "./demo-data")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if cfg.integ.witness == "" && !cfg.integ.noWitness {
		cfg.integ.witness = defaultWitness(cfg.data)
		// Deleting the demo's directory is how it starts afresh; its old
		// witness would (rightly) call the new one a lost log.
		if _, err := os.Stat(cfg.data); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Stat(cfg.integ.witness); err == nil {
				old := cfg.integ.witness + ".old-" + timeNow().UTC().Format("20060102T150405Z")
				if err := os.Rename(cfg.integ.witness, old); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "a new data directory: the previous witness file was set aside as %s\n", old)
			}
		}
	}
	if cfg.personal.keystore == "" && !cfg.personal.noEncryption {
		// Likewise its key store: the new data's talents get new keys.
		if _, err := os.Stat(cfg.data); errors.Is(err, fs.ErrNotExist) {
			ks := cfg.personal.keystoreDir(cfg.data)
			if _, err := os.Stat(ks); err == nil {
				old := ks + ".old-" + timeNow().UTC().Format("20060102T150405Z")
				if err := os.Rename(ks, old); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "a new data directory: the previous key store was set aside as %s\n", old)
			}
		}
	}
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return err
	}
	tokens, err := demoTokens(cfg.data)
	if err != nil {
		return err
	}
	var ps []ledgerhttp.Principal
	for key, tok := range tokens {
		role := key
		if r, ok := demoSeconds[key]; ok {
			role = r
		}
		ps = append(ps, ledgerhttp.Principal{ID: "demo-" + key, Roles: []string{role}, TokenSHA256: ledgerhttp.HashToken(tok)})
	}
	principals, err := ledgerhttp.NewPrincipals(ps)
	if err != nil {
		return err
	}
	tlsConfig, apiOpts, err := cfg.transport()
	if err != nil {
		return err
	}
	keyPath := cfg.auditKey
	if keyPath == "" {
		keyPath = filepath.Join(cfg.data, "audit-key.pem")
	}
	auditKey, err := loadOrCreateAuditKey(keyPath)
	if err != nil {
		return err
	}
	if err := cfg.integ.validate(cfg.data, cfg.store == "", auditKey); err != nil {
		return err
	}
	// The request log is buffered; it is all written when this returns.
	log, logBuf := newBufferedLogger(stderr)
	defer logBuf.Close()
	m := newMetrics()
	store, err := openStore(ctx, cfg, log, m)
	if err != nil {
		return err
	}
	svcOpts, err := cfg.serviceOptions()
	if err != nil {
		store.Close()
		return err
	}
	if cfg.personal.masterKey == "" && !cfg.personal.noEncryption {
		// The demo makes its master key beside its data directory
		// (never inside it: the data must not hold its own key).
		cfg.personal.masterKey = filepath.Clean(cfg.data) + ".master-key"
	}
	cipher, keys, err := cfg.personal.open(cfg.data, true)
	if err != nil {
		store.Close()
		return err
	}
	if keys != nil {
		defer keys.Close()
	}
	if err := recoverKeyBindings(ctx, store, cipher, cfg.store == "", log); err != nil {
		store.Close()
		return err
	}
	svcOpts = append(svcOpts, domain.WithCipher(cipher))
	g, err := newGuard(ctx, store, cfg.integ, auditKey, log)
	if err != nil {
		store.Close()
		return err
	}
	a := newAppWithService(store, principals, auditKey, log, m, svcOpts, apiOpts, g.configure)
	a.guard = g
	g.registerMetrics(m)
	a.metricsAddr = cfg.metricsAddr
	a.tls = tlsConfig
	a.timeouts = cfg.limits.timeouts
	a.signins = cfg.signinJournal(log)
	last, err := store.LastPosition(ctx)
	if err != nil {
		g.close()
		store.Close()
		return err
	}
	if last.Commit == 0 {
		fmt.Fprintln(stdout, "loading the demo data set…")
		if err := loadDemo(ctx, a.svc); err != nil {
			g.close()
			store.Close()
			return fmt.Errorf("loading the demo data: %w", err)
		}
		if err := g.signHead(ctx); err != nil {
			g.close()
			store.Close()
			return err
		}
	} else {
		fmt.Fprintf(stdout, "reusing the data in %s (log at position %s)\n", cfg.data, last)
	}
	return a.serve(ctx, cfg.addr, func(addr net.Addr) {
		scheme := "http://"
		if tlsConfig != nil {
			scheme = "https://"
		}
		printDemoHelp(stdout, scheme+addr.String(), tokens, cfg.data)
		fmt.Fprintf(stdout, "Audit tree heads are signed with %s; its public key is %s\n", keyPath, publicKeyString(auditKey))
	})
}

// demoAdmin2 names the demo's second admin, who approves what the first
// requests (four eyes on access).
const demoAdmin2 = "admin2"

// demoSeconds are the demo's second principals in a role, for the
// controls that need two people: access (admin2) and budget decisions, a
// year-end close or an adjustment (approver2).
var demoSeconds = map[string]string{demoAdmin2: domain.RoleAdmin, "approver2": domain.RoleApprover}

// demoTokens returns one token per role, and one for each second
// principal, reading them from <data>/demo-tokens.json or creating that
// file; a token missing from an older file is added to it. Tokens are
// generated on this machine at first run; none is ever part of the
// source.
func demoTokens(dir string) (map[string]string, error) {
	path := filepath.Join(dir, "demo-tokens.json")
	keys := slices.Clone(domain.Roles)
	for k := range demoSeconds {
		keys = append(keys, k)
	}
	tokens := map[string]string{}
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &tokens); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, role := range domain.Roles {
			if tokens[role] == "" {
				return nil, fmt.Errorf("%s has no token for role %s; delete it to make new ones", path, role)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	missing := false
	for _, k := range keys {
		if tokens[k] == "" {
			tokens[k] = ledgerhttp.NewToken()
			missing = true
		}
	}
	if !missing {
		return tokens, nil
	}
	b, _ = json.MarshalIndent(tokens, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return nil, err
	}
	return tokens, nil
}

func printDemoHelp(w io.Writer, base string, tokens map[string]string, dir string) {
	fmt.Fprintf(w, "\ntalentledger demo is serving on %s\n\nTokens, one per role and a second admin and approver (also in %s):\n",
		base, filepath.Join(dir, "demo-tokens.json"))
	roles := make([]string, 0, len(tokens))
	for r := range tokens {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		fmt.Fprintf(w, "  %-13s %s\n", r, tokens[r])
	}
	fmt.Fprintf(w, `
Try:
  curl -s -H "Authorization: Bearer %[2]s" %[1]s/v1/programs
  curl -s -H "Authorization: Bearer %[2]s" "%[1]s/v1/grants?state=terminated"
  curl -s -H "Authorization: Bearer %[3]s" %[1]s/v1/ledger/balances
  curl -s -H "Authorization: Bearer %[3]s" %[1]s/v1/audit/verify

The bank's statement for release batch %[4]s (the %[5]d payments released
on %[6]s) is imported: %[7]d lines matched, %[8]d mismatched (the bank booked
%[9]s less), %[10]d unmatched (its charge for the batch):
  curl -s -H "Authorization: Bearer %[3]s" %[1]s/v1/bank/statements
  curl -s -H "Authorization: Bearer %[3]s" "%[1]s/v1/payments/bank-file?batch=%[4]s"

Web console (Simplified Chinese; English by the switch at the top right):
  %[1]s/
Sign in with any token above: the console shows each principal the screens
of its role (demo-clerk, demo-reviewer, demo-approver, demo-treasurer,
demo-fund_manager, demo-auditor, demo-admin).

Stop with Ctrl-C; run the same command again to reuse the data.
`, base, tokens[domain.RoleClerk], tokens[domain.RoleAuditor], demoBatch, demoBatchPayments, demoBatchDate,
		demoStatementMatched, demoStatementMismatched, demoStatementShort, demoStatementUnmatched)
}
