package domain

import (
	"fmt"
	"testing"
)

// sumInstallments checks installment numbering and returns their sum.
func sumInstallments(t *testing.T, got []Installment) Money {
	t.Helper()
	sum := Zero
	for i, in := range got {
		if in.N != i+1 {
			t.Errorf("installment %d has N = %d", i+1, in.N)
		}
		if in.Amount.Sign() <= 0 {
			t.Errorf("installment %d amount %s is not positive", in.N, in.Amount)
		}
		if d := in.Amount.Decimal(); !d.Equal(d.Round(2)) {
			t.Errorf("installment %d amount %s has more than 2 decimals", in.N, d)
		}
		sum = sum.Add(in.Amount)
	}
	return sum
}

func TestInstallmentsPercentages(t *testing.T) {
	sc := housingSchedule(t)
	if err := sc.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	got := mustInstallments(t, sc, money(t, "600000"), "2024-01-15")
	want := []Installment{
		{1, money(t, "240000"), "2024-01-15"},
		{2, money(t, "180000"), "2025-01-15"},
		{3, money(t, "180000"), "2026-01-15"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d installments, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].N != want[i].N || got[i].Amount.String() != want[i].Amount.String() || got[i].DueDate != want[i].DueDate {
			t.Errorf("installment %d = {%d %s %s}, want {%d %s %s}", i+1,
				got[i].N, got[i].Amount, got[i].DueDate, want[i].N, want[i].Amount, want[i].DueDate)
		}
	}
}

func TestInstallmentsRemainder(t *testing.T) {
	for _, tc := range []struct {
		pcts   []string
		amount string
		want   []string
	}{
		// 33.33% of 1000.01 is 333.303…, rounded to 333.30 twice; the
		// last installment takes what is left.
		{[]string{"33.33", "33.33", "33.34"}, "1000.01", []string{"333.30", "333.30", "333.41"}},
		{[]string{"40", "30", "30"}, "100000.01", []string{"40000.00", "30000.00", "30000.01"}},
		{[]string{"40", "30", "30"}, "0.05", []string{"0.02", "0.02", "0.01"}},
		{[]string{"25", "25", "25", "25"}, "333333.33", []string{"83333.33", "83333.33", "83333.33", "83333.34"}},
	} {
		sc := Schedule{Percentages: decs(t, tc.pcts...), IntervalMonths: 12}
		if err := sc.validate(); err != nil {
			t.Fatalf("validate %v: %v", tc.pcts, err)
		}
		amount := money(t, tc.amount)
		got := mustInstallments(t, sc, amount, "2024-01-31")
		if sum := sumInstallments(t, got); sum.Cmp(amount) != 0 {
			t.Errorf("%v of %s: installments sum to %s", tc.pcts, amount, sum)
		}
		var amounts []string
		for _, in := range got {
			amounts = append(amounts, in.Amount.String())
		}
		if fmt.Sprint(amounts) != fmt.Sprint(tc.want) {
			t.Errorf("%v of %s = %v, want %v", tc.pcts, amount, amounts, tc.want)
		}
		if got[1].DueDate != "2025-01-31" {
			t.Errorf("second due date = %s, want 2025-01-31", got[1].DueDate)
		}
	}
}

func TestInstallmentsMonthly(t *testing.T) {
	monthly := money(t, "5000")
	sc := Schedule{MonthlyAmount: &monthly, Months: 36}
	if err := sc.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	amount := money(t, "180000")
	got := mustInstallments(t, sc, amount, "2024-01-31")
	if len(got) != 36 {
		t.Fatalf("got %d installments, want 36", len(got))
	}
	for i, in := range got {
		if in.Amount.String() != "5000.00" {
			t.Errorf("installment %d = %s, want 5000.00", in.N, in.Amount)
		}
		if want := AddMonths("2024-01-31", i); in.DueDate != want {
			t.Errorf("installment %d due %s, want %s", in.N, in.DueDate, want)
		}
	}
	if got[1].DueDate != "2024-02-29" || got[35].DueDate != "2026-12-31" {
		t.Errorf("due dates 2 and 36 = %s, %s; want 2024-02-29, 2026-12-31", got[1].DueDate, got[35].DueDate)
	}
	if sum := sumInstallments(t, got); sum.Cmp(amount) != 0 {
		t.Errorf("sum = %s, want %s", sum, amount)
	}

	// A whole number of months fewer than the schedule's: each pays the
	// monthly amount, no more and no less.
	got = mustInstallments(t, sc, money(t, "60000"), "2024-01-15")
	if len(got) != 12 {
		t.Fatalf("60000.00 at 5000.00 a month: %d installments, want 12", len(got))
	}
	for _, in := range got {
		if in.Amount.String() != "5000.00" {
			t.Errorf("installment %d = %s, want the monthly 5000.00", in.N, in.Amount)
		}
	}

	// An award the monthly amount does not divide, or more months than
	// the schedule has, is refused: the program pays its monthly amount.
	for _, bad := range []string{"102500", "180000.01", "185000", "2500"} {
		if _, err := sc.installments(money(t, bad), "2024-01-15"); ErrorCode(err) != ESCHEDULE {
			t.Errorf("installments of %s = %v, want %s", bad, err, ESCHEDULE)
		}
	}
}

func mustInstallments(t *testing.T, sc Schedule, amount Money, start string) []Installment {
	t.Helper()
	got, err := sc.installments(amount, start)
	if err != nil {
		t.Fatalf("installments of %s: %v", amount, err)
	}
	return got
}

func TestScheduleValidate(t *testing.T) {
	m := money(t, "5000")
	zero := Zero
	for name, sc := range map[string]Schedule{
		"empty":            {},
		"both":             {Percentages: decs(t, "100"), MonthlyAmount: &m, Months: 3},
		"sum 99":           {Percentages: decs(t, "40", "30", "29"), IntervalMonths: 12},
		"sum 101":          {Percentages: decs(t, "40", "30", "31"), IntervalMonths: 12},
		"negative":         {Percentages: decs(t, "110", "-10"), IntervalMonths: 12},
		"zero percent":     {Percentages: decs(t, "100", "0"), IntervalMonths: 12},
		"3 decimals":       {Percentages: decs(t, "33.333", "33.333", "33.334"), IntervalMonths: 12},
		"no interval":      {Percentages: decs(t, "50", "50")},
		"monthly 0 months": {MonthlyAmount: &m},
		"monthly zero":     {MonthlyAmount: &zero, Months: 12},
	} {
		if err := sc.validate(); ErrorCode(err) != EINVALID {
			t.Errorf("%s: validate = %v, want invalid", name, err)
		}
	}
}
