package domain

import (
	"time"

	"github.com/6tail/lunar-go/HolidayUtil"
)

// Dates are civil dates "YYYY-MM-DD" in the city's time zone.
const dateLayout = "2006-01-02"

// CityTime is the time zone business dates are reckoned in: Asia/Shanghai,
// UTC+8 without daylight saving since 1991 (a fixed zone, so that no
// time-zone database is needed).
var CityTime = time.FixedZone("Asia/Shanghai", 8*3600)

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

// AddDays adds n days to a date.
func AddDays(date string, n int) string {
	return mustDate(date).AddDate(0, 0, n).Format(dateLayout)
}

// IsWorkingDay reports whether a date is a working day on the official
// calendar of the People's Republic of China: a weekday that is not a
// public holiday, or a weekend day declared a make-up working day (调休).
// The tables are github.com/6tail/lunar-go's.
func IsWorkingDay(date string) bool {
	if h := HolidayUtil.GetHoliday(date); h != nil {
		return h.IsWork()
	}
	wd := mustDate(date).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// WorkingDaysBetween counts the working days after a and before b, both
// excluded: the days a public notice opened on a has run when b begins.
func WorkingDaysBetween(a, b string) int {
	ta, tb := mustDate(a), mustDate(b)
	n := 0
	for t := ta.AddDate(0, 0, 1); t.Before(tb); t = t.AddDate(0, 0, 1) {
		if IsWorkingDay(t.Format(dateLayout)) {
			n++
		}
	}
	return n
}

// NoticeClosesOn returns the first date a public notice opened on date
// may close after running days working days.
func NoticeClosesOn(opened string, days int) string {
	d := opened
	for n := 0; n < days; {
		d = AddDays(d, 1)
		if IsWorkingDay(d) {
			n++
		}
	}
	return AddDays(d, 1)
}
