package main

import (
	"context"
	"fmt"

	"strings"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/gqlclient"
)

// Job control (README "Job control"): batch cancel/retry, task stop/retry,
// pool and process pause/resume. Each is one GraphQL mutation; the daemon
// checks who may do it and records it as events.

const (
	cancelBatchQ   = `mutation($id:ID!,$r:String){cancelBatch(id:$id,reason:$r){id total pending running succeeded failed cancelled stack}}`
	retryBatchQ    = `mutation($id:ID!,$f:Boolean,$c:Boolean){retryBatch(id:$id,failed:$f,cancelled:$c){id total pending running succeeded failed cancelled stack}}`
	stopTaskQ      = `mutation($id:ID!,$r:String){stopTask(id:$id,reason:$r){id state attemptNo manualRetries failureReason errorMessage}}`
	retryTaskQ     = `mutation($id:ID!){retryTask(id:$id){id state attemptNo manualRetries failureReason errorMessage}}`
	pausePoolQ     = `mutation($n:String!,$r:String){pausePool(name:$n,reason:$r){name pausedAt pausedBy pauseReason}}`
	resumePoolQ    = `mutation($n:String!){resumePool(name:$n){name pausedAt pausedBy pauseReason}}`
	pauseProcessQ  = `mutation($n:String!,$r:String){pauseProcess(name:$n,reason:$r){name pausedAt pausedBy pauseReason}}`
	resumeProcessQ = `mutation($n:String!){resumeProcess(name:$n){name pausedAt pausedBy pauseReason}}`
)

// controlCmd builds a job-control command: one positional argument, the
// connection flags, -o json, and body run with a client; body returns the
// mutation's answer (printed as it is with -o json) and its text line.
func controlCmd(use, short, long, group string, body func(ctx context.Context, c *gqlclient.Client, arg string) (any, string, error)) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Args: cobra.ExactArgs(1)}
	cf.register(cmd.Flags())
	out := addOutputFlag(cmd)
	name := group + " " + strings.Fields(use)[0]
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		c, err := cf.client()
		if err != nil {
			fmt.Fprintf(stderr, "rpacloud %s: %v\n", name, err)
			return exit(exitFailure)
		}
		v, line, err := body(cmd.Context(), c, pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "rpacloud %s %s: %v\n", name, pos[0], err)
			return exit(exitFailure)
		}
		if out.JSON() {
			return exit(printJSON(stdout, stderr, v))
		}
		fmt.Fprintln(stdout, line)
		return nil
	}
	return cmd
}

// batchControl is a batch as job-control commands print it.
type batchControl struct {
	ID        string `json:"id"`
	Total     int    `json:"total"`
	Pending   int    `json:"pending"`
	Running   int    `json:"running"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Cancelled int    `json:"cancelled"`
	Stack     string `json:"stack"`
}

func (b batchControl) line(what string) string {
	return fmt.Sprintf("batch %s %s: %d pending, %d running (asked to stop when cancelled), %d succeeded, %d failed, %d cancelled of %d",
		b.ID, what, b.Pending, b.Running, b.Succeeded, b.Failed, b.Cancelled, b.Total)
}

// taskGQL is a task as the job-control mutations answer it.
type taskGQL struct {
	ID            string  `json:"id"`
	State         string  `json:"state"`
	AttemptNo     int     `json:"attemptNo"`
	ManualRetries int     `json:"manualRetries"`
	FailureReason *string `json:"failureReason"`
	ErrorMessage  string  `json:"errorMessage"`
}

// taskControl is a task as job-control commands print it (-o json).
type taskControl struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	Attempts      int    `json:"attempts"`
	ManualRetries int    `json:"manual_retries"`
	FailureReason string `json:"failure_reason"`
	ErrorMessage  string `json:"error_message"`
}

func (t taskGQL) view() taskControl {
	return taskControl{ID: t.ID, State: strings.ToLower(t.State), Attempts: t.AttemptNo, ManualRetries: t.ManualRetries,
		FailureReason: strings.ToLower(deref(t.FailureReason)), ErrorMessage: t.ErrorMessage}
}

// pausableGQL is a pool or process as pause and resume answer it.
type pausableGQL struct {
	Name        string  `json:"name"`
	PausedAt    *string `json:"pausedAt"`
	PausedBy    *string `json:"pausedBy"`
	PauseReason *string `json:"pauseReason"`
}

// pausable is a pool or process as pause and resume print it (-o json).
type pausable struct {
	Name        string  `json:"name"`
	PausedAt    *string `json:"paused_at"`
	PausedBy    *string `json:"paused_by"`
	PauseReason *string `json:"pause_reason"`
}

func (p pausable) line(kind string) string {
	if p.PausedAt == nil {
		return fmt.Sprintf("%s %s runs", kind, p.Name)
	}
	s := fmt.Sprintf("%s %s paused since %s by %s", kind, p.Name, *p.PausedAt, deref(p.PausedBy))
	if r := deref(p.PauseReason); r != "" {
		s += ": " + r
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func newBatchCmd() *cobra.Command {
	var reason string
	cancel := controlCmd("cancel ID [--reason T]", "cancel a batch: pending tasks end cancelled, running ones are asked to stop",
		`Cancel a batch: its pending tasks end cancelled at once, the robots of its
running tasks are asked to stop (as task stop). The batch finishes once
nothing runs. -o json prints the batch: {"id", "total", "pending",
"running", "succeeded", "failed", "cancelled", "stack"}.`, "batch",
		func(ctx context.Context, c *gqlclient.Client, id string) (any, string, error) {
			var out struct {
				B batchControl `json:"cancelBatch"`
			}
			err := c.Do(ctx, cancelBatchQ, map[string]any{"id": id, "r": nilIfEmpty(reason)}, &out)
			return out.B, out.B.line("cancelled"), err
		})
	cancel.Flags().StringVar(&reason, "reason", "", "why (recorded with the events)")

	var failed, cancelled bool
	retry := controlCmd("retry ID [--failed] [--cancelled]", "retry the failed and/or cancelled tasks of a batch",
		`Retry the finished tasks of a batch that failed (--failed, the default when
neither flag is given) and/or were cancelled (--cancelled): they are
pending again for new attempts, counted apart from automatic retries
(manualRetries), and their max_wait counts from now. -o json prints the
batch as batch cancel does.`, "batch",
		func(ctx context.Context, c *gqlclient.Client, id string) (any, string, error) {
			f := failed || !cancelled
			var out struct {
				B batchControl `json:"retryBatch"`
			}
			err := c.Do(ctx, retryBatchQ, map[string]any{"id": id, "f": f, "c": cancelled}, &out)
			return out.B, out.B.line("retried"), err
		})
	retry.Flags().BoolVar(&failed, "failed", false, "retry the failed tasks")
	retry.Flags().BoolVar(&cancelled, "cancelled", false, "retry the cancelled tasks")
	return group(&cobra.Command{Use: "batch", Short: "cancel and retry batches"}, cancel, retry)
}

func newTaskStopCmd() *cobra.Command {
	var reason string
	cmd := controlCmd("stop ID [--reason T]", "stop a task: pending ends cancelled, running is stopped on its robot",
		`Stop a task. A pending task ends cancelled at once. A running task's robot
is asked to stop: it learns of it within moments (or at its next
heartbeat), cancels the run (a crawler's browser run ends, a vendor job is
stopped through the vendor's own stop call) and reports; the attempt ends
stopped and the task cancelled. A robot that does not report within the
grace (60 s) is treated like a time-out. A success reported within the
grace is kept, even after the robot learned of the stop (the work was
done). -o json prints {"id", "state",
"attempts", "manual_retries", "failure_reason", "error_message"}
(state and failure_reason lower case).`, "task",
		func(ctx context.Context, c *gqlclient.Client, id string) (any, string, error) {
			var out struct {
				T taskGQL `json:"stopTask"`
			}
			err := c.Do(ctx, stopTaskQ, map[string]any{"id": id, "r": nilIfEmpty(reason)}, &out)
			t := out.T.view()
			line := fmt.Sprintf("task %s cancelled", t.ID)
			if t.State == "running" {
				line = fmt.Sprintf("task %s: its robot was asked to stop attempt %d", t.ID, t.Attempts)
			}
			return t, line, err
		})
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded with the events)")
	return cmd
}

func newTaskRetryCmd() *cobra.Command {
	return controlCmd("retry ID", "retry a failed or cancelled task",
		`Retry a failed or cancelled task: it is pending again for a new attempt,
its automatic retries and time-outs start again from zero, manualRetries
counts one more, and its max_wait counts from now. -o json prints the task
as task stop does.`, "task",
		func(ctx context.Context, c *gqlclient.Client, id string) (any, string, error) {
			var out struct {
				T taskGQL `json:"retryTask"`
			}
			err := c.Do(ctx, retryTaskQ, map[string]any{"id": id}, &out)
			t := out.T.view()
			return t, fmt.Sprintf("task %s pending again (manual retry %d)", t.ID, t.ManualRetries), err
		})
}

// pauseCmds are the pause and resume commands of pools or processes.
func pauseCmds(kind, pauseQ, resumeQ, pauseField, resumeField string) []*cobra.Command {
	var reason string
	pause := controlCmd("pause NAME [--reason T]", "pause a "+kind+": none of its work is dispatched",
		fmt.Sprintf(`Pause a %s: none of its tasks is dispatched (running ones go on), its
pending tasks do not expire while it is paused, the scaler rents no VM for
them and its triggers do not fire. The dashboard and pool status show who
paused it and why. -o json prints {"name", "paused_at", "paused_by",
"pause_reason"} (null once resumed).`, kind), kind,
		func(ctx context.Context, c *gqlclient.Client, name string) (any, string, error) {
			var out map[string]pausableGQL
			err := c.Do(ctx, pauseQ, map[string]any{"n": name, "r": nilIfEmpty(reason)}, &out)
			p := pausable(out[pauseField])
			return p, p.line(kind), err
		})
	pause.Flags().StringVar(&reason, "reason", "", "why (shown on the dashboard)")
	resume := controlCmd("resume NAME", "resume a paused "+kind,
		fmt.Sprintf(`Resume a paused %s: its robots are woken and its waiting tasks' max_wait
starts again from now. -o json prints it as pause does.`, kind), kind,
		func(ctx context.Context, c *gqlclient.Client, name string) (any, string, error) {
			var out map[string]pausableGQL
			err := c.Do(ctx, resumeQ, map[string]any{"n": name}, &out)
			p := pausable(out[resumeField])
			return p, p.line(kind), err
		})
	return []*cobra.Command{pause, resume}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
