package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/graph/dashboard/dashtest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

const twodHCL = `
customer "demo" {}

# Enrolled machines only: the robots are the test's own agent processes.
pool "onprem" {
  min = 0
  max = 10
}

# A short max_duration, so that an attempt whose claim died with its
# daemon (handed out, never received) times out quickly and is retried.
process "echo" {
  pool         = "onprem"
  builtin      = "echo"
  max_duration = "6s"
  retries      = 3
}
`

// The "done when" for several daemons: two daemons A and B on one
// PostgreSQL; robots (real agent processes) enrolled with both URLs, some
// preferring A and some B; tasks submitted through both daemons' APIs.
// A robot waiting on B takes work submitted on A within seconds, not at
// the end of its 20 s long poll (the wake crosses daemons). A is
// SIGKILLed while tasks run: A's robots move to B (their logs say so),
// finish the tasks they were running there and take new work from B, and
// every task ends succeeded with exactly one succeeded attempt. A robot on
// A's machine dies with it, in the middle of a task: that attempt is
// abandoned at its deadline and the task retried, by B's sweeper once B
// holds the leader lease if A held it (TTL 15 s, not configurable, which
// bounds the test's wait); so would an attempt A handed out in the instant
// it died, which the test cannot provoke at will.
func TestTwoDaemonsRobotsFailOver(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	base := storetest.PostgresDSN(t)
	bin := sdktest.RpacloudBinary(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("rpt_twod_%d", os.Getpid())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the database goes after the daemons and
	// robots registered below have stopped.
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = admin.Close()
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	dsn := u.String()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	began := time.Now()
	phase := func(what string) { t.Logf("%s: %s", time.Since(began).Round(100*time.Millisecond), what) }

	a := dashtest.StartOn(t, bin, dsn, twodHCL)
	b := dashtest.StartOn(t, bin, dsn, twodHCL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	onA, onB := gqlclient.New(a.Base, a.Token), gqlclient.New(b.Base, a.Token)
	phase("both daemons serve")

	var jt struct {
		CreateJoinToken struct{ Secret string } `json:"createJoinToken"`
	}
	if err := onA.Do(ctx, `mutation{createJoinToken(pool:"onprem",uses:7,ttlSeconds:3600){secret}}`, nil, &jt); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	robots := map[string]*proc{}
	robot := func(name string, servers ...string) {
		robots[name] = startProc(t, bin, filepath.Join(dir, name+".log"), []string{"RPACLOUD_JOIN_TOKEN=" + jt.CreateJoinToken.Secret},
			"robot", "--server", strings.Join(servers, ","), "--name", name, "--state-dir", filepath.Join(dir, "state-"+name))
	}
	idle := func(want int) {
		t.Helper()
		eventually(t, 60*time.Second, fmt.Sprintf("%d idle robots", want), func() (bool, string) {
			var st struct {
				PoolStatus []struct{ Robots, Idle int } `json:"poolStatus"`
			}
			if err := onB.Do(ctx, `{poolStatus{robots idle}}`, nil, &st); err != nil {
				return false, err.Error()
			}
			return len(st.PoolStatus) == 1 && st.PoolStatus[0].Idle == want, fmt.Sprintf("%+v", st)
		})
	}
	submit := func(c *gqlclient.Client, n, sleepMS int) {
		t.Helper()
		inputs := make([]map[string]any, n)
		for i := range inputs {
			inputs[i] = map[string]any{"i": i, "sleep_ms": sleepMS}
		}
		if err := c.Do(ctx, `mutation($in:SubmitBatchInput!){submitBatch(input:$in){id}}`,
			map[string]any{"in": map[string]any{"process": "echo", "customer": "demo", "inputs": inputs}}, nil); err != nil {
			t.Fatalf("submit on %s: %v", c.URL, err)
		}
	}
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	allSucceeded := func(total int, within time.Duration) {
		t.Helper()
		eventually(t, within, fmt.Sprintf("%d tasks succeeded", total), func() (bool, string) {
			var n, ok int
			if err := db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'succeeded') FROM tasks`).Scan(&n, &ok); err != nil {
				return false, err.Error()
			}
			return n == total && ok == total, fmt.Sprintf("%d tasks, %d succeeded", n, ok)
		})
	}
	total := 0

	// The cross-daemon wake. One robot, attached to B. Once it has done a
	// task, it is back in a fresh long poll (20 s); work submitted on A two
	// seconds later must reach it long before that poll would have ended.
	robot("b1", b.Base, a.Base)
	idle(1)
	submit(onA, 1, 0)
	total++
	allSucceeded(total, 40*time.Second)
	time.Sleep(2 * time.Second)
	start := time.Now()
	submit(onA, 1, 0)
	total++
	allSucceeded(total, 40*time.Second)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a task submitted on A reached the robot waiting on B after %s: it was not woken, it waited out its poll", took)
	} else {
		t.Logf("submitted on A, done by a robot waiting on B in %s", took)
	}

	phase("cross-daemon wake checked")

	// The fleet: three robots prefer B, three prefer A, each knows both;
	// x1 will die with A.
	robot("b2", b.Base, a.Base)
	robot("b3", b.Base, a.Base)
	for _, n := range []string{"a1", "a2", "a3", "x1"} {
		robot(n, a.Base, b.Base)
	}
	idle(7)
	phase("seven robots idle")
	for _, n := range []string{"a1", "a2", "a3", "x1"} {
		if out := robots[n].output(); !strings.Contains(out, "server="+a.Base) {
			t.Fatalf("robot %s does not work with A:\n%s", n, out)
		}
	}
	// Work through both daemons, running when A dies: tasks of 1.5 s.
	submit(onA, 10, 1500)
	submit(onB, 10, 1500)
	total += 20
	eventually(t, 30*time.Second, "A's robots running tasks", func() (bool, string) {
		n := count(`SELECT count(DISTINCT r.name) FROM attempts at JOIN robots r ON r.id = at.robot_id
			WHERE at.state = 'running' AND r.name IN ('a1', 'a2', 'a3')`)
		x := count(`SELECT count(*) FROM attempts at JOIN robots r ON r.id = at.robot_id
			WHERE at.state = 'running' AND r.name = 'x1'`)
		return n >= 2 && x == 1, fmt.Sprintf("%d of A's robots running, x1 %d", n, x)
	})

	// SIGKILL of x1 and of A (and of the provider plugin A started, which
	// would otherwise outlive it).
	_ = robots["x1"].cmd.Process.Kill()
	_ = robots["x1"].wait(t, 10*time.Second)
	var leader string
	if err := db.QueryRowContext(ctx, `SELECT holder FROM leases WHERE name = 'rpacloud.leader'`).Scan(&leader); err != nil {
		t.Fatal(err)
	}
	servers := procs("server", "--config", filepath.Join(a.Dir, "rpacloud.hcl"))
	if len(servers) != 1 {
		t.Fatalf("daemon A's processes: %v", servers)
	}
	var pidA int
	for pid := range servers {
		pidA = pid
	}
	children := procs("plugin")
	if err := syscall.Kill(pidA, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	aLed := strings.Contains(leader, fmt.Sprintf(":%d:", pidA))
	t.Logf("A led at the kill: %v (lease holder %s)", aLed, leader)
	for pid, ppid := range children {
		if ppid == pidA {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// More work, on the survivor.
	submit(onB, 6, 500)
	total += 6
	allSucceeded(total, 50*time.Second)
	t.Logf("all %d tasks succeeded %s after the kill", total, time.Since(killed).Round(time.Millisecond))
	if n := count(`SELECT count(*) FROM attempts at JOIN robots r ON r.id = at.robot_id
		WHERE r.name = 'x1' AND at.state = 'abandoned'`); n != 1 {
		t.Fatalf("x1 died in a task: %d of its attempts abandoned, want 1", n)
	}
	if aLed {
		var now string
		if err := db.QueryRowContext(ctx, `SELECT holder FROM leases WHERE name = 'rpacloud.leader'`).Scan(&now); err != nil || now == leader {
			t.Fatalf("the lease after the kill: %q %v; A held it", now, err)
		}
	}

	phase("every task succeeded after the kill")

	// A's robots moved to B and work there: each takes one of these
	// 2 s tasks, submitted while all six robots are idle.
	idle(6)
	submit(onB, 6, 2000)
	total += 6
	allSucceeded(total, 30*time.Second)
	for _, n := range []string{"a1", "a2", "a3"} {
		out := robots[n].output()
		if !strings.Contains(out, "moving to the next one") || !strings.Contains(out, "to="+b.Base) {
			t.Errorf("robot %s's log does not say it moved to B:\n%s", n, out)
		}
		if got := count(`SELECT count(*) FROM attempts at JOIN robots r ON r.id = at.robot_id
			WHERE r.name = $1 AND at.state = 'succeeded' AND at.started_at > $2`, n, killed); got == 0 {
			t.Errorf("robot %s did no task after A was killed:\n%s", n, out)
		}
	}

	phase("A's robots worked on B")

	// Exactly once: every task has one succeeded attempt; the only other
	// attempts are those the kill cut off, ended by the sweeper.
	if n := count(`SELECT count(*) FROM tasks t WHERE t.state <> 'succeeded'
		OR (SELECT count(*) FROM attempts at WHERE at.task_id = t.id AND at.state = 'succeeded') <> 1`); n != 0 {
		t.Fatalf("%d tasks without exactly one succeeded attempt", n)
	}
	if n := count(`SELECT count(*) FROM tasks`); n != total {
		t.Fatalf("%d tasks in the database, %d submitted", n, total)
	}
	if n := count(`SELECT count(*) FROM attempts WHERE state NOT IN ('succeeded', 'abandoned')`); n != 0 {
		t.Fatalf("%d attempts neither succeeded nor abandoned", n)
	}
	// What the abandoned attempts were: x1's, and any claim A handed out
	// as it died, which its robot never received (its log never names it:
	// an attempt the agent ran is named when it ends).
	rows, err := db.QueryContext(ctx, `SELECT r.name, at.task_id, at.number FROM attempts at
		JOIN robots r ON r.id = at.robot_id WHERE at.state = 'abandoned'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var robot string
		var task, attempt int
		if err := rows.Scan(&robot, &task, &attempt); err != nil {
			t.Fatal(err)
		}
		received := robots[robot] != nil && strings.Contains(robots[robot].output(), fmt.Sprintf("task=%d attempt=%d ", task, attempt))
		t.Logf("abandoned and retried: task %d attempt %d of robot %s (its log names it: %v)", task, attempt, robot, received)
		if received && robot != "x1" {
			t.Errorf("robot %s ran task %d attempt %d, yet the attempt was abandoned:\n%s", robot, task, attempt, robots[robot].output())
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
