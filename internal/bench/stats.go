package bench

import (
	"math/bits"
	"slices"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a bucket is at most 1/64 (1.6 %) wide.
const subBits = 6

// numBuckets covers durations up to 2^42 ns (73 minutes).
const numBuckets = (42 - subBits + 1) << subBits

// Histogram records durations in logarithmic buckets: constant memory,
// no allocation per sample, mergeable across goroutines. Percentiles are
// exact to within one bucket (1.6 %). The zero value is ready to use; it
// is not safe for concurrent use.
type Histogram struct {
	counts []uint32
	n      int64
	sum    time.Duration
	max    time.Duration
}

func bucketOf(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [2^subBits, 2^(subBits+1))
	i := (e+1)<<subBits + int(v>>e) - 1<<subBits
	return min(i, numBuckets-1)
}

// bucketMid returns a representative value of bucket i (its middle).
func bucketMid(i int) time.Duration {
	if i < 1<<subBits {
		return time.Duration(i)
	}
	e := i>>subBits - 1
	m := uint64(i&(1<<subBits-1)) + 1<<subBits
	lo := m << e
	return time.Duration(lo + (uint64(1)<<e)/2)
}

// Add records one duration.
func (h *Histogram) Add(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint32, numBuckets)
	}
	h.counts[bucketOf(d)]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint32, numBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count returns the number of samples.
func (h *Histogram) Count() int64 { return h.n }

// Max returns the largest sample.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean returns the average sample, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the q-quantile (0 < q <= 1), 0 when empty. The result
// never exceeds Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += int64(c)
		if seen >= rank {
			return min(bucketMid(i), h.max)
		}
	}
	return h.max
}

// Recorder collects per-operation latencies and error counts for one
// goroutine. Samples that complete after the deadline are dropped, so a
// workload's rate is "operations completed within the measured window".
// Not safe for concurrent use: give each goroutine its own and Merge.
type Recorder struct {
	ops       map[string]*OpStats
	notAfter  time.Time
	notBefore time.Time
}

// OpStats is the record of one operation type.
type OpStats struct {
	Hist   Histogram
	Errors int64
	// Bytes counts payload bytes moved by the operation (bodies fetched,
	// messages appended or delivered).
	Bytes int64
}

// NewRecorder returns a Recorder that keeps samples completing within
// [from, until]; zero times mean no bound.
func NewRecorder(from, until time.Time) *Recorder {
	return &Recorder{ops: map[string]*OpStats{}, notBefore: from, notAfter: until}
}

func (r *Recorder) op(name string) *OpStats {
	s := r.ops[name]
	if s == nil {
		s = &OpStats{}
		r.ops[name] = s
	}
	return s
}

func (r *Recorder) inWindow(now time.Time) bool {
	if !r.notBefore.IsZero() && now.Before(r.notBefore) {
		return false
	}
	return r.notAfter.IsZero() || !now.After(r.notAfter)
}

// Done records a successful operation that started at start and moved
// n payload bytes.
func (r *Recorder) Done(name string, start time.Time, n int64) {
	now := time.Now()
	if !r.inWindow(now) {
		return
	}
	s := r.op(name)
	s.Hist.Add(now.Sub(start))
	s.Bytes += n
}

// Fail records a failed operation (NO, BAD, 4xx/5xx, -ERR or a network
// error).
func (r *Recorder) Fail(name string) {
	if !r.inWindow(time.Now()) {
		return
	}
	r.op(name).Errors++
}

// Merge adds o's records to r.
func (r *Recorder) Merge(o *Recorder) {
	for name, s := range o.ops {
		d := r.op(name)
		d.Hist.Merge(&s.Hist)
		d.Errors += s.Errors
		d.Bytes += s.Bytes
	}
}

// Names returns the recorded operation names, sorted.
func (r *Recorder) Names() []string {
	names := make([]string, 0, len(r.ops))
	for n := range r.ops {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Op returns the record of one operation, nil when none.
func (r *Recorder) Op(name string) *OpStats { return r.ops[name] }

// OpSummary is one operation type in a Result.
type OpSummary struct {
	Op      string  `json:"op"`
	Count   int64   `json:"count"`
	Errors  int64   `json:"errors"`
	PerSec  float64 `json:"per_s"`
	P50ms   float64 `json:"p50_ms"`
	P90ms   float64 `json:"p90_ms"`
	P99ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	MeanMs  float64 `json:"mean_ms"`
	MBytesS float64 `json:"mb_per_s,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// Summaries turns the records into rows, rates computed over elapsed.
func (r *Recorder) Summaries(elapsed time.Duration) []OpSummary {
	var out []OpSummary
	secs := elapsed.Seconds()
	for _, name := range r.Names() {
		s := r.ops[name]
		h := &s.Hist
		row := OpSummary{
			Op: name, Count: h.Count(), Errors: s.Errors,
			P50ms: ms(h.Quantile(0.50)), P90ms: ms(h.Quantile(0.90)), P99ms: ms(h.Quantile(0.99)),
			MaxMs: ms(h.Max()), MeanMs: ms(h.Mean()),
		}
		if secs > 0 {
			row.PerSec = float64(h.Count()) / secs
			row.MBytesS = float64(s.Bytes) / 1e6 / secs
		}
		out = append(out, row)
	}
	return out
}
