package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

const enrolHCL = `
customer "demo" {}

# Machines the enterprise already runs: no provider rents anything here.
pool "onprem" {
  min    = 2
  max    = 3
  period = "5s"
}

process "echo" {
  pool    = "onprem"
  builtin = "echo"
}
`

// proc is a real rpacloud process of the test, its output in a file.
type proc struct {
	cmd    *exec.Cmd
	log    string
	exited chan error
}

func startProc(t *testing.T, bin, logPath string, env []string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logPath, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop interrupts the process and waits for it; later calls do nothing.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil || p.exited == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.exited = nil
}

// wait waits for the process to exit on its own and returns its error.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited = nil
		return err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s; its log:\n%s", p.cmd.Args, timeout, p.output())
		return nil
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// enrolDaemon runs `rpacloud dev` on one data directory, so it can be
// restarted with its database.
type enrolDaemon struct {
	bin, cfg, data, addr, logs string
	starts                     int
	p                          *proc
	token                      string // the admin token of the last start
}

func (d *enrolDaemon) start(t *testing.T) *gqlclient.Client {
	t.Helper()
	d.starts++
	_ = os.Remove(filepath.Join(d.data, "admin.token"))
	d.p = startProc(t, d.bin, filepath.Join(d.logs, fmt.Sprintf("daemon-%d.log", d.starts)), nil,
		"dev", "--config", d.cfg, "--data-dir", d.data, "--listen", d.addr)
	var tok []byte
	sdktest.Eventually(t, 90*time.Second, "the daemon to serve", func() bool {
		var err error
		tok, err = os.ReadFile(filepath.Join(d.data, "admin.token"))
		_, code, herr := getHealth("http://"+d.addr, "")
		return err == nil && herr == nil && code == 200
	})
	d.token = strings.TrimSpace(string(tok))
	return gqlclient.New("http://"+d.addr, d.token)
}

// The "done when": two machines enrol into a pool without a
// provider from one join token, run work, one is revoked (its claim is
// refused, the other keeps working), and after a daemon restart the
// survivor carries on with its stored identity although the join token is
// used up. No secret reaches a log or the database in clear.
func TestEnrolEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	d := &enrolDaemon{bin: sdktest.RpacloudBinary(t), cfg: filepath.Join(dir, "config"), data: filepath.Join(dir, "data"),
		addr: sdktest.FreeAddr(t), logs: dir}
	if err := os.MkdirAll(d.cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.cfg, "rpacloud.hcl"), []byte(enrolHCL), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.addr
	admin := d.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli := func(env []string, args ...string) (string, string, error) {
		cmd := exec.Command(d.bin, args...)
		cmd.Env = append(os.Environ(), append([]string{"RPACLOUD_SERVER=" + base, "RPACLOUD_TOKEN=" + d.token}, env...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}

	// Refusals a new user meets first.
	if _, stderr, err := cli(nil, "token", "create", "--name", "r", "--role", "robot"); exitCodeOf(err) != 2 || !strings.Contains(stderr, "pool join-token create") {
		t.Fatalf("token create --role robot: %v %s", err, stderr)
	}
	if _, stderr, err := cli(nil, "pool", "join-token", "create", "--pool", "nope"); exitCodeOf(err) != 1 || !strings.Contains(stderr, `no pool "nope"`) {
		t.Fatalf("join token for an unknown pool: %v %s", err, stderr)
	}

	stdout, stderr, err := cli(nil, "pool", "join-token", "create", "--pool", "onprem", "--uses", "2", "--ttl", "1h", "-o", "json")
	if err != nil {
		t.Fatalf("join-token create: %v %s", err, stderr)
	}
	var jt joinTokenJSON
	if err := json.Unmarshal([]byte(stdout), &jt); err != nil || !strings.HasPrefix(jt.Secret, "rpj_") || jt.MaxUses != 2 || jt.Pool != "onprem" {
		t.Fatalf("join-token create -o json: %q %v", stdout, err)
	}
	join := jt.Secret

	// r1 is started with flags; the second robot as the systemd unit starts
	// it: no flags, everything from the environment (RPACLOUD_SERVER,
	// RPACLOUD_JOIN_TOKEN, and STATE_DIRECTORY from StateDirectory=), named
	// after the host.
	second, _ := os.Hostname()
	var unitArgs []string
	if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`).MatchString(second) {
		second, unitArgs = "r2", []string{"--name", "r2"} // a host name no robot may have
	}
	robot := func(name string) *proc {
		logPath := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, d.starts))
		state := filepath.Join(dir, "state-"+name)
		if name == second {
			return startProc(t, d.bin, logPath,
				[]string{"RPACLOUD_SERVER=" + base, "RPACLOUD_JOIN_TOKEN=" + join, "STATE_DIRECTORY=" + state},
				append([]string{"robot"}, unitArgs...)...)
		}
		return startProc(t, d.bin, logPath, []string{"RPACLOUD_JOIN_TOKEN=" + join},
			"robot", "--server", base, "--name", name, "--state-dir", state)
	}
	r1, r2 := robot("r1"), robot(second)
	waitIdle := func(want int) {
		t.Helper()
		eventually(t, 60*time.Second, fmt.Sprintf("%d idle robots", want), func() (bool, string) {
			var st struct {
				PoolStatus []struct{ Robots, Idle int } `json:"poolStatus"`
			}
			if err := admin.Do(ctx, `{poolStatus{robots idle}}`, nil, &st); err != nil {
				return false, err.Error()
			}
			return len(st.PoolStatus) == 1 && st.PoolStatus[0].Idle == want, fmt.Sprintf("%+v", st)
		})
	}
	waitIdle(2)
	ids := map[string]robotagent.Identity{}
	for _, name := range []string{"r1", second} {
		sd := filepath.Join(dir, "state-"+name)
		fi, err := os.Stat(filepath.Join(sd, robotagent.IdentityFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("identity of %s: %v %v", name, fi, err)
		}
		id, found, err := robotagent.LoadIdentity(sd)
		if err != nil || !found || id.Robot != name || id.Pool != "onprem" {
			t.Fatalf("identity of %s: %+v %v %v", name, id, found, err)
		}
		ids[name] = id
	}

	runBatch := func(n int, robots ...string) {
		t.Helper()
		inputs := make([]map[string]any, n)
		for i := range inputs {
			inputs[i] = map[string]any{"i": i, "sleep_ms": 200}
		}
		var sub struct {
			SubmitBatch struct{ ID string } `json:"submitBatch"`
		}
		if err := admin.Do(ctx, `mutation($in:SubmitBatchInput!){submitBatch(input:$in){id}}`,
			map[string]any{"in": map[string]any{"process": "echo", "customer": "demo", "inputs": inputs}}, &sub); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Minute, "the batch to succeed", func() (bool, string) {
			var out struct {
				Node batchView `json:"node"`
			}
			if err := admin.Do(ctx, batchQ, map[string]any{"id": sub.SubmitBatch.ID}, &out); err != nil {
				return false, err.Error()
			}
			return out.Node.Succeeded == n, fmt.Sprintf("%+v", out.Node)
		})
		for _, name := range robots {
			var out struct {
				Robots struct {
					Edges []struct {
						Node struct {
							Attempts struct{ TotalCount int } `json:"attempts"`
						} `json:"node"`
					} `json:"edges"`
				} `json:"robots"`
			}
			if err := admin.Do(ctx, `query($n:String!){robots(where:{name:$n}){edges{node{attempts{totalCount}}}}}`, map[string]any{"n": name}, &out); err != nil ||
				len(out.Robots.Edges) != 1 || out.Robots.Edges[0].Node.Attempts.TotalCount == 0 {
				t.Fatalf("robot %s ran no task: %+v %v", name, out, err)
			}
		}
	}
	runBatch(12, "r1", second)

	// Listings never show a secret; a revoked join token and one that is
	// used up are refused to a new machine, which enrols nothing; only an
	// admin makes join tokens.
	stdout, stderr, err = cli(nil, "pool", "join-token", "list", "-o", "json")
	if err != nil || strings.Contains(stdout, join) || strings.Contains(stdout, `"secret"`) || !strings.Contains(stdout, `"uses": 2`) {
		t.Fatalf("join-token list: %v %s %s", err, stdout, stderr)
	}
	stdout, _, err = cli(nil, "pool", "join-token", "create", "--pool", "onprem", "-o", "json")
	var revokedJT joinTokenJSON
	if err != nil || json.Unmarshal([]byte(stdout), &revokedJT) != nil {
		t.Fatalf("second join token: %v %s", err, stdout)
	}
	if _, stderr, err := cli(nil, "pool", "join-token", "revoke", revokedJT.ID); err != nil {
		t.Fatalf("join-token revoke: %v %s", err, stderr)
	}
	for secret, want := range map[string]string{revokedJT.Secret: "was revoked", join: "used up"} {
		p := startProc(t, d.bin, filepath.Join(dir, "r3.log"), []string{"RPACLOUD_JOIN_TOKEN=" + secret},
			"robot", "--server", base, "--name", "r3", "--state-dir", filepath.Join(dir, "state-r3"))
		if err := p.wait(t, 30*time.Second); exitCodeOf(err) != 1 || !strings.Contains(p.output(), want) || strings.Contains(p.output(), secret) {
			t.Fatalf("enrol with a join token that %s: exit %v, log:\n%s", want, err, p.output())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state-r3", robotagent.IdentityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused enrolment left an identity: %v", err)
	}
	op, _, err := cli(nil, "token", "create", "--name", "ops", "--role", "operator")
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, err = cli([]string{"RPACLOUD_TOKEN=" + strings.TrimSpace(op)}, "pool", "join-token", "create", "--pool", "onprem")
	if exitCodeOf(err) != 1 || !strings.Contains(stderr, "forbidden") {
		t.Fatalf("join token by an operator: %v %s", err, stderr)
	}

	// Revoke r1: its agent is refused, tries to enrol again with the join
	// token at hand (used up) and stops with exit 3, which the systemd
	// unit does not restart; r2 keeps working.
	if _, stderr, err := cli(nil, "robot", "revoke", "r1"); err != nil {
		t.Fatalf("robot revoke: %v %s", err, stderr)
	}
	// The audit trail so far, exported as CSV by the CLI: the bootstrap
	// admin token, enrolments by join token from the agents' address
	// (refused ones too), an operator's refused join token, the admin's
	// revocations; no join token, API token or robot token in it.
	stdout, stderr, err = cli(nil, "audit", "export", "--since", "1h")
	if err != nil {
		t.Fatalf("audit export: %v %s", err, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("audit export is not CSV: %v\n%s", err, stdout)
	}
	for _, want := range [][3]string{
		{"daemon:bootstrap", "createToken", "ok"}, {"admin", "createJoinToken", "ok"},
		{"join-token:" + jt.ID, "enrolRobot", "ok"}, {"join-token:" + jt.ID, "enrolRobot", "refused"},
		{"join-token:" + revokedJT.ID, "enrolRobot", "refused"}, {"admin", "revokeJoinToken", "ok"},
		{"ops", "createJoinToken", "refused"}, {"admin", "revokeRobot", "ok"},
	} {
		found := false
		for _, r := range recs[1:] {
			if r[2] == want[0] && r[6] == want[1] && r[8] == want[2] && strings.HasPrefix(r[10], "127.0.0.1:") == (want[0] != "daemon:bootstrap") {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit entry %v in\n%s", want, stdout)
		}
	}
	for _, secret := range []string{join, revokedJT.Secret, strings.TrimSpace(op), d.token, ids["r1"].Token} {
		if strings.Contains(stdout, secret) {
			t.Errorf("a secret is in the audit trail:\n%s", stdout)
		}
	}
	revokedMsg := "robot r1: its identity was revoked or is unknown to the server; enrol the machine again"
	if err := r1.wait(t, 60*time.Second); exitCodeOf(err) != 3 || !strings.Contains(r1.output(), revokedMsg) ||
		!strings.Contains(r1.output(), "used up") || strings.Contains(r1.output(), `"errors"`) {
		t.Fatalf("revoked robot: exit %v, log:\n%s", err, r1.output())
	}
	// Without a join token it says so at once.
	noJoin := startProc(t, d.bin, filepath.Join(dir, "r1-nojoin.log"), []string{"RPACLOUD_JOIN_TOKEN="},
		"robot", "--server", base, "--state-dir", filepath.Join(dir, "state-r1"))
	if err := noJoin.wait(t, 60*time.Second); exitCodeOf(err) != 3 || !strings.Contains(noJoin.output(), revokedMsg) || strings.Contains(noJoin.output(), "enrolling") {
		t.Fatalf("revoked robot without a join token: exit %v, log:\n%s", err, noJoin.output())
	}
	claim := `mutation{claimTask(wait:0){taskID}}`
	if err := gqlclient.New(base, ids["r1"].Token).Do(ctx, claim, nil, nil); !errors.Is(err, gqlclient.ErrUnauthorized) {
		t.Fatalf("claim with the revoked identity: %v, want 401", err)
	}
	runBatch(4, second)

	// Restart the daemon; restart both agents as systemd would, the used-up
	// join token still in their environment.
	r2.stop()
	d.p.stop()
	admin = d.start(t)
	r1, r2 = robot("r1"), robot(second)
	if err := r1.wait(t, 60*time.Second); exitCodeOf(err) != 3 || !strings.Contains(r1.output(), revokedMsg) {
		t.Fatalf("revoked robot after the restart: exit %v, log:\n%s", err, r1.output())
	}
	sdktest.Eventually(t, 60*time.Second, "the second robot to be ready again", func() bool { return strings.Contains(r2.output(), "robot ready") })
	if out := r2.output(); !strings.Contains(out, "join token is not needed") || strings.Contains(out, "enrolling") {
		t.Fatalf("the second robot did not start from its stored identity:\n%s", out)
	}
	runBatch(4, second)
	var list struct {
		JoinTokens []struct{ Uses, MaxUses int } `json:"joinTokens"`
	}
	if err := admin.Do(ctx, joinTokensQ, nil, &list); err != nil || len(list.JoinTokens) != 2 || list.JoinTokens[1].Uses != 2 {
		t.Fatalf("join tokens: %+v %v", list, err)
	}

	// Take r1's machine back: a new join token in its environment, and the
	// agent, refused with its stored identity, enrols again under the
	// same name and replaces the identity.
	stdout, _, err = cli(nil, "pool", "join-token", "create", "--pool", "onprem", "-o", "json")
	var again joinTokenJSON
	if err != nil || json.Unmarshal([]byte(stdout), &again) != nil {
		t.Fatalf("third join token: %v %s", err, stdout)
	}
	r1 = startProc(t, d.bin, filepath.Join(dir, "r1-again.log"), []string{"RPACLOUD_JOIN_TOKEN=" + again.Secret},
		"robot", "--server", base, "--state-dir", filepath.Join(dir, "state-r1"))
	sdktest.Eventually(t, 60*time.Second, "r1 to enrol again", func() bool { return strings.Contains(r1.output(), "robot ready") })
	waitIdle(2)
	newR1, found, err := robotagent.LoadIdentity(filepath.Join(dir, "state-r1"))
	if err != nil || !found || newR1.Robot != "r1" || newR1.Token == ids["r1"].Token {
		t.Fatalf("identity of r1 after enrolling again: %+v %v %v\nlog:\n%s", newR1, found, err, r1.output())
	}
	r1.stop()

	// No secret in clear in any log or in the database.
	r2.stop()
	d.p.stop()
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	dbs, _ := filepath.Glob(filepath.Join(d.data, "*.db*"))
	if len(dbs) == 0 {
		t.Fatal("no database file found")
	}
	for _, path := range append(files, dbs...) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for what, s := range map[string]string{"the join token": join, "the second join token": revokedJT.Secret,
			"r1's token": ids["r1"].Token, "the second robot's token": ids[second].Token,
			"the third join token": again.Secret, "r1's new token": newR1.Token} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %s in clear", filepath.Base(path), what)
			}
		}
	}
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
