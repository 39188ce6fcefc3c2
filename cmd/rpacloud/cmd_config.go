package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/config"
)

const configLong = `Plan and apply HCL configuration on the running daemon, without a restart.

  rpacloud config plan  --config DIR [-o json]
  rpacloud config apply --config DIR [--yes] [-o json]

Both read DIR (a file, or a directory's *.hcl files) here, check it as
` + "`rpacloud validate`" + ` does, send the files to the daemon and print what would
change against its running configuration, like terraform plan:

  + pool "b"
  ~ process "x"
      max_duration: 10m0s → 20m0s
  - pool "c" (drains: 2 pending or running tasks finish on its robots, which are then released)

apply then applies it (after a y at the prompt, or with --yes). Nothing is
dropped: open long polls, websockets and running tasks carry on; a removed
pool takes no new submissions, its accepted tasks finish, then its robots
are released. An invalid configuration, or one that changes what needs a
restart (the server and vault blocks, the monitor's webhook, a changed
provider), is
refused whole with the reason, and the running configuration stays.

The daemon's own --config files win at its next start: commit the files you
apply there. SIGHUP to ` + "`rpacloud server`" + ` re-reads its --config the same way.
On PostgreSQL every daemon applies what one applied (a configuration
revision in the database), each keeping its own server block.

apply after the prompt applies only the plan shown: if the running
configuration changed meanwhile (another apply, a SIGHUP), the daemon refuses
("the running configuration changed since the plan; plan again").

A provider block may not be added or changed this way (its plugin runs
executables on the daemon host): the plan marks it "needs the daemon's own
files"; change the daemon's --config files and reload with SIGHUP.

-o json prints {"applied", "error", "summary", "text", "planHash", "changes": [{"kind",
"name", "action", "attributes": [{"name", "old", "new"}], "restart",
"note"}], "diagnostics": [{"severity", "summary", "detail", "location"}]}.
Exit 1 when the configuration is invalid or refused.`

func newConfigCmd() *cobra.Command {
	return group(&cobra.Command{Use: "config", Short: "plan and apply configuration on the running daemon", Long: configLong},
		newConfigPlanCmd(), newConfigApplyCmd())
}

func newConfigPlanCmd() *cobra.Command {
	var cf clientFlags
	var path string
	cmd := &cobra.Command{Use: "plan --config DIR", Short: "show what applying DIR would change on the running daemon",
		Long: configLong, Args: cobra.NoArgs}
	cf.register(cmd.Flags())
	cmd.Flags().StringVar(&path, "config", "", "HCL configuration file or directory (required)")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return exit(runConfig(cmd.Context(), cf, path, true, false, out, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), "plan"))
	}
	return cmd
}

func newConfigApplyCmd() *cobra.Command {
	var cf clientFlags
	var path string
	var yes bool
	cmd := &cobra.Command{Use: "apply --config DIR [--yes]", Short: "apply DIR to the running daemon without a restart",
		Long: configLong, Args: cobra.NoArgs}
	cf.register(cmd.Flags())
	cmd.Flags().StringVar(&path, "config", "", "HCL configuration file or directory (required)")
	cmd.Flags().BoolVar(&yes, "yes", false, "apply without asking")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return exit(runConfig(cmd.Context(), cf, path, false, yes, out, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), "apply"))
	}
	return cmd
}

const applyConfigMutation = `mutation ApplyConfig($files: [ConfigFileInput!]!, $dryRun: Boolean, $planHash: String) {
  applyConfig(files: $files, dryRun: $dryRun, planHash: $planHash) {
    applied error summary text planHash
    changes { kind name action attributes { name old new } restart note }
    diagnostics { severity summary detail location }
  }
}`

// configPlan is the answer of applyConfig; its JSON is -o json's.
type configPlan struct {
	Applied  bool    `json:"applied"`
	Error    *string `json:"error"`
	Summary  string  `json:"summary"`
	Text     string  `json:"text"`
	PlanHash string  `json:"planHash"`
	Changes  []struct {
		Kind       string `json:"kind"`
		Name       string `json:"name"`
		Action     string `json:"action"`
		Attributes []struct {
			Name string `json:"name"`
			Old  string `json:"old"`
			New  string `json:"new"`
		} `json:"attributes"`
		Restart *string `json:"restart"`
		Note    *string `json:"note"`
	} `json:"changes"`
	Diagnostics []struct {
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
		Location string `json:"location"`
	} `json:"diagnostics"`
}

// runConfig implements config plan and config apply: check locally (with
// source snippets), send, print; apply without --yes asks first, after a
// dry run.
func runConfig(ctx context.Context, cf clientFlags, path string, planOnly, yes bool, out *output, stdin io.Reader, stdout, stderr io.Writer, sub string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "rpacloud config %s: "+format+"\n", append([]any{sub}, a...)...)
		return exitFailure
	}
	if path == "" {
		fmt.Fprintf(stderr, "rpacloud config %s: --config is required\n", sub)
		return exitUsage
	}
	// The same check as validate, here, so problems are shown with their
	// source lines; the daemon checks the files again, whole.
	_, diags, files := config.Load(path)
	if len(diags) > 0 { // warnings too, as validate shows them
		_ = config.WriteDiagnostics(stderr, files, diags)
	}
	if diags.HasErrors() {
		return exitFailure
	}
	srcs := make([]map[string]any, 0, len(files))
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, name := range names {
		base := filepath.Base(name)
		if other, dup := seen[base]; dup {
			return fail("%s and %s have the same file name; the daemon knows files by name", other, name)
		}
		seen[base] = name
		srcs = append(srcs, map[string]any{"name": base, "content": string(files[name].Bytes)})
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	// planHash, after the prompt, is the plan shown: the daemon applies
	// only that one, not what another apply or a SIGHUP made of it since.
	send := func(dryRun bool, planHash string) (*configPlan, error) {
		var res struct {
			ApplyConfig configPlan `json:"applyConfig"`
		}
		vars := map[string]any{"files": srcs, "dryRun": dryRun}
		if planHash != "" {
			vars["planHash"] = planHash
		}
		if err := c.Do(ctx, applyConfigMutation, vars, &res); err != nil {
			return nil, err
		}
		return &res.ApplyConfig, nil
	}
	p, err := send(planOnly || !yes, "")
	if err != nil {
		return fail("%v", err)
	}
	if !planOnly && !yes && p.Error == nil && !out.JSON() {
		fmt.Fprint(stdout, p.Text)
		if len(p.Changes) == 0 {
			return exitOK
		}
		fmt.Fprint(stdout, "Apply these changes to the running daemon? Only y applies: ")
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != "y" {
			fmt.Fprintln(stdout, "Nothing applied.")
			return exitOK
		}
		if p, err = send(false, p.PlanHash); err != nil {
			return fail("%v", err)
		}
	} else if !planOnly && !yes && p.Error == nil && len(p.Changes) > 0 {
		// -o json cannot ask: a script says --yes.
		return fail("-o json applies only with --yes; this was a dry run:\n%s", p.Text)
	}
	if out.JSON() {
		if code := printJSON(stdout, stderr, p); code != exitOK {
			return code
		}
	} else {
		fmt.Fprint(stdout, p.Text)
		if p.Applied {
			fmt.Fprintln(stdout, "Applied.")
		}
	}
	if p.Error != nil {
		// The daemon checks what this side cannot (its plugins' schemas)
		// and answers without source lines; these are the same files, so
		// the lines are shown from here.
		_ = config.WriteDiagnostics(stderr, files, located(p, files, seen))
		return fail("%s", *p.Error)
	}
	return exitOK
}

// located turns the daemon's diagnostics (file:line:col, the file by its
// base name) into ones on the local files, for config.WriteDiagnostics.
func located(p *configPlan, files map[string]*hcl.File, byBase map[string]string) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range p.Diagnostics {
		dg := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: d.Summary, Detail: d.Detail}
		if d.Severity == "warning" {
			dg.Severity = hcl.DiagWarning
		}
		if rng, ok := localRange(d.Location, files, byBase); ok {
			dg.Subject = &rng
		} else if d.Location != "" {
			dg.Summary = d.Location + ": " + d.Summary
		}
		out = append(out, dg)
	}
	return out
}

// localRange is the range of a "name:line:col" location in the local file
// of that base name, one character wide.
func localRange(loc string, files map[string]*hcl.File, byBase map[string]string) (hcl.Range, bool) {
	parts := strings.Split(loc, ":")
	if len(parts) < 3 {
		return hcl.Range{}, false
	}
	line, err1 := strconv.Atoi(parts[len(parts)-2])
	col, err2 := strconv.Atoi(parts[len(parts)-1])
	path, ok := byBase[strings.Join(parts[:len(parts)-2], ":")]
	if err1 != nil || err2 != nil || !ok || files[path] == nil || line < 1 || col < 1 {
		return hcl.Range{}, false
	}
	src := files[path].Bytes
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return hcl.Range{}, false
		}
		off += i + 1
	}
	for c := 1; c < col && off < len(src) && src[off] != '\n'; c++ {
		_, n := utf8.DecodeRune(src[off:])
		off += n
	}
	pos := hcl.Pos{Line: line, Column: col, Byte: off}
	end := pos
	if off < len(src) && src[off] != '\n' {
		_, n := utf8.DecodeRune(src[off:])
		end = hcl.Pos{Line: line, Column: col + 1, Byte: off + n}
	}
	return hcl.Range{Filename: path, Start: pos, End: end}, true
}
