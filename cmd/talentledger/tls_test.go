package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ledgerhttp "talentledger/http"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// and returns their paths and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "talentledger test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS serves HTTPS with a certificate made here: a client that
// trusts it is answered, with HSTS; plain HTTP on the same port is not;
// CORS answers the configured origin only.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	clerk := ledgerhttp.NewToken()
	principals := writePrincipals(t, dir, map[string]string{"clerk": clerk})
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--no-encryption", "--data", filepath.Join(dir, "data"), "--principals", principals, "--addr", "127.0.0.1:0",
			"--tls-cert", certFile, "--tls-key", keyFile, "--cors-origins", "https://ledger.example", "--no-witness"}, io.Discard, &log)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited with %d; log:\n%s", code, log.String())
		}
	})
	addr := logAddr(t, &log, "serving")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(c *http.Client, method, url string, h map[string]string) (*http.Response, error) {
		req, _ := http.NewRequest(method, url, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}

	resp, err := do(client, "GET", "https://"+addr+"/v1/programs", map[string]string{"Authorization": "Bearer " + clerk})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET over HTTPS: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("no HSTS over HTTPS: %v", resp.Header)
	}
	if v := resp.TLS.Version; v < tls.VersionTLS12 {
		t.Errorf("TLS version %x", v)
	}

	if resp, err := do(&http.Client{Timeout: 10 * time.Second}, "GET", "http://"+addr+"/healthz", nil); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("plain HTTP was answered 200 on the HTTPS port")
	}
	if _, err := do(&http.Client{Timeout: 10 * time.Second}, "GET", "https://"+addr+"/healthz", nil); err == nil {
		t.Error("a client that does not trust the certificate was answered")
	}

	resp, err = do(client, "OPTIONS", "https://"+addr+"/v1/talents", map[string]string{"Origin": "https://ledger.example", "Access-Control-Request-Method": "POST"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://ledger.example" {
		t.Errorf("preflight from the configured origin: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = do(client, "OPTIONS", "https://"+addr+"/v1/talents", map[string]string{"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed: %v", resp.Header)
	}
}

func TestServeTLSFlags(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	principals := writePrincipals(t, dir, map[string]string{"clerk": ledgerhttp.NewToken()})
	for _, args := range [][]string{
		{"--tls-cert", certFile},
		{"--tls-key", keyFile},
		{"--tls-cert", keyFile, "--tls-key", certFile},
		{"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", keyFile},
		{"--max-in-flight", "0"},
	} {
		var stderr strings.Builder
		code := run(context.Background(), append([]string{"serve", "--no-encryption", "--data", filepath.Join(dir, "data"), "--principals", principals,
			"--addr", "127.0.0.1:0", "--no-witness"}, args...), io.Discard, &stderr)
		if code != exitCantRun {
			t.Errorf("serve %v: exit %d, want %d; %s", args, code, exitCantRun, stderr.String())
		}
	}
}
