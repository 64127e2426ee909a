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
	// Days after a and before b, both excluded; 2024-01-05 is a Friday.
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"2024-01-05", "2024-01-05", 0},
		{"2024-01-05", "2024-01-06", 0}, // Saturday
		{"2024-01-05", "2024-01-08", 0}, // the weekend, and Monday not yet over
		{"2024-01-05", "2024-01-09", 1},
		{"2024-01-05", "2024-01-12", 4},
		{"2024-01-05", "2024-01-13", 5},
		{"2024-01-06", "2024-01-09", 1}, // from a Saturday
		{"2024-01-05", "2024-01-20", 10},
		{"2024-01-12", "2024-01-05", 0}, // b before a
	} {
		if got := WorkingDaysBetween(tc.a, tc.b); got != tc.want {
			t.Errorf("WorkingDaysBetween(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestOfficialCalendar pins the public holidays and make-up working days
// (调休) of the Spring Festival and National Day weeks of 2024 and 2025.
func TestOfficialCalendar(t *testing.T) {
	for date, want := range map[string]bool{
		"2024-02-04": true,  // Sunday, make-up working day
		"2024-02-09": true,  // Friday, Spring Festival's eve: a working day in 2024
		"2024-02-12": false, // Monday, the holiday
		"2024-02-10": false, // Spring Festival
		"2024-02-16": false, // Friday, still the holiday
		"2024-02-18": true,  // Sunday, make-up working day
		"2024-09-29": true,  // Sunday, make-up working day
		"2024-10-01": false, // National Day
		"2024-10-07": false, // Monday, holiday
		"2024-10-08": true,
		"2024-10-12": true,  // Saturday, make-up working day
		"2025-01-26": true,  // Sunday, make-up working day
		"2025-01-28": false, // Spring Festival's eve
		"2025-02-04": false, // Tuesday, holiday
		"2025-02-08": true,  // Saturday, make-up working day
		"2025-09-28": true,  // Sunday, make-up working day
		"2025-10-01": false, // National Day
		"2025-10-06": false, // Mid-Autumn Festival
		"2025-10-08": false, // Wednesday, holiday
		"2025-10-09": true,
		"2025-10-11": true,  // Saturday, make-up working day
		"2024-01-06": false, // an ordinary Saturday
		"2024-01-08": true,  // an ordinary Monday
	} {
		if got := IsWorkingDay(date); got != want {
			t.Errorf("IsWorkingDay(%s) = %v, want %v", date, got, want)
		}
	}
}

// TestNoticeClosesOn checks the public notice's first closing day against
// the worked examples of the rule: five working days counted from the day
// after it opens, closable on the day after the last of them.
func TestNoticeClosesOn(t *testing.T) {
	for _, tc := range []struct{ opened, closes string }{
		// Sun 28 Sep (make-up), 29, 30 Sep, then the holiday 1–8 Oct,
		// 9 and 10 Oct.
		{"2025-09-26", "2025-10-11"},
		// Sun 4 Feb (make-up), 5, 6, 7, 8 Feb; the holiday starts 10 Feb.
		{"2024-02-02", "2024-02-09"},
		// Over the 2024 National Day: Sun 29 Sep (make-up), 30 Sep,
		// 1–7 Oct off, 8, 9, 10 Oct.
		{"2024-09-27", "2024-10-11"},
		// An ordinary week.
		{"2024-01-05", "2024-01-13"},
	} {
		if got := NoticeClosesOn(tc.opened, 5); got != tc.closes {
			t.Errorf("a 5-day notice opened %s closes from %s, want %s", tc.opened, got, tc.closes)
		}
		if n := WorkingDaysBetween(tc.opened, tc.closes); n != 5 {
			t.Errorf("opened %s: %d working days before %s, want 5", tc.opened, n, tc.closes)
		}
		if n := WorkingDaysBetween(tc.opened, AddDays(tc.closes, -1)); n != 4 {
			t.Errorf("opened %s: %d working days before the eve of closing, want 4", tc.opened, n)
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
