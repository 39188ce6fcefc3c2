package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// reloadHCL is the configuration of TestReloadLive: pools a and c, each
// with one permanent local robot; v2 adds pool b, changes process awork
// and removes pool c with its process.
func reloadHCL(addr, dataDir string, v2 bool) string {
	server := fmt.Sprintf(`server {
  listen   = %q
  data_dir = %q
}
provider "local" {
  plugin              = "local"
  stop_robots_on_exit = true
}
customer "demo" {}
pool "a" {
  provider = "local"
  min      = 1
  max      = 1
}
`, addr, dataDir)
	if !v2 {
		return server + `pool "c" {
  provider = "local"
  min      = 1
  max      = 1
}
process "awork" {
  pool         = "a"
  builtin      = "echo"
  max_duration = "2m"
}
process "cwork" {
  pool         = "c"
  builtin      = "echo"
  max_duration = "2m"
}
`
	}
	return server + `pool "b" {
  provider = "local"
  min      = 1
  max      = 1
}
process "awork" {
  pool         = "a"
  builtin      = "echo"
  max_duration = "5m"
  retries      = 1
}
process "bwork" {
  pool    = "b"
  builtin = "echo"
}
`
}

// TestReloadLive runs `rpacloud server`, and while a task runs in pool c
// and a subscription is open, plans and applies (SIGHUP) a configuration
// that adds pool b, changes process awork and removes pool c: the running
// task completes and its report is accepted, the subscription keeps
// receiving, every change is visible in the API, pool c drains (its robot
// is released once its work is done) and pool a's robot keeps running as
// the same process. Then an invalid configuration and one that needs a
// restart are refused, by SIGHUP and by `rpacloud config apply`, and a
// valid one is applied by `rpacloud config apply --yes`.
func TestReloadLive(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := sdktest.RpacloudBinary(t)
	dir := t.TempDir()
	cfgDir, dataDir := filepath.Join(dir, "config"), filepath.Join(dir, "data")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := sdktest.FreeAddr(t)
	base := "http://" + addr
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(cfgDir, "rpacloud.hcl"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadHCL(addr, dataDir, false))
	logPath := filepath.Join(dir, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	daemon := exec.Command(bin, "server", "--config", cfgDir, "--log-format", "text")
	daemon.Stdout, daemon.Stderr = logf, logf
	daemon.Env = append(os.Environ(), "RPACLOUD_DATABASE_DSN=")
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	defer func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = daemon.Process.Kill()
			<-exited
		}
		for pid := range procs("robot", "--server", base) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("daemon log:\n%s", b)
		}
	}()
	eventually(t, 90*time.Second, "the daemon to serve /healthz", func() (bool, string) {
		_, code, err := getHealth(base, "")
		return err == nil && code == 200, fmt.Sprint(code, err)
	})
	raw, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(raw))
	admin := gqlclient.New(base, token)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	type poolStatus struct {
		PoolStatus []struct {
			Pool         struct{ Name string }
			Robots, Idle int
		} `json:"poolStatus"`
	}
	idle := func(want ...string) func() (bool, string) {
		return func() (bool, string) {
			var st poolStatus
			if err := admin.Do(ctx, `{poolStatus{pool{name} robots idle}}`, nil, &st); err != nil {
				return false, err.Error()
			}
			got := map[string]bool{}
			for _, p := range st.PoolStatus {
				if p.Idle >= 1 {
					got[p.Pool.Name] = true
				}
			}
			for _, w := range want {
				if !got[w] {
					return false, fmt.Sprintf("%+v", st)
				}
			}
			return true, ""
		}
	}
	eventually(t, 90*time.Second, "idle robots in pools a and c", idle("a", "c"))
	robotsBefore := procs("robot", "--server", base)

	sub := subscribe(t, ctx, "ws://"+addr+"/graphql", token)
	defer sub.close()

	submit := func(process string, input map[string]any) (string, error) {
		var out struct {
			SubmitBatch struct{ ID string } `json:"submitBatch"`
		}
		err := admin.Do(ctx, `mutation($in:SubmitBatchInput!){submitBatch(input:$in){id}}`,
			map[string]any{"in": map[string]any{"process": process, "customer": "demo", "inputs": []any{input}}}, &out)
		return out.SubmitBatch.ID, err
	}
	type taskView struct {
		Tasks struct {
			Edges []struct {
				Node struct{ ID, State string }
			}
		} `json:"tasks"`
	}
	taskOf := func(batch string) (id, state string) {
		var out taskView
		if err := admin.Do(ctx, `query($b:ID!){tasks(where:{batchID:$b}){edges{node{id state}}}}`, map[string]any{"b": batch}, &out); err != nil || len(out.Tasks.Edges) != 1 {
			return "", fmt.Sprint(out, err)
		}
		return out.Tasks.Edges[0].Node.ID, out.Tasks.Edges[0].Node.State
	}
	cBatch, err := submit("cwork", map[string]any{"sleep_ms": 8000})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the task of pool c to run", func() (bool, string) {
		_, st := taskOf(cBatch)
		return st == "running", st
	})

	// The plan, from the CLI.
	write(reloadHCL(addr, dataDir, true))
	cliIn := func(stdin string, args ...string) (string, string, int) {
		cmd := exec.CommandContext(ctx, bin, append(args, "--server", base, "--token", token)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	cli := func(args ...string) (string, string, int) { return cliIn("", args...) }
	out, errOut, code := cli("config", "plan", "--config", cfgDir)
	for _, want := range []string{
		"+ pool \"b\"\n",
		"- pool \"c\" (drains: 1 pending or running tasks finish on its robots, which are then released)\n",
		"~ process \"awork\"\n    max_duration: 2m0s → 5m0s\n    retries: 3 → 1\n",
		"- process \"cwork\"\n",
		"Plan: 2 to add, 1 to change, 2 to remove.\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("config plan: exit %d, no %q in:\n%s%s", code, want, out, errOut)
		}
	}

	// Applied by SIGHUP, while the task runs.
	if err := daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	type pools struct {
		Pools struct {
			Edges []struct {
				Node struct {
					Name   string
					Active bool
				}
			}
		} `json:"pools"`
		Processes struct {
			Edges []struct {
				Node struct {
					Name               string
					MaxDurationSeconds int `json:"maxDurationSeconds"`
					Retries            int
					Active             bool
				}
			}
		} `json:"processes"`
	}
	state := func() (string, error) {
		var p pools
		err := admin.Do(ctx, `{pools{edges{node{name active}}} processes{edges{node{name maxDurationSeconds retries active}}}}`, nil, &p)
		var parts []string
		for _, e := range p.Pools.Edges {
			parts = append(parts, fmt.Sprintf("pool %s %v", e.Node.Name, e.Node.Active))
		}
		for _, e := range p.Processes.Edges {
			parts = append(parts, fmt.Sprintf("process %s %d %d %v", e.Node.Name, e.Node.MaxDurationSeconds, e.Node.Retries, e.Node.Active))
		}
		return strings.Join(parts, "; "), err
	}
	eventually(t, 20*time.Second, "the reload in the API", func() (bool, string) {
		s, err := state()
		if err != nil {
			return false, err.Error()
		}
		for _, want := range []string{"pool a true", "pool b true", "pool c false", "process awork 300 1 true", "process bwork 600 3 true", "process cwork 120 3 false"} {
			if !strings.Contains(s, want) {
				return false, s
			}
		}
		return true, ""
	})
	if _, err := submit("cwork", map[string]any{}); err == nil || !strings.Contains(err.Error(), `no active process "cwork"`) {
		t.Errorf("a submission to the removed pool's process: %v", err)
	}

	// Nothing dropped: the task that ran through the reload succeeds, the
	// subscription sees it and what runs after it; pool a's robot is the
	// same process; pool b gets its robot; pool c's is released.
	cTask := ""
	eventually(t, 60*time.Second, "the task of pool c to succeed", func() (bool, string) {
		id, st := taskOf(cBatch)
		cTask = id
		return st == "succeeded", st
	})
	aBatch, err := submit("awork", map[string]any{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "both tasks on the subscription", func() (bool, string) {
		aTask, _ := taskOf(aBatch)
		sub.mu.Lock()
		defer sub.mu.Unlock()
		ok := sub.seen["task.succeeded"][cTask] && sub.seen["task.succeeded"][aTask]
		return ok, fmt.Sprint(sub.seen["task.succeeded"])
	})
	eventually(t, 90*time.Second, "an idle robot in pool b", idle("b"))
	eventually(t, 90*time.Second, "pool c's robot released", func() (bool, string) {
		var out struct {
			Robots struct {
				TotalCount int `json:"totalCount"`
			} `json:"robots"`
		}
		err := admin.Do(ctx, `{robots(where:{hasPoolWith:{name:"c"}, stateNotIn:[released, offline]}){totalCount}}`, nil, &out)
		return err == nil && out.Robots.TotalCount == 0, fmt.Sprint(out, err)
	})
	robotsAfter := procs("robot", "--server", base)
	kept := 0
	for pid := range robotsBefore {
		if _, ok := robotsAfter[pid]; ok {
			kept++
		}
	}
	if kept != 1 {
		t.Errorf("robot processes before %v, after %v: want pool a's kept", robotsBefore, robotsAfter)
	}

	// Refusals change nothing.
	before, _ := state()
	write(strings.Replace(reloadHCL(addr, dataDir, true), `retries      = 1`, `retries      = "one"`, 1))
	if _, errOut, code := cli("config", "apply", "--config", cfgDir, "--yes"); code != 1 || !strings.Contains(errOut, "rpacloud.hcl:") {
		t.Errorf("apply of an invalid configuration: exit %d\n%s", code, errOut)
	}
	if err := daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the refusal in the log", func() (bool, string) {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "reload refused; the running configuration stays"), ""
	})
	write(strings.Replace(reloadHCL(addr, dataDir, true), dataDir, dataDir+"2", 1))
	out, errOut, code = cli("config", "apply", "--config", cfgDir, "--yes")
	if code != 1 || !strings.Contains(out, "~ server (needs a restart:") || !strings.Contains(errOut, "needs a restart") {
		t.Errorf("apply of a server change: exit %d\n%s%s", code, out, errOut)
	}
	if after, _ := state(); after != before {
		t.Errorf("a refused configuration changed the state:\n%s\n%s", before, after)
	}

	// Applied through the API, after the question: anything but y
	// applies nothing; -o json does not ask, and wants --yes.
	write(strings.Replace(reloadHCL(addr, dataDir, true), `retries      = 1`, `retries      = 2`, 1))
	out, errOut, code = cliIn("n\n", "config", "apply", "--config", cfgDir)
	if code != 0 || !strings.Contains(out, "retries: 1 → 2") || !strings.Contains(out, "Nothing applied.") {
		t.Errorf("config apply answered n: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code = cli("config", "apply", "--config", cfgDir, "-o", "json"); code != 1 || !strings.Contains(errOut, "only with --yes") {
		t.Errorf("config apply -o json without --yes: exit %d\n%s", code, errOut)
	}
	if s, _ := state(); !strings.Contains(s, "process awork 300 1 true") {
		t.Errorf("applied without a y: %s", s)
	}
	out, errOut, code = cliIn("y\n", "config", "apply", "--config", cfgDir)
	if code != 0 || !strings.Contains(out, "retries: 1 → 2") || !strings.Contains(out, "Applied.") {
		t.Errorf("config apply answered y: exit %d\n%s%s", code, out, errOut)
	}
	if s, _ := state(); !strings.Contains(s, "process awork 300 2 true") {
		t.Errorf("after config apply: %s", s)
	}
}
