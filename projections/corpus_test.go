package projections_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	"talentledger/projections"
)

// lifecycle is the order the corpus's events are folded in, so that each
// finds what it follows; types not listed come after, by name.
var lifecycle = []string{"ProgramDefined", "BudgetAppropriated", "TalentRegistered", "GrantApplied", "GrantReviewed",
	"PublicNoticeOpened", "ObjectionRaised", "ObjectionResolved", "PublicNoticeClosed", "EntitlementReserved",
	"BudgetReserved", "GrantApproved", "PaymentPrepared", "PaymentApproved", "PaymentReleased", "PaymentReversed",
	"PaymentFailed", "TalentDeparted", "GrantTerminated", "BudgetReservationReleased", "EntitlementReleased",
	"ClawbackAssessed", "RecoveryReceived", "RecoveryWaived", "GrantRejected", "FundEstablished", "CommitmentMade",
	"CapitalPaidIn", "InvestmentApproved", "InvestmentFunded", "ValuationUpdated", "DistributionReceived",
	"ExitCompleted", "WrittenOff", "FundAppropriated", "AccessRequested", "AccessApproved", "PrincipalCreated",
	"RoleGranted", "RoleRevoked", "EnrollmentRedeemed", "TokenRotated", "PrincipalRevoked", "PrincipalRestored",
	"AccessRejected", "IdempotencyRecorded"}

// The read models fold every entry of the golden corpus (every event type
// and schema version, as the embedded store holds it) without stopping.
func TestFoldCorpus(t *testing.T) {
	events := corpusEvents(t)
	p := projections.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range events {
		if err := p.Apply(&events[i]); err != nil {
			t.Fatalf("%s: %v", events[i].Type, err)
		}
	}
	entries := events
	if want := (eventstore.Position{Commit: uint64(len(entries)), Prepare: uint64(len(entries))}); p.Position() != want {
		t.Errorf("folded up to %s, want %s", p.Position(), want)
	}
	// The corpus is one event of each kind, not a sound ledger, but its
	// postings still balance.
	if tb := p.TrialBalance(); !tb.Total.IsZero() {
		t.Errorf("the trial balance totals %s", tb.Total)
	}
}

// corpusEvents returns the golden corpus's events in lifecycle order, at
// positions 1, 2, ….
func corpusEvents(t *testing.T) []eventstore.Event {
	t.Helper()
	dir := filepath.Join("..", "domain", "testdata", "corpus")
	all, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var entries []os.DirEntry
	for _, de := range all {
		if de.IsDir() {
			entries = append(entries, de)
		}
	}
	rank := func(name string) int {
		base, _, _ := strings.Cut(name, ".v")
		if i := slices.Index(lifecycle, base); i >= 0 {
			return i
		}
		return len(lifecycle)
	}
	slices.SortStableFunc(entries, func(a, b os.DirEntry) int {
		if d := rank(a.Name()) - rank(b.Name()); d != 0 {
			return d
		}
		return strings.Compare(a.Name(), b.Name())
	})
	events := make([]eventstore.Event, len(entries))
	for i, de := range entries {
		rec, err := os.ReadFile(filepath.Join(dir, de.Name(), "pebble.rec"))
		if err != nil {
			t.Fatal(err)
		}
		if events[i], err = pebble.DecodeRecord(rec, uint64(i+1)); err != nil {
			t.Fatalf("%s: %v", de.Name(), err)
		}
	}
	return events
}
