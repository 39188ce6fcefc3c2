package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/scale/poolconf"
	"github.com/rpacloud/rpacloud/core/scale/sim"
)

const simulateUsage = `usage: rpacloud simulate --config FILE.hcl --trace FILE.csv [--pool NAME] [--boot-delay 90s]
                         [--robot-hour-cost X] [--seed N] [--start RFC3339] [--window 5m] [-o json]`

type simulateOptions struct {
	cfgPath, tracePath, poolName, start string
	boot, window                        time.Duration
	cost                                float64
	seed                                uint64
	asJSON                              bool
	out                                 *output
}

func newSimulateCmd() *cobra.Command {
	var o simulateOptions
	cmd := &cobra.Command{
		Use:   "simulate --config F.hcl --trace F.csv",
		Short: "capacity planning: replay a workload trace on a virtual clock",
		Long: `Capacity planning: replay a workload trace against a pool of the
configuration on a virtual clock, with the real dispatch policy and scaling
rule, and with two baselines (static pool, target tracking).

-o json (or --json) prints the report as one JSON object; its fields are
those of package core/scale/sim's Report (robot_hours, cost, peak_robots,
scale_ups, scale_downs, direction_changes, batch_completion_p50_s, ...,
offline_lower_bound_robot_hours, baselines.static, baselines.target_tracking).`,
		Args: cobra.ArbitraryArgs, // checked in the body, for the usage line
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(runSimulate(o, args, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfgPath, "config", "", "HCL configuration (file or directory) declaring the pool")
	f.StringVar(&o.tracePath, "trace", "", "trace CSV: submit_at_s,customer,tasks,task_duration_s[,fail_rate,data_error_rate,hang_rate]")
	f.StringVar(&o.poolName, "pool", "", "pool to simulate (default: the configuration's only pool)")
	f.DurationVar(&o.boot, "boot-delay", 90*time.Second, "how long a rented robot takes to come up")
	f.Float64Var(&o.cost, "robot-hour-cost", 0, "price of one robot-hour, for the cost figures")
	f.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed gives the same report")
	f.StringVar(&o.start, "start", "2026-11-01T00:00:00Z", "wall-clock time of the trace's second 0 (for schedules)")
	f.DurationVar(&o.window, "window", 5*time.Minute, "target tracking's scale-down stabilisation window")
	f.BoolVar(&o.asJSON, "json", false, "print the report as one JSON object (same as -o json)")
	o.out = addOutputFlag(cmd)
	return cmd
}

// runSimulate replays a workload trace against a pool of the configuration
// on a virtual clock: the pool's scaling rule and both baselines.
func runSimulate(o simulateOptions, args []string, stdout, stderr io.Writer) int {
	if o.cfgPath == "" || o.tracePath == "" || len(args) > 0 {
		fmt.Fprintln(stderr, simulateUsage)
		return 2
	}
	t0, err := time.Parse(time.RFC3339, o.start)
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud simulate: --start %q: %v\n", o.start, err)
		return 2
	}
	cfg, diags, files := config.Load(o.cfgPath)
	if diags.HasErrors() {
		_ = config.WriteDiagnostics(stderr, files, diags)
		return 1
	}
	pc, err := poolconf.FromConfig(cfg, o.poolName)
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud simulate: %s: %v\n", o.cfgPath, err)
		return 1
	}
	f, err := os.Open(o.tracePath)
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud simulate:", err)
		return 1
	}
	trace, err := sim.ReadTrace(f, o.tracePath)
	f.Close()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud simulate:", err)
		return 1
	}
	rep, err := sim.Simulate(trace, sim.Options{
		Pool: pc, BootDelay: o.boot, RobotHourCost: o.cost, Seed: o.seed, Start: t0, Window: o.window,
	})
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud simulate:", err)
		return 1
	}
	if o.asJSON || o.out.JSON() {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "rpacloud simulate:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "pool %s: %d batches, %d tasks, %d customers, %.1f robot-hours of work over %.0f h; boot delay %s\n",
		rep.Pool, rep.Batches, rep.Tasks, rep.Customers, rep.WorkHours, rep.HorizonHours, o.boot)
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
	fmt.Fprintf(stdout, "\nthe pool's scaling rule under each dispatch policy (the pool's: %s)\n", pc.Fairness)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fairness\trobot-h\tp50 s\tp95 s\tmax s\tlargest batch s\tmax wait s\tJain\t")
	for _, r := range rep.Fairness {
		fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.3f\t\n", r.Fairness, r.RobotHours,
			r.CompletionP50, r.CompletionP95, r.CompletionMax, r.LargestBatch, r.MaxWait, r.JainSlowdown)
	}
	_ = tw.Flush()
	return 0
}
