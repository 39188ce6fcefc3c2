// Command mkfixture makes the upgrade test's database with the code of the
// release before versioned migrations (d835a5a): make.sh copies it into
// that release's source tree and runs it there, so its store.Open is ent's
// auto-migration and every row is written by that release's own code
// paths. It writes counts.json, each table's row count, beside.
//
//	go run ./mkfixture sqlite FILE COUNTS.json
//	go run ./mkfixture postgres DSN COUNTS.json
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	entmigrate "github.com/rpacloud/rpacloud/ent/migrate"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: mkfixture sqlite|postgres FILE|DSN COUNTS.json")
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		log.Fatal(err)
	}
}

func run(driver, dsn, countsPath string) error {
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	db, err := store.Open(ctx, driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	q := dispatch.New(db.Client, dispatch.Options{Bus: events.New(), Now: clock, Seed: 1})

	acme := db.Customer.Create().SetName("acme").SaveX(ctx)
	globex := db.Customer.Create().SetName("globex").SaveX(ctx)
	pl := db.Pool.Create().SetName("p").SetProvider("local").SetMax(10).SaveX(ctx)
	db.Process.Create().SetName("echo").SetPoolID(pl.ID).SetRunner("echo").
		SetMaxDurationSeconds(60).SetRetries(1).SaveX(ctx)
	var robots []int
	for i := range 3 {
		r := db.Robot.Create().SetName(fmt.Sprintf("r%d", i)).SetPoolID(pl.ID).SaveX(ctx)
		robots = append(robots, r.ID)
	}
	checkIn := func(id int) {
		db.Robot.UpdateOneID(id).SetState(robot.StateIdle).SetLastSeenAt(now).ExecX(ctx)
	}
	inputs := func(n int) []json.RawMessage {
		out := make([]json.RawMessage, n)
		for i := range out {
			out[i] = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		}
		return out
	}
	if _, err := q.Submit(ctx, dispatch.SubmitRequest{CustomerID: acme.ID, Process: "echo", Label: "december", Inputs: inputs(6), SubmittedBy: "ops"}); err != nil {
		return err
	}
	claim := func(r int) (*dispatch.Claim, error) {
		checkIn(robots[r])
		c, err := q.ClaimTask(ctx, robots[r])
		if err == nil && c == nil {
			err = fmt.Errorf("robot %d claimed nothing", r)
		}
		return c, err
	}
	// succeeded
	c, err := claim(0)
	if err != nil {
		return err
	}
	if _, err := q.Report(ctx, robots[0], c.Task.ID, c.Task.AttemptNo, dispatch.Result{Success: true, Output: json.RawMessage(`{"ok":true}`)}); err != nil {
		return err
	}
	// failed: a data error is not retried
	if c, err = claim(0); err != nil {
		return err
	}
	if _, err := q.Report(ctx, robots[0], c.Task.ID, c.Task.AttemptNo, dispatch.Result{Class: robotwire.ErrorData, Message: "no such tax id"}); err != nil {
		return err
	}
	// pending again after a failed attempt (retried)
	if c, err = claim(1); err != nil {
		return err
	}
	if _, err := q.Report(ctx, robots[1], c.Task.ID, c.Task.AttemptNo, dispatch.Result{Class: robotwire.ErrorExecution, Message: "portal down"}); err != nil {
		return err
	}
	// running
	if c, err = claim(2); err != nil {
		return err
	}
	running := c.Task.ID
	// cancelled: a pending task stopped
	b2, err := q.Submit(ctx, dispatch.SubmitRequest{CustomerID: globex.ID, Process: "echo", Inputs: inputs(3), SubmittedBy: "ops"})
	if err != nil {
		return err
	}
	ts := db.Batch.QueryTasks(b2).AllX(ctx)
	if _, err := q.StopTask(ctx, ts[0].ID, "ops", "wrong input"); err != nil {
		return err
	}
	// tokens: an administrator's, an operator's bound to a customer, a robot's
	for _, req := range []auth.IssueRequest{
		{Name: "ops", Role: viewer.Admin},
		{Name: "acme-ops", Role: viewer.Operator, CustomerID: &acme.ID, TTL: 24 * time.Hour},
		{Name: auth.RobotTokenName("r0"), Role: viewer.Robot, RobotID: &robots[0]},
	} {
		if _, err := auth.Issue(ctx, db.Client, req); err != nil {
			return err
		}
	}
	tok := db.Token.Query().FirstX(ctx)
	// a document's download ticket (documents metadata)
	db.DownloadTicket.Create().SetHash("fixture-ticket-hash").SetKind("document").
		SetParams(fmt.Sprintf(`{"task":%d,"format":"pdf"}`, running)).SetTokenID(tok.ID).
		SetExpiresAt(now.Add(time.Hour)).SaveX(ctx)
	// audit entries
	for _, e := range []audit.Entry{
		{At: now, Actor: "ops", ActorRole: "admin", Action: "submitBatch", Target: "process:echo", Arguments: `{"count":6}`, Outcome: audit.OK},
		{At: now, Actor: "acme-ops", ActorRole: "operator", ActorCustomer: &acme.ID, Action: "stopTask", Target: "task", Arguments: `{}`, Outcome: audit.Refused},
	} {
		if err := audit.Record(ctx, db.Client, e); err != nil {
			return err
		}
	}
	counts := map[string]int{}
	for _, t := range entmigrate.Tables {
		var n int
		if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM "+t.Name).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", t.Name, err)
		}
		counts[t.Name] = n
	}
	b, err := json.MarshalIndent(counts, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(countsPath, append(b, '\n'), 0o644)
}
