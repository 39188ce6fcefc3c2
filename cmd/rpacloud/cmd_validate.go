package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/config"
)

func newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "check HCL configuration; every problem as file:line:col: message",
		Long: `Check the HCL configuration in the given files and directories (their *.hcl
files, not recursive) as one configuration and report every problem as
file:line:col: message on stderr. Exit 1 on errors; warnings alone pass.
Each vendor type, provider plugin and process crawler must be built in or
an executable rpacloud-<kind>-<name> in the plugin directory (server
plugin_dir, default data_dir/plugins); such a plugin is started just to
read the attributes it declares, which its block is checked against.

-o json prints {"ok", "files": [...], "errors", "warnings", "diagnostics":
[{"severity", "file", "line", "column", "summary", "detail"}], "inventory":
{"pool": N, ...}} on stdout instead (package core/config's Report).`,
		Args: cobra.ArbitraryArgs, // none is a usage error, said by ValidateCommand
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return exit(runValidate(cmd.Context(), args, out, cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}
	return cmd
}

// runValidate implements `rpacloud validate PATH...`. The logic lives in
// core/config, where it is tested together with the loader it drives.
// Plugins the configuration names are looked up as the daemon would: a
// built-in is read from the binary's table, any other is started from the
// plugin directory just to read its schema (builtin.Schemas).
func runValidate(ctx context.Context, paths []string, out *output, stdout, stderr io.Writer) int {
	plugins := &builtin.Schemas{SelfExe: selfExe()}
	defer plugins.Close()
	if !out.JSON() || len(paths) == 0 {
		// "--": the paths are paths, whatever they look like.
		return config.ValidateCommand(ctx, plugins, append([]string{"--"}, paths...), stdout, stderr)
	}
	r := config.Validate(ctx, plugins, paths...)
	if code := printJSON(stdout, stderr, r); code != exitOK {
		return code
	}
	if !r.OK {
		return exitFailure
	}
	return exitOK
}
