package projections_test

import (
	"math"
	"strconv"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/projections"
)

// npv is the net present value of flows at rate r, computed here apart
// from the ledger's own XIRR.
func npv(flows [][2]any, r float64) float64 {
	t0, _ := time.Parse(time.DateOnly, flows[0][0].(string))
	v := 0.0
	for _, f := range flows {
		t, _ := time.Parse(time.DateOnly, f[0].(string))
		v += f[1].(float64) / math.Pow(1+r, t.Sub(t0).Hours()/24/365)
	}
	return v
}

// wantRate checks a four-decimal rate against flows: the value of the
// flows changes sign within half a unit of the last decimal of it.
func wantRate(t *testing.T, what, got string, flows [][2]any) {
	t.Helper()
	r, err := strconv.ParseFloat(got, 64)
	if err != nil {
		t.Errorf("%s: irr %q is not a number", what, got)
		return
	}
	if lo, hi := npv(flows, r-0.00005), npv(flows, r+0.00005); lo < 0 || hi > 0 {
		t.Errorf("%s: irr %s does not zero the flows' value (%.2f at −½ bp, %.2f at +½ bp)", what, got, lo, hi)
	}
}

// TestFundMeasures checks DPI, RVPI, TVPI and IRR of a fund and of each
// LP against the rules of docs/domain.md, on flows worked out by hand:
//
//	dif: 30,000,000 paid in by city platform on 2023-02-01 and 20,000,000
//	by social capital on 2023-08-01; 2,000,000 distributed on 2024-03-01,
//	15,000,000 exit proceeds on 2024-09-30; on 2024-12-31 project A is
//	valued 45,000,000, C written off, and 6,000,000 is idle:
//	NAV 51,000,000.
func TestFundMeasures(t *testing.T) {
	e, _, _, _, _, _ := fundSet(t)
	f := e.fund("dif", "2024-12-31")
	want := map[string]string{"paid_in": "50000000.00", "distributions": "17000000.00", "nav": "51000000.00",
		"dpi": "0.34", "rvpi": "1.02", "tvpi": "1.36"}
	got := map[string]string{"paid_in": f.PaidIn.String(), "distributions": f.Distributions.String(), "nav": f.NAV.String(),
		"dpi": f.DPI, "rvpi": f.RVPI, "tvpi": f.TVPI}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("dif %s = %s, want %s", k, got[k], w)
		}
	}
	// TVPI = DPI + RVPI: (distributions + NAV) ÷ paid-in.
	if f.Distributions.Add(f.NAV).Cmp(f.PaidIn.MulRatio(136, 100)) != 0 {
		t.Errorf("distributions + NAV = %s, want 1.36 × paid-in", f.Distributions.Add(f.NAV))
	}
	fundFlows := [][2]any{{"2023-02-01", -30e6}, {"2023-08-01", -20e6}, {"2024-03-01", 2e6}, {"2024-09-30", 15e6}, {"2024-12-31", 51e6}}
	wantRate(t, "dif", f.IRR, fundFlows)
	if f.IRR != "0.2063" {
		t.Errorf("dif irr %s, want 0.2063", f.IRR)
	}

	// Each LP's share of a distribution is its share of the paid-in on
	// that day: 60 % / 40 % after 2023-08-01.
	lps := map[string]projections.LPView{}
	for _, l := range f.LPs {
		lps[l.LP] = l
	}
	for _, c := range []struct {
		lp, dist, nav, unfunded, irr string
		flows                        [][2]any
	}{
		{"city platform", "10200000.00", "30600000.00", "30000000.00", "0.1827",
			[][2]any{{"2023-02-01", -30e6}, {"2024-03-01", 1.2e6}, {"2024-09-30", 9e6}, {"2024-12-31", 30.6e6}}},
		{"social capital", "6800000.00", "20400000.00", "20000000.00", "0.2589",
			[][2]any{{"2023-08-01", -20e6}, {"2024-03-01", 0.8e6}, {"2024-09-30", 6e6}, {"2024-12-31", 20.4e6}}},
	} {
		l := lps[c.lp]
		if l.Distributions.String() != c.dist || l.NAV.String() != c.nav || l.Unfunded.String() != c.unfunded {
			t.Errorf("%s: distributions %s, nav %s, unfunded %s; want %s, %s, %s", c.lp, l.Distributions, l.NAV, l.Unfunded, c.dist, c.nav, c.unfunded)
		}
		if l.DPI != "0.34" || l.RVPI != "1.02" || l.TVPI != "1.36" {
			t.Errorf("%s: dpi %s rvpi %s tvpi %s, want 0.34 1.02 1.36", c.lp, l.DPI, l.RVPI, l.TVPI)
		}
		wantRate(t, c.lp, l.IRR, c.flows)
		if l.IRR != c.irr {
			t.Errorf("%s: irr %s, want %s", c.lp, l.IRR, c.irr)
		}
	}
	// The LPs' shares add up to the fund's.
	sumD, sumN := domain.Zero, domain.Zero
	for _, l := range f.LPs {
		sumD, sumN = sumD.Add(l.Distributions), sumN.Add(l.NAV)
	}
	if sumD.Cmp(f.Distributions) != 0 || sumN.Cmp(f.NAV) != 0 {
		t.Errorf("LPs sum to %s and %s, want the fund's %s and %s", sumD, sumN, f.Distributions, f.NAV)
	}
}
