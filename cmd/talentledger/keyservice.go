package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"talentledger/domain"
	"talentledger/domain/keystore"
	"talentledger/eventstore"
)

// keyCacheTTL is how long a server uses a data key the key service gave
// it before it asks again: an erasure carried out on another replica
// stops this one showing the talent's data within it at the latest (at
// once when this replica's read models fold TalentKeyDestroyed).
const keyCacheTTL = 10 * time.Second

// keyServiceConfig is how serve reaches a key service shared by replicas.
type keyServiceConfig struct {
	url, token, ca string
}

func (c *keyServiceConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "key-service", "", "URL of the key service (https://HOST:PORT; see keystore serve) that holds the talents' data keys for every replica; instead of --master-key")
	fs.StringVar(&c.token, "key-service-token", "", "file of the key service's bearer token (with --key-service)")
	fs.StringVar(&c.ca, "key-service-ca", "", "PEM file of the CA certificate(s) the key service's certificate is checked against (default: the system's)")
}

// open returns the cipher over the key service, checked to answer and
// to take the token; nil when no key service is configured.
func (c *keyServiceConfig) open(ctx context.Context, p personalConfig) (*domain.Cipher, error) {
	if c.url == "" {
		if c.token != "" || c.ca != "" {
			return nil, usagef("--key-service-token and --key-service-ca go with --key-service")
		}
		return nil, nil
	}
	switch {
	case p.masterKey != "" || p.keystore != "" || p.noEncryption:
		return nil, usagef("--key-service goes with none of --master-key, --keystore and --no-encryption: the key service holds the keys")
	case c.token == "":
		return nil, usagef("--key-service needs --key-service-token")
	}
	token, err := readToken(c.token)
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--key-service-ca %s holds no PEM certificate", c.ca)
		}
		tc = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	cl, err := keystore.NewClient(c.url, token, tc)
	if err != nil {
		return nil, usagef("--key-service: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, keystore.ClientTimeout)
	defer cancel()
	if err := cl.Check(cctx); err != nil {
		return nil, fmt.Errorf("the key service %s: %w", c.url, err)
	}
	return domain.NewCipherTTL(cl, keyCacheTTL), nil
}

// readToken reads a bearer token file: one line of at least
// keystore.MinTokenLength characters. It opens every data key, as the
// master key does: a file others may read is refused.
func readToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < keystore.MinTokenLength || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s: a token is one line of at least %d characters (keystore new-token makes one)", path, keystore.MinTokenLength)
	}
	return tok, nil
}

// runKeystoreNewToken writes a new random bearer token, mode 0600.
func runKeystoreNewToken(args []string, stdout io.Writer) error {
	fs := newFlagSet("keystore new-token", stdout)
	if err := parseFlagsAnd(fs, args, "FILE"); err != nil {
		return err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	f, err := os.OpenFile(fs.Arg(0), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(hex.EncodeToString(b) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a new key service token to %s; give it to the key service and to each server, and to no one else\n", fs.Arg(0))
	return nil
}

// runKeystoreServe serves the key store to the ledger's servers until ctx
// is done.
func runKeystoreServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keystore serve", stdout)
	dir := fs.String("keys", "", "key store directory (required)")
	master := fs.String("master-key", "", "file of the master key that wraps the data keys (required)")
	listen := fs.String("listen", "127.0.0.1:7443", "address to listen on")
	tokenFile := fs.String("token", "", "file of the bearer token every server presents (required; keystore new-token makes one)")
	cert := fs.String("tls-cert", "", "PEM certificate (chain) file: serve HTTPS, with --tls-key (required unless --insecure-loopback)")
	key := fs.String("tls-key", "", "PEM private key file of --tls-cert")
	plain := fs.Bool("insecure-loopback", false, "serve plain HTTP, on a loopback address only: for tests")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *dir == "" || *master == "" || *tokenFile == "":
		return usagef("keystore serve needs --keys, --master-key and --token")
	case (*cert == "") != (*key == ""):
		return usagef("--tls-cert and --tls-key go together")
	case *cert != "" && *plain:
		return usagef("--insecure-loopback goes with neither --tls-cert nor --tls-key")
	case *cert == "" && !*plain:
		return usagef("keystore serve needs --tls-cert and --tls-key (plain HTTP only with --insecure-loopback, on a loopback address)")
	}
	if *plain {
		host, _, err := net.SplitHostPort(*listen)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return usagef("--insecure-loopback needs a loopback --listen address (127.0.0.1:PORT)")
		}
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	var tc *tls.Config
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return fmt.Errorf("TLS key pair: %w", err)
		}
		tc = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	}
	mk, err := keystore.ReadMasterKey(*master)
	if err != nil {
		return err
	}
	ks, err := keystore.Open(*dir, mk)
	if err != nil {
		return err
	}
	// Closing destroys the pooled keys never handed out.
	defer ks.Close()
	log := newLogger(stderr)
	h, err := keystore.NewHandler(ks, token, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10, TLSConfig: tc,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	scheme := "https"
	if tc == nil {
		scheme = "http"
		log.Warn("--insecure-loopback: the key service answers plain HTTP; for tests only")
	}
	log.Info("key service serving", "addr", ln.Addr().String(), "scheme", scheme, "keys", *dir)
	err = serveUntil(ctx, srv, ln, tc != nil, log, 15*time.Second)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// missingKeys is a key store that can count the keys the log names it
// cannot give.
type missingKeys interface {
	MissingKeys(ctx context.Context, refs []keystore.KeyRef) (int, error)
}

// checkKeys reads the log and counts the keys it binds to talents not
// erased that the key store cannot give: a server whose key store is not
// the one those talents were registered with (one replica's own store, a
// wrong directory or backup) would show their fields as [unreadable].
func checkKeys(ctx context.Context, store eventstore.Store, c *domain.Cipher) (named, missing int, err error) {
	if c == nil {
		return 0, 0, nil
	}
	mk, ok := c.KeyStore().(missingKeys)
	if !ok {
		return 0, 0, nil
	}
	var refs []keystore.KeyRef
	erased := map[string]bool{}
	it := store.ReadAll(ctx, eventstore.Start)
	defer it.Close()
	for it.Next() {
		ev := it.Event()
		name, _, _ := domain.ParseEventType(ev.Type)
		switch name {
		case domain.TypeTalentKeyCreated, domain.TypeTalentKeyRotated:
			var r keystore.KeyRef
			if err := json.Unmarshal(ev.Data, &r); err != nil {
				return 0, 0, err
			}
			refs = append(refs, r)
		case domain.TypeTalentKeyDestroyed:
			var r keystore.KeyRef
			if err := json.Unmarshal(ev.Data, &r); err != nil {
				return 0, 0, err
			}
			erased[r.TalentID] = true
		}
	}
	if err := it.Err(); err != nil {
		return 0, 0, err
	}
	live := refs[:0]
	for _, r := range refs {
		if !erased[r.TalentID] {
			live = append(live, r)
		}
	}
	for i := 0; i < len(live); i += 5000 {
		n, err := mk.MissingKeys(ctx, live[i:min(i+5000, len(live))])
		if err != nil {
			return len(live), missing, err
		}
		missing += n
	}
	return len(live), missing, nil
}

// warnMissingKeys logs a warning when the key store lacks keys the log
// names; it counts them, and names no talent.
func warnMissingKeys(ctx context.Context, store eventstore.Store, c *domain.Cipher, log *slog.Logger) {
	named, missing, err := checkKeys(ctx, store, c)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("the key store could not be checked against the log", "err", err.Error())
	case missing > 0:
		log.Warn("the key store does not hold data keys the log names: the personal fields sealed under them show as [unreadable]; is this the key store (or key service) the ledger was written with?",
			"missing", missing, "named", named)
	}
}
