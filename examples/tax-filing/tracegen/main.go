// Command tracegen writes workload traces for `rpacloud simulate`: the
// tax-filing example's month (examples/tax-filing/trace.csv, the default
// shape) and three shapes that test a dispatch policy's fairness
// (-shape whale|deadline|sawtooth, written to
// examples/tax-filing/simulation/). It is deterministic: the same flags
// write the same bytes.
//
//	go run ./examples/tax-filing/tracegen > examples/tax-filing/trace.csv
//	go run ./examples/tax-filing/tracegen -shape whale > examples/tax-filing/simulation/whale.csv
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
	shape := flag.String("shape", "month", "month | whale | deadline | sawtooth")
	flag.Parse()
	var t sim.Trace
	switch *shape {
	case "month":
		t = generate(*seed, *days, *companies, *firms)
	case "whale":
		t = whale(*seed, *companies)
	case "deadline":
		t = deadline(*seed, *companies, *firms)
	case "sawtooth":
		t = sawtooth(*seed, *companies)
	default:
		fmt.Fprintf(os.Stderr, "tracegen: -shape %q: want month, whale, deadline or sawtooth\n", *shape)
		os.Exit(2)
	}
	if err := t.Write(os.Stdout); err != nil {
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

// rates are the example's failure rates: 3 % of attempts fail and are
// retried, 1 % are data errors, 0.2 % hang until the deadline.
func rated(b sim.Batch) sim.Batch {
	b.FailRate, b.DataErrorRate, b.HangRate = 0.03, 0.01, 0.002
	return b
}

// companyBatch is a small company's sitting: 1–8 declarations of 2½–5½
// minutes.
func companyBatch(rnd *rand.Rand, name string, at float64) sim.Batch {
	return rated(sim.Batch{SubmitAt: at, Customer: name, Tasks: 1 + rnd.IntN(8), TaskDuration: 150 + float64(rnd.IntN(180))})
}

func sorted(t sim.Trace) sim.Trace {
	sort.SliceStable(t, func(i, j int) bool { return t[i].SubmitAt < t[j].SubmitAt })
	return t
}

// whale is a working week of small companies' filings in office hours,
// and one customer (a bank's payroll department) submitting 6 000 tasks
// at once on Tuesday at 09:00, in the morning hump: the order weighted
// serves in proportion to its size and oldest_served like one diner.
func whale(seed uint64, companies int) sim.Trace {
	rnd := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+2))
	var t sim.Trace
	for i := range companies {
		name := fmt.Sprintf("company-%03d", i+1)
		for range 1 + rnd.IntN(3) {
			t = append(t, companyBatch(rnd, name, officeSecond(rnd, 1+rnd.IntN(5))))
		}
	}
	t = append(t, rated(sim.Batch{SubmitAt: 86400 + 9*3600, Customer: "whale", Tasks: 6000, TaskDuration: 200}))
	return sorted(t)
}

// deadline is the month's peak alone, sharper: every company and firm
// files in the two days before the deadline, most on its eve.
func deadline(seed uint64, companies, firms int) sim.Trace {
	rnd := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+3))
	var t sim.Trace
	day := func() int {
		if rnd.Float64() < 0.7 {
			return 2
		}
		return 1
	}
	for i := range companies {
		name := fmt.Sprintf("company-%03d", i+1)
		for range 1 + rnd.IntN(3) {
			t = append(t, companyBatch(rnd, name, officeSecond(rnd, day())))
		}
	}
	for i := range firms {
		name := fmt.Sprintf("firm-%02d", i+1)
		for range 3 + rnd.IntN(4) {
			t = append(t, rated(sim.Batch{SubmitAt: officeSecond(rnd, day()), Customer: name,
				Tasks: 100 + rnd.IntN(500), TaskDuration: 180 + float64(rnd.IntN(120))}))
		}
	}
	return sorted(t)
}

// sawtooth is three days of load that ramps up for two hours and drops at
// once, twelve times a day (a portal that releases work in waves): the
// arrival rate climbs from nothing to its peak in each tooth, with a
// medium customer's order of 100–300 tasks at the top of every tooth.
func sawtooth(seed uint64, companies int) sim.Trace {
	rnd := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+4))
	const tooth = 2 * 3600.0
	var t sim.Trace
	for k := range 36 {
		start := float64(k) * tooth
		for i := range companies / 6 {
			// Density rising linearly over the tooth: the square root of a
			// uniform draw.
			at := start + math.Sqrt(rnd.Float64())*tooth
			t = append(t, companyBatch(rnd, fmt.Sprintf("company-%03d", 1+(k*7+i)%companies), at))
		}
		t = append(t, rated(sim.Batch{SubmitAt: start + tooth*0.9, Customer: fmt.Sprintf("firm-%02d", 1+k%12),
			Tasks: 100 + rnd.IntN(200), TaskDuration: 180 + float64(rnd.IntN(120))}))
	}
	return sorted(t)
}
