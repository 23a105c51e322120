package main

import (
	"math/bits"
	"time"
)

// histSub is the log2 of the sub-buckets per power of two: 128 of them keep
// every recorded value within 0.8% of its true value, in fixed memory, so a
// long run at a high rate costs the load tool nothing extra.
const histSub = 7

// histMax is the largest value recorded as itself (about 18 minutes);
// longer ones count as histMax.
const histMax = 1<<40 - 1

// histBuckets is one past the bucket of histMax.
const histBuckets = (40-histSub)<<histSub + 2<<histSub

// hist is a log-linear latency histogram (HDR-style). The zero value is
// empty and ready; it is not safe for concurrent use: each worker keeps its
// own and they are merged at the end.
type hist struct {
	counts [histBuckets]uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

// bucketOf maps v to its bucket. Values below 2^(histSub+1) have a bucket
// each; above, a bucket spans 2^shift values.
func bucketOf(v uint64) int {
	l := bits.Len64(v)
	if l <= histSub+1 {
		return int(v)
	}
	shift := l - histSub - 1
	return shift<<histSub + int(v>>shift)
}

// bucketMid is the middle of bucket i, the value reported for it.
func bucketMid(i int) uint64 {
	if i < 2<<histSub {
		return uint64(i)
	}
	shift := i>>histSub - 1
	top := uint64(i - shift<<histSub)
	return top<<shift + (1<<shift)/2
}

func (h *hist) add(d time.Duration) {
	d = min(max(d, 0), histMax)
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value at q (0..1): the smallest bucket whose
// cumulative count reaches q of all values, clamped to [min, max].
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(time.Duration(bucketMid(i)), h.min), h.max)
		}
	}
	return h.max
}

func (h *hist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}
