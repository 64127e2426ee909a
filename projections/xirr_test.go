package projections

import (
	"math"
	"testing"

	"talentledger/domain"
)

func flows(t *testing.T, pairs ...string) []CashFlow {
	t.Helper()
	var out []CashFlow
	for i := 0; i < len(pairs); i += 2 {
		m, err := domain.ParseMoney(pairs[i+1])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, CashFlow{Date: pairs[i], Amount: m})
	}
	return out
}

// TestXIRR checks the rate against cases computed by hand and against a
// spreadsheet's XIRR on the same flows.
func TestXIRR(t *testing.T) {
	for _, c := range []struct {
		name  string
		flows []CashFlow
		want  float64
		tol   float64
	}{
		// 365 days apart: 1,100 ÷ 1,000 − 1 exactly.
		{"one year at 10 %", flows(t, "2023-01-01", "-1000.00", "2024-01-01", "1100.00"), 0.10, 1e-12},
		// 730 days: (1.21)^(1/2) − 1 = 10 %.
		{"two years at 10 %", flows(t, "2021-01-01", "-1000.00", "2023-01-01", "1210.00"), 0.10, 1e-12},
		// 2024 is a leap year: 366 days, so (1.1)^(365/366) − 1.
		{"over a leap year", flows(t, "2024-01-01", "-1000.00", "2025-01-01", "1100.00"), math.Pow(1.1, 365.0/366) - 1, 1e-12},
		// Half the money back each year for two years, 365 days apart:
		// 500/(1+r) + 500/(1+r)² = 900, so 1+r = (1 + √(1 + 4·1.8))/3.6.
		{"two returns", flows(t, "2021-01-01", "-900.00", "2022-01-01", "500.00", "2023-01-01", "500.00"),
			(1+math.Sqrt(1+4*1.8))/3.6 - 1, 1e-12},
		// A loss: half back after 365 days.
		{"a loss", flows(t, "2023-01-01", "-1000.00", "2024-01-01", "500.00"), -0.5, 1e-12},
		// The XIRR example of the spreadsheet programs (Excel, LibreOffice
		// Calc, Google Sheets): they show 0.373362535, having stopped their
		// iteration once the rate moved by less than 10⁻⁸.
		{"spreadsheet example", flows(t,
			"2008-01-01", "-10000.00", "2008-03-01", "2750.00", "2008-10-30", "4250.00",
			"2009-02-15", "3250.00", "2009-04-01", "2750.00"), 0.373362535, 1e-8},
		// Flows out of date order give the same rate.
		{"unordered", flows(t, "2024-01-01", "1100.00", "2023-01-01", "-1000.00"), 0.10, 1e-12},
	} {
		got, ok := XIRR(c.flows)
		if !ok || math.Abs(got-c.want) > c.tol {
			t.Errorf("%s: XIRR = %.12f, %v; want %.12f", c.name, got, ok, c.want)
		}
	}
	for _, c := range []struct {
		name  string
		flows []CashFlow
	}{
		{"no flows", nil},
		{"one flow", flows(t, "2023-01-01", "-1000.00")},
		{"only money in", flows(t, "2023-01-01", "-1000.00", "2024-01-01", "-5.00")},
		{"only money out", flows(t, "2023-01-01", "1000.00", "2024-01-01", "5.00")},
		{"nothing back", flows(t, "2023-01-01", "-1000.00", "2024-01-01", "0.00")},
	} {
		if got, ok := XIRR(c.flows); ok {
			t.Errorf("%s: XIRR = %v, want none", c.name, got)
		}
	}
	if got := formatRate(XIRR(flows(t, "2023-01-01", "-1000.00", "2024-01-01", "1100.00"))); got != "0.1000" {
		t.Errorf("formatted rate %q, want 0.1000", got)
	}
	if got := formatRate(XIRR(nil)); got != "" {
		t.Errorf("formatted missing rate %q, want empty", got)
	}
}
