package main

import (
	"context"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/config"
)

type fmtOptions struct{ check, write, recursive bool }

func newFmtCmd() *cobra.Command {
	var o fmtOptions
	cmd := &cobra.Command{
		Use:   "fmt [--check] [-w] [--recursive] PATH...",
		Short: "format HCL files canonically",
		Long: `Rewrite HCL files (a file, or a directory's *.hcl files) in canonical form
and print the names of those changed. --check only lists the files that are
not canonical and exits 1 if there are any; -w=false prints the canonical
form to stdout. A file that does not parse is reported and left alone
(exit 1).`,
		Args: cobra.ArbitraryArgs, // none is a usage error, said by FmtCommand
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(runFmt(cmd.Context(), o, args, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.check, "check", false, "list files whose formatting differs and exit 1 if any; write nothing")
	f.BoolVarP(&o.write, "write", "w", true, "write the result to the file instead of stdout")
	f.BoolVar(&o.recursive, "recursive", false, "also format files in subdirectories")
	return cmd
}

// runFmt implements `rpacloud fmt`. The logic lives in core/config, where
// it is tested with the formatter; its flags are handed on in the Go flag
// syntax it parses.
func runFmt(ctx context.Context, o fmtOptions, paths []string, stdout, stderr io.Writer) int {
	args := []string{"-check=" + strconv.FormatBool(o.check), "-w=" + strconv.FormatBool(o.write),
		"-recursive=" + strconv.FormatBool(o.recursive), "--"}
	return config.FmtCommand(ctx, append(args, paths...), stdout, stderr)
}
