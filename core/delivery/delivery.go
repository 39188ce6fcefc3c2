// Package delivery is the storage side of a process's delivery: it applies
// lifecycle transitions (core/lifecycle decides, this package gathers the
// evidence from the platform and appends the history), records remote
// access, keeps the run schedule's API bookings beside the HCL ones
// (core/schedule finds the clashes), and gathers the data the documents
// are made of (core/documents renders them). The API and the CLI use it.
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/documents"
	"github.com/rpacloud/rpacloud/core/lifecycle"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/accesssession"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/lifecycletransition"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/remoteendpoint"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/vm"
)

// Errors the API maps to codes.
var (
	ErrNotFound  = errors.New("not found")
	ErrForbidden = errors.New("forbidden")
	ErrBadInput  = errors.New("bad input")
	// ErrConflict: the process changed between reading and writing (a
	// concurrent transition); reload and try again.
	ErrConflict = errors.New("changed concurrently")
)

// config is the configuration now, nil when there is none.
func (s *Service) config() *config.Config {
	if s.Config == nil {
		return nil
	}
	return s.Config.Current()
}

// Service is the delivery side of the platform for one daemon.
type Service struct {
	Client *ent.Client
	// Config is read at each use, so a reload reaches the service; nil:
	// no configuration (tests of the database side only).
	Config config.Live
	// PublicURL is the daemon's URL, for download links.
	PublicURL string
	Printer   documents.Printer
	Now       func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// sys is the context of the service's own reads and writes: callers are
// authorised by the service before it touches the database.
func sys(ctx context.Context) context.Context { return privacy.DecisionContext(ctx, privacy.Allow) }

func (s *Service) cfgProcess(name string) (config.Process, bool) {
	if s.config() != nil {
		for _, p := range s.config().Processes {
			if p.Name == name {
				return p, true
			}
		}
	}
	return config.Process{}, false
}

func (s *Service) cfgPool(name string) (config.Pool, bool) {
	if s.config() != nil {
		for _, p := range s.config().Pools {
			if p.Name == name {
				return p, true
			}
		}
	}
	return config.Pool{}, false
}

func (s *Service) cfgNetwork(name string) (config.Network, bool) {
	if s.config() != nil {
		for _, n := range s.config().Networks {
			if n.Name == name {
				return n, true
			}
		}
	}
	return config.Network{}, false
}

// processByName loads a process with its pool, if pr may see it. A
// process pr may not see answers exactly like one that does not exist, so
// the answer tells nobody which names another customer uses.
func (s *Service) processByName(ctx context.Context, pr viewer.Principal, name string) (*ent.Process, error) {
	p, err := s.Client.Process.Query().Where(process.Name(name)).WithPool().Only(sys(ctx))
	if err == nil && !s.visible(ctx, pr, p) {
		err = &ent.NotFoundError{}
	}
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("%w: no process %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("process %q: %w", name, err)
	}
	return p, nil
}

// visible is the customer rule (viewer.Owned) for a process in this room:
// shared processes are everyone's, owned ones their owner's — and, since
// a company steers its departments' processes here, the owner's parent's.
func (s *Service) visible(ctx context.Context, pr viewer.Principal, proc *ent.Process) bool {
	vis, cid := pr.Visibility()
	switch {
	case vis == viewer.SeesAll || proc.OwnerID == nil:
		return true
	case vis == viewer.SeesShared:
		return false
	}
	return s.seesCustomer(ctx, cid, *proc.OwnerID)
}

// seesCustomer: a principal bound to customer cid sees id when it is cid
// or one of cid's departments.
func (s *Service) seesCustomer(ctx context.Context, cid, id int) bool {
	if id == cid {
		return true
	}
	c, err := s.Client.Customer.Get(sys(ctx), id)
	return err == nil && c.ParentID != nil && *c.ParentID == cid
}

// mayRead: any person may read delivery state; robots read no customer
// data.
func mayRead(p viewer.Principal) error {
	if p.Role == viewer.Robot {
		return fmt.Errorf("%w: robots cannot read delivery data", ErrForbidden)
	}
	return nil
}

// mayChange lets admins change any process and operators those owned by
// their customer or one of its departments.
func (s *Service) mayChange(ctx context.Context, p viewer.Principal, proc *ent.Process) error {
	switch p.Role {
	case viewer.Admin:
		return nil
	case viewer.Operator:
	default:
		return fmt.Errorf("%w: role %s may not change process %q", ErrForbidden, p.Role, proc.Name)
	}
	if p.CustomerID == nil {
		return nil
	}
	if proc.OwnerID != nil {
		if *proc.OwnerID == *p.CustomerID {
			return nil
		}
		owner, err := s.Client.Customer.Get(sys(ctx), *proc.OwnerID)
		if err == nil && owner.ParentID != nil && *owner.ParentID == *p.CustomerID {
			return nil
		}
	}
	return fmt.Errorf("%w: process %q does not belong to this token's customer", ErrForbidden, proc.Name)
}

// Requirements are what the configuration demands of the process's gates.
func (s *Service) Requirements(proc *ent.Process) lifecycle.Requirements {
	req := lifecycle.Requirements{Process: proc.Name}
	if proc.Edges.Pool != nil {
		req.Pool = proc.Edges.Pool.Name
		req.Network = proc.Edges.Pool.Network
	}
	if cp, ok := s.cfgPool(req.Pool); ok && cp.Setup != nil {
		req.Software = cp.Setup.Software
		req.ConfigFiles = cp.Setup.ConfigFiles
	}
	if cp, ok := s.cfgProcess(proc.Name); ok {
		req.Credentials = cp.Credentials
	}
	return req
}

// State is a process's delivery state.
type State struct {
	Process string
	Stage   lifecycle.Stage
	Allowed []lifecycle.Action
	History []lifecycle.Record
	Access  []lifecycle.Access
	Require lifecycle.Requirements
}

// State reads a process's stage, history and access log.
func (s *Service) State(ctx context.Context, p viewer.Principal, name string) (*State, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	proc, err := s.processByName(ctx, p, name)
	if err != nil {
		return nil, err
	}
	return s.state(ctx, proc)
}

func (s *Service) state(ctx context.Context, proc *ent.Process) (*State, error) {
	rows, err := s.Client.LifecycleTransition.Query().
		Where(lifecycletransition.ProcessID(proc.ID)).
		Order(ent.Asc(lifecycletransition.FieldSeq)).All(sys(ctx))
	if err != nil {
		return nil, fmt.Errorf("history of %q: %w", proc.Name, err)
	}
	st := &State{Process: proc.Name, Require: s.Requirements(proc)}
	for _, r := range rows {
		var ev lifecycle.Evidence
		if err := json.Unmarshal([]byte(r.Evidence), &ev); err != nil {
			return nil, fmt.Errorf("history of %q, step %d: evidence: %w", proc.Name, r.Seq, err)
		}
		st.History = append(st.History, lifecycle.Record{
			Seq: r.Seq, From: lifecycle.Stage(r.FromStage), To: lifecycle.Stage(r.ToStage),
			Action: lifecycle.Action(r.Action), Evidence: ev,
		})
	}
	st.Stage, err = lifecycle.Replay(st.History)
	if err != nil {
		return nil, fmt.Errorf("history of %q is corrupt: %w", proc.Name, err)
	}
	st.Allowed = lifecycle.Allowed(st.Stage)
	sessions, err := s.Client.AccessSession.Query().Where(accesssession.ProcessID(proc.ID)).
		Order(ent.Asc(accesssession.FieldAt), ent.Asc(accesssession.FieldID)).All(sys(ctx))
	if err != nil {
		return nil, fmt.Errorf("access log of %q: %w", proc.Name, err)
	}
	for _, a := range sessions {
		st.Access = append(st.Access, lifecycle.Access{User: a.User, VM: a.VM, Protocol: a.Protocol, Stage: lifecycle.Stage(a.Stage), At: a.At})
	}
	return st, nil
}

// Request asks for one transition. The platform's own evidence (VMs,
// endpoints, runs, access sessions) is gathered by the service; the
// request carries only what people attest.
type Request struct {
	Process   string
	Action    lifecycle.Action
	Checklist []string // items done
	Note      string
	Fault     *lifecycle.Fault
	SignOff   *lifecycle.SignOff
	BatchIDs  []int // test or trial runs to link
}

// Transition applies a transition if its gate is met, or returns the
// *lifecycle.RefusedError that says why not.
func (s *Service) Transition(ctx context.Context, p viewer.Principal, req Request) (*State, error) {
	proc, err := s.processByName(ctx, p, req.Process)
	if err != nil {
		return nil, err
	}
	if err := s.mayChange(ctx, p, proc); err != nil {
		return nil, err
	}
	audit.Scope(ctx, proc.OwnerID, "process "+proc.Name)
	st, err := s.state(ctx, proc)
	if err != nil {
		return nil, err
	}
	ev, err := s.evidence(ctx, proc, st, p, req)
	if err != nil {
		return nil, err
	}
	to, err := lifecycle.Decide(st.Stage, req.Action, ev, st.Require)
	if err != nil {
		return nil, err
	}
	blob, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	err = s.Client.LifecycleTransition.Create().
		SetProcessID(proc.ID).SetSeq(len(st.History) + 1).
		SetFromStage(string(st.Stage)).SetToStage(string(to)).SetAction(string(req.Action)).
		SetActor(ev.Actor).SetAt(ev.At).SetNote(req.Note).SetEvidence(string(blob)).
		Exec(sys(ctx))
	if ent.IsConstraintError(err) {
		return nil, fmt.Errorf("%w: process %q moved on while this request was checked; reload and try again", ErrConflict, proc.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("record transition of %q: %w", proc.Name, err)
	}
	return s.state(ctx, proc)
}

func (s *Service) evidence(ctx context.Context, proc *ent.Process, st *State, p viewer.Principal, req Request) (lifecycle.Evidence, error) {
	ev := lifecycle.Evidence{
		Actor: p.Name, At: s.now(), Checklist: map[string]bool{}, Note: req.Note,
		Fault: req.Fault, SignOff: req.SignOff,
	}
	for _, item := range req.Checklist {
		ev.Checklist[strings.TrimSpace(item)] = true
	}
	vms, err := s.vms(ctx, proc.PoolID)
	if err != nil {
		return ev, err
	}
	for _, v := range vms {
		if v.State == string(vm.StateRunning) {
			ev.RunningVMs = append(ev.RunningVMs, v.Name)
		}
		if e := v.Endpoint(); e != "" {
			ev.Endpoints = append(ev.Endpoints, e)
		}
	}
	// Only the sessions of the stage being left count: a developer's
	// S3 session does not make a business trial.
	for _, a := range st.Access {
		if a.Stage == st.Stage {
			ev.Access = append(ev.Access, a)
		}
	}
	purpose := lifecycle.TestRun
	if st.Stage == lifecycle.S5Trial {
		purpose = lifecycle.TrialRun
	}
	for _, id := range req.BatchIDs {
		// Only runs of this process, of a customer the caller may see, are
		// evidence; any other batch answers like a missing one, so no
		// other customer's run statistics reach this history.
		b, err := s.Client.Batch.Query().Where(batch.ID(id), batch.ProcessID(proc.ID)).WithProcess().Only(sys(ctx))
		if vis, cid := p.Visibility(); err == nil && (vis == viewer.SeesShared || vis == viewer.SeesOne && !s.seesCustomer(ctx, cid, b.CustomerID)) {
			err = &ent.NotFoundError{}
		}
		if ent.IsNotFound(err) {
			return ev, fmt.Errorf("%w: no batch %d", ErrBadInput, id)
		}
		if err != nil {
			return ev, fmt.Errorf("batch %d: %w", id, err)
		}
		run := lifecycle.Run{
			BatchID: b.ID, Purpose: purpose, Total: b.Total, Succeeded: b.Succeeded, Failed: b.Failed, Cancelled: b.Cancelled,
			Finished: b.Stack == batch.StackFinished, StartedAt: b.CreatedAt,
		}
		if b.Edges.Process != nil {
			run.Process = b.Edges.Process.Name
		}
		if pl, err := s.Client.Pool.Get(sys(ctx), b.PoolID); err == nil {
			run.Pool = pl.Name
		}
		if b.FinishedAt != nil {
			run.EndedAt = *b.FinishedAt
		}
		ev.Runs = append(ev.Runs, run)
	}
	return ev, nil
}

// vms lists a pool's live VMs with their robots' names and endpoints.
func (s *Service) vms(ctx context.Context, poolID int) ([]documents.VM, error) {
	rows, err := s.Client.VM.Query().
		Where(vm.PoolID(poolID), vm.StateIn(vm.StateCreating, vm.StateRunning)).
		WithRobot().Order(ent.Asc(vm.FieldID)).All(sys(ctx))
	if err != nil {
		return nil, fmt.Errorf("VMs of pool %d: %w", poolID, err)
	}
	ids := make([]int, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	eps, err := s.Client.RemoteEndpoint.Query().Where(remoteendpoint.VMIDIn(ids...)).All(sys(ctx))
	if err != nil {
		return nil, fmt.Errorf("remote endpoints: %w", err)
	}
	byVM := map[int]*ent.RemoteEndpoint{}
	for _, e := range eps {
		byVM[e.VMID] = e
	}
	out := make([]documents.VM, 0, len(rows))
	for _, r := range rows {
		v := documents.VM{Name: r.InstanceID, State: string(r.State)}
		if r.Edges.Robot != nil {
			v.Name = r.Edges.Robot.Name
		}
		if v.Name == "" {
			v.Name = r.IdempotencyKey
		}
		if e := byVM[r.ID]; e != nil {
			v.Protocol, v.Host, v.Port, v.Username = e.Protocol, e.Host, e.Port, e.Username
		}
		out = append(out, v)
	}
	return out, nil
}

// Endpoint is a remote-access endpoint a provider reported for a VM.
type Endpoint struct {
	Protocol string // rdp | ssh | vnc
	Host     string
	Port     int
	Username string
}

// Validate checks an endpoint before it is stored.
func (e Endpoint) Validate() error {
	switch e.Protocol {
	case "rdp", "ssh", "vnc":
	default:
		return fmt.Errorf("%w: remote-access protocol %q is not rdp, ssh or vnc", ErrBadInput, e.Protocol)
	}
	if e.Host == "" || strings.ContainsAny(e.Host, " \r\n/") {
		return fmt.Errorf("%w: remote-access host %q", ErrBadInput, e.Host)
	}
	if e.Port < 1 || e.Port > 65535 {
		return fmt.Errorf("%w: remote-access port %d", ErrBadInput, e.Port)
	}
	if strings.ContainsAny(e.Username, "\r\n") {
		return fmt.Errorf("%w: remote-access username has a line break", ErrBadInput)
	}
	return nil
}

// RecordEndpoint stores (or replaces) the endpoint of a VM row.
func (s *Service) RecordEndpoint(ctx context.Context, vmID int, e Endpoint) error {
	return RecordEndpoint(ctx, s.Client, vmID, e)
}

// RecordEndpoint stores (or replaces) the endpoint of a VM row; the fleet
// calls it with the sdk.Instance.RemoteAccess its provider reported.
func RecordEndpoint(ctx context.Context, client *ent.Client, vmID int, e Endpoint) error {
	if err := e.Validate(); err != nil {
		return err
	}
	err := client.RemoteEndpoint.Create().SetVMID(vmID).SetProtocol(e.Protocol).SetHost(e.Host).
		SetPort(e.Port).SetUsername(e.Username).
		OnConflictColumns(remoteendpoint.FieldVMID).UpdateNewValues().Exec(sys(ctx))
	if err != nil {
		return fmt.Errorf("record endpoint of VM %d: %w", vmID, err)
	}
	return nil
}

// Endpoints lists the process pool's VMs and how to reach them.
func (s *Service) Endpoints(ctx context.Context, p viewer.Principal, name string) ([]documents.VM, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	proc, err := s.processByName(ctx, p, name)
	if err != nil {
		return nil, err
	}
	return s.vms(ctx, proc.PoolID)
}

// Connect records that the principal connects to a VM of the process's
// pool for the process's current lifecycle step, and returns the endpoint.
// Business users connect for trials, developers for development and
// tests: viewers may connect (they run trials), robots never.
func (s *Service) Connect(ctx context.Context, p viewer.Principal, name, vmName, purpose string) (documents.VM, lifecycle.Stage, error) {
	if err := mayRead(p); err != nil {
		return documents.VM{}, "", err
	}
	proc, err := s.processByName(ctx, p, name)
	if err != nil {
		return documents.VM{}, "", err
	}
	vms, err := s.vms(ctx, proc.PoolID)
	if err != nil {
		return documents.VM{}, "", err
	}
	var target *documents.VM
	var names []string
	for i := range vms {
		names = append(names, vms[i].Name)
		if vms[i].Name == vmName {
			target = &vms[i]
		}
	}
	if target == nil {
		return documents.VM{}, "", fmt.Errorf("%w: pool %q has no live VM %q (live: %s)", ErrNotFound, proc.Edges.Pool.Name, vmName, strings.Join(names, ", "))
	}
	if target.Protocol == "" {
		return documents.VM{}, "", fmt.Errorf("%w: VM %q has no remote-access endpoint; its provider reported none", ErrNotFound, vmName)
	}
	audit.Scope(ctx, proc.OwnerID, "process "+proc.Name+" on VM "+vmName)
	st, err := s.state(ctx, proc)
	if err != nil {
		return documents.VM{}, "", err
	}
	var vmID *int
	if row, err := s.Client.VM.Query().Where(vm.PoolID(proc.PoolID)).All(sys(ctx)); err == nil {
		for _, r := range row {
			if rb, err := s.Client.VM.QueryRobot(r).Only(sys(ctx)); err == nil && rb.Name == vmName {
				id := r.ID
				vmID = &id
			}
		}
	}
	err = s.Client.AccessSession.Create().SetProcessID(proc.ID).SetNillableVMID(vmID).SetVM(vmName).
		SetUser(p.Name).SetProtocol(target.Protocol).SetHost(target.Host).SetPort(target.Port).
		SetStage(string(st.Stage)).SetPurpose(purpose).SetAt(s.now()).Exec(sys(ctx))
	if err != nil {
		return documents.VM{}, "", fmt.Errorf("record access to %q: %w", vmName, err)
	}
	return *target, st.Stage, nil
}

// processData fills the process part of the documents' data.
func (s *Service) processData(ctx context.Context, proc *ent.Process) (documents.Process, documents.Pool, error) {
	dp := documents.Process{Name: proc.Name, Kind: string(proc.Kind), Runner: proc.Runner, Package: proc.Package,
		MaxDuration: time.Duration(proc.MaxDurationSeconds) * time.Second, Retries: proc.Retries}
	if cp, ok := s.cfgProcess(proc.Name); ok {
		dp.Credentials = cp.Credentials
		if cp.Kind == "vendor" && s.config() != nil {
			for _, v := range s.config().Vendors {
				if v.Name == cp.Runner {
					dp.Vendor = v.Type
				}
			}
		}
	}
	if proc.OwnerID != nil {
		if owner, err := s.Client.Customer.Get(sys(ctx), *proc.OwnerID); err == nil {
			dp.Owner = orName(owner.DisplayName, owner.Name)
			if owner.ParentID != nil {
				if parent, err := s.Client.Customer.Get(sys(ctx), *owner.ParentID); err == nil {
					dp.OwnerParent = orName(parent.DisplayName, parent.Name)
				}
			}
		}
	}
	batches, err := s.Client.Batch.Query().Where(batch.ProcessID(proc.ID)).All(sys(ctx))
	if err != nil {
		return dp, documents.Pool{}, fmt.Errorf("batches of %q: %w", proc.Name, err)
	}
	for _, b := range batches {
		dp.Batches++
		dp.Tasks += b.Total
		dp.Succeeded += b.Succeeded
		dp.Failed += b.Failed
		dp.Cancelled += b.Cancelled
		if b.CreatedAt.After(dp.LastRun) {
			dp.LastRun = b.CreatedAt
		}
	}
	pl := proc.Edges.Pool
	dpool := documents.Pool{Name: pl.Name, Provider: pl.Provider, Min: pl.Min, Max: pl.Max, Network: pl.Network}
	if cp, ok := s.cfgPool(pl.Name); ok && cp.Setup != nil {
		dpool.Software, dpool.ConfigFiles = cp.Setup.Software, cp.Setup.ConfigFiles
	}
	if n, ok := s.cfgNetwork(pl.Network); ok {
		dpool.Proxy, dpool.DNS, dpool.Allow, dpool.Deny = n.Proxy, n.DNS, n.Allow, n.Deny
	}
	return dp, dpool, nil
}

func orName(display, name string) string {
	if display != "" {
		return display
	}
	return name
}

// departments maps customer names to display names.
func (s *Service) departments(ctx context.Context) (map[string]string, error) {
	cs, err := s.Client.Customer.Query().Select(customer.FieldName, customer.FieldDisplayName).All(sys(ctx))
	if err != nil {
		return nil, fmt.Errorf("customers: %w", err)
	}
	out := map[string]string{}
	for _, c := range cs {
		out[c.Name] = orName(c.DisplayName, c.Name)
	}
	return out, nil
}

func (s *Service) poolByName(ctx context.Context, name string) (*ent.Pool, error) {
	p, err := s.Client.Pool.Query().Where(pool.Name(name)).Only(sys(ctx))
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("%w: no pool %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", name, err)
	}
	return p, nil
}

func sortedStrings(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
