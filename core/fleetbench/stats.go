package fleetbench

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// reservoirSize bounds the samples one latency keeps: percentiles come
// from a uniform sample of at most this many (Vitter's algorithm R), the
// maximum and the count are exact, so memory does not grow with the run.
const reservoirSize = 100_000

// Latency is one latency's figures, in milliseconds.
type Latency struct {
	N   int64   `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// sampler collects durations from many goroutines.
type sampler struct {
	mu      sync.Mutex
	n       int64
	max     float64
	samples []float64
	cap     int
	rng     *rand.Rand
}

func newSampler(capacity int) *sampler {
	return &sampler{cap: capacity, rng: rand.New(rand.NewPCG(1, 2))}
}

func (s *sampler) add(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.max = math.Max(s.max, ms)
	if len(s.samples) < s.cap {
		s.samples = append(s.samples, ms)
		return
	}
	if i := s.rng.Int64N(s.n); i < int64(s.cap) {
		s.samples[i] = ms
	}
}

func (s *sampler) latency() Latency {
	s.mu.Lock()
	xs := append([]float64(nil), s.samples...)
	l := Latency{N: s.n, Max: round2(s.max)}
	s.mu.Unlock()
	sort.Float64s(xs)
	l.P50, l.P99 = round2(percentile(xs, 0.50)), round2(percentile(xs, 0.99))
	return l
}

// percentile of sorted samples, nearest rank (the smallest sample with at
// least q of the samples at or below it); 0 for none.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
