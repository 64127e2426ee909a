package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
)

// TestAuditProofsOffline plays an auditor who trusts only the public key:
// the signed head verifies, an event's inclusion proof verifies against it
// when the leaf hash is recomputed from the event itself, and the proofs
// in a grant's trail verify too.
func TestAuditProofsOffline(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	base, token := keyedServer(t, t.TempDir(), true, key)

	var served struct {
		PublicKey ed25519.PublicKey `json:"public_key"`
	}
	getJSON(t, base, token, "/v1/audit/public-key", &served)
	if !bytes.Equal(served.PublicKey, pub) {
		t.Fatal("the served public key is not the audit key's")
	}
	var head savedHead
	getJSON(t, base, token, "/v1/audit/tree-head", &head)
	if err := auditproof.VerifyTreeHead(pub, head.TreeHead); err != nil {
		t.Fatalf("tree head: %v", err)
	}
	if head.TreeSize < 100 {
		t.Fatalf("tree size %d: the demo log should be in the tree", head.TreeSize)
	}

	// Inclusion of the event at position 3, checked against the head.
	var inc struct {
		TreeHead  auditproof.TreeHead   `json:"tree_head"`
		LeafIndex uint64                `json:"leaf_index"`
		Proof     []auditproof.HexBytes `json:"proof"`
		Event     eventstore.Event      `json:"event"`
	}
	getJSON(t, base, token, fmt.Sprintf("/v1/audit/proofs/inclusion?position=3&tree_size=%d", head.TreeSize), &inc)
	if inc.Event.Position.String() != "3" {
		t.Fatalf("inclusion answered for position %s", inc.Event.Position)
	}
	if !domain.VerifyEventHash(inc.Event.Metadata.PrevHash, &inc.Event) {
		t.Fatal("the event's own hash does not verify")
	}
	if err := auditproof.VerifyInclusion(head.TreeHead, inc.LeafIndex, auditproof.LeafHash(&inc.Event), inc.Proof); err != nil {
		t.Fatalf("inclusion: %v", err)
	}
	// The same check from the command line, on the saved answer.
	raw := getRaw(t, base, token, fmt.Sprintf("/v1/audit/proofs/inclusion?position=3&tree_size=%d", head.TreeSize))
	proofPath := filepath.Join(t.TempDir(), "proof.json")
	os.WriteFile(proofPath, raw, 0o644)
	if code, out := runVerifyCmd(t, "--proof", proofPath, "--public-key", pub64(pub)); code != exitOK {
		t.Fatalf("verify --proof: exit %d: %s", code, out)
	}
	tamperedProof := bytes.Replace(raw, []byte(`"recorded_at"`), []byte(`"reason":"x","recorded_at"`), 1)
	os.WriteFile(proofPath, tamperedProof, 0o644)
	if code, out := runVerifyCmd(t, "--proof", proofPath, "--public-key", pub64(pub)); code != exitFailed {
		t.Fatalf("verify --proof of a changed event: exit %d: %s", code, out)
	}

	// A changed event no longer verifies with the same proof.
	changed := inc.Event
	changed.Metadata.Hash = strings.Repeat("0", 64)
	if err := auditproof.VerifyInclusion(head.TreeHead, inc.LeafIndex, auditproof.LeafHash(&changed), inc.Proof); err == nil {
		t.Fatal("a changed event verified")
	}

	// Every event of the clawback grant's trail carries a proof against the
	// trail's signed head.
	var terminated struct {
		Grants []struct {
			ID string `json:"id"`
		} `json:"grants"`
	}
	getJSON(t, base, token, "/v1/grants?state=terminated", &terminated)
	var trail struct {
		TreeHead auditproof.TreeHead `json:"tree_head"`
		Events   []struct {
			Stream    string                `json:"stream"`
			Version   int64                 `json:"version"`
			EventID   string                `json:"event_id"`
			Hash      string                `json:"hash"`
			LeafIndex *uint64               `json:"leaf_index"`
			Proof     []auditproof.HexBytes `json:"proof"`
		} `json:"events"`
	}
	getJSON(t, base, token, "/v1/grants/"+terminated.Grants[0].ID+"/trail", &trail)
	if err := auditproof.VerifyTreeHead(pub, trail.TreeHead); err != nil {
		t.Fatalf("trail head: %v", err)
	}
	if len(trail.Events) < 10 {
		t.Fatalf("trail has %d events", len(trail.Events))
	}
	for _, e := range trail.Events {
		id, err := eventstore.ParseEventID(e.EventID)
		if err != nil || e.LeafIndex == nil {
			t.Fatalf("trail event %s/%d: id %q, leaf index %v", e.Stream, e.Version, e.EventID, e.LeafIndex)
		}
		ev := eventstore.Event{Stream: e.Stream, Version: eventstore.Version(e.Version), ID: id, Metadata: eventstore.Metadata{Hash: e.Hash}}
		if err := auditproof.VerifyInclusion(trail.TreeHead, *e.LeafIndex, auditproof.LeafHash(&ev), e.Proof); err != nil {
			t.Fatalf("trail event %s/%d: %v", e.Stream, e.Version, err)
		}
	}
}

func getRaw(t *testing.T, base, token, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

func writeHead(t *testing.T, base, token, path string) savedHead {
	t.Helper()
	var h savedHead
	getJSON(t, base, token, "/v1/audit/tree-head", &h)
	b, _ := json.Marshal(h)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestVerifyURL: a head saved from a server stays consistent after more
// appends; a server whose history was rewritten, signing with the same
// key, fails the consistency check.
func TestVerifyURL(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	saved := filepath.Join(t.TempDir(), "head.json")
	t.Run("save, then append", func(t *testing.T) {
		base, token := keyedServer(t, dir, true, key)
		writeHead(t, base, token, saved)
		post(t, base, "/v1/talents", `{"name":"Later Arrival","tier":"C","employer":"Pinghu Precision Optics Co."}`)
	})

	// The honest server, restarted on the same directory with one more event.
	t.Run("honest", func(t *testing.T) {
		base, token := keyedServer(t, dir, false, key)
		code, out := runVerifyCmd(t, "--url", base, "--token", token, "--head", saved, "--public-key", pub64(pub))
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, out)
		}
	})

	// A server over a log whose history differs: the same demo data set
	// written after one extra event at the start.
	t.Run("rewritten", func(t *testing.T) {
		other := t.TempDir()
		store, err := pebble.Open(other)
		if err != nil {
			t.Fatal(err)
		}
		svc := domain.NewService(store)
		if _, err := svc.RegisterTalent(context.Background(), domain.RegisterTalent{
			Meta: domain.CommandMeta{Actor: domain.Actor{Principal: "clerk-x", Role: domain.RoleClerk}},
			Name: "Inserted Later", Tier: "D", Employer: "Pinghu Logistics Park"}); err != nil {
			t.Fatal(err)
		}
		if err := loadDemo(context.Background(), svc); err != nil {
			t.Fatal(err)
		}
		store.Close()
		base, token := keyedServer(t, other, false, key)
		code, out := runVerifyCmd(t, "--url", base, "--token", token, "--head", saved, "--public-key", pub64(pub))
		if code != exitFailed || !strings.Contains(out, "rewritten") {
			t.Fatalf("exit %d, want %d naming rewritten history: %s", code, exitFailed, out)
		}
	})
}

// post sends a command as a clerk principal the test servers know.
func post(t *testing.T, base, path, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+clerkToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
}
