package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/gqlclient"
)

const anomalyLong = `Anomalies: what the monitor found (see README, Monitoring), from the
command line for a person on duty without the wall screen.

  rpacloud anomaly list [--all]
  rpacloud anomaly ack ID [--note TEXT]
  rpacloud anomaly resolve ID --resolution TEXT

Ack and resolve need an admin or operator token (a department's operator:
its own department's anomalies); list shows the anomalies the token may see.`

const anomalyUsage = "usage:\n" + `  rpacloud anomaly list [--all]
  rpacloud anomaly ack ID [--note TEXT]
  rpacloud anomaly resolve ID --resolution TEXT
`

func newAnomalyCmd() *cobra.Command {
	return group(&cobra.Command{Use: "anomaly", Short: "list, acknowledge and resolve anomalies", Long: anomalyLong},
		newAnomalyListCmd(), newAnomalyAckCmd(), newAnomalyResolveCmd())
}

// anomalyCmd builds an anomaly subcommand (see groupCmd).
func anomalyCmd(cmd *cobra.Command, n int, what string, body clientBody) *cobra.Command {
	return groupCmd("anomaly", anomalyUsage, cmd, n, what, body)
}

// anomalyFields are the fields every anomaly command reads; anomalyGQL
// spells them as the API does, and anomalyJSON, the same fields converted
// by a type conversion, is what -o json prints in the CLI's snake_case.
const anomalyFields = `id rule key severity status title message since detectedAt acknowledgedAt acknowledgedBy resolvedAt resolvedBy resolution vendor`

type anomalyGQL struct {
	ID             string     `json:"id"`
	Rule           string     `json:"rule"`
	Key            string     `json:"key"`
	Severity       string     `json:"severity"`
	Status         string     `json:"status"`
	Title          string     `json:"title"`
	Message        string     `json:"message"`
	Since          time.Time  `json:"since"`
	DetectedAt     time.Time  `json:"detectedAt"`
	AcknowledgedAt *time.Time `json:"acknowledgedAt"`
	AcknowledgedBy string     `json:"acknowledgedBy"`
	ResolvedAt     *time.Time `json:"resolvedAt"`
	ResolvedBy     string     `json:"resolvedBy"`
	Resolution     string     `json:"resolution"`
	Vendor         string     `json:"vendor"`
}

// anomalyJSON is one anomaly of -o json, in the CLI's snake_case.
type anomalyJSON struct {
	ID             string     `json:"id"`
	Rule           string     `json:"rule"`
	Key            string     `json:"key"`
	Severity       string     `json:"severity"`
	Status         string     `json:"status"`
	Title          string     `json:"title"`
	Message        string     `json:"message"`
	Since          time.Time  `json:"since"`
	DetectedAt     time.Time  `json:"detected_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	AcknowledgedBy string     `json:"acknowledged_by,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at"`
	ResolvedBy     string     `json:"resolved_by,omitempty"`
	Resolution     string     `json:"resolution,omitempty"`
	Vendor         string     `json:"vendor"`
}

func (g anomalyGQL) out() anomalyJSON { return anomalyJSON(g) }

// anomalyListLimit bounds one list: the newest first; the total says how
// many more there are.
const anomalyListLimit = 500

const (
	anomalyOpenQ = `query($first: Int) { anomalies(first: $first, orderBy: {field: DETECTED_AT, direction: DESC}, where: {statusIn: [open, acknowledged]}) { totalCount edges { node { ` + anomalyFields + ` } } } }`
	anomalyAllQ  = `query($first: Int) { anomalies(first: $first, orderBy: {field: DETECTED_AT, direction: DESC}) { totalCount edges { node { ` + anomalyFields + ` } } } }`
	anomalyAckQ  = `mutation($id: ID!, $note: String) { acknowledgeAnomaly(id: $id, note: $note) { ` + anomalyFields + ` } }`
	anomalyResQ  = `mutation($id: ID!, $resolution: String!) { resolveAnomaly(id: $id, resolution: $resolution) { ` + anomalyFields + ` } }`
)

var severityRank = map[string]int{"critical": 0, "warning": 1, "info": 2}

func newAnomalyListCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{Use: "list", Short: "open and acknowledged anomalies, most severe and newest first",
		Long: `The open and acknowledged anomalies the token may see, most severe first,
then newest first; --all adds the resolved ones (newest first, at most 500).

-o json prints {"anomalies": [{"id", "rule", "key", "severity", "status", "title",
"message", "since", "detected_at", "acknowledged_at", "acknowledged_by",
"resolved_at", "resolved_by", "resolution", "vendor"}], "total": N}; total
counts every match, also beyond the 500 listed.`}
	cmd.Flags().BoolVar(&all, "all", false, "resolved anomalies too")
	out := addOutputFlag(cmd)
	return anomalyCmd(cmd, 0, "no arguments", func(ctx context.Context, c *gqlclient.Client, _ []string, stdout io.Writer, fail func(error) int) int {
		var res struct {
			Anomalies struct {
				TotalCount int `json:"totalCount"`
				Edges      []struct {
					Node anomalyGQL `json:"node"`
				} `json:"edges"`
			} `json:"anomalies"`
		}
		q := anomalyOpenQ
		if all {
			q = anomalyAllQ
		}
		if err := c.Do(ctx, q, map[string]any{"first": anomalyListLimit}, &res); err != nil {
			return fail(err)
		}
		list := make([]anomalyJSON, 0, len(res.Anomalies.Edges))
		for _, e := range res.Anomalies.Edges {
			list = append(list, e.Node.out())
		}
		// Unresolved ones first, by severity; the order within each is the
		// API's (newest first).
		sort.SliceStable(list, func(i, j int) bool {
			ri, rj := list[i].Status == "resolved", list[j].Status == "resolved"
			if ri != rj {
				return !ri
			}
			return !ri && severityRank[list[i].Severity] < severityRank[list[j].Severity]
		})
		if out.JSON() {
			return jsonResult(stdout, map[string]any{"anomalies": list, "total": res.Anomalies.TotalCount}, fail)
		}
		if len(list) == 0 {
			if all {
				fmt.Fprintln(stdout, "No anomalies.")
			} else {
				fmt.Fprintln(stdout, "No open anomalies.")
			}
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSEVERITY\tSTATUS\tRULE\tSINCE\tTITLE")
		for _, a := range list {
			st := a.Status
			switch {
			case a.Status == "acknowledged" && a.AcknowledgedBy != "":
				st += " by " + a.AcknowledgedBy
			case a.Status == "resolved" && a.ResolvedBy != "":
				st += " by " + a.ResolvedBy
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Severity, st, a.Rule,
				a.Since.Local().Format("2006-01-02 15:04:05"), oneLine(a.Title))
		}
		if err := tw.Flush(); err != nil {
			return fail(err)
		}
		if more := res.Anomalies.TotalCount - len(list); more > 0 {
			fmt.Fprintf(stdout, "+%d more not listed\n", more)
		}
		return 0
	})
}

// oneLine keeps a table row on one line whatever the title holds.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func newAnomalyAckCmd() *cobra.Command {
	var note string
	cmd := &cobra.Command{Use: "ack ID", Short: "acknowledge an anomaly: someone is on it",
		Long: `Acknowledge an anomaly: it stays on the screen as acknowledged, with who
did it, until its condition clears or someone resolves it.

-o json prints the anomaly as anomaly list does.`}
	cmd.Flags().StringVar(&note, "note", "", "what is being done (at most 2000 bytes)")
	out := addOutputFlag(cmd)
	return anomalyCmd(cmd, 1, "the anomaly ID", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
		var res struct {
			AcknowledgeAnomaly anomalyGQL `json:"acknowledgeAnomaly"`
		}
		vars := map[string]any{"id": pos[0]}
		if note != "" {
			vars["note"] = note
		}
		if err := c.Do(ctx, anomalyAckQ, vars, &res); err != nil {
			return fail(fmt.Errorf("anomaly %s: %w", pos[0], err))
		}
		if out.JSON() {
			return jsonResult(stdout, res.AcknowledgeAnomaly.out(), fail)
		}
		fmt.Fprintf(stdout, "anomaly %s acknowledged\n", pos[0])
		return 0
	})
}

func newAnomalyResolveCmd() *cobra.Command {
	var resolution string
	cmd := &cobra.Command{Use: "resolve ID --resolution TEXT", Short: "close an anomaly by hand, saying what was done",
		Long: `Resolve an anomaly by hand with what was done. If its condition still
holds, the monitor opens a new anomaly for it.

-o json prints the anomaly as anomaly list does.`}
	cmd.Flags().StringVar(&resolution, "resolution", "", "what was done (required, at most 2000 bytes)")
	out := addOutputFlag(cmd)
	return anomalyCmd(cmd, 1, "the anomaly ID", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
		if strings.TrimSpace(resolution) == "" {
			return fail(errors.New("--resolution is required: say what was done"))
		}
		var res struct {
			ResolveAnomaly anomalyGQL `json:"resolveAnomaly"`
		}
		if err := c.Do(ctx, anomalyResQ, map[string]any{"id": pos[0], "resolution": resolution}, &res); err != nil {
			return fail(fmt.Errorf("anomaly %s: %w", pos[0], err))
		}
		if out.JSON() {
			return jsonResult(stdout, res.ResolveAnomaly.out(), fail)
		}
		fmt.Fprintf(stdout, "anomaly %s resolved\n", pos[0])
		return 0
	})
}
