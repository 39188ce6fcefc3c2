package monitor

import (
	"context"
	"fmt"

	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// PoolCounts is a pool's live numbers: what the pool samples, the GraphQL
// poolStatus and the Prometheus metrics all show.
type PoolCounts struct {
	// Robots are the robots provisioned and not on their way out (every
	// state but released and offline).
	Robots, Idle, Busy, Suspect int
	// Pending and Running are the tasks waiting and in progress.
	Pending, Running int
	// RobotsByState is every robot state present, for the metrics.
	RobotsByState map[robot.State]int
}

// CountPools counts the robots and unfinished tasks of every pool, keyed by
// pool ID, in two queries whatever the number of pools. Robots are
// infrastructure and counted with the system's rights; tasks are
// customers' work and counted with ctx's, so a customer counts its own
// queue. withTasks false leaves the task counts at zero without reading
// them (for callers who may see no tasks at all).
func CountPools(ctx context.Context, c *ent.Client, withTasks bool) (map[int]PoolCounts, error) {
	out := map[int]PoolCounts{}
	var rrows []struct {
		PoolID int         `json:"pool_id"`
		State  robot.State `json:"state"`
		Count  int         `json:"count"`
	}
	if err := c.Robot.Query().GroupBy(robot.FieldPoolID, robot.FieldState).Aggregate(ent.Count()).
		Scan(privacy.DecisionContext(ctx, privacy.Allow), &rrows); err != nil {
		return nil, fmt.Errorf("count robots: %w", err)
	}
	for _, r := range rrows {
		pc := out[r.PoolID]
		if pc.RobotsByState == nil {
			pc.RobotsByState = map[robot.State]int{}
		}
		pc.RobotsByState[r.State] += r.Count
		switch r.State {
		case robot.StateIdle:
			pc.Idle += r.Count
		case robot.StateBusy:
			pc.Busy += r.Count
		case robot.StateSuspect:
			pc.Suspect += r.Count
		}
		if r.State != robot.StateReleased && r.State != robot.StateOffline {
			pc.Robots += r.Count
		}
		out[r.PoolID] = pc
	}
	if !withTasks {
		return out, nil
	}
	var trows []struct {
		PoolID int        `json:"pool_id"`
		State  task.State `json:"state"`
		Count  int        `json:"count"`
	}
	if err := c.Task.Query().Where(task.StateIn(task.StatePending, task.StateRunning)).
		GroupBy(task.FieldPoolID, task.FieldState).Aggregate(ent.Count()).Scan(ctx, &trows); err != nil {
		return nil, fmt.Errorf("count tasks: %w", err)
	}
	for _, r := range trows {
		pc := out[r.PoolID]
		if r.State == task.StatePending {
			pc.Pending += r.Count
		} else {
			pc.Running += r.Count
		}
		out[r.PoolID] = pc
	}
	return out, nil
}
