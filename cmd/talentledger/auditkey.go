package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// loadAuditKey reads an Ed25519 private key from a PEM (PKCS #8) file.
func loadAuditKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit key %s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit key %s: not an Ed25519 key", path)
	}
	return key, nil
}

// writeAuditKey creates a new key file (mode 0600); it never overwrites.
func writeAuditKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// loadOrCreateAuditKey loads the key at path, creating it first if absent.
func loadOrCreateAuditKey(path string) (ed25519.PrivateKey, error) {
	key, err := loadAuditKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return writeAuditKey(path)
	}
	return key, err
}

func publicKeyString(key ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
}

// runKeygen writes a new audit signing key and prints its public key.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", stdout)
	out := fs.String("out", "audit-key.pem", "file to write the new Ed25519 private key to (never overwritten)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	key, err := writeAuditKey(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\npublic key (give it to auditors): %s\n", *out, publicKeyString(key))
	return nil
}
