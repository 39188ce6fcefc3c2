package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/gqlclient"
)

const auditLong = `The audit trail: who changed what, when, from where, and how it ended.
Administrators read every entry; a department's tokens read the entries
about its own things and those its own tokens made.

  rpacloud audit list [--since T] [--until T] [--actor A] [--action X]
        [--outcome ok|refused|error] [--customer C] [--limit N] [-o json]
  rpacloud audit export --since T [same filters] > audit.csv

T is an RFC 3339 time (2026-12-01T00:00:00Z), a date (2026-12-01, UTC) or
a duration back from now (24h, 7d).`

func newAuditCmd() *cobra.Command {
	return group(&cobra.Command{Use: "audit", Short: "read and export the audit trail", Long: auditLong},
		newAuditListCmd(), newAuditExportCmd())
}

// auditFilter are the filters both subcommands take.
type auditFilter struct {
	cf                                            clientFlags
	since, until, actor, action, outcome, custArg string
}

func (f *auditFilter) register(fs *pflag.FlagSet) {
	f.cf.register(fs)
	fs.StringVar(&f.since, "since", "", "entries at or after this time (RFC 3339, a date, or a duration back from now: 24h, 7d)")
	fs.StringVar(&f.until, "until", "", "entries before this time (same forms)")
	fs.StringVar(&f.actor, "actor", "", "only this actor (a token's name, signal:SIGHUP, join-token:ID)")
	fs.StringVar(&f.action, "action", "", "only this action (a mutation's name, e.g. submitBatch, or reloadConfig, enrolRobot)")
	fs.StringVar(&f.outcome, "outcome", "", "only this outcome: ok, refused or error")
	fs.StringVar(&f.custArg, "customer", "", "only entries about this customer's things (its name)")
}

// when parses a --since/--until value relative to now.
func when(flag, v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time (2026-12-01T08:00:00Z), a date (2026-12-01) or a duration back from now (24h, 7d)", flag, v)
}

// where is the auditEntries filter of f; a customer is looked up by name
// with the caller's rights.
func (f *auditFilter) where(ctx context.Context, c *gqlclient.Client, now time.Time) (map[string]any, error) {
	w := map[string]any{}
	for _, tf := range []struct{ flag, v, key string }{{"since", f.since, "atGTE"}, {"until", f.until, "atLT"}} {
		if tf.v == "" {
			continue
		}
		t, err := when(tf.flag, tf.v, now)
		if err != nil {
			return nil, err
		}
		w[tf.key] = t.UTC().Format(time.RFC3339Nano)
	}
	if f.actor != "" {
		w["actor"] = f.actor
	}
	if f.action != "" {
		w["action"] = f.action
	}
	switch o := strings.ToLower(f.outcome); o {
	case "":
	case audit.OK, audit.Refused, audit.Error:
		w["outcome"] = o
	default:
		return nil, fmt.Errorf("--outcome %q: want ok, refused or error", f.outcome)
	}
	if f.custArg != "" {
		var out struct {
			Customers struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		if err := c.Do(ctx, `query($n:String){customers(where:{name:$n}){edges{node{id}}}}`, map[string]any{"n": f.custArg}, &out); err != nil {
			return nil, fmt.Errorf("--customer %q: %w", f.custArg, err)
		}
		if len(out.Customers.Edges) != 1 {
			return nil, fmt.Errorf("--customer %q: no such customer (or this token may not see it)", f.custArg)
		}
		w["scopeCustomerID"] = out.Customers.Edges[0].Node.ID
	}
	return w, nil
}

const auditEdges = `edges{node{id at actor actorRole actorCustomerID scopeCustomerID action target arguments outcome errorCode remoteAddr requestID}}`

// auditEntriesQ is audit list's one page, with the total it reports.
const auditEntriesQ = `query($first:Int,$after:Cursor,$where:AuditEntryWhereInput){
  auditEntries(first:$first,after:$after,where:$where){
    totalCount pageInfo{hasNextPage endCursor}
    ` + auditEdges + `}}`

// auditExportQ pages audit export without totalCount: the count is a
// scan of every matching entry of a never-pruned table, and the export
// would ask it again on every page.
const auditExportQ = `query($first:Int,$after:Cursor,$where:AuditEntryWhereInput){
  auditEntries(first:$first,after:$after,where:$where){
    pageInfo{hasNextPage endCursor}
    ` + auditEdges + `}}`

type auditNode struct {
	ID              string  `json:"id"`
	At              string  `json:"at"`
	Actor           string  `json:"actor"`
	ActorRole       string  `json:"actorRole"`
	ActorCustomerID *string `json:"actorCustomerID"`
	ScopeCustomerID *string `json:"scopeCustomerID"`
	Action          string  `json:"action"`
	Target          string  `json:"target"`
	Arguments       string  `json:"arguments"`
	Outcome         string  `json:"outcome"`
	ErrorCode       string  `json:"errorCode"`
	RemoteAddr      string  `json:"remoteAddr"`
	RequestID       string  `json:"requestID"`
}

type auditPage struct {
	AuditEntries struct {
		TotalCount int `json:"totalCount"`
		PageInfo   struct {
			HasNextPage bool    `json:"hasNextPage"`
			EndCursor   *string `json:"endCursor"`
		} `json:"pageInfo"`
		Edges []struct {
			Node auditNode `json:"node"`
		} `json:"edges"`
	} `json:"auditEntries"`
}

func (n auditNode) entry() (audit.Entry, error) {
	e := audit.Entry{Actor: n.Actor, ActorRole: n.ActorRole, Action: n.Action, Target: n.Target, Arguments: n.Arguments,
		Outcome: n.Outcome, Code: n.ErrorCode, RemoteAddr: n.RemoteAddr, RequestID: n.RequestID}
	var err error
	if e.ID, err = strconv.Atoi(n.ID); err != nil {
		return e, fmt.Errorf("audit entry id %q: %w", n.ID, err)
	}
	if e.At, err = time.Parse(time.RFC3339Nano, n.At); err != nil {
		return e, fmt.Errorf("audit entry %s: time %q: %w", n.ID, n.At, err)
	}
	for _, c := range []struct {
		s *string
		p **int
	}{{n.ActorCustomerID, &e.ActorCustomer}, {n.ScopeCustomerID, &e.ScopeCustomer}} {
		if c.s == nil {
			continue
		}
		v, err := strconv.Atoi(*c.s)
		if err != nil {
			return e, fmt.Errorf("audit entry %s: customer id %q: %w", n.ID, *c.s, err)
		}
		*c.p = &v
	}
	return e, nil
}

func newAuditListCmd() *cobra.Command {
	var f auditFilter
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--since T] [--until T] [--actor A] [--action X] [--outcome O] [--customer C]",
		Short: "list audit entries, newest first",
		Long: `List audit entries, newest first.

-o json prints {"total_count", "entries": [{"id", "at", "actor",
"actor_role", "actor_customer", "scope_customer", "action", "target",
"outcome", "error_code", "remote_addr", "request_id", "arguments"}]};
customers are ids, arguments the recorded JSON text.`,
		Args: cobra.NoArgs,
	}
	f.register(cmd.Flags())
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many entries (1-500); export pages through all")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return exit(auditList(cmd.Context(), f, limit, out, cmd.OutOrStdout(), cmd.ErrOrStderr(), time.Now()))
	}
	return cmd
}

type auditJSON struct {
	ID            int    `json:"id"`
	At            string `json:"at"`
	Actor         string `json:"actor"`
	ActorRole     string `json:"actor_role"`
	ActorCustomer *int   `json:"actor_customer"`
	ScopeCustomer *int   `json:"scope_customer"`
	Action        string `json:"action"`
	Target        string `json:"target"`
	Outcome       string `json:"outcome"`
	ErrorCode     string `json:"error_code"`
	RemoteAddr    string `json:"remote_addr"`
	RequestID     string `json:"request_id"`
	Arguments     string `json:"arguments"`
}

func auditList(ctx context.Context, f auditFilter, limit int, o *output, stdout, stderr io.Writer, now time.Time) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "rpacloud audit list:", err)
		return exitFailure
	}
	if limit < 1 || limit > 500 {
		return fail(fmt.Errorf("--limit %d: want 1 to 500 (audit export pages through everything)", limit))
	}
	c, err := f.cf.client()
	if err != nil {
		return fail(err)
	}
	where, err := f.where(ctx, c, now)
	if err != nil {
		return fail(err)
	}
	var page auditPage
	if err := c.Do(ctx, auditEntriesQ, map[string]any{"first": limit, "where": where}, &page); err != nil {
		return fail(err)
	}
	entries := make([]auditJSON, 0, len(page.AuditEntries.Edges))
	for _, ed := range page.AuditEntries.Edges {
		e, err := ed.Node.entry()
		if err != nil {
			return fail(err)
		}
		entries = append(entries, auditJSON{ID: e.ID, At: e.At.UTC().Format(time.RFC3339), Actor: e.Actor, ActorRole: e.ActorRole,
			ActorCustomer: e.ActorCustomer, ScopeCustomer: e.ScopeCustomer, Action: e.Action, Target: e.Target, Outcome: e.Outcome,
			ErrorCode: e.Code, RemoteAddr: e.RemoteAddr, RequestID: e.RequestID, Arguments: e.Arguments})
	}
	if o.JSON() {
		return printJSON(stdout, stderr, struct {
			TotalCount int         `json:"total_count"`
			Entries    []auditJSON `json:"entries"`
		}{page.AuditEntries.TotalCount, entries})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTOR\tACTION\tTARGET\tOUTCOME\tFROM")
	for _, e := range entries {
		outcome := e.Outcome
		if e.ErrorCode != "" {
			outcome += " (" + e.ErrorCode + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At, e.Actor, e.Action, e.Target, outcome, e.RemoteAddr)
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "%d of %d entries\n", len(entries), page.AuditEntries.TotalCount)
	return exitOK
}

func newAuditExportCmd() *cobra.Command {
	var f auditFilter
	cmd := &cobra.Command{
		Use:   "export --since T [--until T] [--actor A] [--action X] [--outcome O] [--customer C] > audit.csv",
		Short: "export audit entries as CSV, newest first",
		Long: `Export audit entries as CSV on standard output, newest first, paging
through all of them (one page in memory at a time).

Columns: ` + strings.Join(audit.CSVHeader, ", ") + `.
Times are RFC 3339 in UTC; customers are ids; arguments is the recorded
JSON, secret values redacted. A cell starting with = + - @ is written with
a leading ' so that spreadsheets do not run it as a formula.`,
		Args: cobra.NoArgs,
	}
	f.register(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return exit(auditExport(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr(), time.Now()))
	}
	return cmd
}

// exportPage is how many entries one request of an export asks for (the
// API's largest page).
const exportPage = 500

func auditExport(ctx context.Context, f auditFilter, stdout, stderr io.Writer, now time.Time) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "rpacloud audit export:", err)
		return exitFailure
	}
	if f.since == "" {
		return fail(errors.New("--since is required: say where the export starts (e.g. --since 30d)"))
	}
	c, err := f.cf.client()
	if err != nil {
		return fail(err)
	}
	where, err := f.where(ctx, c, now)
	if err != nil {
		return fail(err)
	}
	if _, ok := where["atLT"]; !ok {
		// A fixed end, so that entries written while the export pages
		// do not shift it.
		where["atLT"] = now.UTC().Format(time.RFC3339Nano)
	}
	w := audit.NewCSV(stdout)
	n := 0
	var after *string
	for {
		var page auditPage
		vars := map[string]any{"first": exportPage, "where": where}
		if after != nil {
			vars["after"] = *after
		}
		if err := c.Do(ctx, auditExportQ, vars, &page); err != nil {
			return fail(fmt.Errorf("after %d entries: %w", n, err))
		}
		for _, ed := range page.AuditEntries.Edges {
			e, err := ed.Node.entry()
			if err != nil {
				return fail(err)
			}
			if err := w.Write(e); err != nil {
				return fail(err)
			}
			n++
		}
		if err := w.Flush(); err != nil {
			return fail(err)
		}
		pi := page.AuditEntries.PageInfo
		if !pi.HasNextPage || pi.EndCursor == nil {
			break
		}
		after = pi.EndCursor
	}
	fmt.Fprintf(stderr, "rpacloud audit export: %d entries\n", n)
	return exitOK
}
