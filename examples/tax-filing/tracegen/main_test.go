package main

import (
	"bytes"
	"math"
	"os"
	"testing"

	"github.com/rpacloud/rpacloud/core/scale/sim"
)

// The committed trace is exactly what the generator writes, so it can be
// regenerated and reviewed rather than edited.
func TestCommittedTraceIsGenerated(t *testing.T) {
	var b bytes.Buffer
	if err := generate(2026, 30, 400, 12).Write(&b); err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../trace.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), committed) {
		t.Fatal("examples/tax-filing/trace.csv differs from the generator's output: run go run ./examples/tax-filing/tracegen > examples/tax-filing/trace.csv")
	}
	tr, err := sim.ReadTrace(bytes.NewReader(committed), "trace.csv")
	if err != nil {
		t.Fatal(err)
	}
	var first, rest int
	for _, bt := range tr {
		if bt.SubmitAt < 15*86400 {
			first += bt.Tasks
		} else {
			rest += bt.Tasks
		}
	}
	if first < 3*rest {
		t.Errorf("the peak is not before the 15th: %d tasks in days 1-15, %d after", first, rest)
	}
}

// The fairness traces are the generator's output too, and have their
// shapes: one order far bigger than the rest; most tasks on the deadline's
// eve; each tooth's arrivals denser at its end than at its start.
func TestCommittedShapesAreGenerated(t *testing.T) {
	for name, tr := range map[string]sim.Trace{
		"whale":    whale(2026, 400),
		"deadline": deadline(2026, 400, 12),
		"sawtooth": sawtooth(2026, 400),
	} {
		var b bytes.Buffer
		if err := tr.Write(&b); err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile("../simulation/" + name + ".csv")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), committed) {
			t.Fatalf("examples/tax-filing/simulation/%s.csv differs from the generator's output: run go run ./examples/tax-filing/tracegen -shape %s > examples/tax-filing/simulation/%s.csv", name, name, name)
		}
		switch name {
		case "whale":
			biggest, rest := 0, 0
			for _, bt := range tr {
				if bt.Tasks > biggest {
					rest += biggest
					biggest = bt.Tasks
				} else {
					rest += bt.Tasks
				}
			}
			if biggest < rest {
				t.Errorf("whale: the biggest order (%d tasks) is smaller than all the others together (%d)", biggest, rest)
			}
		case "deadline":
			eve := 0
			for _, bt := range tr {
				if bt.SubmitAt >= 86400 {
					eve += bt.Tasks
				}
			}
			if eve*2 < tr.Tasks() {
				t.Errorf("deadline: %d of %d tasks on the eve", eve, tr.Tasks())
			}
		case "sawtooth":
			early, late := 0, 0
			for _, bt := range tr {
				if math.Mod(bt.SubmitAt, 7200) < 3600 {
					early++
				} else {
					late++
				}
			}
			if late < 2*early {
				t.Errorf("sawtooth: %d batches in the first halves of the teeth, %d in the second", early, late)
			}
		}
	}
}
