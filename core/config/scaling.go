package config

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Scaling holds a pool's settings beyond the seed's rule. Every one is off
// (or the seed's value) when omitted, so a pool without them scales exactly
// as seed 003 describes.
type Scaling struct {
	// Cooldown is how long the scaler skips evaluation after renting;
	// nil means the seed's default of tasks_per_robot periods.
	Cooldown *time.Duration
	// BootAware counts robots that are still booting as idle capacity.
	BootAware bool
	// LicenceCap bounds the robots of the pool's RPA vendor across every
	// pool whose processes use that vendor; 0 = no cap.
	LicenceCap int
	// PrewarmLead and PrewarmRobots: this long before a schedule slot of
	// one of the pool's processes starts, and until it ends, the pool
	// holds at least PrewarmRobots robots. 0 robots = off.
	PrewarmLead   time.Duration
	PrewarmRobots int
	// BootTimeout: a rented robot that has not come up by then is
	// destroyed and counted as a failed rental; 0 = the daemon's default.
	BootTimeout time.Duration
}

func (a attrs) boolean(name string, dst *bool) *hcl.Attribute {
	at, v := a.value(name, cty.Bool)
	if at == nil {
		return nil
	}
	*dst = v.True()
	return at
}

func decodeScaling(a attrs, p *Pool) {
	var cd time.Duration
	if at := a.dur("cooldown", &cd); at != nil {
		p.Scaling.Cooldown = &cd
	}
	a.boolean("boot_aware", &p.Scaling.BootAware)
	if at := a.int("licence_cap", &p.Scaling.LicenceCap); at != nil && p.Scaling.LicenceCap < 0 {
		a.errorf(at.Expr.Range(), "Invalid licence_cap", "licence_cap = %d: it must be 0 (no cap) or more.", p.Scaling.LicenceCap)
	}
	leadAt := a.dur("prewarm_lead", &p.Scaling.PrewarmLead)
	robotsAt := a.int("prewarm_robots", &p.Scaling.PrewarmRobots)
	if robotsAt != nil && p.Scaling.PrewarmRobots < 0 {
		a.errorf(robotsAt.Expr.Range(), "Invalid prewarm_robots", "prewarm_robots = %d: it must be 0 (off) or more.", p.Scaling.PrewarmRobots)
	}
	if robotsAt != nil && p.Max > 0 && p.Scaling.PrewarmRobots > p.Max {
		a.errorf(robotsAt.Expr.Range(), "Invalid prewarm_robots",
			"prewarm_robots = %d is greater than max = %d; the pool can never hold that many robots.", p.Scaling.PrewarmRobots, p.Max)
	}
	if leadAt != nil && robotsAt == nil {
		a.errorf(leadAt.Expr.Range(), "Missing prewarm_robots", "prewarm_lead has no effect without prewarm_robots: say how many robots a scheduled peak needs.")
	}
	if at := a.dur("boot_timeout", &p.Scaling.BootTimeout); at != nil && p.Scaling.BootTimeout == 0 {
		a.errorf(at.Expr.Range(), "Invalid boot_timeout", "boot_timeout must be greater than zero; omit it for the default (%s).", fmt.Sprint(DefaultBootTimeout))
	}
}

// DefaultBootTimeout is how long a rented robot may take to come up.
const DefaultBootTimeout = 10 * time.Minute
