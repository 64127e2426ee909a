package console

import (
	"github.com/shopspring/decimal"

	"talentledger/domain"
)

// Charts are drawn by the server as SVG: a horizontal bar per value,
// grouped by row. No script runs, the CSP stays strict, the picture
// prints and reads the same in a screenshot, and it takes this file and
// one template instead of a charting library.

// bar is one row of a chart: a label and a value per series.
type bar struct {
	Label  string
	Values []domain.Money
}

type chart struct {
	Width, Height int
	Series        []string // message keys
	Rows          []chartRow
}

type chartRow struct {
	Label string
	Y     int // the label's baseline
	Bars  []chartBar
}

type chartBar struct {
	X, Y, W, H int
	Series     int
	Value      domain.Money
	TextX      int
	TextY      int
}

const (
	chartWidth = 640
	labelWidth = 170
	barHeight  = 14
	rowGap     = 12
	valueRoom  = 110 // room right of the longest bar for its figure
)

// barChart lays out rows of bars, every bar scaled to the largest value.
func barChart(rows []bar, series []string) chart {
	c := chart{Width: chartWidth, Series: series}
	maxV := decimal.Zero
	for _, r := range rows {
		for _, v := range r.Values {
			if v.Decimal().GreaterThan(maxV) {
				maxV = v.Decimal()
			}
		}
	}
	span := decimal.NewFromInt(int64(chartWidth - labelWidth - valueRoom))
	y := rowGap
	for _, r := range rows {
		cr := chartRow{Label: shortenRunes(r.Label, 12), Y: y + barHeight}
		for i, v := range r.Values {
			w := 0
			if maxV.Sign() > 0 && v.Sign() > 0 {
				w = int(v.Decimal().Mul(span).Div(maxV).IntPart())
				w = max(w, 1)
			}
			cr.Bars = append(cr.Bars, chartBar{X: labelWidth, Y: y, W: w, H: barHeight, Series: i, Value: v,
				TextX: labelWidth + w + 4, TextY: y + barHeight - 3})
			y += barHeight + 2
		}
		c.Rows = append(c.Rows, cr)
		y += rowGap
	}
	c.Height = y
	return c
}

// shortenRunes cuts a label to n characters, Chinese ones counted as
// one.
func shortenRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
