package fleetbench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(i + 1) // 1..100
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}, {0.001, 1}} {
		if got := percentile(xs, c.q); got != c.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
	if got := percentile([]float64{7}, 0.99); got != 7 {
		t.Errorf("percentile of one = %v", got)
	}
}

// The reservoir keeps at most its capacity, the count and the maximum
// exact, and its percentiles close to the stream's.
func TestSamplerBounded(t *testing.T) {
	s := newSampler(1000)
	for i := 1; i <= 100_000; i++ {
		s.add(time.Duration(i) * time.Millisecond)
	}
	if len(s.samples) != 1000 {
		t.Fatalf("%d samples kept, want 1000", len(s.samples))
	}
	l := s.latency()
	if l.N != 100_000 || l.Max != 100_000 {
		t.Fatalf("n %d max %v, want 100000 and 100000", l.N, l.Max)
	}
	// A uniform sample of 1000 from 1..100000: the median within 10%.
	if l.P50 < 45_000 || l.P50 > 55_000 || l.P99 < 97_000 {
		t.Fatalf("p50 %v p99 %v, want about 50000 and 99000", l.P50, l.P99)
	}
	if e := newSampler(10).latency(); e != (Latency{}) {
		t.Fatalf("empty sampler: %+v", e)
	}
}
