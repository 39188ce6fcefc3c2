package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/dispatch/dispatchbench"
	"github.com/rpacloud/rpacloud/core/dispatch/policy"
)

func newBenchCmd() *cobra.Command {
	return group(&cobra.Command{Use: "bench", Short: "figures of the dispatcher through its real claim and report path"},
		newBenchDispatchCmd(), newBenchFairnessCmd())
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
	fs.StringVar(&o.db.Fairness, "fairness", string(policy.Weighted), "pool fairness: "+strings.Join(policy.Names(), " or "))
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
		Short: "dispatch fairness in slots: weighted, oldest_served and FIFO",
		Long: `Dispatch fairness in slots (machine-independent): weighted, oldest_served and
FIFO on the whale-and-minnows scenario.

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
	fmt.Fprintf(stdout, "%-14s %16s %16s %18s %18s %7s\n", "policy", "first wait max", "first wait mean", "small done (mean)", "fair share (mean)", "Jain")
	for _, p := range rep.Policies {
		fmt.Fprintf(stdout, "%-14s %16d %16.1f %18.0f %18.0f %7.3f\n", p.Policy, p.FirstWaitMax, p.FirstWaitMean, p.DelayMean, p.IdealDelayMean, p.Jain)
	}
	return 0
}
