// Package poolconf turns a pool's HCL declaration into the inputs of the
// scaling rule: the one place a pool's settings are built, so the daemon's
// scaler and the simulator (whose sim.Pool is this Pool) read the same
// configuration the same way. Adding a pool attribute is a field of Pool
// set in fromPool, plus its HCL decoding in core/config.
package poolconf

import (
	"fmt"
	"math"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/scale/decide"
)

// Pool is one pool's scaling configuration.
type Pool struct {
	Name     string
	Provider string
	Period   time.Duration
	Fairness policy.Fairness
	// Settings carry min, max and tasks_per_robot with the rule's other
	// inputs; the scaler reads them here, not from the pool's row.
	Settings      decide.Settings
	PrewarmLead   time.Duration
	PrewarmRobots int
	Slots         []decide.Slot // the run schedules of the pool's processes
	BootTimeout   time.Duration
	// Vendor is the RPA vendor block the pool's processes run in, for the
	// licence cap; empty when none does.
	Vendor string
	// MaxDuration and Retries of the pool's first process (the simulator
	// applies them to every task of a trace).
	MaxDuration time.Duration
	Retries     int
}

// FromConfig reads pool name out of cfg. An empty name picks the only pool.
func FromConfig(cfg *config.Config, name string) (Pool, error) {
	var cp *config.Pool
	if name == "" {
		if len(cfg.Pools) != 1 {
			names := make([]string, len(cfg.Pools))
			for i, p := range cfg.Pools {
				names[i] = p.Name
			}
			return Pool{}, fmt.Errorf("the configuration has %d pools %v: name one", len(cfg.Pools), names)
		}
		cp = &cfg.Pools[0]
	}
	for i := range cfg.Pools {
		if cfg.Pools[i].Name == name {
			cp = &cfg.Pools[i]
		}
	}
	if cp == nil {
		return Pool{}, fmt.Errorf("no pool %q in the configuration", name)
	}
	return fromPool(cfg, cp)
}

// All reads every pool of cfg, by name.
func All(cfg *config.Config) (map[string]Pool, error) {
	out := make(map[string]Pool, len(cfg.Pools))
	for i := range cfg.Pools {
		p, err := fromPool(cfg, &cfg.Pools[i])
		if err != nil {
			return nil, err
		}
		out[p.Name] = p
	}
	return out, nil
}

func fromPool(cfg *config.Config, cp *config.Pool) (Pool, error) {
	fair, err := policy.ParseFairness(cp.Fairness)
	if err != nil {
		return Pool{}, fmt.Errorf("pool %q: %w", cp.Name, err)
	}
	p := Pool{
		Name: cp.Name, Provider: cp.Provider, Period: cp.Period, Fairness: fair,
		Settings: decide.Settings{Min: cp.Min, Max: cp.Max, TasksPerRobot: max(cp.TasksPerRobot, 1),
			BootAware: cp.Scaling.BootAware, LicenceCap: cp.Scaling.LicenceCap},
		PrewarmLead: cp.Scaling.PrewarmLead, PrewarmRobots: cp.Scaling.PrewarmRobots,
		BootTimeout: cp.Scaling.BootTimeout,
		MaxDuration: config.DefaultMaxDuration, Retries: config.DefaultRetries,
	}
	if p.Period <= 0 {
		p.Period = config.DefaultPeriod
	}
	if p.BootTimeout <= 0 {
		p.BootTimeout = config.DefaultBootTimeout
	}
	if cd := cp.Scaling.Cooldown; cd != nil {
		// A cooldown is a whole number of skipped readings.
		n := int(math.Ceil(float64(*cd) / float64(p.Period)))
		p.Settings.Cooldown = &n
	}
	first := true
	for _, pr := range cfg.Processes {
		if pr.Pool != cp.Name {
			continue
		}
		if first {
			p.MaxDuration, p.Retries, first = pr.MaxDuration, pr.Retries, false
		}
		if pr.Kind == "vendor" && p.Vendor == "" {
			p.Vendor = pr.Runner
		}
		for _, s := range pr.Schedules {
			if s.Start.IsZero() {
				return Pool{}, fmt.Errorf("process %q schedule %q: cron %q was not parsed at load", pr.Name, s.Name, s.Cron)
			}
			loc := time.UTC
			if s.Timezone != "" {
				if loc, err = time.LoadLocation(s.Timezone); err != nil {
					return Pool{}, fmt.Errorf("process %q schedule %q: %w", pr.Name, s.Name, err)
				}
			}
			d := s.Duration
			if d <= 0 {
				d = pr.MaxDuration
			}
			p.Slots = append(p.Slots, decide.Slot{Start: s.Start, Duration: d, Location: loc})
		}
	}
	return p, nil
}
