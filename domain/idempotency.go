package domain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"talentledger/eventstore"
)

// IdempotencyCommandID turns a client's Idempotency-Key into the command ID
// its command runs under. The key is scoped to the principal, so two
// principals using the same key never collide.
func IdempotencyCommandID(principal, key string) string {
	h := sha256.Sum256([]byte("idempotency\x00" + principal + "\x00" + key))
	return hex.EncodeToString(h[:16])
}

func streamIdempotency(commandID string) string { return "idempotency-" + commandID }

// LookupIdempotency returns the answer recorded for a command ID, or nil if
// none is.
func (s *Service) LookupIdempotency(ctx context.Context, commandID string) (*IdempotencyRecorded, error) {
	if s.repo.soleWriter {
		// The cached state is the log's, and the RecordIdempotency that
		// usually follows finds it loaded.
		var rec *IdempotencyRecorded
		err := s.repo.view(ctx, streamIdempotency(commandID), func() aggregate { return &idempotency{} }, func(e *entry) error {
			rec = e.agg.(*idempotency).rec
			return nil
		})
		return rec, err
	}
	it := s.repo.store.ReadStream(ctx, streamIdempotency(commandID), 0)
	defer it.Close()
	if !it.Next() {
		if err := it.Err(); err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil, err
		}
		return nil, nil
	}
	ev := it.Event()
	p, err := s.repo.codec.Decode(ev.Type, ev.Data)
	if err != nil {
		return nil, err
	}
	rec, ok := p.(*IdempotencyRecorded)
	if !ok {
		return nil, fmt.Errorf("idempotency stream holds %s", ev.Type)
	}
	return rec, nil
}

// RecordIdempotency keeps the first answer to a command. If another answer
// was recorded first (a concurrent retry in another process), that one is
// returned and should be sent instead.
func (s *Service) RecordIdempotency(ctx context.Context, actor Actor, commandID string, rec IdempotencyRecorded) (*IdempotencyRecorded, error) {
	m := &meta{CommandMeta: CommandMeta{Actor: actor, CommandID: commandID}, recordedAt: s.now().UTC()}
	m.date = Today(m.recordedAt)
	_, err := s.repo.execute(ctx, streamIdempotency(commandID), func() aggregate { return &idempotency{} }, m, func(e *entry) ([]Event, error) {
		if first := e.agg.(*idempotency).rec; first != nil {
			return nil, nil
		}
		return []Event{&rec}, nil
	})
	if err != nil {
		return nil, err
	}
	var first *IdempotencyRecorded
	err = s.repo.view(ctx, streamIdempotency(commandID), func() aggregate { return &idempotency{} }, func(e *entry) error {
		first = e.agg.(*idempotency).rec
		return nil
	})
	return first, err
}

type idempotency struct{ rec *IdempotencyRecorded }

func (i *idempotency) apply(e Event) {
	if r, ok := e.(*IdempotencyRecorded); ok && i.rec == nil {
		i.rec = r
	}
}

// LockCommand serializes work on one command ID in this process, so that
// concurrent retries of one command wait for the first instead of racing
// it. It returns the function that releases the lock.
func (s *Service) LockCommand(commandID string) (unlock func()) {
	return s.repo.locks.lock("command:" + commandID)
}
