package domain

import (
	"context"
	"errors"
	"fmt"

	"talentledger/eventstore"
)

func newGrant() aggregate { return &grant{} }

// grantCommand runs decide on a grant's stream after checking the ID, and
// refuses unknown grants.
func (s *Service) grantCommand(ctx context.Context, m *meta, grantID string, decide func(g *grant) ([]Event, error)) (Result, error) {
	if !validGenerated(prefixGrant, grantID) {
		return Result{}, Errorf(ENOTFOUND, "grant %q not found", truncate(grantID, 40))
	}
	res, err := s.repo.execute(ctx, streamGrant(grantID), newGrant, m, func(e *entry) ([]Event, error) {
		g := e.agg.(*grant)
		if g.applied == nil {
			return nil, Errorf(ENOTFOUND, "grant %s not found", grantID)
		}
		evs, err := decide(g)
		if err == nil {
			// Notes about the person are sealed under their talent's key.
			err = s.seal(g.applied.TalentID, evs...)
		}
		return evs, err
	})
	return result(grantID, res), err
}

// ApplyGrant is the command that records an application.
type ApplyGrant struct {
	Meta            CommandMeta
	TalentID        string
	ProgramID       string
	AmountRequested Money
}

// ApplyGrant records an application and returns the new grant's ID. Only a
// clerk may; the document reference is required.
//
// Errors: EINVALID, ENOTFOUND (talent, program), ENOTELIGIBLE.
func (s *Service) ApplyGrant(ctx context.Context, c ApplyGrant) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleClerk)
	if err != nil {
		return Result{}, err
	}
	if err := c.AmountRequested.CheckAmount("amount_requested"); err != nil {
		return Result{}, err
	}
	if err := checkText("document_ref", m.DocumentRef, true); err != nil {
		return Result{}, err
	}
	def, err := s.loadProgram(ctx, c.ProgramID)
	if err != nil {
		return Result{}, err
	}
	t, err := s.loadTalent(ctx, c.TalentID)
	if err != nil {
		return Result{}, err
	}
	id := newID(prefixGrant, m.CommandID, "grant")
	ev := &GrantApplied{GrantID: id, TalentID: c.TalentID, ProgramID: c.ProgramID, AmountRequested: c.AmountRequested, AppliedOn: m.date}
	res, err := s.repo.execute(ctx, streamGrant(id), newGrant, m, func(e *entry) ([]Event, error) {
		if e.agg.(*grant).applied != nil {
			return nil, Errorf(ECONFLICT, "grant %s already exists", id)
		}
		// Checked here, where a retry of an application already recorded
		// never gets to, so that the retry still answers with its grant.
		if err := eligible(def, &t); err != nil {
			return nil, err
		}
		return []Event{ev}, nil
	})
	return result(id, res), err
}

func eligible(def *ProgramDefined, t *talent) error {
	if err := t.refuseErased(); err != nil {
		return err
	}
	if t.departure != "" {
		return Errorf(ENOTELIGIBLE, "talent %s departed on %s", t.reg.TalentID, t.departure)
	}
	if _, ok := def.Caps[t.reg.Tier]; !ok {
		return Errorf(ENOTELIGIBLE, "program %s has no cap for tier %s", def.ProgramID, t.reg.Tier)
	}
	if len(def.PermitCategories) > 0 && !contains(def.PermitCategories, t.reg.PermitCategory) {
		return Errorf(ENOTELIGIBLE, "program %s is for permit categories %v", def.ProgramID, def.PermitCategories)
	}
	return nil
}

// ReviewGrant is the talent office's review.
type ReviewGrant struct {
	Meta     CommandMeta
	GrantID  string
	Decision string // "approve" or "reject"
	Note     string
}

// ReviewGrant records a review. Only a reviewer may, and not the clerk who
// entered the application. A rejecting review rejects the grant.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT (not awaiting review),
// ESEGREGATION.
func (s *Service) ReviewGrant(ctx context.Context, c ReviewGrant) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleReviewer)
	if err != nil {
		return Result{}, err
	}
	if c.Decision != "approve" && c.Decision != "reject" {
		return Result{}, Errorf(EINVALID, "decision must be \"approve\" or \"reject\"")
	}
	if err := checkText("note", c.Note, false); err != nil {
		return Result{}, err
	}
	return s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		if g.state != GrantStateApplied {
			return nil, Errorf(ECONFLICT, "grant %s is %s, not awaiting review", c.GrantID, g.state)
		}
		if g.appliedBy == m.Actor.Principal {
			return nil, Errorf(ESEGREGATION, "the clerk who entered an application may not review it")
		}
		evs := []Event{&GrantReviewed{GrantID: c.GrantID, Decision: c.Decision, Note: c.Note}}
		if c.Decision == "reject" {
			evs = append(evs, &GrantRejected{GrantID: c.GrantID, Reason: "rejected at review: " + c.Note})
		}
		return evs, nil
	})
}

// NoticeCommand opens or closes a grant's public notice.
type NoticeCommand struct {
	Meta    CommandMeta
	GrantID string
}

// OpenNotice starts the public notice. Only a reviewer may, after a
// favourable review.
//
// Errors: ENOTFOUND, ECONFLICT.
func (s *Service) OpenNotice(ctx context.Context, c NoticeCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleReviewer)
	if err != nil {
		return Result{}, err
	}
	return s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		if g.state != GrantStateReviewed {
			return nil, Errorf(ECONFLICT, "grant %s is %s; a notice opens after a favourable review", c.GrantID, g.state)
		}
		// The notice runs by the server's clock: it is posted today,
		// whatever business date the command carries.
		return []Event{&PublicNoticeOpened{GrantID: c.GrantID, OpenedOn: m.today}}, nil
	})
}

// CloseNotice ends the public notice. Only a reviewer may, once the notice
// has run the program's notice days with no objection open.
//
// Errors: ENOTFOUND, ECONFLICT, ENOTICEPENDING.
func (s *Service) CloseNotice(ctx context.Context, c NoticeCommand) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleReviewer)
	if err != nil {
		return Result{}, err
	}
	var days int
	if err := s.grantProgram(ctx, c.GrantID, func(def *ProgramDefined) { days = def.NoticeDays }); err != nil {
		return Result{}, err
	}
	return s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		if g.state != GrantStateInNotice {
			return nil, Errorf(ECONFLICT, "grant %s is %s, not in public notice", c.GrantID, g.state)
		}
		if err := g.noticeRipe(days, m.today); err != nil {
			return nil, err
		}
		return []Event{&PublicNoticeClosed{GrantID: c.GrantID, ClosedOn: m.today}}, nil
	})
}

// noticeRipe reports ENOTICEPENDING while an objection is open, or the
// notice has not yet run days working days (on the official calendar)
// before today, the server's date.
func (g *grant) noticeRipe(days int, today string) error {
	if n := len(g.objections); n > 0 {
		return Errorf(ENOTICEPENDING, "%d objection(s) to grant %s are unresolved", n, g.applied.GrantID)
	}
	if ran := WorkingDaysBetween(g.noticeOpen, today); ran < days {
		return Errorf(ENOTICEPENDING, "the public notice opened %s has run %d of %d working days; it may close from %s",
			g.noticeOpen, ran, days, NoticeClosesOn(g.noticeOpen, days))
	}
	return nil
}

// grantProgram runs f on the program of a grant.
func (s *Service) grantProgram(ctx context.Context, grantID string, f func(def *ProgramDefined)) error {
	programID := ""
	if !validGenerated(prefixGrant, grantID) {
		return Errorf(ENOTFOUND, "grant %q not found", truncate(grantID, 40))
	}
	err := s.repo.view(ctx, streamGrant(grantID), newGrant, func(e *entry) error {
		if g := e.agg.(*grant); g.applied != nil {
			programID = g.applied.ProgramID
		}
		return nil
	})
	if err != nil {
		return err
	}
	if programID == "" {
		return Errorf(ENOTFOUND, "grant %s not found", grantID)
	}
	def, err := s.loadProgram(ctx, programID)
	if err != nil {
		return err
	}
	f(def)
	return nil
}

// RaiseObjection records an objection made during the public notice.
type RaiseObjection struct {
	Meta    CommandMeta
	GrantID string
	Summary string
}

// RaiseObjection records an objection and returns its ID. A reviewer or a
// clerk may, while the notice is open.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) RaiseObjection(ctx context.Context, c RaiseObjection) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleReviewer, RoleClerk)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("summary", c.Summary, true); err != nil {
		return Result{}, err
	}
	oid := newID(prefixObjection, m.CommandID, "objection")
	res, err := s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		if g.state != GrantStateInNotice {
			return nil, Errorf(ECONFLICT, "grant %s is %s, not in public notice", c.GrantID, g.state)
		}
		return []Event{&ObjectionRaised{GrantID: c.GrantID, ObjectionID: oid, Summary: c.Summary}}, nil
	})
	res.ID = oid
	return res, err
}

// ResolveObjection settles an objection.
type ResolveObjection struct {
	Meta        CommandMeta
	GrantID     string
	ObjectionID string
	Upheld      bool
	Resolution  string
}

// ResolveObjection settles an open objection. Only a reviewer may. An upheld
// objection rejects the grant.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) ResolveObjection(ctx context.Context, c ResolveObjection) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleReviewer)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("resolution", c.Resolution, true); err != nil {
		return Result{}, err
	}
	return s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		if !g.objections[c.ObjectionID] {
			return nil, Errorf(ENOTFOUND, "no open objection %q on grant %s", truncate(c.ObjectionID, 40), c.GrantID)
		}
		evs := []Event{&ObjectionResolved{GrantID: c.GrantID, ObjectionID: c.ObjectionID, Upheld: c.Upheld, Resolution: c.Resolution}}
		if c.Upheld {
			evs = append(evs, &GrantRejected{GrantID: c.GrantID, Reason: "objection upheld: " + c.Resolution})
		}
		return evs, nil
	})
}

// RejectGrant is the approver's refusal.
type RejectGrant struct {
	Meta    CommandMeta
	GrantID string
	Reason  string
}

// RejectGrant rejects a grant not yet approved. Only an approver may.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (s *Service) RejectGrant(ctx context.Context, c RejectGrant) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("reason", c.Reason, true); err != nil {
		return Result{}, err
	}
	return s.grantCommand(ctx, m, c.GrantID, func(g *grant) ([]Event, error) {
		switch g.state {
		case GrantStateApplied, GrantStateReviewed, GrantStateInNotice, GrantStateNoticeClosed:
		default:
			return nil, Errorf(ECONFLICT, "grant %s is %s and can no longer be rejected", c.GrantID, g.state)
		}
		return []Event{&GrantRejected{GrantID: c.GrantID, Reason: c.Reason}}, nil
	})
}

// ApproveGrant is the finance checker's approval.
type ApproveGrant struct {
	Meta    CommandMeta
	GrantID string
	// Award defaults to the amount requested.
	Award *Money
}

// ApproveGrant approves a grant and reserves its award. Only an approver
// may, and not the clerk who entered the application nor its reviewer.
//
// Approval touches three streams and runs in three steps, each under
// optimistic concurrency, so that it holds however approvals are spread
// over processes:
//
//  1. EntitlementReserved on the talent's stream, refused when the talent
//     has had what the program allows (once, months, a year's amount, the
//     tier cap over all grants, months exclusive with other programs);
//  2. BudgetReserved on the budget of the fiscal year of the server's
//     date, for the installments charged to that year, refused when its
//     available amount is short (the entitlement is then given back);
//     then ForwardCommitted on the budget of each later year an
//     installment falls due in, covered when that budget can take it and
//     recorded uncovered (never refused) when it cannot;
//  3. GrantApproved on the grant's stream.
//
// The first step carries the whole approval and belongs to the grant: a
// retried approval, with or without a key and whatever its date, finds it
// and completes that approval instead of reserving again. If the process
// stops between the steps, Reconcile completes the approval as decided or,
// if the grant can no longer be approved, releases what was reserved.
//
// Errors: EINVALID, ENOTFOUND, ECONFLICT, ESEGREGATION, ENOTICEPENDING,
// ECAPEXCEEDED, EENTITLEMENT, ESCHEDULE, EINSUFFICIENTFUNDS, ENOTELIGIBLE,
// and the business-date errors.
func (s *Service) ApproveGrant(ctx context.Context, c ApproveGrant) (Result, error) {
	m, err := s.newMeta(c.Meta, RoleApprover)
	if err != nil {
		return Result{}, err
	}
	if !validGenerated(prefixGrant, c.GrantID) {
		return Result{}, Errorf(ENOTFOUND, "grant %q not found", truncate(c.GrantID, 40))
	}
	if c.Award != nil {
		if err := c.Award.CheckAmount("award"); err != nil {
			return Result{}, err
		}
	}
	gstream := streamGrant(c.GrantID)
	// The no-stacking deduction reads the talent's other grants under their
	// own locks. It is worked out before this grant's lock is taken, so
	// that two approvals for one talent never wait on each other.
	var applied *GrantApplied
	if err := s.repo.view(ctx, gstream, newGrant, func(e *entry) error {
		applied = e.agg.(*grant).applied
		return nil
	}); err != nil {
		return Result{}, err
	}
	if applied == nil {
		return Result{}, Errorf(ENOTFOUND, "grant %s not found", c.GrantID)
	}
	def, err := s.loadProgram(ctx, applied.ProgramID)
	if err != nil {
		return Result{}, err
	}
	deduction, from, err := s.stackingDeduction(ctx, def, applied)
	if err != nil {
		return Result{}, err
	}

	defer s.repo.lock(gstream)()
	ge, err := s.repo.load(ctx, gstream, newGrant)
	if err != nil {
		return Result{}, err
	}
	if pos, ok, err := ge.replayedBy(m); err != nil {
		return Result{}, err
	} else if ok {
		// A retry: its forward commitments may not all have been
		// recorded.
		if a := ge.agg.(*grant).approval; a != nil && a.CommandID == m.CommandID && ge.agg.(*grant).termination == nil {
			fpos, err := s.commitForwards(ctx, m.secondary(), *a)
			if err != nil {
				return Result{}, err
			}
			if pos.Before(fpos) {
				pos = fpos
			}
		}
		return Result{ID: c.GrantID, Position: pos}, nil
	}
	g := ge.agg.(*grant)
	if g.approval != nil {
		return Result{}, Errorf(ECONFLICT, "grant %s is already approved", c.GrantID)
	}
	if err := m.checkDate(ge); err != nil {
		return Result{}, err
	}
	if err := g.approvable(def, m); err != nil {
		return Result{}, err
	}
	t, err := s.loadTalent(ctx, g.applied.TalentID)
	if err != nil {
		return Result{}, err
	}
	if err := eligible(def, &t); err != nil {
		return Result{}, err
	}
	award := g.applied.AmountRequested
	if c.Award != nil {
		award = *c.Award
	}
	if cap := def.Caps[t.reg.Tier]; award.Cmp(cap) > 0 {
		return Result{}, Errorf(ECAPEXCEEDED, "award %s is above the cap of %s for tier %s", award, cap, t.reg.Tier)
	}
	amount := award.Sub(deduction)
	if amount.Sign() <= 0 {
		return Result{}, Errorf(ECONFLICT, "nothing is left to award after deducting %s already received", deduction)
	}
	installments, err := def.Schedule.installments(amount, m.date)
	if err != nil {
		return Result{}, err
	}
	// The fiscal year is the calendar year of the server's date (of the
	// historical date, for an import), never a date the client chose.
	fy := mustDate(m.today).Year()
	approval := GrantApproved{
		GrantID: c.GrantID, TalentID: g.applied.TalentID, ProgramID: def.ProgramID,
		Award: award, Deduction: deduction, DeductedFrom: from, Amount: amount, FiscalYear: fy,
		Installments: installments, ServiceMonths: def.ServiceMonths,
		ServiceStart: m.date, ApprovedOn: m.date, CommandID: m.CommandID,
	}
	// Each installment is charged to the year it falls due in.
	approval.Years = yearShares(installments, fy)
	// Refusals the budget would give are found before anything is
	// reserved, so that a refused approval appends nothing; the budget's
	// own step below still decides under concurrency.
	if err := s.budgetAllows(ctx, m.secondary(), approval); err != nil {
		return Result{}, err
	}
	if s.repo.multi() != nil {
		res, err := s.approveAtomic(ctx, ge, m, def, approval)
		if !errors.Is(err, errStepwise) {
			return Result{ID: c.GrantID, Position: lastPosition(res)}, err
		}
	}
	approval, am, err := s.reserveEntitlement(ctx, m, def, approval)
	if err != nil {
		return Result{}, err
	}
	if err := s.reserve(ctx, am.secondary(), approval); err != nil {
		if isRefusal(err) {
			if rerr := s.undoApproval(ctx, approval, "approval refused: "+ErrorMessage(err)); rerr != nil {
				return Result{}, errors.Join(err, rerr)
			}
		}
		return Result{}, err
	}
	// The forward commitments go to other streams than the grant's, and
	// are never refused: they are appended side by side with the
	// approval, so that an approval with them waits for no more durable
	// appends in a row than one without.
	type forwards struct {
		pos eventstore.Position
		err error
	}
	fwd := make(chan forwards, 1)
	go func() {
		pos, err := s.commitForwards(ctx, am.secondary(), approval)
		fwd <- forwards{pos, err}
	}()
	res, err := s.completeApproval(ctx, ge, am, approval, def)
	f := <-fwd
	ferr := f.err
	if res.Position.Before(f.pos) {
		// The answer covers every event the approval wrote, so that a
		// client reading its own writes sees the commitments too.
		res.Position = f.pos
	}
	if g := ge.agg.(*grant); err != nil && (g.approval == nil || g.approval.CommandID != approval.CommandID) && (isRefusal(err) || ErrorCode(err) == ECONFLICT) {
		// The approval did not complete and was undone; what the forward
		// commitments took while it was undone is given back too.
		if rerr := s.undoApproval(ctx, approval, "approval not completed: "+ErrorMessage(err)); rerr != nil {
			return Result{}, errors.Join(err, rerr)
		}
		return Result{}, err
	}
	if err == nil {
		err = ferr
	}
	if err == nil && am != m {
		// Another command had decided this grant's approval; this one
		// only saw it through. The approval is that command's, not this
		// one's.
		return Result{}, Errorf(ECONFLICT, "grant %s is approved by the approval %s recorded on %s", c.GrantID, am.Actor.Principal, am.date)
	}
	return result(c.GrantID, res), err
}

// approveAtomic records a fresh approval in one append: the entitlement
// on the talent's stream, the current year's reservation, the forward
// commitments, then GrantApproved. A state left by an earlier attempt of
// this approval, or by another approval of the grant, is left to the
// stepwise path (errStepwise), which knows how to continue it.
func (s *Service) approveAtomic(ctx context.Context, ge *entry, m *meta, def *ProgramDefined, a GrantApproved) ([]eventstore.AppendResult, error) {
	sm := m.secondary()
	steps := []step{{stream: streamTalent(a.TalentID), newAgg: newTalent, m: sm, decide: func(e *entry) ([]Event, error) {
		t := e.agg.(*talent)
		if t.reg == nil {
			return nil, Errorf(ENOTFOUND, "talent %s not found", a.TalentID)
		}
		if u := t.ents[a.GrantID]; u != nil && !u.void {
			return nil, errStepwise
		}
		if err := t.entitled(def, &a); err != nil {
			return nil, err
		}
		return []Event{&EntitlementReserved{TalentID: a.TalentID, ProgramID: a.ProgramID, Kind: def.Kind, GrantID: a.GrantID, Approval: a}}, nil
	}}}
	reserve := reserveDecision(a)
	steps = append(steps, step{stream: streamBudget(a.ProgramID, a.FiscalYear), newAgg: newBudget, m: sm, decide: func(e *entry) ([]Event, error) {
		if r := e.agg.(*budget).reservations[a.GrantID]; r != nil && r.live() {
			return nil, errStepwise
		}
		return reserve(e)
	}})
	for _, sh := range a.forwardShares() {
		steps = append(steps, step{stream: streamBudget(a.ProgramID, sh.FiscalYear), newAgg: newBudget, m: sm, decide: forwardDecision(a, sh)})
	}
	steps = append(steps, step{stream: ge.stream, newAgg: newGrant, m: m, decide: approvalDecision(m, a, def), held: ge})
	return s.repo.executeAtomic(ctx, steps[1].stream, steps)
}

// budgetAllows refuses an approval the budget of its fiscal year cannot
// take now: no budget, too little available, or a business date before
// the budget's latest.
func (s *Service) budgetAllows(ctx context.Context, m *meta, a GrantApproved) error {
	return s.repo.precheck(ctx, streamBudget(a.ProgramID, a.FiscalYear), newBudget, func(e *entry) error {
		b := e.agg.(*budget)
		if !b.exists {
			return Errorf(EINSUFFICIENTFUNDS, "program %s has no budget for %d", a.ProgramID, a.FiscalYear)
		}
		if b.closed != nil {
			return Errorf(EYEARCLOSED, "the %d budget of %s is closed; nothing more is reserved in it", a.FiscalYear, a.ProgramID)
		}
		if r := b.reservations[a.GrantID]; r != nil && r.live() {
			return nil // an earlier attempt reserved; it is continued
		}
		if avail, need := b.available(), a.currentShare().Amount; avail.Cmp(need) < 0 {
			return Errorf(EINSUFFICIENTFUNDS, "budget %s %d has %s available, %s needed", a.ProgramID, a.FiscalYear, avail, need)
		}
		return m.checkDate(e)
	})
}

// isRefusal reports whether err is the domain refusing a step (as opposed
// to a fault, after which the step may yet have happened).
func isRefusal(err error) bool {
	var de *Error
	return errors.As(err, &de) && de.Code != EINTERNAL && de.Code != ECONFLICT
}

// undoApproval gives back what an approval that will not complete
// reserved: its budget reservation, then its entitlement. Event IDs derive
// from the approval's command, so it happens once.
func (s *Service) undoApproval(ctx context.Context, a GrantApproved, reason string) error {
	undo := a.CommandID + ":undo"
	for _, sh := range a.shares() {
		if err := s.releaseReservation(ctx, undo, a.ProgramID, sh.FiscalYear, a.GrantID, a.TalentID, reason); err != nil {
			return fmt.Errorf("release reservation of grant %s in %d: %w", a.GrantID, sh.FiscalYear, err)
		}
	}
	if _, err := s.releaseEntitlement(ctx, s.systemMeta(undo, reason), a.TalentID, a.GrantID, nil, reason); err != nil {
		return fmt.Errorf("release entitlement of grant %s: %w", a.GrantID, err)
	}
	return nil
}

// approvable checks the grant's state, the public notice and maker-checker.
func (g *grant) approvable(def *ProgramDefined, m *meta) error {
	switch {
	case g.state == GrantStateNoticeClosed:
	case g.state == GrantStateReviewed && def.NoticeDays == 0:
	case g.state == GrantStateInNotice || (g.state == GrantStateReviewed && def.NoticeDays > 0):
		return Errorf(ENOTICEPENDING, "grant %s needs its public notice run and closed before approval", g.applied.GrantID)
	default:
		return Errorf(ECONFLICT, "grant %s is %s and cannot be approved", g.applied.GrantID, g.state)
	}
	if len(g.objections) > 0 || g.upheld {
		return Errorf(ENOTICEPENDING, "grant %s has an unresolved or upheld objection", g.applied.GrantID)
	}
	if p := m.Actor.Principal; p == g.appliedBy || p == g.reviewedBy {
		return Errorf(ESEGREGATION, "the approver may not be the clerk who entered or the reviewer who reviewed the application")
	}
	return nil
}

// reserve appends BudgetReserved to the budget of the approval's fiscal
// year, refusing when its available amount is short.
func (s *Service) reserve(ctx context.Context, m *meta, a GrantApproved) error {
	_, err := s.repo.execute(ctx, streamBudget(a.ProgramID, a.FiscalYear), newBudget, m, reserveDecision(a))
	return err
}

// reserveDecision decides the reservation of an approval's current-year
// share.
func reserveDecision(a GrantApproved) decideFunc {
	return func(e *entry) ([]Event, error) {
		b := e.agg.(*budget)
		if !b.exists {
			return nil, Errorf(EINSUFFICIENTFUNDS, "program %s has no budget for %d", a.ProgramID, a.FiscalYear)
		}
		if b.closed != nil {
			return nil, Errorf(EYEARCLOSED, "the %d budget of %s is closed; nothing more is reserved in it", a.FiscalYear, a.ProgramID)
		}
		if r := b.reservations[a.GrantID]; r != nil && r.live() {
			if r.commandID == a.CommandID {
				return nil, nil // this approval reserved already
			}
			return nil, Errorf(ECONFLICT, "grant %s already has a reservation in this budget", a.GrantID)
		}
		need := a.currentShare().Amount
		if avail := b.available(); avail.Cmp(need) < 0 {
			return nil, Errorf(EINSUFFICIENTFUNDS, "budget %s %d has %s available, %s needed", a.ProgramID, a.FiscalYear, avail, need)
		}
		return []Event{&BudgetReserved{ProgramID: a.ProgramID, FiscalYear: a.FiscalYear, GrantID: a.GrantID,
			TalentID: a.TalentID, Amount: need, CommandID: a.CommandID, Approval: a}}, nil
	}
}

// approvalDecision decides recording approval a on the grant's stream.
func approvalDecision(m *meta, a GrantApproved, def *ProgramDefined) decideFunc {
	return func(e *entry) ([]Event, error) {
		g := e.agg.(*grant)
		if g.approval != nil {
			if g.approval.CommandID == a.CommandID {
				return nil, nil
			}
			return nil, Errorf(ECONFLICT, "grant %s was approved by another command", a.GrantID)
		}
		if err := g.approvable(def, m); err != nil {
			return nil, err
		}
		return []Event{&a}, nil
	}
}

// completeApproval appends GrantApproved after the reservation. If the grant
// changed meanwhile so that it can no longer be approved, the reservation is
// released and the reason returned. The grant's lock must be held.
func (s *Service) completeApproval(ctx context.Context, ge *entry, m *meta, a GrantApproved, def *ProgramDefined) (eventstore.AppendResult, error) {
	var refusal error
	decide := approvalDecision(m, a, def)
	res, err := s.repo.executeLocked(ctx, ge, m, func(e *entry) ([]Event, error) {
		evs, err := decide(e)
		refusal = err
		return evs, err
	})
	if err != nil && refusal != nil {
		if rerr := s.undoApproval(ctx, a, "approval not completed: "+ErrorMessage(refusal)); rerr != nil {
			return res, errors.Join(err, rerr)
		}
	}
	return res, err
}
