package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

const controlHCL = `provider "local" {
  plugin = "local"
}
pool "p" {
  provider = "local"
  min      = 2
  max      = 2
}
customer "acme" {}
process "slow" {
  pool         = "p"
  builtin      = "echo"
  retries      = 0
  max_duration = "5m"
}
`

type e2eTask struct {
	ID            string  `json:"id"`
	State         string  `json:"state"`
	AttemptNo     int     `json:"attemptNo"`
	ManualRetries int     `json:"manualRetries"`
	FailureReason *string `json:"failureReason"`
	ErrorMessage  string  `json:"errorMessage"`
	Attempts      struct {
		Edges []struct {
			Node struct {
				Number       int    `json:"number"`
				State        string `json:"state"`
				ErrorMessage string `json:"errorMessage"`
			} `json:"node"`
		} `json:"edges"`
	} `json:"attempts"`
}

// TestJobControlEndToEnd drives job control through the CLI against a real
// daemon whose robots are their own OS processes (the local provider)
// running the builtin echo runner with a ten-minute sleep: a stopped
// running task ends within seconds (the robot's awaitStop long poll; its
// heartbeats come only every 100 s), its attempt stopped and the task
// cancelled; a cancelled batch's pending tasks end cancelled at once and
// its running one is stopped, so the batch finishes; a failed task retried
// by hand runs a second attempt counted apart; a paused pool's work waits
// (and pool status says who paused it and why) until the resume; the
// events are recorded.
func TestJobControlEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	d := sdktest.StartDaemon(t, controlHCL)
	bin := sdktest.RpacloudBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	defer func() {
		for pid := range procs("robot", "--server", d.Base) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	cli := func(args ...string) string {
		t.Helper()
		args = append(args, "--server", d.Base, "--token", d.Token)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("rpacloud %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	submit := func(n int, input string) string {
		t.Helper()
		inputs := make([]json.RawMessage, n)
		for i := range inputs {
			inputs[i] = json.RawMessage(input)
		}
		var out struct {
			SubmitBatch struct{ ID string } `json:"submitBatch"`
		}
		if err := d.Do(ctx, `mutation($in:SubmitBatchInput!){submitBatch(input:$in){id}}`,
			map[string]any{"in": map[string]any{"process": "slow", "customer": "acme", "inputs": inputs}}, &out); err != nil {
			t.Fatal(err)
		}
		return out.SubmitBatch.ID
	}
	tasks := func(batchID string) []e2eTask {
		t.Helper()
		var out struct {
			Tasks struct {
				Edges []struct{ Node e2eTask } `json:"edges"`
			} `json:"tasks"`
		}
		if err := d.Do(ctx, `query($b:ID!){tasks(first:50,where:{batchID:$b},orderBy:{field:CREATED_AT,direction:ASC}){edges{node{
			id state attemptNo manualRetries failureReason errorMessage attempts(first:10){edges{node{number state errorMessage}}}}}}}`,
			map[string]any{"b": batchID}, &out); err != nil {
			t.Fatal(err)
		}
		ts := make([]e2eTask, len(out.Tasks.Edges))
		for i, e := range out.Tasks.Edges {
			ts[i] = e.Node
		}
		return ts
	}
	count := func(ts []e2eTask, state string) int {
		n := 0
		for _, x := range ts {
			if strings.EqualFold(x.State, state) {
				n++
			}
		}
		return n
	}

	eventually(t, 90*time.Second, "two robots", func() (bool, string) {
		var st struct {
			PoolStatus []struct{ Robots, Idle int } `json:"poolStatus"`
		}
		err := d.Do(ctx, `{poolStatus{robots idle}}`, nil, &st)
		return err == nil && len(st.PoolStatus) == 1 && st.PoolStatus[0].Idle == 2, fmt.Sprint(st, err)
	})

	// Stop one running task.
	b1 := submit(4, `{"sleep_ms":600000}`)
	eventually(t, 60*time.Second, "two tasks running", func() (bool, string) {
		ts := tasks(b1)
		return count(ts, "running") == 2, fmt.Sprint(ts)
	})
	var running string
	for _, x := range tasks(b1) {
		if x.State == "running" {
			running = x.ID
			break
		}
	}
	out := cli("task", "stop", running, "--reason", "wrong period")
	if !strings.Contains(out, "asked to stop") {
		t.Fatalf("task stop: %s", out)
	}
	// Heartbeats come every 100 s (a third of max_duration); the stop
	// arrives through the long poll.
	stopAsked := time.Now()
	eventually(t, 20*time.Second, "the stopped task cancelled", func() (bool, string) {
		for _, x := range tasks(b1) {
			if x.ID == running {
				return x.State == "cancelled", fmt.Sprint(x)
			}
		}
		return false, "task gone"
	})
	t.Logf("the robot stopped %s after the request", time.Since(stopAsked).Round(time.Millisecond))
	for _, x := range tasks(b1) {
		if x.ID != running {
			continue
		}
		a := x.Attempts.Edges
		if len(a) != 1 || a[0].Node.State != "stopped" || !strings.Contains(a[0].Node.ErrorMessage, "stopped at the operator's request") ||
			x.FailureReason == nil || *x.FailureReason != "cancelled" {
			t.Fatalf("stopped task: %+v", x)
		}
	}

	// Cancel the batch: the pending ones at once, the running ones
	// stopped (the robot freed by the stop took one of them meanwhile).
	out = cli("batch", "cancel", b1, "--reason", "wrong input file", "-o", "json")
	if !strings.Contains(out, `"cancelled"`) {
		t.Fatalf("batch cancel: %s", out)
	}
	eventually(t, 30*time.Second, "the batch finished, all cancelled", func() (bool, string) {
		var b struct {
			Node struct {
				Stack     string
				Cancelled int
				Running   int
			} `json:"node"`
		}
		err := d.Do(ctx, `query($id:ID!){node(id:$id){... on Batch{stack cancelled running}}}`, map[string]any{"id": b1}, &b)
		return err == nil && b.Node.Stack == "finished" && b.Node.Cancelled == 4, fmt.Sprint(b, err)
	})

	// Retry a failed task: a second attempt, counted apart.
	b2 := submit(1, `{"fail":"execution","message":"portal down"}`)
	eventually(t, 60*time.Second, "the task failed", func() (bool, string) {
		ts := tasks(b2)
		return len(ts) == 1 && ts[0].State == "failed", fmt.Sprint(ts)
	})
	id := tasks(b2)[0].ID
	out = cli("task", "retry", id, "-o", "json")
	if !strings.Contains(out, `"manual_retries": 1`) {
		t.Fatalf("task retry: %s", out)
	}
	eventually(t, 60*time.Second, "the retried task ran again", func() (bool, string) {
		ts := tasks(b2)
		return len(ts) == 1 && ts[0].State == "failed" && ts[0].AttemptNo == 2 && ts[0].ManualRetries == 1, fmt.Sprint(ts)
	})

	// Pause the pool: pool status says so, new work waits; a resume lets
	// it run.
	out = cli("pool", "pause", "p", "--reason", "patching the VMs")
	if !strings.Contains(out, "pool p paused since") || !strings.Contains(out, "patching the VMs") {
		t.Fatalf("pool pause: %s", out)
	}
	out = cli("pool", "status")
	if !strings.Contains(out, "pool p paused since") || !strings.Contains(out, "by admin: patching the VMs (nothing is dispatched)") {
		t.Fatalf("pool status of a paused pool:\n%s", out)
	}
	b3 := submit(1, `{"n":1}`)
	time.Sleep(3 * time.Second) // two idle robots poll meanwhile
	if ts := tasks(b3); len(ts) != 1 || ts[0].State != "pending" {
		t.Fatalf("task of a paused pool: %+v", ts)
	}
	cli("pool", "resume", "p")
	eventually(t, 30*time.Second, "the task run after the resume", func() (bool, string) {
		ts := tasks(b3)
		return len(ts) == 1 && ts[0].State == "succeeded", fmt.Sprint(ts)
	})
	if out := cli("pool", "status", "-o", "json"); !strings.Contains(out, `"paused_at": null`) {
		t.Fatalf("pool status after the resume: %s", out)
	}

	// The events are there.
	for typ, want := range map[string]int{"task.stop_requested": 2, "task.cancelled": 4, "task.requeued": 1, "pool.paused": 1, "pool.resumed": 1} {
		var ev struct {
			Events struct{ TotalCount int } `json:"events"`
		}
		if err := d.Do(ctx, `query($t:String!){events(first:1,where:{type:$t}){totalCount}}`, map[string]any{"t": typ}, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Events.TotalCount < want {
			t.Errorf("%d %s events, want at least %d", ev.Events.TotalCount, typ, want)
		}
	}
}
