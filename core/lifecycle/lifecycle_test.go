package lifecycle

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var at = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func req() Requirements {
	return Requirements{
		Process: "vat-filing", Pool: "tax-rpa",
		Software:    []string{"UiPath Robot 24.10", "WPS Office"},
		ConfigFiles: []string{`C:\rpa\config.json`},
		Network:     "tax-bureau",
		Credentials: []string{"etax/acme"},
	}
}

// goodEvidence meets the gate of a.
func goodEvidence(a Action) Evidence {
	r := req()
	ev := Evidence{Actor: "li.wei", At: at, Checklist: map[string]bool{}}
	for _, item := range RequiredItems(a, r) {
		ev.Checklist[item] = true
	}
	switch a {
	case AcquireVM:
		ev.RunningVMs = []string{"tax-rpa-1"}
	case PrepareVM:
		ev.RunningVMs = []string{"tax-rpa-1"}
		ev.Endpoints = []string{"rdp://10.0.0.5:3389"}
	case Develop:
		ev.Access = []Access{{User: "dev.zhang", VM: "tax-rpa-1", Protocol: "rdp", Stage: S3Develop, At: at}}
	case PassTest:
		ev.Runs = []Run{{BatchID: 7, Purpose: TestRun, Process: r.Process, Pool: r.Pool, Total: 3, Succeeded: 3, Finished: true}}
	case FailTest, FailTrial:
		ev.Fault = &Fault{Category: FaultNetwork, Description: "portal unreachable through the proxy"}
	case PassTrial:
		ev.Runs = []Run{{BatchID: 9, Purpose: TrialRun, Process: r.Process, Pool: r.Pool, Total: 20, Succeeded: 20, Finished: true}}
		ev.Access = []Access{{User: "wang.fang", VM: "tax-rpa-1", Protocol: "rdp", Stage: S5Trial, At: at}}
		ev.SignOff = &SignOff{Name: "Wang Fang", Department: "acme-finance"}
	case Maintenance:
		ev.Note = "the bureau changed its form"
	}
	return ev
}

// TestEveryStageAndAction tries every action at every stage, with
// evidence that meets its gate: exactly the table's edges are allowed and
// lead where the table says; everything else is refused naming the
// allowed actions.
func TestEveryStageAndAction(t *testing.T) {
	allowedCount := 0
	for _, from := range Stages {
		for _, a := range Actions {
			to, err := Decide(from, a, goodEvidence(a), req())
			want, ok := Next(from, a)
			if ok {
				allowedCount++
				if err != nil || to != want {
					t.Errorf("%s at %s: got (%s, %v), want %s", a, from, to, err, want)
				}
				continue
			}
			var re *RefusedError
			if !errors.As(err, &re) || !errors.Is(err, ErrRefused) {
				t.Fatalf("%s at %s: want a refusal, got (%s, %v)", a, from, to, err)
			}
			if !strings.Contains(err.Error(), "is not allowed at "+string(from)) {
				t.Errorf("%s at %s: unclear refusal %q", a, from, err)
			}
			for _, x := range Allowed(from) {
				if !strings.Contains(err.Error(), string(x)) {
					t.Errorf("%s at %s: refusal %q does not name allowed action %s", a, from, err, x)
				}
			}
		}
	}
	if allowedCount != len(Transitions) {
		t.Fatalf("allowed %d transitions, table has %d", allowedCount, len(Transitions))
	}
}

// TestEveryAllowedTransitionRefusedWithoutEvidence: no gate is open with
// empty evidence.
func TestEveryAllowedTransitionRefusedWithoutEvidence(t *testing.T) {
	for _, tr := range Transitions {
		_, err := Decide(tr.From, tr.Action, Evidence{}, req())
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s at %s with no evidence: %v", tr.Action, tr.From, err)
			continue
		}
		for _, want := range []string{"no actor", "no time"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q lacks %q", tr.Action, err, want)
			}
		}
	}
}

func TestSeedPath(t *testing.T) {
	path := []Action{AcquireVM, PrepareVM, Develop, FailTest, Develop, PassTest, FailTrial, PassTest, PassTrial, Maintenance, Develop}
	want := []Stage{S2Prepare, S3Develop, S4Test, S3Develop, S4Test, S5Trial, S4Test, S5Trial, Accepted, S3Develop, S4Test}
	cur := StartStage
	var hist []Record
	for i, a := range path {
		to, err := Decide(cur, a, goodEvidence(a), req())
		if err != nil {
			t.Fatalf("step %d %s: %v", i, a, err)
		}
		if to != want[i] {
			t.Fatalf("step %d %s: at %s, want %s", i, a, to, want[i])
		}
		hist = append(hist, Record{Seq: i + 1, From: cur, To: to, Action: a})
		cur = to
	}
	end, err := Replay(hist)
	if err != nil || end != cur {
		t.Fatalf("replay: %s %v", end, err)
	}
	hist[3].To = S5Trial
	if _, err := Replay(hist); err == nil {
		t.Fatal("a corrupt history replayed")
	}
}

// TestGates removes one piece of evidence at a time and expects the
// refusal to name it.
func TestGates(t *testing.T) {
	type tc struct {
		name   string
		action Action
		mutate func(*Evidence)
		want   string
	}
	cases := []tc{
		{"acquire without VM", AcquireVM, func(e *Evidence) { e.RunningVMs = nil }, `pool "tax-rpa" has no running VM yet`},
		{"prepare without software", PrepareVM, func(e *Evidence) { delete(e.Checklist, "software:WPS Office") }, `checklist item "software:WPS Office" is not done`},
		{"prepare software unticked", PrepareVM, func(e *Evidence) { e.Checklist["software:UiPath Robot 24.10"] = false }, `"software:UiPath Robot 24.10" is not done`},
		{"prepare without file", PrepareVM, func(e *Evidence) { delete(e.Checklist, `file:C:\rpa\config.json`) }, `file:C:\\rpa\\config.json`},
		{"prepare without network", PrepareVM, func(e *Evidence) { delete(e.Checklist, ItemNetwork) }, `"network:applied" is not done`},
		{"prepare without endpoint", PrepareVM, func(e *Evidence) { e.Endpoints = nil }, "no remote-access endpoint"},
		{"prepare without VM", PrepareVM, func(e *Evidence) { e.RunningVMs = nil }, "no running VM to prepare"},
		{"develop without package", Develop, func(e *Evidence) { delete(e.Checklist, ItemPackage) }, `"package:deployed" is not done`},
		{"develop without session", Develop, func(e *Evidence) { e.Access = nil }, "nobody connected to the VM for S3"},
		{"develop with session of another step", Develop, func(e *Evidence) { e.Access[0].Stage = S4Test }, "nobody connected to the VM for S3"},
		{"pass test without run", PassTest, func(e *Evidence) { e.Runs = nil }, "no finished, fully successful test run"},
		{"pass test with trial run", PassTest, func(e *Evidence) { e.Runs[0].Purpose = TrialRun }, "no finished, fully successful test run"},
		{"pass test unfinished", PassTest, func(e *Evidence) { e.Runs[0].Finished = false; e.Runs[0].Succeeded = 1 }, "test batch 7 has not finished (1 of 3 tasks done)"},
		{"pass test failed", PassTest, func(e *Evidence) { e.Runs[0].Succeeded, e.Runs[0].Failed = 2, 1 }, "no finished, fully successful"},
		{"pass test empty batch", PassTest, func(e *Evidence) { e.Runs[0].Total, e.Runs[0].Succeeded = 0, 0 }, "no finished, fully successful"},
		{"pass test other process", PassTest, func(e *Evidence) { e.Runs[0].Process = "payroll-tax" }, `batch 7 ran process "payroll-tax", not "vat-filing"`},
		{"pass test other pool", PassTest, func(e *Evidence) { e.Runs[0].Pool = "tax-crawler" }, `batch 7 ran in pool "tax-crawler"`},
		{"fail test without fault", FailTest, func(e *Evidence) { e.Fault = nil }, "no fault located"},
		{"fail test bad category", FailTest, func(e *Evidence) { e.Fault.Category = "weather" }, `fault category "weather"`},
		{"fail test no description", FailTest, func(e *Evidence) { e.Fault.Description = " " }, "the fault has no description"},
		{"fail trial with clean trial", FailTrial, func(e *Evidence) {
			e.Runs = []Run{{BatchID: 4, Purpose: TrialRun, Process: "vat-filing", Pool: "tax-rpa", Total: 1, Succeeded: 1, Finished: true}}
		}, "batch 4 succeeded completely"},
		{"pass trial without run", PassTrial, func(e *Evidence) { e.Runs = nil }, "no finished, fully successful trial run"},
		{"pass trial with a failed trial", PassTrial, func(e *Evidence) {
			e.Runs = append(e.Runs, Run{BatchID: 10, Purpose: TrialRun, Process: "vat-filing", Pool: "tax-rpa", Total: 5, Succeeded: 4, Failed: 1, Finished: true})
		}, "trial batch 10 had 1 failed of 5 tasks"},
		{"pass trial without session", PassTrial, func(e *Evidence) { e.Access = nil }, "no business user connected"},
		{"pass trial without sign-off", PassTrial, func(e *Evidence) { e.SignOff = nil }, "no business sign-off"},
		{"pass trial sign-off without name", PassTrial, func(e *Evidence) { e.SignOff.Name = "" }, "the sign-off has no name"},
		{"pass trial sign-off without department", PassTrial, func(e *Evidence) { e.SignOff.Department = "" }, "the sign-off has no department"},
		{"pass trial without credentials", PassTrial, func(e *Evidence) { delete(e.Checklist, "credentials:etax/acme") }, `"credentials:etax/acme" is not done`},
		{"pass trial without documents", PassTrial, func(e *Evidence) { delete(e.Checklist, ItemManualHanded) }, `"documents:handed-over" is not done`},
		{"maintenance without reason", Maintenance, func(e *Evidence) { e.Note = "" }, "say why"},
		{"no actor", AcquireVM, func(e *Evidence) { e.Actor = "" }, "no actor"},
		{"no time", AcquireVM, func(e *Evidence) { e.At = time.Time{} }, "no time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var from Stage
			for _, tr := range Transitions {
				if tr.Action == c.action {
					from = tr.From
				}
			}
			ev := goodEvidence(c.action)
			c.mutate(&ev)
			_, err := Decide(from, c.action, ev, req())
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal containing %q", err, c.want)
			}
		})
	}
}

func TestNoNetworkNoNetworkItem(t *testing.T) {
	r := req()
	r.Network = ""
	for _, item := range RequiredItems(PrepareVM, r) {
		if item == ItemNetwork {
			t.Fatal("network item required without a network profile")
		}
	}
}

func TestUnknownStage(t *testing.T) {
	if _, err := Decide("S9", AcquireVM, goodEvidence(AcquireVM), req()); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `unknown stage "S9"`) {
		t.Fatal(err)
	}
	if Stage("S9").Step() != "" || Accepted.Step() != "" || S4Test.Step() != "S4" {
		t.Fatal("Step")
	}
}

// TestRandomWalks: any sequence of requests, with arbitrary evidence,
// only ever moves along the table, and the recorded history replays.
func TestRandomWalks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cur := StartStage
		var hist []Record
		n := rapid.IntRange(0, 40).Draw(t, "steps")
		for i := 0; i < n; i++ {
			a := rapid.SampledFrom(Actions).Draw(t, "action")
			ev := goodEvidence(a)
			if rapid.Bool().Draw(t, "spoil") {
				ev.Actor = ""
			}
			to, err := Decide(cur, a, ev, req())
			if err != nil {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("non-refusal error %v", err)
				}
				continue
			}
			if want, ok := Next(cur, a); !ok || want != to {
				t.Fatalf("%s at %s went to %s", a, cur, to)
			}
			hist = append(hist, Record{From: cur, To: to, Action: a})
			cur = to
		}
		if end, err := Replay(hist); err != nil || end != cur {
			t.Fatalf("replay %s %v", end, err)
		}
	})
}
