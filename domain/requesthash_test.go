package domain

import (
	"context"
	"testing"

	"talentledger/eventstore"
)

// TestRequestHashRefusesAnotherRequest: a command run again under its
// command ID with the same request hash is answered from its events,
// appending nothing; with another request hash it is refused, in the
// process that ran it first and in another one.
func TestRequestHashRefusesAnotherRequest(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	for name, opts := range map[string][]Option{"one_of_several": nil, "sole_writer": {WithSoleWriter()}} {
		t.Run(name, func(t *testing.T) {
			s := newServiceOver(st, opts...)
			id := "cmd-" + name
			register := func(s *Service, hash, who string) (Result, *Outcome, error) {
				out := &Outcome{}
				res, err := s.RegisterTalent(ctx, RegisterTalent{Meta: CommandMeta{Actor: clerk, CommandID: id, RequestHash: hash, Outcome: out},
					Name: who, Tier: "B", Employer: "Pinghu Optics"})
				return res, out, err
			}
			first, out, err := register(s, "hash-a", "Ana")
			if err != nil || out.Replayed() {
				t.Fatalf("first run: %v (replayed %v)", err, out.Replayed())
			}
			before := countEvents(t, st)
			again, out, err := register(s, "hash-a", "Ana")
			if err != nil || again != first || !out.Replayed() {
				t.Errorf("retry: %+v, %v (replayed %v); want %+v replayed", again, err, out.Replayed(), first)
			}
			for _, s := range []*Service{s, newServiceOver(st)} {
				if _, _, err := register(s, "hash-b", "Bea"); ErrorCode(err) != EIDEMPOTENCYMISMATCH {
					t.Errorf("another request under the command ID: %v, want %s", err, EIDEMPOTENCYMISMATCH)
				}
			}
			if after := countEvents(t, st); after != before {
				t.Errorf("the retries appended %d events", after-before)
			}
		})
	}
}

// raceStore runs a hook before its first Append: another process's
// append landing between this one's decision and its write.
type raceStore struct {
	eventstore.Store
	before func()
}

func (r *raceStore) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if f := r.before; f != nil {
		r.before = nil
		f()
	}
	return r.Store.Append(ctx, stream, expected, events...)
}

// TestRequestHashAcrossProcessesRacing: two processes run one command ID
// for two requests at once; the store takes the first one's events and
// acknowledges the second's, which carry the same IDs, as a retry. The
// second is refused, not answered as if its request were carried out.
func TestRequestHashAcrossProcessesRacing(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	first := newServiceOver(st)
	race := &raceStore{Store: st}
	second := newServiceOver(race)
	meta := func(hash string) CommandMeta {
		return CommandMeta{Actor: clerk, CommandID: "cmd-raced", RequestHash: hash}
	}
	race.before = func() {
		if _, err := first.RegisterTalent(ctx, RegisterTalent{Meta: meta("hash-a"), Name: "Ana", Tier: "B", Employer: "Pinghu Optics"}); err != nil {
			t.Errorf("first process: %v", err)
		}
	}
	_, err := second.RegisterTalent(ctx, RegisterTalent{Meta: meta("hash-b"), Name: "Bea", Tier: "B", Employer: "Pinghu Optics"})
	if ErrorCode(err) != EIDEMPOTENCYMISMATCH {
		t.Errorf("second process: %v, want %s", err, EIDEMPOTENCYMISMATCH)
	}
	if n := countEvents(t, st, TypeTalentRegistered); n != 1 {
		t.Errorf("%d registrations recorded, want 1", n)
	}
}
