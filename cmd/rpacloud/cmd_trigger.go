package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/gqlclient"
)

const triggerLong = `Triggers: HCL trigger blocks that start batches on a schedule (see the
HCL reference, core/config/README.md#trigger).

  rpacloud trigger list [--runs N]
  rpacloud trigger pause NAME [--reason TEXT]
  rpacloud trigger resume NAME
  rpacloud trigger fire NAME

Pause, resume and fire need an admin or operator token (a department's
operator: its own triggers); list shows the triggers the token may see.`

const triggerUsage = "usage:\n" + `  rpacloud trigger list [--runs N]
  rpacloud trigger pause NAME [--reason TEXT]
  rpacloud trigger resume NAME
  rpacloud trigger fire NAME
`

func newTriggerCmd() *cobra.Command {
	return group(&cobra.Command{Use: "trigger", Short: "list, pause, resume and fire triggers", Long: triggerLong},
		newTriggerListCmd(), newTriggerPauseCmd(), newTriggerResumeCmd(), newTriggerFireCmd())
}

// triggerCmd builds a trigger subcommand (see groupCmd).
func triggerCmd(cmd *cobra.Command, n int, what string, body clientBody) *cobra.Command {
	return groupCmd("trigger", triggerUsage, cmd, n, what, body)
}

// triggerJSON is one trigger of `trigger list -o json` and of pause and
// resume.
type triggerJSON struct {
	Name             string      `json:"name"`
	Process          string      `json:"process"`
	Customer         string      `json:"customer"`
	Cron             string      `json:"cron"`
	Timezone         string      `json:"timezone"`
	Calendar         string      `json:"calendar,omitempty"`
	Days             string      `json:"days,omitempty"`
	CatchUp          string      `json:"catch_up"`
	PausedAt         *time.Time  `json:"paused_at"`
	PausedBy         *string     `json:"paused_by,omitempty"`
	PauseReason      *string     `json:"pause_reason,omitempty"`
	LastScheduledFor *time.Time  `json:"last_scheduled_for"`
	NextRuns         []time.Time `json:"next_runs"`
}

const triggerFields = `name processName customerName cron timezone calendar days catchUp pausedAt pausedBy pauseReason lastScheduledFor`

// triggerGQL is a trigger as the API spells it.
type triggerGQL struct {
	Name             string      `json:"name"`
	Process          string      `json:"processName"`
	Customer         string      `json:"customerName"`
	Cron             string      `json:"cron"`
	Timezone         string      `json:"timezone"`
	Calendar         string      `json:"calendar"`
	Days             string      `json:"days"`
	CatchUp          string      `json:"catchUp"`
	PausedAt         *time.Time  `json:"pausedAt"`
	PausedBy         *string     `json:"pausedBy"`
	PauseReason      *string     `json:"pauseReason"`
	LastScheduledFor *time.Time  `json:"lastScheduledFor"`
	NextRuns         []time.Time `json:"nextRuns"`
}

func (g triggerGQL) out() triggerJSON {
	if g.NextRuns == nil {
		g.NextRuns = []time.Time{}
	}
	return triggerJSON(g)
}

func newTriggerListCmd() *cobra.Command {
	var runs int
	cmd := &cobra.Command{Use: "list", Short: "the triggers with their next runs",
		Long: `The configured triggers the token may see, with their next runs.

-o json prints {"triggers": [{"name", "process", "customer", "cron", "timezone", "calendar", "days",
"catch_up", "paused_at", "paused_by", "pause_reason", "last_scheduled_for",
"next_runs": [...]}]}.`}
	cmd.Flags().IntVar(&runs, "runs", 3, "next runs to show (1-100)")
	out := addOutputFlag(cmd)
	return triggerCmd(cmd, 0, "no arguments", func(ctx context.Context, c *gqlclient.Client, _ []string, stdout io.Writer, fail func(error) int) int {
		var res struct {
			Triggers struct {
				Edges []struct {
					Node triggerGQL `json:"node"`
				} `json:"edges"`
			} `json:"triggers"`
		}
		q := `query($runs: Int) { triggers(first: 500, orderBy: {field: NAME}, where: {active: true}) { edges { node { ` + triggerFields + ` nextRuns(count: $runs) } } } }`
		if err := c.Do(ctx, q, map[string]any{"runs": runs}, &res); err != nil {
			return fail(err)
		}
		list := make([]triggerJSON, 0, len(res.Triggers.Edges))
		for _, e := range res.Triggers.Edges {
			list = append(list, e.Node.out())
		}
		if out.JSON() {
			return jsonResult(stdout, map[string]any{"triggers": list}, fail)
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "No triggers.")
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPROCESS\tCUSTOMER\tCRON\tZONE\tCALENDAR\tCATCH-UP\tSTATE\tNEXT RUNS")
		for _, t := range list {
			loc, err := time.LoadLocation(t.Timezone)
			if err != nil {
				loc = time.UTC
			}
			var next []string
			for _, r := range t.NextRuns {
				next = append(next, r.In(loc).Format("2006-01-02 15:04"))
			}
			cal := "-"
			if t.Calendar != "" {
				cal = t.Calendar
				if t.Days != "" {
					cal += " (" + strings.ReplaceAll(t.Days, "_", "-") + ")"
				}
			}
			state := "active"
			if t.PausedAt != nil {
				state = "paused"
				if t.PausedBy != nil {
					state += " by " + *t.PausedBy
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Process, t.Customer, t.Cron, t.Timezone, cal, t.CatchUp, state, strings.Join(next, ", "))
		}
		if err := tw.Flush(); err != nil {
			return fail(err)
		}
		return 0
	})
}

func newTriggerPauseCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{Use: "pause NAME", Short: "stop a trigger firing until it is resumed",
		Long: `Pause a trigger: its due runs are skipped, each recorded as a
trigger.skipped event with the reason, until it is resumed. The pause
outlives reloads and restarts.

-o json prints the trigger as trigger list does (next_runs empty).`}
	cmd.Flags().StringVar(&reason, "reason", "", "why, shown with the trigger (at most 512 bytes)")
	out := addOutputFlag(cmd)
	return triggerCmd(cmd, 1, "the trigger name", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
		var res struct {
			PauseTrigger triggerGQL `json:"pauseTrigger"`
		}
		vars := map[string]any{"name": pos[0]}
		if reason != "" {
			vars["reason"] = reason
		}
		if err := c.Do(ctx, `mutation($name: String!, $reason: String) { pauseTrigger(name: $name, reason: $reason) { `+triggerFields+` } }`, vars, &res); err != nil {
			return fail(err)
		}
		if out.JSON() {
			return jsonResult(stdout, res.PauseTrigger.out(), fail)
		}
		fmt.Fprintf(stdout, "trigger %s paused\n", pos[0])
		return 0
	})
}

func newTriggerResumeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "resume NAME", Short: "let a paused trigger fire again",
		Long: `Resume a paused trigger; runs skipped while it was paused are not made up.

-o json prints the trigger as trigger list does (next_runs empty).`}
	out := addOutputFlag(cmd)
	return triggerCmd(cmd, 1, "the trigger name", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
		var res struct {
			ResumeTrigger triggerGQL `json:"resumeTrigger"`
		}
		if err := c.Do(ctx, `mutation($name: String!) { resumeTrigger(name: $name) { `+triggerFields+` } }`, map[string]any{"name": pos[0]}, &res); err != nil {
			return fail(err)
		}
		if out.JSON() {
			return jsonResult(stdout, res.ResumeTrigger.out(), fail)
		}
		fmt.Fprintf(stdout, "trigger %s resumed\n", pos[0])
		return 0
	})
}

func newTriggerFireCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "fire NAME", Short: "start one run of a trigger now",
		Long: `Fire a trigger now: one batch with the trigger's inputs (a template
renders for the current time), outside its schedule and catch-up rule.

-o json prints {"batch", "total"}.`}
	out := addOutputFlag(cmd)
	return triggerCmd(cmd, 1, "the trigger name", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
		var res struct {
			FireTrigger struct {
				ID    string `json:"id"`
				Total int    `json:"total"`
			} `json:"fireTrigger"`
		}
		if err := c.Do(ctx, `mutation($name: String!) { fireTrigger(name: $name) { id total } }`, map[string]any{"name": pos[0]}, &res); err != nil {
			return fail(err)
		}
		b := res.FireTrigger
		if out.JSON() {
			return jsonResult(stdout, map[string]any{"batch": b.ID, "total": b.Total}, fail)
		}
		fmt.Fprintf(stdout, "trigger %s fired: batch %s (%d tasks)\n", pos[0], b.ID, b.Total)
		return 0
	})
}
