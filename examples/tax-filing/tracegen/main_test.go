package main

import (
	"bytes"
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
