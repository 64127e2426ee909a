package projections

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sort"

	"talentledger/domain"
	"talentledger/domain/auditproof"
	"talentledger/eventstore"
)

// The audit side of the read models: what an auditor reads straight from
// the log, because it must show the events themselves (trails with their
// hash checks, proofs, the chain check, the journal) or the books at a past
// moment. The API reaches the log only through these.

// TrailEntry is one event of an audit trail.
type TrailEntry struct {
	Position      string `json:"position"`
	Stream        string `json:"stream"`
	Version       int64  `json:"version"`
	EventID       string `json:"event_id"`
	Type          string `json:"type"`
	Principal     string `json:"principal"`
	Role          string `json:"role"`
	RecordedAt    string `json:"recorded_at"`
	EffectiveDate string `json:"effective_date"`
	Reason        string `json:"reason,omitempty"`
	DocumentRef   string `json:"document_ref,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// Source is "import" for history entered by an offline import.
	Source string `json:"source,omitempty"`
	// CompletedBy names who finished a step Principal decided:
	// "reconcile", or the principal whose retry completed it.
	CompletedBy string           `json:"completed_by,omitempty"`
	Data        json.RawMessage  `json:"data"`
	Postings    []domain.Posting `json:"postings"`
	PrevHash    string           `json:"prev_hash"`
	Hash        string           `json:"hash"`
	// HashValid is whether the stored hash matches the event's content and
	// its predecessor in the stream.
	HashValid bool `json:"hash_valid"`
	// LeafIndex and Proof show the event is in the Merkle tree of the
	// answer's signed tree head.
	LeafIndex *uint64               `json:"leaf_index,omitempty"`
	Proof     []auditproof.HexBytes `json:"proof,omitempty"`

	pos eventstore.Position
}

func trailEntry(ev *eventstore.Event, payload domain.Event, valid bool) TrailEntry {
	ps := domain.Postings(payload)
	if ps == nil {
		ps = []domain.Posting{}
	}
	recorded := ""
	if !ev.Metadata.RecordedAt.IsZero() {
		recorded = ev.Metadata.RecordedAt.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	return TrailEntry{
		pos: ev.Position, Position: ev.Position.String(), Stream: ev.Stream, Version: int64(ev.Version), EventID: ev.ID.String(), Type: ev.Type,
		Principal: ev.Metadata.Principal, Role: ev.Metadata.Role, RecordedAt: recorded,
		EffectiveDate: EffectiveDate(ev), Reason: ev.Metadata.Reason, DocumentRef: ev.Metadata.DocumentRef,
		CorrelationID: ev.Metadata.CorrelationID, Source: ev.Metadata.Source, CompletedBy: ev.Metadata.CompletedBy, Data: ev.Data, Postings: ps,
		PrevHash: ev.Metadata.PrevHash, Hash: ev.Metadata.Hash, HashValid: valid,
	}
}

// streamTrail reads a stream's events, each with its hash checked against
// its predecessor's, keeping those keep accepts (every one when keep is
// nil). A stream that does not exist has no events.
func (p *Projector) streamTrail(ctx context.Context, stream string, keep func(domain.Event) bool) ([]TrailEntry, error) {
	it := p.store.ReadStream(ctx, stream, 0)
	defer it.Close()
	var out []TrailEntry
	prev := ""
	for it.Next() {
		ev := it.Event()
		valid := domain.VerifyEventHash(prev, &ev)
		prev = ev.Metadata.Hash
		payload, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			return nil, err
		}
		if keep != nil && !keep(payload) {
			continue
		}
		out = append(out, trailEntry(&ev, payload, valid))
	}
	if err := it.Err(); err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, err
	}
	return out, nil
}

// GrantTrail collects the grant's own stream, the events of its talent's
// stream that changed it (the registration, the entitlement it used and
// gave back, the departure that ended it), and the events of its budget
// streams (every fiscal year its installments are charged to) that concern
// it, in global order.
func (p *Projector) GrantTrail(ctx context.Context, g GrantView) ([]TrailEntry, error) {
	out, err := p.streamTrail(ctx, domain.StreamGrant(g.ID), nil)
	if err != nil {
		return nil, err
	}
	talent, err := p.streamTrail(ctx, domain.StreamTalent(g.TalentID), func(e domain.Event) bool { return talentChanged(e, g.ID) })
	if err != nil {
		return nil, err
	}
	out = append(out, talent...)
	for _, fy := range g.BudgetYears() {
		more, err := p.streamTrail(ctx, domain.StreamBudget(g.ProgramID, fy), func(e domain.Event) bool { return concernsGrant(e, g.ID) })
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].pos.Before(out[j].pos) })
	return out, nil
}

// talentChanged reports whether an event of a talent's stream changed the
// grant: the talent's registration and departure, and the entitlement the
// grant used and gave back.
func talentChanged(p domain.Event, grant string) bool {
	switch e := p.(type) {
	case *domain.TalentRegistered, *domain.TalentDeparted:
		return true
	case *domain.EntitlementReserved:
		return e.GrantID == grant
	case *domain.EntitlementReleased:
		return e.GrantID == grant
	}
	return false
}

// concernsGrant reports whether an event of a budget stream concerns the
// grant.
func concernsGrant(p domain.Event, grant string) bool {
	switch e := p.(type) {
	case *domain.BudgetReserved:
		return e.GrantID == grant
	case *domain.BudgetReservationReleased:
		return e.GrantID == grant
	case *domain.ForwardCommitted:
		return e.GrantID == grant
	case *domain.ForwardCommitmentCovered:
		return e.GrantID == grant
	case *domain.PaymentCharged:
		return e.GrantID == grant
	case *domain.PaymentChargeReversed:
		return e.GrantID == grant
	case *domain.BudgetCarriedOver:
		return e.GrantID == grant
	case *domain.YearEndClosed:
		for _, it := range append(slices.Clip(e.Carried), e.Lapsed...) {
			if it.GrantID == grant {
				return true
			}
		}
	}
	return false
}

// PrincipalTrail lists the events of a principal's stream, each with its
// hash checked; none for a principal the log does not know.
func (p *Projector) PrincipalTrail(ctx context.Context, id string) ([]TrailEntry, error) {
	out, err := p.streamTrail(ctx, domain.StreamPrincipal(id), nil)
	if out == nil {
		out = []TrailEntry{}
	}
	return out, err
}

// TrailEnd returns the position of a trail's last event.
func TrailEnd(trail []TrailEntry) eventstore.Position {
	var last eventstore.Position
	for _, e := range trail {
		if last.Before(e.pos) {
			last = e.pos
		}
	}
	return last
}

// ProveTrail gives each entry its proof of inclusion in the audit tree of
// size events, which must hold them all.
func (p *Projector) ProveTrail(trail []TrailEntry, size uint64) error {
	for i := range trail {
		index, proof, err := p.audit.InclusionProof(trail[i].pos, size)
		if err != nil {
			return err
		}
		trail[i].LeafIndex, trail[i].Proof = &index, proof
	}
	return nil
}

// LeafEvent reads the event that is leaf index of the audit tree.
func (p *Projector) LeafEvent(ctx context.Context, index uint64) (eventstore.Event, error) {
	after := eventstore.Start
	if index > 0 {
		after, _ = p.audit.LeafPosition(index - 1)
	}
	it := p.store.ReadAll(ctx, after)
	defer it.Close()
	if it.Next() {
		return it.Event(), nil
	}
	if err := it.Err(); err != nil {
		return eventstore.Event{}, err
	}
	return eventstore.Event{}, domain.Errorf(domain.ENOTFOUND, "no event is leaf %d", index)
}

// VerifyLog checks every stream's hash chain (see domain.VerifyLog).
func (p *Projector) VerifyLog(ctx context.Context) (domain.VerifyReport, error) {
	return domain.VerifyLog(ctx, p.store)
}

// At returns read models that answer for pt: p itself when pt is zero,
// else models replayed from the log (see Replay).
func (p *Projector) At(ctx context.Context, pt PointInTime) (*Projector, error) {
	if pt.IsZero() {
		return p, nil
	}
	return Replay(ctx, p.store, pt.Keep)
}

// BalancesAt returns the trial balance of the books at pt: the live
// balances when pt is zero, else read from the as-of index (see
// AsOfIndex), or, for a business date the index cannot place, folded from
// the log (see BalancesAt).
func (p *Projector) BalancesAt(ctx context.Context, pt PointInTime) (TrialBalance, error) {
	if pt.IsZero() {
		return p.TrialBalance(), nil
	}
	if p.asof.Serves(pt) {
		return p.asof.TrialBalance(pt)
	}
	return BalancesAt(ctx, p.store, pt)
}

// TrialBalanceAt returns the trial balance at control level (see
// Ledger.ControlTrialBalance) of the books at pt: the live balances when
// pt is zero, else read from the as-of index, or, for a business date the
// index cannot place, rolled up from the books folded from the log.
func (p *Projector) TrialBalanceAt(ctx context.Context, pt PointInTime) (TrialBalance, error) {
	if pt.IsZero() {
		return p.balances.ControlTrialBalance(), nil
	}
	if p.asof.Serves(pt) {
		return p.asof.ControlTrialBalance(pt)
	}
	tb, err := BalancesAt(ctx, p.store, pt)
	if err != nil {
		return TrialBalance{}, err
	}
	return RollUp(tb, false), nil
}

// SubsidiaryAt returns a page of the subsidiary ledgers at pt, from the
// live balances, the as-of index or the books folded from the log, as
// TrialBalanceAt.
func (p *Projector) SubsidiaryAt(ctx context.Context, pt PointInTime, f SubsidiaryFilter) (SubsidiaryLedger, error) {
	if pt.IsZero() {
		return p.balances.Subsidiary(f), nil
	}
	if p.asof.Serves(pt) {
		return p.asof.Subsidiary(pt, f)
	}
	tb, err := BalancesAt(ctx, p.store, pt)
	if err != nil {
		return SubsidiaryLedger{}, err
	}
	out := SubsidiaryLedger{AsOf: tb.AsOf, RecordedAsOf: tb.RecordedAsOf, Position: tb.Position, Accounts: []AccountBalance{}}
	for _, a := range tb.Accounts {
		cn, ok := domain.ControlAccount(a.Account)
		if !ok || !f.keeps(a.Account, cn) {
			continue
		}
		if len(out.Accounts) == f.Limit {
			out.Next = out.Accounts[len(out.Accounts)-1].Account
			break
		}
		out.Accounts = append(out.Accounts, a)
	}
	return out, nil
}

// RollUp turns a trial balance in detail into one at control level: each
// subsidiary account's figures added to its control account's line. With
// live set, as the live ledger answers: a control line counts its
// accounts and is a violation when one of them is below zero; without,
// as a point in time is answered: no count, and a violation when the
// control line's own total is below zero.
func RollUp(tb TrialBalance, live bool) TrialBalance {
	lines := make([]AccountBalance, 0, len(tb.Accounts))
	controls := map[string]int{}
	var negative []string
	for _, a := range tb.Accounts {
		cn, ok := domain.ControlAccount(a.Account)
		if !ok {
			lines = append(lines, a)
			continue
		}
		i, seen := controls[cn]
		if !seen {
			i = len(lines)
			controls[cn] = i
			lines = append(lines, AccountBalance{Account: cn, Debits: domain.Zero, Credits: domain.Zero, Balance: domain.Zero,
				NonNegative: domain.NonNegativeAccount(cn)})
		}
		c := &lines[i]
		c.Debits, c.Credits, c.Balance = c.Debits.Add(a.Debits), c.Credits.Add(a.Credits), c.Balance.Add(a.Balance)
		if live {
			c.SubsidiaryAccounts++
			if a.NonNegative && a.Balance.Sign() < 0 && !slices.Contains(negative, cn) {
				negative = append(negative, cn)
			}
		}
	}
	out := sumLines(lines, negative)
	out.AsOf, out.RecordedAsOf, out.Position = tb.AsOf, tb.RecordedAsOf, tb.Position
	return out
}

// BudgetBook answers the questions about programs and budgets: the live
// models, a replay, or the as-of index's BudgetBooks.
type BudgetBook interface {
	Programs() []ProgramView
	Program(id string) (ProgramView, bool)
	Budget(program string, fy int) (BudgetView, bool)
	Position() eventstore.Position
}

// WriteJournal writes the journal of the log's events in rng to w (see
// WriteJournalCSV), headed by header (JournalHeader or JournalHeaderZH).
func (p *Projector) WriteJournal(ctx context.Context, w io.Writer, rng JournalRange, flush func() error, header []string) (JournalStats, error) {
	return WriteJournalCSVIn(ctx, w, p.store, rng, flush, header)
}
