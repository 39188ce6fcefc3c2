package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rpacloud/rpacloud/core/dispatch/dispatchbench"
)

const benchUsage = `Usage:
  rpacloud bench dispatch --db sqlite|postgres://... [--tasks N] [--robots W] [--customers C]
                          [--fairness weighted|oldest_served] [--backlog [--sizes 10000,100000,1000000]] [--json]
  rpacloud bench fairness [--robots W] [--json]
`

// runBench implements `rpacloud bench`: figures of the dispatcher through
// its real claim and report path (package dispatchbench).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return 2
	}
	switch args[0] {
	case "dispatch":
		return benchDispatch(ctx, args[1:], stdout, stderr)
	case "fairness":
		return benchFairness(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "rpacloud bench: unknown benchmark %q\n%s", args[0], benchUsage)
	return 2
}

func benchDispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench dispatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o dispatchbench.Options
	fs.StringVar(&o.DB, "db", "sqlite", "sqlite (a fresh temporary file) or a postgres:// URL (a fresh database is created there and dropped)")
	fs.IntVar(&o.Tasks, "tasks", 10000, "tasks to burn down (in --backlog mode: tasks measured per backlog size)")
	fs.IntVar(&o.Robots, "robots", 16, "concurrent in-process robots")
	fs.IntVar(&o.Customers, "customers", 10, "customers the tasks are spread over")
	fs.StringVar(&o.Fairness, "fairness", "weighted", "pool fairness: weighted or oldest_served")
	backlog := fs.Bool("backlog", false, "measure claim throughput with growing pending backlogs")
	sizes := fs.String("sizes", "10000,100000,1000000", "backlog sizes for --backlog, comma-separated")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.Fairness != "weighted" && o.Fairness != "oldest_served" {
		fmt.Fprintf(stderr, "rpacloud bench dispatch: --fairness %q: want weighted or oldest_served\n", o.Fairness)
		return 2
	}
	if !*backlog {
		r, err := dispatchbench.BurnDown(ctx, o)
		if err != nil {
			fmt.Fprintln(stderr, "rpacloud bench dispatch:", err)
			return 1
		}
		if *asJSON {
			return printJSON(stdout, stderr, r)
		}
		printResult(stdout, r)
		return 0
	}
	var ns []int
	for s := range strings.SplitSeq(*sizes, ",") {
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
	if *asJSON {
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

func benchFairness(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench fairness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := dispatchbench.DefaultFairness
	fs.IntVar(&o.Robots, "robots", o.Robots, "robots, all busy while the big customer's backlog lasts")
	fs.IntVar(&o.Whale, "whale", o.Whale, "tasks of the big customer")
	fs.IntVar(&o.Minnows, "minnows", o.Minnows, "small customers arriving during the backlog")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.Robots <= 0 || o.Whale <= o.Robots || o.Minnows <= 0 {
		fmt.Fprintln(stderr, "rpacloud bench fairness: --robots, --minnows must be positive and --whale above --robots")
		return 2
	}
	o.ArriveBy = max(o.Robots, o.Whale/2)
	rep := dispatchbench.Fairness(o)
	if *asJSON {
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

func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(stderr, "rpacloud bench:", err)
		return 1
	}
	return 0
}
