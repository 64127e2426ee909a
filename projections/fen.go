package projections

import (
	"errors"
	"fmt"

	"talentledger/domain"
)

// Amounts in the read models are int64 fen, hundredths of a yuan: a sum
// costs no allocation and a figure a fixed eight bytes. They are converted
// from the events' decimals as a model folds them, and back to domain.Money
// only when a query answers. Every conversion and sum is checked: the first
// that does not fit is remembered, and the feed stops at it (see Failing)
// rather than let a model answer with a wrong figure. No amount of the
// ledger comes near the limit (MaxAmount is 10^15 fen, the limit 9.2×10^18).

// ErrOverflow reports an amount or a sum that does not fit an int64 in fen.
var ErrOverflow = errors.New("projections: amount out of range")

// Failing is a Model that can fail: after each batch the feed asks it, and
// an error stops the folding there, as an event it cannot read does.
type Failing interface {
	Err() error
}

// tally does a model's arithmetic in fen and remembers the first amount
// that did not fit.
type tally struct{ err error }

// Err implements Failing.
func (t *tally) Err() error { return t.err }

func (t *tally) fail(format string, args ...any) {
	if t.err == nil {
		t.err = fmt.Errorf("%w: "+format, append([]any{ErrOverflow}, args...)...)
	}
}

// fen converts an amount of an event.
func (t *tally) fen(m domain.Money) int64 {
	f, ok := m.Fen()
	if !ok {
		t.fail("%s", m)
	}
	return f
}

// add returns a + b.
func (t *tally) add(a, b int64) int64 {
	s := a + b // wraps on overflow, which the signs show
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		t.fail("%d + %d fen", a, b)
		return a
	}
	return s
}

// sub returns a − b.
func (t *tally) sub(a, b int64) int64 {
	if b == -b && b != 0 { // math.MinInt64
		t.fail("%d − %d fen", a, b)
		return a
	}
	return t.add(a, -b)
}

// addM returns a + the amount m.
func (t *tally) addM(a int64, m domain.Money) int64 { return t.add(a, t.fen(m)) }

// subM returns a − the amount m.
func (t *tally) subM(a int64, m domain.Money) int64 { return t.sub(a, t.fen(m)) }

// money converts a figure for an answer.
func money(f int64) domain.Money { return domain.FromFen(f) }

// Damaged is implemented by a model that keeps its state on disk and may
// find the store damaged while answering a query, not only while folding.
// Damaged returns that damage, or nil; once found, the feed reports it as
// its stop (Feed.Stopped), and nothing more is answered from the model.
type Damaged interface {
	Damaged() error
}
