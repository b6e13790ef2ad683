package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	// Every duration falls in a bucket whose middle is within 1/64 of it,
	// and buckets grow with the duration.
	prev := -1
	for _, d := range []time.Duration{0, 1, 63, 64, 65, 127, 128, 1000, 999_999, time.Millisecond, 37 * time.Millisecond, time.Second, time.Minute, time.Hour} {
		b := bucketOf(d)
		if b < prev {
			t.Errorf("bucketOf(%v) = %d, below bucket of a smaller duration (%d)", d, b, prev)
		}
		prev = b
		mid := bucketMid(b)
		if d < 64 {
			if mid != d {
				t.Errorf("bucketMid(bucketOf(%v)) = %v, want exact", d, mid)
			}
			continue
		}
		if rel := math.Abs(float64(mid-d)) / float64(d); rel > 1.0/64 {
			t.Errorf("bucketMid(bucketOf(%v)) = %v, %.2f%% off", d, mid, rel*100)
		}
	}
	if b := bucketOf(1 << 50); b != numBuckets-1 {
		t.Errorf("huge duration: bucket %d, want the last (%d)", b, numBuckets-1)
	}
	if b := bucketOf(-5); b != 0 {
		t.Errorf("negative duration: bucket %d, want 0", b)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 0-10ms", func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential 2ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond)) }},
		{"constant 5ms", func() time.Duration { return 5 * time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			var all []time.Duration
			for range 20000 {
				d := tt.gen()
				h.Add(d)
				all = append(all, d)
			}
			slices.Sort(all)
			for _, q := range []float64{0.5, 0.9, 0.99, 1} {
				exact := all[int(math.Ceil(q*float64(len(all))))-1]
				got := h.Quantile(q)
				tol := float64(exact)/32 + 64
				if math.Abs(float64(got-exact)) > tol {
					t.Errorf("q%.2f = %v, exact %v", q, got, exact)
				}
			}
			if h.Max() != all[len(all)-1] {
				t.Errorf("max %v, want %v", h.Max(), all[len(all)-1])
			}
			if h.Count() != int64(len(all)) {
				t.Errorf("count %d", h.Count())
			}
		})
	}
}

func TestHistogramEmptyAndMerge(t *testing.T) {
	var a, b Histogram
	if a.Quantile(0.5) != 0 || a.Mean() != 0 || a.Max() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	a.Add(time.Millisecond)
	b.Add(3 * time.Millisecond)
	b.Add(5 * time.Millisecond)
	a.Merge(&b)
	a.Merge(&Histogram{})
	if a.Count() != 3 || a.Max() != 5*time.Millisecond || a.Mean() != 3*time.Millisecond {
		t.Fatalf("merged: count %d max %v mean %v", a.Count(), a.Max(), a.Mean())
	}
	var c Histogram
	c.Merge(&a)
	if c.Quantile(0.5) < 2900*time.Microsecond || c.Quantile(0.5) > 3100*time.Microsecond {
		t.Fatalf("median after merge into empty: %v", c.Quantile(0.5))
	}
}

func TestRecorderWindow(t *testing.T) {
	now := time.Now()
	r := NewRecorder(now.Add(-time.Hour), now.Add(time.Hour))
	r.Done("fetch", now, 100)
	r.Fail("fetch")
	late := NewRecorder(now.Add(time.Hour), time.Time{})
	late.Done("fetch", now, 100) // before the window: dropped
	late.Fail("fetch")
	r.Merge(late)
	s := r.Op("fetch")
	if s.Hist.Count() != 1 || s.Errors != 1 || s.Bytes != 100 {
		t.Fatalf("got count %d errors %d bytes %d", s.Hist.Count(), s.Errors, s.Bytes)
	}
	rows := r.Summaries(2 * time.Second)
	if len(rows) != 1 || rows[0].Op != "fetch" || rows[0].PerSec != 0.5 {
		t.Fatalf("summaries %+v", rows)
	}
}
