package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/plugins/builtin"
)

func newClient(server, token string) *gqlclient.Client { return gqlclient.New(server, token) }

// clientFlags are the connection flags every client command takes.
type clientFlags struct{ server, token string }

func (c *clientFlags) register(fs *flag.FlagSet) {
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

func runTask(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: rpacloud task submit|list [flags]")
		return 2
	}
	switch args[0] {
	case "submit":
		return taskSubmit(ctx, args[1:], stdout, stderr)
	case "list":
		return taskList(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "rpacloud task: unknown subcommand %q (submit, list)\n", args[0])
	return 2
}

// readJSONL reads one JSON object per line; blank lines are skipped. Every
// bad line is reported with its number before anything is sent.
func readJSONL(path string) ([]json.RawMessage, error) {
	var r io.Reader = os.Stdin
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
const batchQ = `query($id:ID!){node(id:$id){... on Batch{id total pending running succeeded failed stack}}}`

type batchView struct {
	ID        string `json:"id"`
	Total     int    `json:"total"`
	Pending   int    `json:"pending"`
	Running   int    `json:"running"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Stack     string `json:"stack"`
}

func taskSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("task submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	proc := fs.String("process", "", "process name (required)")
	input := fs.String("input", "", "JSONL file, one task input object per line; - for stdin (required)")
	customer := fs.String("customer", "", "customer name (default: the token's customer)")
	label := fs.String("label", "", "label of the batch")
	wait := fs.Bool("wait", false, "wait until every task finished, showing progress")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *proc == "" || *input == "" {
		fmt.Fprintln(stderr, "rpacloud task submit: --process and --input are required")
		return 2
	}
	inputs, err := readJSONL(*input)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud task submit:", err)
		return 1
	}
	in := map[string]any{"process": *proc, "inputs": inputs}
	if *customer != "" {
		in["customer"] = *customer
	}
	if *label != "" {
		in["label"] = *label
	}
	var out struct {
		SubmitBatch batchView `json:"submitBatch"`
	}
	if err := c.Do(ctx, submitQ, map[string]any{"in": in}, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud task submit:", err)
		return 1
	}
	b := out.SubmitBatch
	fmt.Fprintf(stdout, "batch %s: %d tasks queued for %s\n", b.ID, b.Total, *proc)
	if !*wait {
		return 0
	}
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
		fmt.Fprint(stdout, "\r"+progressBar(*st.Node, 30))
		if st.Node.Stack == "finished" {
			fmt.Fprintln(stdout)
			if st.Node.Failed > 0 {
				return 1
			}
			return 0
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout)
			return 130
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func progressBar(b batchView, width int) string {
	done := b.Succeeded + b.Failed
	filled := 0
	if b.Total > 0 {
		filled = done * width / b.Total
	}
	return fmt.Sprintf("[%s%s] %d/%d  ok %d  failed %d  running %d  pending %d ",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, b.Total,
		b.Succeeded, b.Failed, b.Running, b.Pending)
}

const tasksQ = `query($first:Int,$where:TaskWhereInput){tasks(first:$first,where:$where,orderBy:{field:CREATED_AT,direction:DESC}){totalCount edges{node{id state attemptNo failureReason errorMessage batchID createdAt}}}}`

func taskList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("task list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	batchID := fs.String("batch", "", "only tasks of this batch id")
	state := fs.String("state", "", "only tasks in this state (pending, running, succeeded, failed)")
	limit := fs.Int("limit", 50, "at most this many tasks, newest first")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud task list:", err)
		return 1
	}
	where := map[string]any{}
	if *batchID != "" {
		where["batchID"] = *batchID
	}
	if *state != "" {
		where["state"] = strings.ToLower(*state)
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
	if err := c.Do(ctx, tasksQ, map[string]any{"first": *limit, "where": where}, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud task list:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tBATCH\tSTATE\tATTEMPTS\tREASON\tCREATED")
	for _, e := range out.Tasks.Edges {
		n := e.Node
		reason := ""
		if n.FailureReason != nil {
			reason = strings.ToLower(*n.FailureReason)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", n.ID, n.BatchID, strings.ToLower(n.State), n.AttemptNo, reason, n.CreatedAt)
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "%d of %d tasks\n", len(out.Tasks.Edges), out.Tasks.TotalCount)
	return 0
}

const poolStatusQ = `{poolStatus{pool{name min max fairness} robots idle busy suspect pending running provider providerHealthy}}`

func runPool(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, "usage: rpacloud pool status [--server URL] [--token T]")
		return 2
	}
	fs := flag.NewFlagSet("pool status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud pool status:", err)
		return 1
	}
	var out struct {
		PoolStatus []struct {
			Pool struct {
				Name     string `json:"name"`
				Min      int    `json:"min"`
				Max      int    `json:"max"`
				Fairness string `json:"fairness"`
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
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tROBOTS\tMIN-MAX\tIDLE\tBUSY\tSUSPECT\tPENDING\tRUNNING\tPROVIDER\tFAIRNESS")
	for _, p := range out.PoolStatus {
		health := "up"
		if !p.ProviderHealthy {
			health = "DOWN"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d-%d\t%d\t%d\t%d\t%d\t%d\t%s (%s)\t%s\n", p.Pool.Name, p.Robots, p.Pool.Min, p.Pool.Max,
			p.Idle, p.Busy, p.Suspect, p.Pending, p.Running, p.Provider, health, strings.ToLower(p.Pool.Fairness))
	}
	_ = tw.Flush()
	return 0
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

// runToken manages API tokens (admin only). The secret is printed once, on
// stdout alone, so it can be captured by a script.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "create" && args[0] != "revoke") {
		fmt.Fprintln(stderr, "usage: rpacloud token create --name N --role admin|operator|viewer [--customer C] [--ttl-hours H]\n       rpacloud token revoke --name N")
		return 2
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	name := fs.String("name", "", "token name (required)")
	role := fs.String("role", "", "admin, operator or viewer")
	cust := fs.String("customer", "", "bind the token to this customer")
	ttl := fs.Int("ttl-hours", 0, "expire after this many hours (0: never)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *name == "" {
		fmt.Fprintln(stderr, "rpacloud token: --name is required")
		return 2
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud token:", err)
		return 1
	}
	if args[0] == "revoke" {
		if err := c.Do(ctx, revokeTokenQ, map[string]any{"n": *name}, nil); err != nil {
			fmt.Fprintln(stderr, "rpacloud token revoke:", err)
			return 1
		}
		fmt.Fprintf(stderr, "token %s revoked\n", *name)
		return 0
	}
	in := map[string]any{"name": *name, "role": strings.ToUpper(*role)}
	if *cust != "" {
		in["customer"] = *cust
	}
	if *ttl > 0 {
		in["ttlHours"] = *ttl
	}
	var out struct {
		CreateToken struct {
			Secret string `json:"secret"`
		} `json:"createToken"`
	}
	if err := c.Do(ctx, createTokenQ, map[string]any{"in": in}, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud token create:", err)
		return 1
	}
	fmt.Fprintln(stdout, out.CreateToken.Secret)
	return 0
}
