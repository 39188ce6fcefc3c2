// Package local is the embedded default provider: it "rents" robots as
// processes on the daemon's own machine, each one `rpacloud robot --server
// URL --name NAME` standing in for a VM. It needs no cloud account, so
// `rpacloud dev` and the quickstart work out of the box, and it exercises
// the same plugin contract as a real cloud.
//
// Robots outlive the plugin process (they lead their own process groups);
// the plugin records them in state_dir/instances.json and adopts the ones
// still running when it starts again.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Name is the plugin's name in HCL (`plugin = "local"`).
const Name = "local"

// Version is the plugin's release version, set by the build.
var Version = "dev"

// TokenEnv is the environment variable that carries the robot's token:
// the environment of a process is readable only by its user, unlike its
// command line.
const TokenEnv = "RPACLOUD_ROBOT_TOKEN"

// Main serves the local provider; the daemon runs it through
// `rpacloud plugin provider local` or the rpacloud-provider-local binary.
func Main() { sdk.ServeProvider(New()) }

const (
	defaultMaxInstances = 64
	stateFile           = "instances.json"
	lockFile            = "lock"
	// Ended instances are kept this long so a late retry of a create
	// still finds its instance instead of renting a second robot.
	keepEnded = 24 * time.Hour
)

// Package variables so tests can shorten them.
var (
	termGrace = 10 * time.Second // SIGTERM to SIGKILL
	killWait  = 5 * time.Second  // SIGKILL to giving up
	pollEvery = 50 * time.Millisecond
)

// Provider implements sdk.Provider with local processes.
type Provider struct {
	log hclog.Logger

	mu        sync.Mutex
	cfg       config
	lock      *os.File                 // held while configured
	instances map[string]*record       // by ID
	byKey     map[string]string        // idempotency key → ID
	children  map[string]*child        // robots this process started (and reaps)
	ending    map[string]chan struct{} // in-flight destroys, closed when done
}

type config struct {
	robotCommand string
	stateDir     string
	stopOnExit   bool
	maxInstances int
	pluginDir    string // the robots' RPACLOUD_PLUGIN_DIR
}

// record is what instances.json keeps of a robot. Never the token.
type record struct {
	ID             string            `json:"id"`
	IdempotencyKey string            `json:"idempotency_key"`
	Pool           string            `json:"pool"`
	RobotName      string            `json:"robot_name"`
	PID            int               `json:"pid"`
	State          sdk.InstanceState `json:"state"`
	CreatedAt      time.Time         `json:"created_at"`
	EndedAt        time.Time         `json:"ended_at,omitzero"`
	Error          string            `json:"error,omitempty"`
}

type stateFileV1 struct {
	Version   int       `json:"version"`
	Instances []*record `json:"instances"`
}

type child struct {
	done chan struct{} // closed once the process was reaped
}

var (
	_ sdk.Provider   = (*Provider)(nil)
	_ sdk.Shutdowner = (*Provider)(nil)
)

// New returns an unconfigured local provider.
func New() *Provider {
	return &Provider{
		log:       sdk.Logger().Named(Name),
		instances: map[string]*record{},
		byKey:     map[string]string{},
		children:  map[string]*child{},
		ending:    map[string]chan struct{}{},
	}
}

// Info implements sdk.Provider.
func (p *Provider) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{
		Kind:          sdk.KindProvider,
		Name:          Name,
		PluginVersion: Version,
		APIVersions:   []int{sdk.ProviderProtocolVersion},
		Capabilities:  []string{"network.proxy"},
		ConfigSchema: []sdk.ConfigAttribute{
			{Name: "robot_command", Type: sdk.TypeString, Description: "Path of the rpacloud binary that runs each robot (`<robot_command> robot --server URL --name NAME`). " +
				"Default: rpacloud next to the plugin executable, else the daemon's own binary when the plugin is built in, else rpacloud on PATH."},
			{Name: "state_dir", Type: sdk.TypeString, Default: filepath.Join(os.TempDir(), "rpacloud-local-provider"),
				Description: "Directory for instances.json and the robots' log files. The daemon passes <data_dir>/local-provider."},
			{Name: "stop_robots_on_exit", Type: sdk.TypeBool, Default: "false",
				Description: "Stop every robot when the plugin exits. Otherwise robots keep running and are adopted when the plugin starts again."},
			{Name: "max_instances", Type: sdk.TypeNumber, Default: strconv.Itoa(defaultMaxInstances),
				Description: "Most robots alive at once; more are refused as out of capacity."},
			{Name: "plugin_dir", Type: sdk.TypeString,
				Description: "Plugin directory the robots run crawler and vendor plugins from (their RPACLOUD_PLUGIN_DIR). The daemon passes its own."},
		},
	}, nil
}

// Configure implements sdk.Provider. The first call takes the state
// directory's lock and adopts robots a previous plugin process left.
func (p *Provider) Configure(_ context.Context, raw map[string]string) ([]sdk.ConfigDiagnostic, error) {
	cfg, diags := parseConfig(raw)
	if len(diags) > 0 {
		return diags, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lock != nil {
		if cfg.stateDir != p.cfg.stateDir {
			return []sdk.ConfigDiagnostic{{Attribute: "state_dir", Message: "cannot change while the plugin runs (was " + p.cfg.stateDir + ")"}}, nil
		}
		p.cfg = cfg
		return nil, nil
	}
	if err := os.MkdirAll(cfg.stateDir, 0o700); err != nil {
		return []sdk.ConfigDiagnostic{{Attribute: "state_dir", Message: err.Error()}}, nil
	}
	lock, err := lockDir(filepath.Join(cfg.stateDir, lockFile))
	if err != nil {
		return []sdk.ConfigDiagnostic{{Attribute: "state_dir", Message: fmt.Sprintf("%s: %v", cfg.stateDir, err)}}, nil
	}
	p.cfg = cfg
	p.lock = lock
	if err := p.loadLocked(); err != nil {
		p.lock = nil
		lock.Close()
		p.instances, p.byKey = map[string]*record{}, map[string]string{}
		return []sdk.ConfigDiagnostic{{Attribute: "state_dir", Message: err.Error() + "; repair or remove the file (robots it lists may still run)"}}, nil
	}
	p.log.Info("configured", "state_dir", cfg.stateDir, "robot_command", cfg.robotCommand,
		"stop_robots_on_exit", cfg.stopOnExit, "max_instances", cfg.maxInstances, "instances", len(p.instances))
	return nil, nil
}

func parseConfig(raw map[string]string) (config, []sdk.ConfigDiagnostic) {
	cfg := config{maxInstances: defaultMaxInstances}
	var diags []sdk.ConfigDiagnostic
	bad := func(attr, format string, args ...any) {
		diags = append(diags, sdk.ConfigDiagnostic{Attribute: attr, Message: fmt.Sprintf(format, args...)})
	}
	for k := range raw {
		switch k {
		case "robot_command", "state_dir", "stop_robots_on_exit", "max_instances":
		case "plugin_dir":
			cfg.pluginDir = raw[k]
		default:
			bad(k, "unknown attribute; the local provider has robot_command, state_dir, stop_robots_on_exit, max_instances, plugin_dir")
		}
	}
	if v := raw["robot_command"]; v != "" {
		path, err := exec.LookPath(v)
		if err != nil {
			bad("robot_command", "%q is not an executable file: %v", v, err)
		} else if cfg.robotCommand, err = filepath.Abs(path); err != nil {
			bad("robot_command", "%v", err)
		}
	} else if path, err := defaultRobotCommand(); err != nil {
		bad("robot_command", "not set, and %v", err)
	} else {
		cfg.robotCommand = path
	}
	cfg.stateDir = raw["state_dir"]
	if cfg.stateDir == "" {
		cfg.stateDir = filepath.Join(os.TempDir(), "rpacloud-local-provider")
	}
	if !filepath.IsAbs(cfg.stateDir) {
		bad("state_dir", "must be an absolute path, got %q", cfg.stateDir)
	}
	if v, ok := raw["stop_robots_on_exit"]; ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("stop_robots_on_exit", "must be true or false, got %q", v)
		}
		cfg.stopOnExit = b
	}
	if v, ok := raw["max_instances"]; ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("max_instances", "must be a whole number ≥ 1, got %q", v)
		}
		cfg.maxInstances = n
	}
	return cfg, diags
}

// defaultRobotCommand finds the rpacloud binary: next to the plugin
// executable (a release puts them side by side), else the executable
// itself when it is rpacloud running the built-in plugin, else PATH.
func defaultRobotCommand() (string, error) {
	exe, err := os.Executable()
	if err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		sibling := filepath.Join(filepath.Dir(exe), "rpacloud")
		if st, err := os.Stat(sibling); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return sibling, nil
		}
		if !strings.HasPrefix(filepath.Base(exe), "rpacloud-provider-") {
			return exe, nil
		}
	}
	path, err := exec.LookPath("rpacloud")
	if err != nil {
		return "", errors.New("no rpacloud binary next to the plugin or on PATH")
	}
	return filepath.Abs(path)
}

// loadLocked reads instances.json and reconciles it with the processes
// that exist: running robots are adopted, vanished ones are reported, and
// destroys a previous process did not finish are finished.
func (p *Provider) loadLocked() error {
	path := filepath.Join(p.cfg.stateDir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var st stateFileV1
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	now := time.Now().UTC()
	var resume []string
	for _, r := range st.Instances {
		if r == nil || r.ID == "" {
			continue
		}
		p.instances[r.ID] = r
		p.byKey[r.IdempotencyKey] = r.ID
		switch r.State {
		case sdk.InstanceCreating, sdk.InstanceRunning:
			if isRobot(r.PID, r.RobotName) {
				r.State = sdk.InstanceRunning
				p.log.Info("adopted running robot", "instance", r.ID, "robot", r.RobotName, "pid", r.PID)
			} else {
				p.endLocked(r, sdk.InstanceFailed, fmt.Sprintf("robot process %d ended while the plugin was not running", r.PID), now)
			}
		case sdk.InstanceDeleting:
			if isRobot(r.PID, r.RobotName) {
				resume = append(resume, r.ID)
			} else {
				p.endLocked(r, sdk.InstanceDeleted, "", now)
			}
		}
	}
	for _, id := range resume {
		p.startEndingLocked(p.instances[id])
	}
	return p.saveLocked()
}

func (p *Provider) endLocked(r *record, st sdk.InstanceState, msg string, now time.Time) {
	r.State = st
	r.Error = msg
	r.EndedAt = now
}

// saveLocked writes instances.json atomically: a crash mid-write leaves
// the previous version, never a torn file that would orphan every robot.
func (p *Provider) saveLocked() error {
	now := time.Now()
	st := stateFileV1{Version: 1}
	for id, r := range p.instances {
		if !r.EndedAt.IsZero() && now.Sub(r.EndedAt) > keepEnded {
			delete(p.instances, id)
			delete(p.byKey, r.IdempotencyKey)
			_ = os.Remove(p.logPath(id))
			continue
		}
		st.Instances = append(st.Instances, r)
	}
	sort.Slice(st.Instances, func(i, j int) bool { return st.Instances[i].ID < st.Instances[j].ID })
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(p.cfg.stateDir, stateFile)
	tmp, err := os.CreateTemp(p.cfg.stateDir, stateFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("save instances: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save instances: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save instances: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save instances: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save instances: %w", err)
	}
	return nil
}

func (p *Provider) save() {
	if err := p.saveLocked(); err != nil {
		p.log.Error("save instances", "error", err)
	}
}

func (p *Provider) logPath(id string) string {
	return filepath.Join(p.cfg.stateDir, id+".log")
}

func (p *Provider) configured() error {
	if p.lock == nil {
		return errors.New("the local provider is not configured")
	}
	return nil
}

// Create implements sdk.Provider.
func (p *Provider) Create(ctx context.Context, req sdk.CreateRequest) (sdk.Instance, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Instance{}, err
	}
	if req.IdempotencyKey == "" || req.RobotName == "" || req.ServerURL == "" {
		return sdk.Instance{}, fmt.Errorf("idempotency key, robot name and server URL are required: %w", sdk.ErrInvalidRequest)
	}
	if strings.HasPrefix(req.RobotName, "-") {
		return sdk.Instance{}, fmt.Errorf("robot name %q starts with '-': %w", req.RobotName, sdk.ErrInvalidRequest)
	}
	// Holding the lock while the process starts (milliseconds) makes
	// concurrent creates with one key rent one robot.
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.configured(); err != nil {
		return sdk.Instance{}, err
	}
	if id, ok := p.byKey[req.IdempotencyKey]; ok {
		return p.instances[id].instance(), nil
	}
	if n := p.liveLocked(); n >= p.cfg.maxInstances {
		return sdk.Instance{}, fmt.Errorf("%d robots alive, max_instances is %d: %w", n, p.cfg.maxInstances, sdk.ErrOutOfCapacity)
	}
	id, err := newID()
	if err != nil {
		return sdk.Instance{}, err
	}
	logFile, err := os.OpenFile(p.logPath(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return sdk.Instance{}, fmt.Errorf("robot log: %w", err)
	}
	defer logFile.Close() // the robot has its own descriptor
	cmd := exec.Command(p.cfg.robotCommand, "robot", "--server", req.ServerURL, "--name", req.RobotName)
	cmd.Env = robotEnv(req, p.cfg.pluginDir)
	cmd.Dir = p.cfg.stateDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setProcAttrs(cmd)
	if err := cmd.Start(); err != nil {
		return sdk.Instance{}, fmt.Errorf("start robot %s: %w", req.RobotName, err)
	}
	r := &record{
		ID: id, IdempotencyKey: req.IdempotencyKey, Pool: req.Pool, RobotName: req.RobotName,
		PID: cmd.Process.Pid, State: sdk.InstanceRunning, CreatedAt: time.Now().UTC(),
	}
	p.instances[id] = r
	p.byKey[r.IdempotencyKey] = id
	c := &child{done: make(chan struct{})}
	p.children[id] = c
	go p.reap(r, cmd, c)
	if err := p.saveLocked(); err != nil {
		// Without a record a restarted plugin could not find the robot:
		// better no robot than an untracked one.
		_ = signalGroup(r.PID, sigKill)
		p.endLocked(r, sdk.InstanceFailed, err.Error(), time.Now().UTC())
		delete(p.instances, id)
		delete(p.byKey, r.IdempotencyKey)
		return sdk.Instance{}, err
	}
	p.log.Info("robot started", "instance", id, "robot", req.RobotName, "pool", req.Pool, "pid", r.PID)
	return r.instance(), nil
}

// robotEnv is all the robot gets: no variable of the plugin (and so none
// of the daemon) leaks in, except what a process needs to run at all and
// where its plugins are.
func robotEnv(req sdk.CreateRequest, pluginDir string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, TokenEnv+"="+req.RobotToken)
	if pluginDir != "" {
		env = append(env, "RPACLOUD_PLUGIN_DIR="+pluginDir)
	}
	if n := req.Network; n != nil && n.Proxy != "" {
		// Robots reach the daemon directly; only task traffic goes
		// through the pool's proxy.
		noProxy := "localhost,127.0.0.1,::1"
		if u, err := url.Parse(req.ServerURL); err == nil && u.Hostname() != "" {
			noProxy = u.Hostname() + "," + noProxy
		}
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
			env = append(env, k+"="+n.Proxy)
		}
		env = append(env, "NO_PROXY="+noProxy, "no_proxy="+noProxy)
	}
	return env
}

// reap waits for a robot this process started, so it never lingers as a
// zombie, and notes an exit nobody asked for as a failure.
func (p *Provider) reap(r *record, cmd *exec.Cmd, c *child) {
	err := cmd.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	close(c.done)
	delete(p.children, r.ID)
	if r.State != sdk.InstanceRunning && r.State != sdk.InstanceCreating {
		return // a destroy is under way and records the end
	}
	// What the robot started (a browser holding a session) goes with it,
	// as everything on a VM goes when the VM dies. Right after the reap the
	// group id cannot have been reused yet.
	_ = signalGroup(r.PID, sigKill)
	msg := "robot process exited"
	if err != nil {
		msg = "robot process exited: " + err.Error()
	}
	p.endLocked(r, sdk.InstanceFailed, msg, time.Now().UTC())
	p.log.Warn("robot exited on its own", "instance", r.ID, "robot", r.RobotName, "error", msg)
	p.save()
}

func (p *Provider) liveLocked() int {
	n := 0
	for _, r := range p.instances {
		switch r.State {
		case sdk.InstanceCreating, sdk.InstanceRunning, sdk.InstanceDeleting:
			n++
		}
	}
	return n
}

func newID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	return "local-" + hex.EncodeToString(b), nil
}

func (r *record) instance() sdk.Instance {
	return sdk.Instance{
		ID: r.ID, IdempotencyKey: r.IdempotencyKey, Pool: r.Pool, RobotName: r.RobotName,
		State: r.State, Address: "127.0.0.1", CreatedAt: r.CreatedAt, Error: r.Error,
	}
}

// Destroy implements sdk.Provider: SIGTERM to the robot's process group,
// SIGKILL after termGrace. It returns when the robots are gone or ctx
// ends; in the latter case the robots still go, and List shows them
// Deleting until they have.
func (p *Provider) Destroy(ctx context.Context, ids []string) error {
	p.mu.Lock()
	if err := p.configured(); err != nil {
		p.mu.Unlock()
		return err
	}
	var waits []chan struct{}
	changed := false
	for _, id := range ids {
		r, ok := p.instances[id]
		if !ok {
			continue
		}
		switch r.State {
		case sdk.InstanceRunning, sdk.InstanceCreating:
			waits = append(waits, p.startEndingLocked(r))
			changed = true
		case sdk.InstanceDeleting:
			waits = append(waits, p.startEndingLocked(r))
		case sdk.InstanceFailed:
			// The process is gone already; the caller is done with it.
			r.State = sdk.InstanceDeleted
			changed = true
		}
	}
	if changed {
		p.save()
	}
	p.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// startEndingLocked marks r Deleting and stops its process in the
// background, once however often it is asked.
func (p *Provider) startEndingLocked(r *record) chan struct{} {
	if ch, ok := p.ending[r.ID]; ok {
		return ch
	}
	ch := make(chan struct{})
	p.ending[r.ID] = ch
	r.State = sdk.InstanceDeleting
	go p.stop(r, p.children[r.ID], ch)
	return ch
}

func (p *Provider) stop(r *record, c *child, done chan struct{}) {
	gone := func() bool {
		if c != nil {
			select {
			case <-c.done:
				return true
			default:
				return false
			}
		}
		return !isRobot(r.PID, r.RobotName)
	}
	wait := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for !gone() {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(pollEvery)
		}
		return true
	}
	var failure string
	if !gone() {
		p.log.Info("stopping robot", "instance", r.ID, "robot", r.RobotName, "pid", r.PID)
		if err := signalGroup(r.PID, sigTerm); err != nil {
			p.log.Warn("stop robot", "instance", r.ID, "error", err)
		}
		if !wait(termGrace) {
			p.log.Warn("robot ignored SIGTERM, killing it", "instance", r.ID, "pid", r.PID, "grace", termGrace)
			_ = signalGroup(r.PID, sigKill)
			if !wait(killWait) {
				failure = fmt.Sprintf("robot process %d survived SIGKILL", r.PID)
			}
		}
		// The leader is gone; whatever else it started in its group goes
		// too. The group id stays reserved while any member lives.
		_ = signalGroup(r.PID, sigKill)
	}

	p.mu.Lock()
	if failure != "" {
		p.endLocked(r, sdk.InstanceFailed, failure, time.Now().UTC())
		p.log.Error("stop robot", "instance", r.ID, "error", failure)
	} else {
		p.endLocked(r, sdk.InstanceDeleted, "", time.Now().UTC())
		p.log.Info("robot stopped", "instance", r.ID, "robot", r.RobotName)
	}
	delete(p.ending, r.ID)
	p.save()
	p.mu.Unlock()
	close(done)
}

// List implements sdk.Provider.
func (p *Provider) List(ctx context.Context) ([]sdk.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.configured(); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	changed := false
	out := make([]sdk.Instance, 0, len(p.instances))
	for id, r := range p.instances {
		// Adopted robots are not our children: nothing tells us when they
		// die, so look.
		if _, ours := p.children[id]; !ours && r.State == sdk.InstanceRunning && !isRobot(r.PID, r.RobotName) {
			p.endLocked(r, sdk.InstanceFailed, fmt.Sprintf("robot process %d exited", r.PID), now)
			changed = true
		}
		out = append(out, r.instance())
	}
	if changed {
		p.save()
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Shutdown implements sdk.Shutdowner. With stop_robots_on_exit it stops
// every robot (dev mode: nothing outlives the daemon); otherwise robots
// keep running for the next plugin process to adopt.
func (p *Provider) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.lock == nil {
		p.mu.Unlock()
		return nil
	}
	stop := p.cfg.stopOnExit
	var ids []string
	for id, r := range p.instances {
		switch r.State {
		case sdk.InstanceCreating, sdk.InstanceRunning, sdk.InstanceDeleting:
			ids = append(ids, id)
		}
	}
	p.mu.Unlock()
	var err error
	if stop && len(ids) > 0 {
		p.log.Info("stopping robots before exit", "count", len(ids))
		err = p.Destroy(ctx, ids)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lock != nil && err == nil {
		// Keep the lock while robots are still stopping, so a new plugin
		// does not adopt robots that are about to die.
		p.lock.Close()
		p.lock = nil
	}
	return err
}
