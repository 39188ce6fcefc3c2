package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/gqlclient"
)

func newClient(server, token string) *gqlclient.Client { return gqlclient.New(server, token) }

// clientFlags are the connection flags every client command takes.
type clientFlags struct{ server, token string }

func (c *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "daemon URL (default $RPACLOUD_SERVER or http://127.0.0.1:8080)")
	fs.StringVar(&c.token, "token", "", "API token (default $RPACLOUD_TOKEN or ./.rpacloud/admin.token)")
}

func (c *clientFlags) client() (*gqlclient.Client, error) {
	server := firstNonEmpty(c.server, os.Getenv("RPACLOUD_SERVER"), "http://127.0.0.1:8080")
	token := firstNonEmpty(c.token, os.Getenv("RPACLOUD_TOKEN"))
	if token == "" {
		b, err := os.ReadFile(".rpacloud/admin.token")
		if err != nil {
			return nil, errors.New("no token: pass --token, set RPACLOUD_TOKEN, or run from the directory of `rpacloud dev`")
		}
		token = strings.TrimSpace(string(b))
	}
	return newClient(server, token), nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func newTaskCmd() *cobra.Command {
	return group(&cobra.Command{Use: "task", Short: "submit task batches, list, stop and retry tasks"},
		newTaskSubmitCmd(), newTaskListCmd(), newTaskStopCmd(), newTaskRetryCmd())
}

// readJSONL reads one JSON object per line; blank lines are skipped. Every
// bad line is reported with its number before anything is sent.
func readJSONL(path string, stdin io.Reader) ([]json.RawMessage, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	var out []json.RawMessage
	var bad []string
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil || obj == nil {
			msg := "not a JSON object"
			if err != nil {
				msg = err.Error()
			}
			bad = append(bad, fmt.Sprintf("%s:%d: %s", path, n, msg))
			continue
		}
		out = append(out, json.RawMessage(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "\n"))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no tasks (one JSON object per line)", path)
	}
	return out, nil
}

const submitQ = `mutation($in:SubmitBatchInput!){submitBatch(input:$in){id total}}`
const batchQ = `query($id:ID!){node(id:$id){... on Batch{id total pending running succeeded failed cancelled stack}}}`

// batchView is a batch's progress; also what `task submit -o json` prints.
type batchView struct {
	ID        string `json:"id"`
	Total     int    `json:"total"`
	Pending   int    `json:"pending"`
	Running   int    `json:"running"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Cancelled int    `json:"cancelled"`
	Stack     string `json:"stack"`
}

type taskSubmitOptions struct {
	cf                           clientFlags
	proc, input, customer, label string
	wait                         bool
	out                          *output
}

func newTaskSubmitCmd() *cobra.Command {
	var o taskSubmitOptions
	cmd := &cobra.Command{
		Use:   "submit --process P --input F.jsonl [--wait]",
		Short: "submit one batch, one task per JSON line",
		Long: `Submit one batch of tasks: one task per line of the JSONL input. With --wait,
follow the batch until every task finished (a progress bar on a terminal,
the final tally otherwise) and exit 1 if any task failed.

-o json prints the batch (after --wait, its final state):
  {"id", "total", "pending", "running", "succeeded", "failed", "cancelled", "stack"}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(taskSubmit(cmd.Context(), o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	o.cf.register(f)
	f.StringVar(&o.proc, "process", "", "process name (required)")
	f.StringVar(&o.input, "input", "", "JSONL file, one task input object per line; - for stdin (required)")
	f.StringVar(&o.customer, "customer", "", "customer name (default: the token's customer)")
	f.StringVar(&o.label, "label", "", "label of the batch")
	f.BoolVar(&o.wait, "wait", false, "wait until every task finished, showing progress")
	o.out = addOutputFlag(cmd)
	return cmd
}

func taskSubmit(ctx context.Context, o taskSubmitOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	if o.proc == "" || o.input == "" {
		fmt.Fprintln(stderr, "rpacloud task submit: --process and --input are required")
		return 2
	}
	inputs, err := readJSONL(o.input, stdin)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	c, err := o.cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud task submit:", err)
		return 1
	}
	in := map[string]any{"process": o.proc, "inputs": inputs}
	if o.customer != "" {
		in["customer"] = o.customer
	}
	if o.label != "" {
		in["label"] = o.label
	}
	var out struct {
		SubmitBatch batchView `json:"submitBatch"`
	}
	if err := c.Do(ctx, submitQ, map[string]any{"in": in}, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud task submit:", err)
		return 1
	}
	b := out.SubmitBatch
	if !o.out.JSON() {
		fmt.Fprintf(stdout, "batch %s: %d tasks queued for %s\n", b.ID, b.Total, o.proc)
	}
	if !o.wait {
		if o.out.JSON() {
			return printJSON(stdout, stderr, b)
		}
		return 0
	}
	// The bar redraws itself with a carriage return, which only a terminal
	// understands; a pipe or file gets the final tally once.
	bar := !o.out.JSON() && isTerminal(stdout)
	for {
		var st struct {
			Node *batchView `json:"node"`
		}
		if err := c.Do(ctx, batchQ, map[string]any{"id": b.ID}, &st); err != nil {
			fmt.Fprintln(stderr, "\nrpacloud task submit:", err)
			return 1
		}
		if st.Node == nil {
			fmt.Fprintln(stderr, "\nrpacloud task submit: batch disappeared")
			return 1
		}
		if bar {
			fmt.Fprint(stdout, "\r"+progressBar(*st.Node, 30))
		}
		if st.Node.Stack == "finished" {
			switch {
			case o.out.JSON():
				if code := printJSON(stdout, stderr, st.Node); code != 0 {
					return code
				}
			case bar:
				fmt.Fprintln(stdout)
			default:
				fmt.Fprintln(stdout, strings.TrimSpace(progressBar(*st.Node, 30)))
			}
			if st.Node.Failed > 0 || st.Node.Cancelled > 0 {
				return 1
			}
			return 0
		}
		select {
		case <-ctx.Done():
			if bar {
				fmt.Fprintln(stdout)
			}
			return exitInterrupted
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func progressBar(b batchView, width int) string {
	done := b.Succeeded + b.Failed + b.Cancelled
	filled := 0
	if b.Total > 0 {
		filled = done * width / b.Total
	}
	cancelled := ""
	if b.Cancelled > 0 {
		cancelled = fmt.Sprintf("  cancelled %d", b.Cancelled)
	}
	return fmt.Sprintf("[%s%s] %d/%d  ok %d  failed %d%s  running %d  pending %d ",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, b.Total,
		b.Succeeded, b.Failed, cancelled, b.Running, b.Pending)
}

const tasksQ = `query($first:Int,$where:TaskWhereInput){tasks(first:$first,where:$where,orderBy:{field:CREATED_AT,direction:DESC}){totalCount edges{node{id state attemptNo failureReason errorMessage batchID createdAt}}}}`

type taskListOptions struct {
	cf           clientFlags
	batch, state string
	limit        int
	out          *output
}

func newTaskListCmd() *cobra.Command {
	var o taskListOptions
	cmd := &cobra.Command{
		Use:   "list [--batch ID] [--state S]",
		Short: "list tasks, newest first",
		Long: `List tasks, newest first.

-o json prints {"total_count", "tasks": [{"id", "batch_id", "state",
"attempts", "failure_reason", "error_message", "created_at"}]}; state and
failure_reason are lower case, as in the table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(taskList(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	o.cf.register(f)
	f.StringVar(&o.batch, "batch", "", "only tasks of this batch id")
	f.StringVar(&o.state, "state", "", "only tasks in this state (pending, running, succeeded, failed, cancelled)")
	f.IntVar(&o.limit, "limit", 50, "at most this many tasks, newest first")
	o.out = addOutputFlag(cmd)
	return cmd
}

// taskJSON is one task of `task list -o json`.
type taskJSON struct {
	ID            string `json:"id"`
	BatchID       string `json:"batch_id"`
	State         string `json:"state"`
	Attempts      int    `json:"attempts"`
	FailureReason string `json:"failure_reason"`
	ErrorMessage  string `json:"error_message"`
	CreatedAt     string `json:"created_at"`
}

func taskList(ctx context.Context, o taskListOptions, stdout, stderr io.Writer) int {
	c, err := o.cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud task list:", err)
		return 1
	}
	where := map[string]any{}
	if o.batch != "" {
		where["batchID"] = o.batch
	}
	if o.state != "" {
		where["state"] = strings.ToLower(o.state)
	}
	var out struct {
		Tasks struct {
			TotalCount int `json:"totalCount"`
			Edges      []struct {
				Node struct {
					ID            string  `json:"id"`
					State         string  `json:"state"`
					AttemptNo     int     `json:"attemptNo"`
					FailureReason *string `json:"failureReason"`
					ErrorMessage  string  `json:"errorMessage"`
					BatchID       string  `json:"batchID"`
					CreatedAt     string  `json:"createdAt"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"tasks"`
	}
	if err := c.Do(ctx, tasksQ, map[string]any{"first": o.limit, "where": where}, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud task list:", err)
		return 1
	}
	tasks := make([]taskJSON, 0, len(out.Tasks.Edges))
	for _, e := range out.Tasks.Edges {
		n := e.Node
		reason := ""
		if n.FailureReason != nil {
			reason = strings.ToLower(*n.FailureReason)
		}
		tasks = append(tasks, taskJSON{ID: n.ID, BatchID: n.BatchID, State: strings.ToLower(n.State), Attempts: n.AttemptNo,
			FailureReason: reason, ErrorMessage: n.ErrorMessage, CreatedAt: n.CreatedAt})
	}
	if o.out.JSON() {
		return printJSON(stdout, stderr, struct {
			TotalCount int        `json:"total_count"`
			Tasks      []taskJSON `json:"tasks"`
		}{out.Tasks.TotalCount, tasks})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tBATCH\tSTATE\tATTEMPTS\tREASON\tCREATED")
	for _, t := range tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.BatchID, t.State, t.Attempts, t.FailureReason, t.CreatedAt)
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "%d of %d tasks\n", len(out.Tasks.Edges), out.Tasks.TotalCount)
	return 0
}

const poolStatusQ = `{poolStatus{pool{name min max fairness pausedAt pausedBy pauseReason} robots idle busy suspect pending running provider providerHealthy}}`

func newPoolCmd() *cobra.Command {
	var cf clientFlags
	status := &cobra.Command{
		Use:   "status",
		Short: "robots, idle, busy, suspect, pending, running and provider health per pool",
		Long: `Robots (X), idle (Z), busy, suspect, pending, running and provider health
per pool.

-o json prints {"pools": [{"name", "min", "max", "fairness", "robots",
"idle", "busy", "suspect", "pending", "running", "provider",
"provider_healthy", "paused_at", "paused_by", "pause_reason"}]}; fairness
is lower case, as in the table; paused_at is null for a pool that runs. A
paused pool (rpacloud pool pause) is listed under the table with who paused
it and why.`,
		Args: cobra.NoArgs,
	}
	cf.register(status.Flags())
	out := addOutputFlag(status)
	status.RunE = func(cmd *cobra.Command, _ []string) error {
		return exit(poolStatus(cmd.Context(), cf, out, cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}
	return group(&cobra.Command{Use: "pool", Short: "pool status, pause and resume, join tokens"},
		append([]*cobra.Command{status, newJoinTokenCmd()}, pauseCmds("pool", pausePoolQ, resumePoolQ, "pausePool", "resumePool")...)...)
}

// poolJSON is one pool of `pool status -o json`.
type poolJSON struct {
	Name            string  `json:"name"`
	Min             int     `json:"min"`
	Max             int     `json:"max"`
	Fairness        string  `json:"fairness"`
	Robots          int     `json:"robots"`
	Idle            int     `json:"idle"`
	Busy            int     `json:"busy"`
	Suspect         int     `json:"suspect"`
	Pending         int     `json:"pending"`
	Running         int     `json:"running"`
	Provider        string  `json:"provider"`
	ProviderHealthy bool    `json:"provider_healthy"`
	PausedAt        *string `json:"paused_at"`
	PausedBy        string  `json:"paused_by,omitempty"`
	PauseReason     string  `json:"pause_reason,omitempty"`
}

func poolStatus(ctx context.Context, cf clientFlags, o *output, stdout, stderr io.Writer) int {
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud pool status:", err)
		return 1
	}
	var out struct {
		PoolStatus []struct {
			Pool struct {
				Name        string  `json:"name"`
				Min         int     `json:"min"`
				Max         int     `json:"max"`
				Fairness    string  `json:"fairness"`
				PausedAt    *string `json:"pausedAt"`
				PausedBy    *string `json:"pausedBy"`
				PauseReason *string `json:"pauseReason"`
			} `json:"pool"`
			Robots, Idle, Busy, Suspect, Pending, Running int
			Provider                                      string `json:"provider"`
			ProviderHealthy                               bool   `json:"providerHealthy"`
		} `json:"poolStatus"`
	}
	if err := c.Do(ctx, poolStatusQ, nil, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud pool status:", err)
		return 1
	}
	pools := make([]poolJSON, 0, len(out.PoolStatus))
	for _, p := range out.PoolStatus {
		pools = append(pools, poolJSON{Name: p.Pool.Name, Min: p.Pool.Min, Max: p.Pool.Max, Fairness: strings.ToLower(p.Pool.Fairness),
			Robots: p.Robots, Idle: p.Idle, Busy: p.Busy, Suspect: p.Suspect, Pending: p.Pending, Running: p.Running,
			Provider: p.Provider, ProviderHealthy: p.ProviderHealthy,
			PausedAt: p.Pool.PausedAt, PausedBy: deref(p.Pool.PausedBy), PauseReason: deref(p.Pool.PauseReason)})
	}
	if o.JSON() {
		return printJSON(stdout, stderr, struct {
			Pools []poolJSON `json:"pools"`
		}{pools})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tROBOTS\tMIN-MAX\tIDLE\tBUSY\tSUSPECT\tPENDING\tRUNNING\tPROVIDER\tFAIRNESS")
	for _, p := range pools {
		health := "up"
		if !p.ProviderHealthy {
			health = "DOWN"
		}
		prov := fmt.Sprintf("%s (%s)", p.Provider, health)
		if p.Provider == "" {
			prov = "none (enrolled)"
		}
		robots := strconv.Itoa(p.Robots)
		if p.Robots < p.Min {
			// Below the capacity the operator expects: for an
			// enrolled-only pool nothing rents the rest.
			robots += " (<min)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d-%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", p.Name, robots, p.Min, p.Max,
			p.Idle, p.Busy, p.Suspect, p.Pending, p.Running, prov, p.Fairness)
	}
	_ = tw.Flush()
	for _, p := range pools {
		if p.PausedAt != nil {
			fmt.Fprintln(stdout, pausable{Name: p.Name, PausedAt: p.PausedAt, PausedBy: &p.PausedBy, PauseReason: &p.PauseReason}.line("pool")+
				" (nothing is dispatched)")
		}
	}
	return 0
}

// newPluginCmd is the hidden `rpacloud plugin KIND NAME` the daemon and
// robots start built-in plugins with (pluginhost re-executes this binary).
func newPluginCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "plugin KIND NAME",
		Short:  "serve a built-in plugin over go-plugin (started by the daemon, not by people)",
		Hidden: true,
		Args:   cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(runPlugin(args, cmd.ErrOrStderr()))
		},
	}
}

// runPlugin runs a built-in plugin in this process; the daemon starts it as
// a separate OS process speaking go-plugin, exactly like an external one.
func runPlugin(args []string, stderr io.Writer) int {
	if runBuiltinPlugin(args) { // cmd_plugins.go
		return 0
	}
	have := make([]string, len(builtin.Plugins))
	for i, p := range builtin.Plugins {
		have[i] = p.Kind + " " + p.Name
	}
	fmt.Fprintf(stderr, "rpacloud plugin: unknown built-in plugin %q (have: %s)\n", strings.Join(args, " "), strings.Join(have, ", "))
	return 2
}

const createTokenQ = `mutation($in:CreateTokenInput!){createToken(input:$in){name role secret}}`
const revokeTokenQ = `mutation($n:String!){revokeToken(name:$n)}`

type tokenOptions struct {
	cf               clientFlags
	name, role, cust string
	ttl              int
	out              *output
}

// newTokenCmd manages API tokens (admin only).
func newTokenCmd() *cobra.Command {
	sub := func(use, short, long string, create bool) *cobra.Command {
		var o tokenOptions
		cmd := &cobra.Command{
			Use: use, Short: short, Long: long, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return exit(runToken(cmd.Context(), create, o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
			},
		}
		f := cmd.Flags()
		o.cf.register(f)
		f.StringVar(&o.name, "name", "", "token name (required)")
		f.StringVar(&o.role, "role", "", "admin, operator or viewer")
		f.StringVar(&o.cust, "customer", "", "bind the token to this customer")
		f.IntVar(&o.ttl, "ttl-hours", 0, "expire after this many hours (0: never)")
		if !create {
			// Both subcommands shared one flag set before; revoke still
			// accepts, and ignores, create's flags.
			for _, n := range []string{"role", "customer", "ttl-hours"} {
				_ = f.MarkHidden(n)
			}
			return cmd
		}
		o.out = addOutputFlag(cmd)
		return cmd
	}
	return group(&cobra.Command{Use: "token", Short: "make and revoke API tokens (admin)"},
		sub("create --name N --role admin|operator|viewer [--customer C] [--ttl-hours H]", "make an API token; the secret is printed once",
			`Make an API token. The secret is printed once, on stdout alone, so a script
can capture it.

-o json prints {"name", "role", "secret"}; role is lower case.`, true),
		sub("revoke --name N", "revoke an API token", "", false))
}

// runToken creates or revokes a token. The secret is printed once, on
// stdout alone, so it can be captured by a script.
func runToken(ctx context.Context, create bool, o tokenOptions, stdout, stderr io.Writer) int {
	if o.name == "" {
		fmt.Fprintln(stderr, "rpacloud token: --name is required")
		return 2
	}
	if create && strings.EqualFold(o.role, "robot") {
		// A robot token is bound to one robot, so it is made with the
		// robot, by enrolment; an unbound one would be a master key.
		fmt.Fprintln(stderr, "rpacloud token create: robot tokens are made by enrolment, one per robot: make a join token with `rpacloud pool join-token create --pool P` and start the machine's agent with it (`rpacloud robot --server URL` with RPACLOUD_JOIN_TOKEN set)")
		return exitUsage
	}
	c, err := o.cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud token:", err)
		return 1
	}
	if !create {
		if err := c.Do(ctx, revokeTokenQ, map[string]any{"n": o.name}, nil); err != nil {
			fmt.Fprintln(stderr, "rpacloud token revoke:", err)
			return 1
		}
		fmt.Fprintf(stderr, "token %s revoked\n", o.name)
		return 0
	}
	in := map[string]any{"name": o.name, "role": strings.ToUpper(o.role)}
	if o.cust != "" {
		in["customer"] = o.cust
	}
	if o.ttl > 0 {
		in["ttlHours"] = o.ttl
	}
	var out struct {
		CreateToken struct {
			Name   string `json:"name"`
			Role   string `json:"role"`
			Secret string `json:"secret"`
		} `json:"createToken"`
	}
	if err := c.Do(ctx, createTokenQ, map[string]any{"in": in}, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud token create:", err)
		return 1
	}
	t := out.CreateToken
	if o.out.JSON() {
		return printJSON(stdout, stderr, map[string]string{"name": t.Name, "role": strings.ToLower(t.Role), "secret": t.Secret})
	}
	fmt.Fprintln(stdout, t.Secret)
	return 0
}
