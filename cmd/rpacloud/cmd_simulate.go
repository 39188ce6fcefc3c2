package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/scale/poolconf"
	"github.com/rpacloud/rpacloud/core/scale/sim"
)

const simulateUsage = `usage: rpacloud simulate --config FILE.hcl --trace FILE.csv [--pool NAME] [--boot-delay 90s]
                         [--robot-hour-cost X] [--seed N] [--start RFC3339] [--window 5m] [--json]`

// runSimulate replays a workload trace against a pool of the configuration
// on a virtual clock: the pool's scaling rule and both baselines.
func runSimulate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "HCL configuration (file or directory) declaring the pool")
	tracePath := fs.String("trace", "", "trace CSV: submit_at_s,customer,tasks,task_duration_s[,fail_rate,data_error_rate,hang_rate]")
	poolName := fs.String("pool", "", "pool to simulate (default: the configuration's only pool)")
	boot := fs.Duration("boot-delay", 90*time.Second, "how long a rented robot takes to come up")
	cost := fs.Float64("robot-hour-cost", 0, "price of one robot-hour, for the cost figures")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same report")
	start := fs.String("start", "2026-11-01T00:00:00Z", "wall-clock time of the trace's second 0 (for schedules)")
	window := fs.Duration("window", 5*time.Minute, "target tracking's scale-down stabilisation window")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" || *tracePath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, simulateUsage)
		return 2
	}
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud simulate: --start %q: %v\n", *start, err)
		return 2
	}
	cfg, diags, files := config.Load(*cfgPath)
	if diags.HasErrors() {
		_ = config.WriteDiagnostics(stderr, files, diags)
		return 1
	}
	pc, err := poolconf.FromConfig(cfg, *poolName)
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud simulate: %s: %v\n", *cfgPath, err)
		return 1
	}
	f, err := os.Open(*tracePath)
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud simulate:", err)
		return 1
	}
	trace, err := sim.ReadTrace(f, *tracePath)
	f.Close()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud simulate:", err)
		return 1
	}
	rep, err := sim.Simulate(trace, sim.Options{
		Pool: pc, BootDelay: *boot, RobotHourCost: *cost, Seed: *seed, Start: t0, Window: *window,
	})
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud simulate:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "rpacloud simulate:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "pool %s: %d batches, %d tasks, %d customers, %.1f robot-hours of work over %.0f h; boot delay %s\n",
		rep.Pool, rep.Batches, rep.Tasks, rep.Customers, rep.WorkHours, rep.HorizonHours, *boot)
	fmt.Fprintf(stdout, "offline lower bound: %.1f robot-hours\n\n", rep.LowerBound)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\trobot-h\t÷bound\tcost\tpeak\tups\tdowns\tflips\tp50 s\tp95 s\tmax s\tmax wait s\tJain\t")
	for _, r := range []sim.Result{rep.Result, rep.Baselines.Static, rep.Baselines.TargetTracking} {
		name := string(r.Strategy)
		if r.Strategy == sim.Static {
			name = fmt.Sprintf("static(%d)", r.Robots)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.3f\t%.2f\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.3f\t\n", name, r.RobotHours, r.RatioToBound, r.Cost,
			r.PeakRobots, r.ScaleUps, r.ScaleDowns, r.DirectionChanges, r.CompletionP50, r.CompletionP95, r.CompletionMax, r.MaxWait, r.JainSlowdown)
	}
	_ = tw.Flush()
	return 0
}
