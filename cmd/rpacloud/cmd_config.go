package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

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

-o json prints {"applied", "error", "summary", "text", "changes": [{"kind",
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

const applyConfigMutation = `mutation ApplyConfig($files: [ConfigFileInput!]!, $dryRun: Boolean) {
  applyConfig(files: $files, dryRun: $dryRun) {
    applied error summary text
    changes { kind name action attributes { name old new } restart note }
    diagnostics { severity summary detail location }
  }
}`

// configPlan is the answer of applyConfig; its JSON is -o json's.
type configPlan struct {
	Applied bool    `json:"applied"`
	Error   *string `json:"error"`
	Summary string  `json:"summary"`
	Text    string  `json:"text"`
	Changes []struct {
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
	send := func(dryRun bool) (*configPlan, error) {
		var res struct {
			ApplyConfig configPlan `json:"applyConfig"`
		}
		if err := c.Do(ctx, applyConfigMutation, map[string]any{"files": srcs, "dryRun": dryRun}, &res); err != nil {
			return nil, err
		}
		return &res.ApplyConfig, nil
	}
	p, err := send(planOnly || !yes)
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
		if p, err = send(false); err != nil {
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
		for _, d := range p.Diagnostics {
			if d.Location != "" {
				fmt.Fprintf(stderr, "%s: %s: %s; %s\n", d.Location, d.Severity, d.Summary, d.Detail)
			} else {
				fmt.Fprintf(stderr, "%s: %s; %s\n", d.Severity, d.Summary, d.Detail)
			}
		}
		return fail("%s", *p.Error)
	}
	return exitOK
}
