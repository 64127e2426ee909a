package http

import (
	"context"
	"errors"
	"net/http"
	"time"

	"talentledger/domain"
	"talentledger/projections"
)

// Point-in-time queries. The balances, budget and fund views accept
//
//	?as_of=YYYY-MM-DD          the books as they stand for the end of that
//	                           business date: events effective on or before it,
//	                           corrections recorded later but effective
//	                           earlier included;
//	?recorded_as_of=RFC3339    the books as they were recorded by that instant:
//	                           events recorded at or before it;
//
// alone or together (events must pass both). Without either, a view is
// answered from the live read models. With one, the trial balance and the
// programs and budgets are read from the as-of index
// (projections.AsOfIndex): sums by business date and by recording time,
// so that a question costs the same at any length of the log; like every
// read model it holds the log up to the feed's position, which
// ?min_position= waits for (a replay reads the log to its end). Funds,
// projects and sectors are folded from the funds' own streams
// (Projector.FundsAt). The other views (a year's forward commitments one
// by one, grants, talents, reports, exports) are answered from models
// replayed from the log for that query (projections.Replay), which reads
// the whole log: those point-in-time views are for audits, not
// dashboards. So are the trial
// balance and budgets by business date on a log holding a business date
// that is not YYYY-MM-DD, which the index cannot place.

// pointInTime reads ?as_of= and ?recorded_as_of=. Errors are EINVALID. A
// recorded_as_of later than the server's clock (beyond recordedSkew, the
// clocks of two replicas) is refused: its answer would change as events
// are recorded, while it names a fixed instant.
//
// An answer at a point in time is for the record: it must not depend on
// how far behind this replica's read models are. So before one is read,
// the models catch up with the log as it stands when the query arrives
// (bounded by the min_position wait; 504 timeout past it): two replicas
// asked the same past point in time give the same answer.
func (s *Server) pointInTime(r *http.Request) (projections.PointInTime, error) {
	q := r.URL.Query()
	pt, err := projections.ParsePointInTime(q.Get("as_of"), q.Get("recorded_as_of"))
	if err == nil && pt.RecordedAsOf.After(s.svc.Now().Add(recordedSkew)) {
		return pt, paramErrorf(EBADPARAM, "recorded_as_of", nil, "recorded_as_of %s is later than the server's clock: the books recorded by then are not written yet", pt.RecordedAsOfString())
	}
	if err == nil && !pt.IsZero() {
		err = s.catchUp(r.Context())
	}
	return pt, err
}

// catchUp waits, bounded, for the read models to apply every event the
// log holds now.
func (s *Server) catchUp(ctx context.Context) error {
	err := s.proj.CatchUp(ctx, s.wait)
	if errors.Is(err, projections.ErrNotReached) {
		return &domain.Error{Code: ETIMEOUT, Message: "this server's read models have not caught up with the log yet; retry", Err: err}
	}
	return err
}

// recordedSkew is how far a recorded_as_of may be ahead of the server's
// clock.
const recordedSkew = time.Minute

// replays bounds the point-in-time replays running at once. Each reads the
// whole log and holds models as large as the live ones, so a burst of them
// queues rather than multiplies the process's memory.
var replays = make(chan struct{}, 2)

// viewAt returns the read models that answer for pt: the live ones when pt
// is zero, else models replayed from the log.
func (s *Server) viewAt(r *http.Request, pt projections.PointInTime) (*projections.Projector, error) {
	if pt.IsZero() {
		return s.proj, nil
	}
	release, err := replaySlot(r)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.proj.At(r.Context(), pt)
}

// replaySlot waits for one of the replays allowed at once, and returns
// the function that gives it back.
func replaySlot(r *http.Request) (release func(), err error) {
	select {
	case replays <- struct{}{}:
		return func() { <-replays }, nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

// query starts a read that honours ?min_position=, ?as_of= and
// ?recorded_as_of=: it returns the read models to answer from and the point
// in time, or writes the error and returns ok false.
func (s *Server) query(w http.ResponseWriter, r *http.Request) (v *projections.Projector, pt projections.PointInTime, ok bool) {
	pt, err := s.pointInTime(r)
	if err == nil {
		err = s.waitMinPosition(r)
	}
	if err == nil {
		v, err = s.viewAt(r, pt)
	}
	if err != nil {
		s.Error(w, r, err)
		return nil, pt, false
	}
	return v, pt, true
}

// fundsQuery is query for the funds and projects: at a point in time
// their models are folded from the funds' streams alone (see
// Projector.FundsAt), not replayed from the whole log.
func (s *Server) fundsQuery(w http.ResponseWriter, r *http.Request) (v *projections.Projector, pt projections.PointInTime, ok bool) {
	pt, err := s.pointInTime(r)
	if err == nil {
		err = s.waitMinPosition(r)
	}
	if err == nil {
		v, err = s.proj.FundsAt(r.Context(), pt)
	}
	if err != nil {
		s.Error(w, r, err)
		return nil, pt, false
	}
	return v, pt, true
}

// stamp adds the point in time asked for to a list's answer.
func stamp(answer map[string]any, pt projections.PointInTime) map[string]any {
	if pt.AsOf != "" {
		answer["as_of"] = pt.AsOf
	}
	if !pt.RecordedAsOf.IsZero() {
		answer["recorded_as_of"] = pt.RecordedAsOfString()
	}
	return answer
}

// budgetQuery is query for the programs and budgets: at a point in time
// it reads them from the as-of index, for program ("" for every one) and
// fiscal year fy (0 for every one), unless the index cannot answer, when
// it replays the log as query does.
func (s *Server) budgetQuery(w http.ResponseWriter, r *http.Request, program string, fy int) (v projections.BudgetBook, pt projections.PointInTime, ok bool) {
	pt, err := s.pointInTime(r)
	if err == nil {
		err = s.waitMinPosition(r)
	}
	if err == nil {
		switch idx := s.proj.AsOf(); {
		case idx.Serves(pt):
			v, err = idx.Budgets(pt, program, fy)
		default:
			v, err = s.viewAt(r, pt)
		}
	}
	if err != nil {
		s.Error(w, r, err)
		return nil, pt, false
	}
	return v, pt, true
}
