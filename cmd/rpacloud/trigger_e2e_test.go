package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

const triggerE2EHCL = `
provider "local" { plugin = "local" }
pool "p" {
  provider = "local"
  min      = 1
  max      = 1
}
customer "acme" {}
process "e" {
  pool    = "p"
  builtin = "echo"
  owner   = "acme"
}
trigger "nightly" {
  process  = "e"
  cron     = "0 3 * * *"
  timezone = "Asia/Shanghai"
  label    = "nightly echo"
  input_template = "{\"day\":\"{{.Date}}\"}"
}
`

// TestTriggerCLI: against a real daemon, `trigger fire` starts a batch
// that a real robot runs, `trigger list` shows the next runs, `trigger
// pause` and `resume` show in the list and as events, and an unknown
// name is refused. (Scheduled firing, catch-up and skipping while paused
// are timed on a virtual clock in core/trigger.)
func TestTriggerCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	d := sdktest.StartDaemon(t, triggerE2EHCL)
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--server", d.Base, "--token", d.Token), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := cli("trigger", "list", "-o", "json", "--runs", "2")
	var list struct {
		Triggers []struct {
			Name     string      `json:"name"`
			Process  string      `json:"process"`
			Customer string      `json:"customer"`
			PausedAt *time.Time  `json:"paused_at"`
			PausedBy string      `json:"paused_by"`
			NextRuns []time.Time `json:"next_runs"`
		} `json:"triggers"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Triggers) != 1 || len(list.Triggers[0].NextRuns) != 2 ||
		list.Triggers[0].Process != "e" || list.Triggers[0].Customer != "acme" {
		t.Fatalf("list: %d %s %s", code, out, errs)
	}
	if r := list.Triggers[0].NextRuns[0]; r.UTC().Hour() != 19 || r.Minute() != 0 { // 03:00 in Shanghai
		t.Errorf("next run %v, want 19:00 UTC", r)
	}

	code, out, errs = cli("trigger", "fire", "nightly", "-o", "json")
	var fired struct {
		Batch string `json:"batch"`
		Total int    `json:"total"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &fired) != nil || fired.Total != 1 {
		t.Fatalf("fire: %d %s %s", code, out, errs)
	}
	ctx := context.Background()
	eventually(t, 90*time.Second, "the fired batch runs on a robot", func() (bool, string) {
		var res struct {
			Node struct {
				Succeeded int    `json:"succeeded"`
				Label     string `json:"label"`
				Tasks     struct {
					Edges []struct {
						Node struct {
							Output *string `json:"output"`
						} `json:"node"`
					} `json:"edges"`
				} `json:"tasks"`
			} `json:"node"`
		}
		err := d.Do(ctx, `query($id: ID!) { node(id: $id) { ... on Batch { succeeded label tasks { edges { node { output } } } } } }`, map[string]any{"id": fired.Batch}, &res)
		if err != nil {
			return false, err.Error()
		}
		ok := res.Node.Succeeded == 1 && res.Node.Label == "nightly echo" && len(res.Node.Tasks.Edges) == 1 &&
			res.Node.Tasks.Edges[0].Node.Output != nil && strings.Contains(*res.Node.Tasks.Edges[0].Node.Output, `"day"`)
		return ok, fmt.Sprintf("%+v", res.Node)
	})

	code, out, errs = cli("trigger", "pause", "nightly", "--reason", "month-end freeze")
	if code != 0 || !strings.Contains(out, "trigger nightly paused") {
		t.Fatalf("pause: %d %s %s", code, out, errs)
	}
	code, out, _ = cli("trigger", "list")
	if code != 0 || !strings.Contains(out, "paused by ") || !strings.Contains(out, "nightly") {
		t.Errorf("list after pause: %d %s", code, out)
	}
	code, out, errs = cli("trigger", "resume", "nightly")
	if code != 0 || !strings.Contains(out, "trigger nightly resumed") {
		t.Fatalf("resume: %d %s %s", code, out, errs)
	}
	code, _, errs = cli("trigger", "fire", "nope")
	if code != 1 || !strings.Contains(errs, `no trigger "nope" that this token may change`) {
		t.Errorf("fire unknown: %d %s", code, errs)
	}
	var evs struct {
		Events struct {
			Edges []struct {
				Node struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"events"`
	}
	if err := d.Do(ctx, `{ events(first: 50, where: {typeHasPrefix: "trigger."}) { edges { node { type message } } } }`, nil, &evs); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs.Events.Edges {
		types = append(types, e.Node.Type)
	}
	if got := strings.Join(types, ","); !strings.Contains(got, "trigger.fired") || !strings.Contains(got, "trigger.paused") || !strings.Contains(got, "trigger.resumed") {
		t.Errorf("events %s", got)
	}
}

// TestTriggerPauseSkipsDueRun: against a real daemon, a due run of a
// paused trigger does not start; it is recorded as skipped with the
// reason. A minutely cron keeps this to about a minute; the timing rules
// themselves are tested on a virtual clock in core/trigger.
func TestTriggerPauseSkipsDueRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	d := sdktest.StartDaemon(t, strings.Replace(triggerE2EHCL, `cron     = "0 3 * * *"`, `cron     = "* * * * *"`, 1))
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--server", d.Base, "--token", d.Token), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, _, errs := cli("trigger", "pause", "nightly", "--reason", "maintenance")
	if code != 0 {
		t.Fatalf("pause: %d %s", code, errs)
	}
	pausedAt := time.Now()
	ctx := context.Background()
	type evs struct {
		Events struct {
			Edges []struct {
				Node struct {
					Message string `json:"message"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"events"`
	}
	eventually(t, 100*time.Second, "a due run of the paused trigger is skipped", func() (bool, string) {
		var res evs
		if err := d.Do(ctx, `{ events(first: 10, where: {type: "trigger.skipped"}) { edges { node { message } } } }`, nil, &res); err != nil {
			return false, err.Error()
		}
		for _, e := range res.Events.Edges {
			if strings.Contains(e.Node.Message, "skipped: paused: the trigger is paused by ") && strings.HasSuffix(e.Node.Message, ": maintenance") {
				return true, ""
			}
		}
		return false, fmt.Sprint(res.Events.Edges)
	})
	var bs struct {
		Batches struct {
			Edges []struct {
				Node struct {
					ScheduledFor *time.Time `json:"scheduledFor"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"batches"`
	}
	if err := d.Do(ctx, `{ batches(first: 50) { edges { node { scheduledFor } } } }`, nil, &bs); err != nil {
		t.Fatal(err)
	}
	for _, e := range bs.Batches.Edges {
		// A run due before the pause may have fired; none after it.
		if e.Node.ScheduledFor != nil && e.Node.ScheduledFor.After(pausedAt) {
			t.Errorf("a batch for %v, after the pause at %v", e.Node.ScheduledFor, pausedAt)
		}
	}
}
