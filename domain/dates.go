package domain

import (
	"time"
)

// Dates are civil dates "YYYY-MM-DD" in the city's time zone.
const dateLayout = "2006-01-02"

// CityTime is the time zone business dates are reckoned in.
var CityTime = time.FixedZone("CST", 8*3600)

// ParseDate parses a civil date, refusing anything but YYYY-MM-DD between
// 2000 and 2100.
func ParseDate(s string) (time.Time, error) {
	t, err := time.ParseInLocation(dateLayout, s, time.UTC)
	if err != nil || t.Year() < 2000 || t.Year() > 2100 {
		return time.Time{}, Errorf(EINVALID, "date %q is not a date like 2024-03-01 between 2000 and 2100", truncate(s, 40))
	}
	return t, nil
}

// Today returns the civil date of t in the city's time zone.
func Today(t time.Time) string { return t.In(CityTime).Format(dateLayout) }

func mustDate(s string) time.Time {
	t, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// AddMonths adds n calendar months to a date, clamping to the month's last
// day (2024-01-31 + 1 month = 2024-02-29).
func AddMonths(date string, n int) string {
	t := mustDate(date)
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, 0, 0, 0, 0, time.UTC).Format(dateLayout)
}

// MonthsBetween returns the whole months from a to b (0 if b is before a).
func MonthsBetween(a, b string) int {
	ta, tb := mustDate(a), mustDate(b)
	if tb.Before(ta) {
		return 0
	}
	months := (tb.Year()-ta.Year())*12 + int(tb.Month()-ta.Month())
	if AddMonths(a, months) > b {
		months--
	}
	return months
}

// WorkingDaysBetween counts the weekdays after a up to and including b.
// Public holidays are not modelled; notice days are working days.
func WorkingDaysBetween(a, b string) int {
	ta, tb := mustDate(a), mustDate(b)
	n := 0
	for t := ta.AddDate(0, 0, 1); !t.After(tb); t = t.AddDate(0, 0, 1) {
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n++
		}
	}
	return n
}
