package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

var pluginBin, robotBin string

// The plugin runs as a real executable, as the daemon runs it; the robot
// is a fixture that records how it was started.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "local-provider-test-")
	if err != nil {
		panic(err)
	}
	pluginBin = filepath.Join(dir, "rpacloud-provider-local")
	robotBin = filepath.Join(dir, "fakerobot")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, b := range [][2]string{{pluginBin, "./cmd/rpacloud-provider-local"}, {robotBin, "./testdata/fakerobot"}} {
		wg.Go(func() {
			out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
			}
		})
	}
	wg.Wait()
	code := 0
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	} else {
		code = m.Run()
		if code == 0 {
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestContract(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // where the fake robots write
	sdktest.RunProviderContract(t, sdktest.ProviderContract{
		New: func(t *testing.T) sdk.Provider {
			p := New()
			t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
			return p
		},
		Name: Name,
		ConfigFor: func(t *testing.T) map[string]string {
			return map[string]string{"robot_command": robotBin, "state_dir": t.TempDir(), "max_instances": "3"}
		},
		Capacity: 3,
	})
}

func TestConfigDiagnostics(t *testing.T) {
	p := New()
	diags, err := p.Configure(context.Background(), map[string]string{
		"robot_command": "/no/such/rpacloud", "state_dir": "relative/dir",
		"stop_robots_on_exit": "maybe", "max_instances": "0", "colour": "blue",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range diags {
		got[d.Attribute] = true
	}
	for _, a := range []string{"robot_command", "state_dir", "stop_robots_on_exit", "max_instances", "colour"} {
		if !got[a] {
			t.Errorf("no diagnostic for %s in %v", a, diags)
		}
	}
}

func TestStateDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	cfg := map[string]string{"robot_command": robotBin, "state_dir": dir}
	a, b := New(), New()
	defer a.Shutdown(context.Background())
	if diags, err := a.Configure(context.Background(), cfg); err != nil || diags != nil {
		t.Fatalf("first: %v %v", diags, err)
	}
	diags, err := b.Configure(context.Background(), cfg)
	if err != nil || len(diags) != 1 || diags[0].Attribute != "state_dir" || !strings.Contains(diags[0].Message, "another local provider") {
		t.Fatalf("second provider on the same state_dir: %v %v", diags, err)
	}
}

// A robot that ignores SIGTERM is killed after the grace period, and so is
// everything in its process group.
func TestDestroyKillsStubbornProcessGroup(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	defer func(d time.Duration) { termGrace = d }(termGrace)
	termGrace = 300 * time.Millisecond
	p := New()
	defer p.Shutdown(context.Background())
	if diags, err := p.Configure(context.Background(), map[string]string{"robot_command": robotBin, "state_dir": t.TempDir()}); err != nil || diags != nil {
		t.Fatalf("configure: %v %v", diags, err)
	}
	in, err := p.Create(context.Background(), request("k-stubborn", "stubborn-1", "tok"))
	if err != nil {
		t.Fatal(err)
	}
	rec := waitRecord(t, tmp, "stubborn-1")
	start := time.Now()
	if err := p.Destroy(context.Background(), []string{in.ID}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < termGrace {
		t.Errorf("a SIGTERM-ignoring robot was gone after %v, before the grace period", d)
	}
	waitGone(t, rec.PID, rec.Grandchild)
	list, _ := p.List(context.Background())
	if len(list) != 1 || list[0].State != sdk.InstanceDeleted {
		t.Errorf("after destroy: %+v", list)
	}
}

func TestTokenOnlyInRobotEnvironment(t *testing.T) {
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	pp := startPlugin(t, tmp, map[string]string{"robot_command": robotBin, "state_dir": state})
	token := "tok-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-secret"
	req := request("rpacloud-key-a", "robot-a", token)
	req.Network = &sdk.NetworkProfile{Proxy: "http://proxy.example:3128"}
	in, err := pp.prov.Create(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitRecord(t, tmp, "robot-a")
	t.Cleanup(func() { _ = syscall.Kill(-rec.PID, syscall.SIGKILL) })

	env := map[string]string{}
	for _, kv := range rec.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env[TokenEnv] != token {
		t.Errorf("robot env %s = %q, want the token", TokenEnv, env[TokenEnv])
	}
	allowed := []string{"PATH", "HOME", "TMPDIR", TokenEnv, "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"}
	for k := range env {
		if !slices.Contains(allowed, k) {
			t.Errorf("robot env has %s; only %v are passed", k, allowed)
		}
	}
	if env["HTTPS_PROXY"] != "http://proxy.example:3128" || !strings.Contains(env["NO_PROXY"], "127.0.0.1") {
		t.Errorf("proxy env: HTTPS_PROXY=%q NO_PROXY=%q", env["HTTPS_PROXY"], env["NO_PROXY"])
	}
	wantArgs := []string{robotBin, "robot", "--server", req.ServerURL, "--name", "robot-a"}
	if !slices.Equal(rec.Args, wantArgs) {
		t.Errorf("robot args = %q, want %q", rec.Args, wantArgs)
	}
	if rec.PGID != rec.PID {
		t.Errorf("robot pgid %d != pid %d: not its own process group", rec.PGID, rec.PID)
	}
	// Nothing on disk and nothing the plugin answers holds the token.
	files, _ := filepath.Glob(filepath.Join(state, "*"))
	if len(files) == 0 {
		t.Fatal("state dir is empty")
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if bytes.Contains(data, []byte(token)) {
			t.Errorf("%s contains the robot token", f)
		}
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pp.pid)); bytes.Contains(cmdline, []byte(token)) {
		t.Error("plugin command line contains the token")
	}
	list, err := pp.prov.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprintf("%+v %+v", in, list), token) {
		t.Error("an answer of the plugin contains the token")
	}

	if err := pp.prov.Destroy(ctx(t), []string{in.ID}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, rec.PID, rec.Grandchild)
}

func TestCreateIsIdempotentAcrossCalls(t *testing.T) {
	tmp := t.TempDir()
	pp := startPlugin(t, tmp, map[string]string{"robot_command": robotBin, "state_dir": filepath.Join(tmp, "state")})
	req := request("rpacloud-key-b", "robot-b", "tok")
	first, err := pp.prov.Create(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitRecord(t, tmp, "robot-b")
	t.Cleanup(func() { _ = syscall.Kill(-rec.PID, syscall.SIGKILL) })
	second, err := pp.prov.Create(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != second.ID {
		t.Fatalf("second create rented %s, first %s", second.ID, first.ID)
	}
	if pids := robotPIDs("robot-b"); len(pids) != 1 {
		t.Fatalf("%d robot-b processes run, want 1: %v", len(pids), pids)
	}
}

// The plugin is killed with SIGKILL, as by the OOM killer: robots keep
// running, and the next plugin process adopts them.
func TestRestartAdoptsRunningRobots(t *testing.T) {
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	cfg := map[string]string{"robot_command": robotBin, "state_dir": state}
	pp := startPlugin(t, tmp, cfg)
	keep, err := pp.prov.Create(ctx(t), request("rpacloud-keep", "robot-keep", "tok"))
	if err != nil {
		t.Fatal(err)
	}
	die, err := pp.prov.Create(ctx(t), request("rpacloud-die", "robot-die", "tok"))
	if err != nil {
		t.Fatal(err)
	}
	keepRec, dieRec := waitRecord(t, tmp, "robot-keep"), waitRecord(t, tmp, "robot-die")
	t.Cleanup(func() { _ = syscall.Kill(-keepRec.PID, syscall.SIGKILL) })

	if err := syscall.Kill(pp.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pp.pid)
	pp.client.Kill()
	if !isRobot(keepRec.PID, "robot-keep") {
		t.Fatal("the robot died with the plugin")
	}
	_ = syscall.Kill(-dieRec.PID, syscall.SIGKILL)
	waitGone(t, dieRec.PID)

	// A record whose pid now belongs to another process (here: the test)
	// must not be adopted, nor that process signalled.
	path := filepath.Join(state, stateFile)
	var st stateFileV1
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	st.Instances = append(st.Instances, &record{ID: "local-recycled", IdempotencyKey: "rpacloud-recycled", RobotName: "robot-recycled",
		PID: os.Getpid(), State: sdk.InstanceRunning, CreatedAt: time.Now()})
	data, _ = json.Marshal(st)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	pp2 := startPlugin(t, tmp, cfg)
	list, err := pp2.prov.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]sdk.InstanceState{}
	for _, in := range list {
		states[in.ID] = in.State
	}
	if states[keep.ID] != sdk.InstanceRunning || states[die.ID] != sdk.InstanceFailed || states["local-recycled"] != sdk.InstanceFailed {
		t.Fatalf("after restart: keep %s, die %s, recycled %s; want running, failed, failed", states[keep.ID], states[die.ID], states["local-recycled"])
	}
	again, err := pp2.prov.Create(ctx(t), request("rpacloud-keep", "robot-keep", "tok"))
	if err != nil || again.ID != keep.ID {
		t.Fatalf("create with the adopted robot's key: %v %v, want %s", again.ID, err, keep.ID)
	}
	if err := pp2.prov.Destroy(ctx(t), []string{keep.ID, die.ID, "local-recycled"}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, keepRec.PID, keepRec.Grandchild)
}

func TestStopRobotsOnGracefulExit(t *testing.T) {
	for _, stop := range []bool{true, false} {
		t.Run(fmt.Sprint("stop_robots_on_exit=", stop), func(t *testing.T) {
			tmp := t.TempDir()
			pp := startPlugin(t, tmp, map[string]string{"robot_command": robotBin, "state_dir": filepath.Join(tmp, "state"),
				"stop_robots_on_exit": strconv.FormatBool(stop)})
			if _, err := pp.prov.Create(ctx(t), request("rpacloud-k", "robot-exit", "tok")); err != nil {
				t.Fatal(err)
			}
			rec := waitRecord(t, tmp, "robot-exit")
			t.Cleanup(func() { _ = syscall.Kill(-rec.PID, syscall.SIGKILL) })
			pp.client.Kill()
			if stop {
				waitGone(t, rec.PID, rec.Grandchild)
			} else if !isRobot(rec.PID, "robot-exit") {
				t.Fatal("robot stopped with the plugin although stop_robots_on_exit is false")
			}
		})
	}
}

// When the daemon dies without stopping the plugin (SIGKILL), the plugin
// notices its parent is gone, stops its robots (stop_robots_on_exit) and
// exits. A shell stands in for the daemon so the test can kill it.
func TestParentDeath(t *testing.T) {
	tmp := t.TempDir()
	pidFile := filepath.Join(tmp, "plugin.pid")
	cmd := exec.Command("/bin/sh", "-c", `"$0" & echo $! > "$1"; wait`, pluginBin, pidFile)
	pp := startPluginCmd(t, cmd, tmp, map[string]string{"robot_command": robotBin, "state_dir": filepath.Join(tmp, "state"), "stop_robots_on_exit": "true"})
	if _, err := pp.prov.Create(ctx(t), request("rpacloud-k", "robot-orphan", "tok")); err != nil {
		t.Fatal(err)
	}
	rec := waitRecord(t, tmp, "robot-orphan")
	t.Cleanup(func() { _ = syscall.Kill(-rec.PID, syscall.SIGKILL) })
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pluginPID, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	t.Cleanup(func() { _ = syscall.Kill(pluginPID, syscall.SIGKILL) })

	if err := syscall.Kill(pp.pid, syscall.SIGKILL); err != nil { // the "daemon"
		t.Fatal(err)
	}
	waitGone(t, pluginPID, rec.PID, rec.Grandchild)
	pp.client.Kill()
}

// helpers

type pluginProc struct {
	client *plugin.Client
	prov   *sdk.GRPCProviderClient
	pid    int
}

func startPlugin(t *testing.T, tmp string, cfg map[string]string) *pluginProc {
	return startPluginCmd(t, exec.Command(pluginBin), tmp, cfg)
}

func startPluginCmd(t *testing.T, cmd *exec.Cmd, tmp string, cfg map[string]string) *pluginProc {
	t.Helper()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "TMPDIR=" + tmp}
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.ProviderPluginSets(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     20 * time.Second,
		Logger:           testLogger(t),
	})
	t.Cleanup(c.Kill)
	rpc, err := c.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	raw, err := rpc.Dispense(sdk.KindProvider)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	pp := &pluginProc{client: c, prov: raw.(*sdk.GRPCProviderClient), pid: c.ReattachConfig().Pid}
	diags, err := pp.prov.Configure(ctx(t), cfg)
	if err != nil || len(diags) > 0 {
		t.Fatalf("configure: %v %v", diags, err)
	}
	return pp
}

// testLogger sends the plugin's log to the test log, and drops lines that
// arrive after the test ended instead of panicking.
func testLogger(t *testing.T) hclog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return hclog.New(&hclog.LoggerOptions{Name: "host", Output: w, Level: hclog.Debug})
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func request(key, name, token string) sdk.CreateRequest {
	return sdk.CreateRequest{IdempotencyKey: key, Pool: "p", RobotName: name, ServerURL: "http://127.0.0.1:9", RobotToken: token}
}

type robotRecord struct {
	Args       []string `json:"args"`
	Env        []string `json:"env"`
	PID        int      `json:"pid"`
	PGID       int      `json:"pgid"`
	Grandchild int      `json:"grandchild"`
}

func waitRecord(t *testing.T, tmp, name string) robotRecord {
	t.Helper()
	path := filepath.Join(tmp, "fakerobot-"+name+".json")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			var r robotRecord
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("robot %s did not start: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive treats a zombie as dead: an orphan is reaped by init, whenever
// init gets to it.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	_, zombie, err := procInfo(pid)
	return err == nil && !zombie
}

func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func robotPIDs(name string) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err == nil && isRobot(pid, name) {
			out = append(out, pid)
		}
	}
	return out
}

// A robot that dies on its own is reported failed (as a cloud reports a
// VM that crashed), and what it started goes with it.
func TestRobotDeathIsReported(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	p := New()
	defer p.Shutdown(context.Background())
	if diags, err := p.Configure(context.Background(), map[string]string{"robot_command": robotBin, "state_dir": t.TempDir()}); err != nil || diags != nil {
		t.Fatalf("configure: %v %v", diags, err)
	}
	in, err := p.Create(context.Background(), request("k-die", "dies-1", "tok"))
	if err != nil {
		t.Fatal(err)
	}
	rec := waitRecord(t, tmp, "dies-1")
	if err := syscall.Kill(rec.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, rec.PID, rec.Grandchild)
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := p.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].ID == in.ID && list[0].State == sdk.InstanceFailed && strings.Contains(list[0].Error, "killed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the robot died: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Destroying a failed instance is fine and final.
	if err := p.Destroy(context.Background(), []string{in.ID}); err != nil {
		t.Fatal(err)
	}
	if list, _ := p.List(context.Background()); list[0].State != sdk.InstanceDeleted {
		t.Errorf("after destroy: %+v", list)
	}
}
