// Package lifecycle is the delivery path of a process from seed 000 as a
// pure state machine: S1 VM acquired → S2 VM prepared → S3 developed or
// migrated → S4 developer test → S5 business trial run → accepted, with the
// seed's loops (a failed test goes back to S3 with the fault located, a
// failed trial back to S4). Every transition has a gate that looks only at
// the evidence handed to it, so the rules are tested exhaustively without a
// database; storing the history is the job of the service that uses it.
package lifecycle

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Stage is where a process stands: the step being worked on, or Accepted.
type Stage string

// Stages in delivery order. A process starts at S1 (a VM is being
// acquired) and is done at Accepted.
const (
	S1Acquire  Stage = "S1_ACQUIRE" // a VM is being acquired
	S2Prepare  Stage = "S2_PREPARE" // software, configuration files and network are being set up
	S3Develop  Stage = "S3_DEVELOP" // the process is developed on, or migrated to, the VM
	S4Test     Stage = "S4_TEST"    // the developer tests it on the VM
	S5Trial    Stage = "S5_TRIAL"   // business users run it for real
	Accepted   Stage = "ACCEPTED"   // the business accepted it
	StartStage       = S1Acquire
)

// Stages lists every stage in delivery order.
var Stages = []Stage{S1Acquire, S2Prepare, S3Develop, S4Test, S5Trial, Accepted}

// Valid reports whether s is a known stage.
func (s Stage) Valid() bool {
	for _, x := range Stages {
		if x == s {
			return true
		}
	}
	return false
}

// Step returns "S1".."S5" or "" for Accepted: the seed's step numbers.
func (s Stage) Step() string {
	if s == Accepted || !s.Valid() {
		return ""
	}
	return string(s[:2])
}

// Action is what someone asks to happen to a process.
type Action string

// Actions. Each is allowed from exactly one stage (see Transitions).
const (
	AcquireVM   Action = "ACQUIRE_VM"  // S1 → S2: the VM exists and answers
	PrepareVM   Action = "PREPARE_VM"  // S2 → S3: software, files, network applied
	Develop     Action = "DEVELOP"     // S3 → S4: developed or migrated
	PassTest    Action = "PASS_TEST"   // S4 → S5: a developer test run succeeded
	FailTest    Action = "FAIL_TEST"   // S4 → S3: the fault is located
	PassTrial   Action = "PASS_TRIAL"  // S5 → Accepted: trial succeeded, business signs off
	FailTrial   Action = "FAIL_TRIAL"  // S5 → S4: the trial failed
	Maintenance Action = "MAINTENANCE" // Accepted → S3: a change after acceptance (the seed's 维护修改)
)

// Actions lists every action.
var Actions = []Action{AcquireVM, PrepareVM, Develop, PassTest, FailTest, PassTrial, FailTrial, Maintenance}

// Transition is one edge of the machine.
type Transition struct {
	From   Stage
	Action Action
	To     Stage
}

// Transitions is the whole machine. Nothing else is allowed.
var Transitions = []Transition{
	{S1Acquire, AcquireVM, S2Prepare},
	{S2Prepare, PrepareVM, S3Develop},
	{S3Develop, Develop, S4Test},
	{S4Test, PassTest, S5Trial},
	{S4Test, FailTest, S3Develop},
	{S5Trial, PassTrial, Accepted},
	{S5Trial, FailTrial, S4Test},
	{Accepted, Maintenance, S3Develop},
}

// Next returns the stage an action leads to from a stage, and whether the
// action is allowed there at all (gates aside).
func Next(from Stage, a Action) (Stage, bool) {
	for _, t := range Transitions {
		if t.From == from && t.Action == a {
			return t.To, true
		}
	}
	return "", false
}

// Allowed returns the actions allowed from a stage, in table order.
func Allowed(from Stage) []Action {
	var out []Action
	for _, t := range Transitions {
		if t.From == from {
			out = append(out, t.Action)
		}
	}
	return out
}

// FaultCategory is where a failed test or trial was traced to (the seed:
// "系统原因、网络原因或者其他原因").
type FaultCategory string

// Fault categories.
const (
	FaultProcess FaultCategory = "process" // the automation itself
	FaultSystem  FaultCategory = "system"  // the target system or the VM's software
	FaultNetwork FaultCategory = "network" // intranet access, proxy, DNS
	FaultData    FaultCategory = "data"    // the business data given to it
	FaultOther   FaultCategory = "other"
)

// FaultCategories lists the valid categories.
var FaultCategories = []FaultCategory{FaultProcess, FaultSystem, FaultNetwork, FaultData, FaultOther}

// Fault is the located cause of a failed test or trial.
type Fault struct {
	Category    FaultCategory
	Description string
}

// RunPurpose says what a linked run proved.
type RunPurpose string

// Purposes of linked runs.
const (
	TestRun  RunPurpose = "test"
	TrialRun RunPurpose = "trial"
)

// Run is the outcome of a batch run on the process's own pool, linked as
// evidence. A trial run *is* a batch on the platform: the service fills
// this from the batch row, never from what the caller claims.
type Run struct {
	BatchID   int
	Purpose   RunPurpose
	Process   string // the process the batch ran
	Pool      string // the pool it ran in
	Total     int
	Succeeded int
	Failed    int
	Cancelled int // tasks an operator cancelled (batch cancel, task stop)
	Finished  bool
	StartedAt time.Time
	EndedAt   time.Time
}

// Clean reports a finished run in which every task succeeded.
func (r Run) Clean() bool {
	return r.Finished && r.Total > 0 && r.Succeeded == r.Total && r.Failed == 0 && r.Cancelled == 0
}

// Access is a remote-access session recorded for a step: who connected to
// which VM, by which protocol.
type Access struct {
	User     string
	VM       string
	Protocol string
	Stage    Stage
	At       time.Time
}

// SignOff is the business user's acceptance.
type SignOff struct {
	Name       string
	Department string
	Comment    string
}

// Evidence is everything a gate may look at. The service fills the parts
// that come from the platform (VMs, runs, access sessions, requirements);
// the caller supplies the human parts (checklist, fault, sign-off, note).
type Evidence struct {
	Actor     string
	At        time.Time
	Checklist map[string]bool // item → done
	Note      string
	Fault     *Fault
	SignOff   *SignOff
	Runs      []Run
	// RunningVMs are the process pool's VMs that are up, by name.
	RunningVMs []string
	// Endpoints are remote-access endpoints the provider reported, as
	// "protocol://host:port".
	Endpoints []string
	Access    []Access
}

// Requirements are what the process's configuration demands of the gates.
type Requirements struct {
	Process string
	Pool    string
	// Software and ConfigFiles are the pool's declared VM preparation;
	// each must be ticked on the PrepareVM checklist.
	Software    []string
	ConfigFiles []string
	Network     string // "" = no intranet profile to apply
	// Credentials the process needs: the business user must have
	// onboarded them into Vault before acceptance (seed step 8).
	Credentials []string
}

// Checklist item names. Software and files are prefixed so one checklist
// can hold every kind of item without collisions.
const (
	ItemSoftwarePrefix = "software:"
	ItemFilePrefix     = "file:"
	ItemNetwork        = "network:applied"
	ItemPackage        = "package:deployed"
	ItemManualHanded   = "documents:handed-over"
	ItemCredsPrefix    = "credentials:"
)

// RequiredItems returns the checklist items the gate of an action demands,
// sorted, for forms and documents.
func RequiredItems(a Action, req Requirements) []string {
	var out []string
	switch a {
	case PrepareVM:
		for _, s := range req.Software {
			out = append(out, ItemSoftwarePrefix+s)
		}
		for _, f := range req.ConfigFiles {
			out = append(out, ItemFilePrefix+f)
		}
		if req.Network != "" {
			out = append(out, ItemNetwork)
		}
	case Develop:
		out = append(out, ItemPackage)
	case PassTrial:
		out = append(out, ItemManualHanded)
		for _, c := range req.Credentials {
			out = append(out, ItemCredsPrefix+c)
		}
	}
	sort.Strings(out)
	return out
}

// ErrRefused is wrapped by every refusal, so callers can tell a refused
// transition from a storage failure.
var ErrRefused = errors.New("transition refused")

// RefusedError says why a transition was refused: every unmet condition,
// not just the first, so a person fixes them all in one go.
type RefusedError struct {
	Process string
	From    Stage
	Action  Action
	Reasons []string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("process %q: %s at %s refused: %s", e.Process, e.Action, e.From, strings.Join(e.Reasons, "; "))
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Decide checks one transition: whether the action is allowed at the
// stage and whether its gate is met by the evidence. It returns the stage
// the process moves to, or a *RefusedError listing every unmet condition.
func Decide(from Stage, a Action, ev Evidence, req Requirements) (Stage, error) {
	refuse := func(reasons ...string) (Stage, error) {
		return "", &RefusedError{Process: req.Process, From: from, Action: a, Reasons: reasons}
	}
	if !from.Valid() {
		return refuse(fmt.Sprintf("unknown stage %q", from))
	}
	to, ok := Next(from, a)
	if !ok {
		allowed := Allowed(from)
		names := make([]string, len(allowed))
		for i, x := range allowed {
			names[i] = string(x)
		}
		return refuse(fmt.Sprintf("%s is not allowed at %s; allowed: %s", a, from, strings.Join(names, ", ")))
	}
	if r := gate(a, ev, req); len(r) > 0 {
		return refuse(r...)
	}
	return to, nil
}

func gate(a Action, ev Evidence, req Requirements) []string {
	var r []string
	if strings.TrimSpace(ev.Actor) == "" {
		r = append(r, "no actor: every step records who did it")
	}
	if ev.At.IsZero() {
		r = append(r, "no time: every step records when it was done")
	}
	for _, item := range RequiredItems(a, req) {
		if !ev.Checklist[item] {
			r = append(r, fmt.Sprintf("checklist item %q is not done", item))
		}
	}
	switch a {
	case AcquireVM:
		if len(ev.RunningVMs) == 0 {
			r = append(r, fmt.Sprintf("pool %q has no running VM yet", req.Pool))
		}
	case PrepareVM:
		if len(ev.RunningVMs) == 0 {
			r = append(r, fmt.Sprintf("pool %q has no running VM to prepare", req.Pool))
		}
		if len(ev.Endpoints) == 0 {
			r = append(r, "no remote-access endpoint reported for the pool's VMs: developers could not connect")
		}
	case Develop:
		if !accessed(ev.Access, S3Develop) {
			r = append(r, "nobody connected to the VM for S3: develop or migrate the process through a recorded remote-access session")
		}
	case PassTest:
		r = append(r, runGate(ev.Runs, TestRun, req, true)...)
	case FailTest, FailTrial:
		r = append(r, faultGate(ev.Fault)...)
		if a == FailTrial {
			// A trial failure must be a trial that ran, or the business
			// user's located fault; a run with no failures cannot be it.
			for _, run := range ev.Runs {
				if run.Purpose == TrialRun && run.Clean() {
					r = append(r, fmt.Sprintf("batch %d succeeded completely; it cannot be the failing trial", run.BatchID))
				}
			}
		}
	case PassTrial:
		r = append(r, runGate(ev.Runs, TrialRun, req, false)...)
		if !accessed(ev.Access, S5Trial) {
			r = append(r, "no business user connected to the VM for S5: the trial is run by business users through remote access")
		}
		switch {
		case ev.SignOff == nil:
			r = append(r, "no business sign-off")
		default:
			if strings.TrimSpace(ev.SignOff.Name) == "" {
				r = append(r, "the sign-off has no name")
			}
			if strings.TrimSpace(ev.SignOff.Department) == "" {
				r = append(r, "the sign-off has no department")
			}
		}
	case Maintenance:
		if strings.TrimSpace(ev.Note) == "" {
			r = append(r, "say why the accepted process is reopened (note)")
		}
	}
	return r
}

func accessed(sessions []Access, s Stage) bool {
	for _, a := range sessions {
		if a.Stage == s && a.User != "" {
			return true
		}
	}
	return false
}

func faultGate(f *Fault) []string {
	if f == nil {
		return []string{"no fault located: say whether it is a process, system, network, data or other fault, and what"}
	}
	var r []string
	valid := false
	for _, c := range FaultCategories {
		if c == f.Category {
			valid = true
		}
	}
	if !valid {
		r = append(r, fmt.Sprintf("fault category %q is not one of process, system, network, data, other", f.Category))
	}
	if strings.TrimSpace(f.Description) == "" {
		r = append(r, "the fault has no description")
	}
	return r
}

// runGate wants at least one linked run of the purpose, of this process in
// its own pool, finished and fully successful. Runs of another process or
// pool, or unfinished ones, are refused outright: they prove nothing. For
// tests (tolerateFailed) an earlier failed run beside a clean one is normal
// debugging; for trials every linked run must be clean, because a business
// trial that failed is not outweighed by another that passed.
func runGate(runs []Run, p RunPurpose, req Requirements, tolerateFailed bool) []string {
	var r []string
	clean := 0
	for _, run := range runs {
		if run.Purpose != p {
			continue
		}
		switch {
		case run.Process != req.Process:
			r = append(r, fmt.Sprintf("batch %d ran process %q, not %q", run.BatchID, run.Process, req.Process))
		case run.Pool != req.Pool:
			r = append(r, fmt.Sprintf("batch %d ran in pool %q, not the process's pool %q", run.BatchID, run.Pool, req.Pool))
		case !run.Finished:
			r = append(r, fmt.Sprintf("%s batch %d has not finished (%d of %d tasks done)", p, run.BatchID, run.Succeeded+run.Failed+run.Cancelled, run.Total))
		case !run.Clean():
			if !tolerateFailed {
				msg := fmt.Sprintf("%s batch %d had %d failed of %d tasks", p, run.BatchID, run.Failed, run.Total)
				if run.Cancelled > 0 {
					msg += fmt.Sprintf(" and %d cancelled", run.Cancelled)
				}
				r = append(r, msg)
			}
		default:
			clean++
		}
	}
	if clean == 0 {
		r = append(r, fmt.Sprintf("no finished, fully successful %s run of %q linked: run a batch in pool %q and link it", p, req.Process, req.Pool))
	}
	return r
}

// Record is one applied transition: the history row.
type Record struct {
	Seq      int
	From, To Stage
	Action   Action
	Evidence Evidence
}

// Replay checks a stored history from the start stage and returns the
// stage it ends at. A history that does not replay is corrupt.
func Replay(history []Record) (Stage, error) {
	cur := StartStage
	for i, h := range history {
		if h.From != cur {
			return cur, fmt.Errorf("history entry %d starts at %s but the process was at %s", i+1, h.From, cur)
		}
		to, ok := Next(h.From, h.Action)
		if !ok || to != h.To {
			return cur, fmt.Errorf("history entry %d: %s from %s does not lead to %s", i+1, h.Action, h.From, h.To)
		}
		cur = to
	}
	return cur, nil
}
