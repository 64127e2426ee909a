package domain

import "testing"

func TestAddMonths(t *testing.T) {
	for _, tc := range []struct {
		date string
		n    int
		want string
	}{
		{"2024-01-15", 0, "2024-01-15"},
		{"2024-01-15", 12, "2025-01-15"},
		{"2024-01-15", 24, "2026-01-15"},
		{"2024-01-31", 1, "2024-02-29"}, // leap year
		{"2023-01-31", 1, "2023-02-28"},
		{"2024-03-31", 1, "2024-04-30"},
		{"2024-03-31", -1, "2024-02-29"},
		{"2024-12-31", 2, "2025-02-28"},
		{"2024-11-30", 3, "2025-02-28"},
		{"2024-02-29", 12, "2025-02-28"},
		{"2024-02-29", 48, "2028-02-29"},
		{"2024-05-31", 35, "2027-04-30"},
	} {
		if got := AddMonths(tc.date, tc.n); got != tc.want {
			t.Errorf("AddMonths(%s, %d) = %s, want %s", tc.date, tc.n, got, tc.want)
		}
	}
}

func TestMonthsBetween(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"2024-01-15", "2025-09-15", 20},
		{"2024-01-15", "2025-09-14", 19},
		{"2024-01-15", "2024-01-15", 0},
		{"2024-01-15", "2024-02-14", 0},
		{"2024-01-15", "2024-02-15", 1},
		{"2024-01-15", "2029-01-15", 60},
		{"2025-09-15", "2024-01-15", 0}, // b before a
		// A whole month ends where AddMonths lands: 2024-01-31 + 1 month is
		// 2024-02-29, so that date completes the month.
		{"2024-01-31", "2024-02-29", 1},
		{"2024-01-31", "2024-02-28", 0},
		{"2024-01-31", "2024-03-30", 1},
		{"2024-01-31", "2024-03-31", 2},
	} {
		if got := MonthsBetween(tc.a, tc.b); got != tc.want {
			t.Errorf("MonthsBetween(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestWorkingDaysBetween(t *testing.T) {
	// 2024-01-05 is a Friday.
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"2024-01-05", "2024-01-05", 0},
		{"2024-01-05", "2024-01-06", 0}, // Saturday
		{"2024-01-05", "2024-01-07", 0}, // Sunday
		{"2024-01-05", "2024-01-08", 1}, // over the weekend to Monday
		{"2024-01-05", "2024-01-11", 4},
		{"2024-01-05", "2024-01-12", 5},
		{"2024-01-06", "2024-01-08", 1}, // from a Saturday
		{"2024-01-05", "2024-01-19", 10},
		{"2024-01-12", "2024-01-05", 0}, // b before a
	} {
		if got := WorkingDaysBetween(tc.a, tc.b); got != tc.want {
			t.Errorf("WorkingDaysBetween(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	for _, ok := range []string{"2024-01-15", "2000-01-01", "2100-12-31", "2024-02-29"} {
		if _, err := ParseDate(ok); err != nil {
			t.Errorf("ParseDate(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "2024-1-15", "2024/01/15", "15-01-2024", "2023-02-29", "1999-12-31",
		"2101-01-01", "2024-01-15T00:00:00Z", " 2024-01-15", "2024-13-01"} {
		if _, err := ParseDate(bad); ErrorCode(err) != EINVALID {
			t.Errorf("ParseDate(%q) = %v, want an invalid error", bad, err)
		}
	}
}
