package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/dispatch/dispatchbench"
	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/fleetbench"
)

func newBenchCmd() *cobra.Command {
	return group(&cobra.Command{Use: "bench", Short: "figures of the dispatcher through its real claim and report path, and of a robot fleet over HTTP"},
		newBenchDispatchCmd(), newBenchFairnessCmd(), newBenchFleetCmd())
}

type benchDispatchOptions struct {
	db      dispatchbench.Options
	backlog bool
	sizes   string
	asJSON  bool
	out     *output
}

func newBenchDispatchCmd() *cobra.Command {
	var o benchDispatchOptions
	cmd := &cobra.Command{
		Use:   "dispatch --db sqlite|postgres://... [--tasks N --robots W --customers C] [--backlog]",
		Short: "dispatcher burn-down through the real claim/report path",
		Long: `Dispatcher burn-down through the real claim/report path, on a fresh database
that is dropped afterwards; --backlog measures claim throughput with growing
pending backlogs.

-o json (or --json) prints the result object of package
core/dispatch/dispatchbench (db, backlog, tasks, robots, customers,
fairness, seconds, tasks_per_s, claim/report p50/p99 in ms, ...); with
--backlog, {"backlog_runs": [...]} of those.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(benchDispatch(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.db.DB, "db", "sqlite", "sqlite (a fresh temporary file) or a postgres:// URL (a fresh database is created there and dropped)")
	fs.IntVar(&o.db.Tasks, "tasks", 10000, "tasks to burn down (in --backlog mode: tasks measured per backlog size)")
	fs.IntVar(&o.db.Robots, "robots", 16, "concurrent in-process robots")
	fs.IntVar(&o.db.Customers, "customers", 10, "customers the tasks are spread over")
	fs.StringVar(&o.db.Fairness, "fairness", string(policy.FairShare), "pool fairness: "+strings.Join(policy.Names(), ", "))
	fs.BoolVar(&o.backlog, "backlog", false, "measure claim throughput with growing pending backlogs")
	fs.StringVar(&o.sizes, "sizes", "10000,100000,1000000", "backlog sizes for --backlog, comma-separated")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON (same as -o json)")
	o.out = addOutputFlag(cmd)
	return cmd
}

func benchDispatch(ctx context.Context, bo benchDispatchOptions, stdout, stderr io.Writer) int {
	o, backlog, sizes := bo.db, bo.backlog, bo.sizes
	asJSON := bo.asJSON || bo.out.JSON()
	if _, err := policy.ParseFairness(o.Fairness); err != nil {
		fmt.Fprintf(stderr, "rpacloud bench dispatch: --fairness: %v\n", err)
		return 2
	}
	if !backlog {
		r, err := dispatchbench.BurnDown(ctx, o)
		if err != nil {
			fmt.Fprintln(stderr, "rpacloud bench dispatch:", err)
			return 1
		}
		if asJSON {
			return printJSON(stdout, stderr, r)
		}
		printResult(stdout, r)
		return 0
	}
	var ns []int
	for s := range strings.SplitSeq(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "rpacloud bench dispatch: --sizes: %q is not a positive number\n", s)
			return 2
		}
		ns = append(ns, n)
	}
	rs, err := dispatchbench.Backlog(ctx, o, ns)
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud bench dispatch:", err)
		return 1
	}
	if asJSON {
		return printJSON(stdout, stderr, map[string]any{"backlog_runs": rs})
	}
	for _, r := range rs {
		printResult(stdout, r)
		fmt.Fprintf(stdout, "  plan: %s\n", strings.ReplaceAll(strings.TrimSpace(r.Plan), "\n", "\n        "))
	}
	return 0
}

func printResult(w io.Writer, r *dispatchbench.Result) {
	fmt.Fprintf(w, "%s backlog %d: %d tasks by %d robots (%d customers, %s) in %.2fs: %.0f tasks/s, claim p50 %.2fms p99 %.2fms, report p50 %.2fms p99 %.2fms\n",
		r.DB, r.Backlog, r.Tasks, r.Robots, r.Customers, r.Fairness, r.Seconds, r.TasksPerS, r.ClaimP50ms, r.ClaimP99ms, r.ReportP50ms, r.ReportP99ms)
}

func newBenchFairnessCmd() *cobra.Command {
	o := dispatchbench.DefaultFairness
	var asJSON bool
	var out *output
	cmd := &cobra.Command{
		Use:   "fairness [--robots W]",
		Short: "dispatch fairness in slots: fair_share, weighted, oldest_served and FIFO",
		Long: `Dispatch fairness in slots (machine-independent): every dispatch policy
(fair_share, weighted, oldest_served) and FIFO on the whale-and-minnows
scenario: one big customer's order at slot 0, small customers arriving
during its backlog.

-o json (or --json) prints the report of package core/dispatch/dispatchbench:
{"scenario", "policies": [{"policy", "first_wait_max_slots", "jain", ...}]}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(benchFairness(o, asJSON || out.JSON(), cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.Robots, "robots", o.Robots, "robots, all busy while the big customer's backlog lasts")
	fs.IntVar(&o.Whale, "whale", o.Whale, "tasks of the big customer")
	fs.IntVar(&o.Minnows, "minnows", o.Minnows, "small customers arriving during the backlog")
	fs.BoolVar(&asJSON, "json", false, "print JSON (same as -o json)")
	out = addOutputFlag(cmd)
	return cmd
}

func benchFairness(o dispatchbench.FairnessOptions, asJSON bool, stdout, stderr io.Writer) int {
	if o.Robots <= 0 || o.Whale <= o.Robots || o.Minnows <= 0 {
		fmt.Fprintln(stderr, "rpacloud bench fairness: --robots, --minnows must be positive and --whale above --robots")
		return 2
	}
	o.ArriveBy = max(o.Robots, o.Whale/2)
	rep := dispatchbench.Fairness(o)
	if asJSON {
		return printJSON(stdout, stderr, rep)
	}
	fmt.Fprintf(stdout, "one customer with %d tasks, %d customers with %d-%d tasks arriving by slot %d, %d robots (slots = dispatches)\n",
		o.Whale, o.Minnows, o.MinTasks, o.MaxTasks, o.ArriveBy, o.Robots)
	fmt.Fprintf(stdout, "%-14s %10s %10s %11s %11s %9s %9s %9s %7s %10s\n", "policy", "first max", "first mean",
		"small mean", "fair share", "small p50", "small p95", "small max", "Jain", "big done")
	for _, p := range rep.Policies {
		fmt.Fprintf(stdout, "%-14s %10d %10.1f %11.0f %11.0f %9d %9d %9d %7.3f %10d\n", p.Policy, p.FirstWaitMax, p.FirstWaitMean,
			p.DelayMean, p.IdealDelayMean, p.DelayP50, p.DelayP95, p.DelayMax, p.Jain, p.WhaleDoneSlot)
	}
	fmt.Fprintln(stdout, "(first: slots from a small customer's arrival to its first dispatch; small: to its last; fair share: the same under round robin among active customers; Jain over fair share ÷ small done; big done: the big order's last dispatch)")
	return 0
}

func newBenchFleetCmd() *cobra.Command {
	var o fleetbench.Options
	var asJSON bool
	var out *output
	cmd := &cobra.Command{
		Use:   "fleet [--robots N --rate R --task-seconds S --duration D --idle D] [--db sqlite|postgres://... | --url URL --token ADMIN_TOKEN]",
		Short: "N virtual robots speaking the robot protocol over HTTP against a daemon, at an offered task rate",
		Long: `Starts N virtual robots that speak the real robot protocol over HTTP
(registerRobot, claimTask long polls, heartbeats and an awaitStop long poll
while a task runs, reportResult) and offers R tasks a second through
submitBatch, one batch every 100 ms.

With --db (default sqlite) the bench starts this binary as a daemon
(rpacloud server on a temporary directory and a loopback port; on a
postgres:// URL in a fresh database that is dropped afterwards), enrols
the robots with the product's enrolment function on its database (HTTP
enrolment is rate limited) and stops it at the end. With --url and --token
(an administrator's) it measures a running daemon, which needs a pool
"fleet" (max >= N), a builtin process "task" in it and a customer
"bench"; robots then enrol over HTTP, about 2 a second.

The daemon's CPU, RSS and database statements come from its /metrics;
on PostgreSQL started by the bench also pg_stat_database and, when the
server preloads it, pg_stat_statements.

-o json (or --json) prints the result object of package core/fleetbench:
db, robots, rate_offered, task_seconds, duration_s, tasks_submitted,
tasks_done, tasks_per_s, load_seconds, rate_submitted, submit_to_claim_ms/claim_ms/heartbeat_ms/report_ms
{n,p50,p99,max}, idle and loaded {cpu_pct, rss_mb, db_writes,
db_statements}, db_statements_per_task, errors, machine, and the
human-readable summary goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Exe = selfExe()
			o.Log = cmd.ErrOrStderr()
			return exit(benchFleet(cmd.Context(), o, asJSON || out.JSON(), cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.Robots, "robots", 1000, "virtual robots")
	fs.Float64Var(&o.Rate, "rate", 200, "tasks offered per second")
	fs.Float64Var(&o.TaskSeconds, "task-seconds", 2, "how long each task runs on its robot")
	fs.DurationVar(&o.Heartbeat, "heartbeat", time.Second, "a running robot's heartbeat interval")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "load phase: how long tasks are offered")
	fs.DurationVar(&o.Idle, "idle", 10*time.Second, "idle phase measured before the load, every robot waiting")
	fs.DurationVar(&o.PollWait, "poll-wait", 20*time.Second, "how long one claim waits on the daemon (the agent's 20s)")
	fs.StringVar(&o.DB, "db", "sqlite", "sqlite (a temporary file) or a postgres:// URL (a fresh database is created there and dropped) for the daemon the bench starts")
	fs.StringVar(&o.URL, "url", "", "measure the running daemon at this URL instead of starting one")
	fs.StringVar(&o.DebugListen, "daemon-debug-listen", "", "with --db: the daemon serves Go's profiler on this loopback address (e.g. 127.0.0.1:6060), to profile it under the load")
	fs.StringVar(&o.Token, "token", "", "administrator's token of the daemon at --url (default $RPACLOUD_TOKEN)")
	fs.BoolVar(&asJSON, "json", false, "print JSON (same as -o json)")
	out = addOutputFlag(cmd)
	return cmd
}

func benchFleet(ctx context.Context, o fleetbench.Options, asJSON bool, stdout, stderr io.Writer) int {
	if o.URL != "" && o.Token == "" {
		o.Token = os.Getenv("RPACLOUD_TOKEN")
	}
	r, err := fleetbench.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud bench fleet:", err)
		return 1
	}
	if asJSON {
		fmt.Fprintln(stderr, r.Summary())
		return printJSON(stdout, stderr, r)
	}
	fmt.Fprintln(stdout, r.Summary())
	return 0
}
