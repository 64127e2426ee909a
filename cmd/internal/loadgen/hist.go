package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Hist counts latencies in log-linear buckets of microseconds: exact below
// 64 µs, then 32 buckets per power of two, so a quantile read from it is
// within about 3 % of the true value. Its memory is fixed (10 KiB), so the
// bench's own memory does not grow with the run and distort the server's.
// Record is safe for concurrent use.
type Hist struct {
	counts [histBuckets]atomic.Uint64
}

const (
	histLinear  = 64
	histSub     = 32
	histBuckets = histLinear + 40*histSub
)

func histIndex(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	shift := bits.Len64(us) - 6 // us>>shift is in [32, 64)
	i := histLinear + (shift-1)*histSub + int(us>>shift) - histSub
	return min(i, histBuckets-1)
}

// histValue returns the middle of bucket i, in microseconds.
func histValue(i int) float64 {
	if i < histLinear {
		return float64(i)
	}
	shift := (i-histLinear)/histSub + 1
	lo := uint64((i-histLinear)%histSub+histSub) << shift
	return float64(lo) + float64(uint64(1)<<shift)/2
}

func (h *Hist) Record(d time.Duration) { h.counts[histIndex(uint64(d.Microseconds()))].Add(1) }

// snapshot returns the counts so far.
func (h *Hist) Snapshot() Counts {
	s := make([]uint64, histBuckets)
	for i := range h.counts {
		s[i] = h.counts[i].Load()
	}
	return s
}

// Counts is a snapshot, or the difference of two.
type Counts []uint64

func (c Counts) Sub(earlier Counts) Counts {
	d := make(Counts, len(c))
	for i := range c {
		d[i] = c[i] - earlier[i]
	}
	return d
}

func (c Counts) Add(o Counts) Counts {
	if c == nil {
		c = make(Counts, histBuckets)
	}
	for i := range o {
		c[i] += o[i]
	}
	return c
}

func (c Counts) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// quantile returns the q-quantile in milliseconds, or 0 when empty.
func (c Counts) Quantile(q float64) float64 {
	n := c.Total()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i, v := range c {
		seen += v
		if seen >= rank {
			return histValue(i) / 1000
		}
	}
	return histValue(len(c)-1) / 1000
}

// max returns the largest bucket recorded, in milliseconds.
func (c Counts) Max() float64 {
	for i := len(c) - 1; i >= 0; i-- {
		if c[i] > 0 {
			return histValue(i) / 1000
		}
	}
	return 0
}

// PromQuantile estimates a quantile of a Prometheus histogram the way
// histogram_quantile does: linearly within the bucket it falls in.
func PromQuantile(h *dto.Histogram, q float64) float64 {
	n := h.GetSampleCount()
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	lower, prevCount := 0.0, uint64(0)
	for _, b := range h.GetBucket() {
		if float64(b.GetCumulativeCount()) >= rank {
			inBucket := b.GetCumulativeCount() - prevCount
			if inBucket == 0 {
				return b.GetUpperBound()
			}
			return lower + (b.GetUpperBound()-lower)*(rank-float64(prevCount))/float64(inBucket)
		}
		lower, prevCount = b.GetUpperBound(), b.GetCumulativeCount()
	}
	return lower
}
