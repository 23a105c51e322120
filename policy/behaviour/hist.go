package behaviour

import "math"

// hist is a histogram of non-negative counts in 48 buckets: exact for 0 to
// 15, then four buckets per doubling (so a quantile is within 19% of the
// true value) up to about 250,000, where it saturates. Weights are
// float64 so that a baseline can fade old observations by scaling.
type hist [histBuckets]float64

const histBuckets = 48

// bucketOf returns the bucket holding v.
func bucketOf(v float64) int {
	if v < 16 {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	b := 16 + int(math.Log2(v/16)*4)
	return min(b, histBuckets-1)
}

// upper returns the largest value bucket b holds (its lower bound for the
// last, saturated bucket).
func upper(b int) float64 {
	if b < 16 {
		return float64(b)
	}
	return math.Floor(16*math.Exp2(float64(b-15)/4)) - 1
}

// lower returns the smallest value bucket b holds.
func lower(b int) float64 {
	if b < 16 {
		return float64(b)
	}
	return math.Ceil(16 * math.Exp2(float64(b-16)/4))
}

func (h *hist) add(v, w float64) { h[bucketOf(v)] += w }

func (h *hist) total() float64 {
	t := 0.0
	for _, w := range h {
		t += w
	}
	return t
}

// quantile returns the upper bound of the bucket holding the q-quantile,
// and false when the histogram is empty.
func (h *hist) quantile(q float64) (float64, bool) {
	b, ok := h.bucketAt(q)
	return upper(b), ok
}

// lowQuantile is quantile's lower-bound twin, for the low end of a range.
func (h *hist) lowQuantile(q float64) (float64, bool) {
	b, ok := h.bucketAt(q)
	return lower(b), ok
}

// bucketAt returns the bucket holding the q-quantile (0 and false when
// the histogram is empty).
func (h *hist) bucketAt(q float64) (int, bool) {
	t := h.total()
	if t <= 0 {
		return 0, false
	}
	want, acc := q*t, 0.0
	for b, w := range h {
		acc += w
		if acc >= want && w > 0 {
			return b, true
		}
	}
	return histBuckets - 1, true
}

func (h *hist) scale(f float64) {
	for i := range h {
		h[i] *= f
	}
}

func (h *hist) merge(o *hist) {
	for i := range h {
		h[i] += o[i]
	}
}
