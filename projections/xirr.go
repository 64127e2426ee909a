package projections

import (
	"math"
	"time"

	"github.com/shopspring/decimal"

	"talentledger/domain"
)

// CashFlow is one dated flow of an investor's or a fund's cash: negative
// when paid in or invested, positive when returned or held.
type CashFlow struct {
	Date   string // YYYY-MM-DD
	Amount domain.Money
}

// XIRR returns the annual rate r that makes the net present value of the
// flows zero, discounting each by (1 + r)^(days since the first ÷ 365),
// as spreadsheets' XIRR does, and false when there is none: fewer than two
// flows, or flows that are not of both signs, or no rate between −99.9999 %
// and 10⁹ % brings the value to zero.
//
// The amounts are exact; the rate is not a sum of money, and is found in
// floating point by bisection over the bracket where the value changes
// sign, to the last bit a float64 holds. The value of flows whose sign
// changes once falls as the rate rises, so that root is the only one; when
// signs change more often, the lowest root in the bracket is returned.
func XIRR(flows []CashFlow) (float64, bool) {
	if len(flows) < 2 {
		return 0, false
	}
	first := ""
	var pos, neg bool
	for _, f := range flows {
		if first == "" || f.Date < first {
			first = f.Date
		}
		pos = pos || f.Amount.Sign() > 0
		neg = neg || f.Amount.Sign() < 0
	}
	if !pos || !neg {
		return 0, false
	}
	t0, err := time.Parse(time.DateOnly, first)
	if err != nil {
		return 0, false
	}
	years := make([]float64, len(flows))
	amounts := make([]float64, len(flows))
	for i, f := range flows {
		t, err := time.Parse(time.DateOnly, f.Date)
		if err != nil {
			return 0, false
		}
		years[i] = t.Sub(t0).Hours() / 24 / 365
		amounts[i] = f.Amount.Decimal().InexactFloat64()
	}
	npv := func(r float64) float64 {
		var v float64
		for i, a := range amounts {
			v += a / math.Pow(1+r, years[i])
		}
		return v
	}
	// Walk up from near −100 % in growing steps to the first change of
	// sign, then bisect it.
	lo := -0.999999
	vlo := npv(lo)
	hi := lo
	for _, step := range []float64{-0.9, -0.5, -0.2, 0, 0.1, 0.25, 0.5, 1, 2, 5, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7} {
		hi = step
		vhi := npv(hi)
		if vhi == 0 {
			return hi, true
		}
		if (vlo < 0) != (vhi < 0) {
			break
		}
		lo, vlo = hi, vhi
		if step == 1e7 {
			return 0, false
		}
	}
	for range 200 {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			break
		}
		vmid := npv(mid)
		if vmid == 0 {
			return mid, true
		}
		if (vlo < 0) == (vmid < 0) {
			lo, vlo = mid, vmid
		} else {
			hi = mid
		}
	}
	return lo + (hi-lo)/2, true
}

// formatRate writes a rate as a fraction with four decimals ("0.1000" is
// 10 %), or "" when there is none.
func formatRate(r float64, ok bool) string {
	if !ok || math.IsNaN(r) || math.IsInf(r, 0) {
		return ""
	}
	return decimal.NewFromFloat(r).StringFixed(4)
}
