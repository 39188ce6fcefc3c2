// Command tracegen writes the tax-filing example's month-long workload
// trace (examples/tax-filing/trace.csv) for `rpacloud simulate`. It is
// deterministic: the same seed writes the same bytes.
//
//	go run ./examples/tax-filing/tracegen > examples/tax-filing/trace.csv
//
// The shape follows the seed's tax-filing service: companies file their
// monthly declarations in the first fifteen days, most of them in the last
// days before the deadline on the 15th, during office hours; the rest of
// the month sees corrections and late payments only. Most customers are
// small companies (a handful of declarations); a few accounting firms file
// for hundreds of clients at once.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"

	"github.com/rpacloud/rpacloud/core/scale/sim"
)

func main() {
	seed := flag.Uint64("seed", 2026, "random seed")
	days := flag.Int("days", 30, "length of the month")
	companies := flag.Int("companies", 400, "small and medium companies")
	firms := flag.Int("firms", 12, "accounting firms filing for many clients")
	flag.Parse()
	if err := generate(*seed, *days, *companies, *firms).Write(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tracegen:", err)
		os.Exit(1)
	}
}

// dayWeight is how much of a customer's monthly filing lands on day d
// (1-based): rising towards the deadline on the 15th, a trickle after.
func dayWeight(d int) float64 {
	switch {
	case d <= 15:
		return 1 + math.Pow(float64(d)/15, 3)*6
	default:
		return 0.25
	}
}

// officeSecond draws a submission time within day d, mostly 08:00-20:00
// with a morning and an afternoon hump.
func officeSecond(rnd *rand.Rand, d int) float64 {
	var h float64
	switch u := rnd.Float64(); {
	case u < 0.45:
		h = 9.5 + rnd.NormFloat64()*1.2
	case u < 0.9:
		h = 15 + rnd.NormFloat64()*1.8
	default:
		h = rnd.Float64() * 24
	}
	h = math.Min(math.Max(h, 0), 23.99)
	return float64(d-1)*86400 + math.Round(h*3600)
}

func pickDay(rnd *rand.Rand, days int) int {
	var total float64
	for d := 1; d <= days; d++ {
		total += dayWeight(d)
	}
	x := rnd.Float64() * total
	for d := 1; d <= days; d++ {
		if x -= dayWeight(d); x < 0 {
			return d
		}
	}
	return days
}

func generate(seed uint64, days, companies, firms int) sim.Trace {
	rnd := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+1))
	var t sim.Trace
	add := func(customer string, tasks int, dur float64) {
		d := pickDay(rnd, days)
		t = append(t, sim.Batch{
			SubmitAt: officeSecond(rnd, d), Customer: customer, Tasks: tasks, TaskDuration: dur,
			FailRate: 0.03, DataErrorRate: 0.01, HangRate: 0.002,
		})
	}
	for i := range companies {
		name := fmt.Sprintf("company-%03d", i+1)
		// VAT, corporate income tax prepayment, surcharges: a few
		// declarations, filed in one to three sittings.
		for range 1 + rnd.IntN(3) {
			add(name, 1+rnd.IntN(8), 150+float64(rnd.IntN(180)))
		}
	}
	for i := range firms {
		name := fmt.Sprintf("firm-%02d", i+1)
		// Payroll tax for every client, then VAT in several large orders.
		for range 3 + rnd.IntN(4) {
			add(name, 100+rnd.IntN(500), 180+float64(rnd.IntN(120)))
		}
	}
	sort.SliceStable(t, func(i, j int) bool { return t[i].SubmitAt < t[j].SubmitAt })
	return t
}
