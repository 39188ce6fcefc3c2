package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// output is the -o/--output flag of a command that prints data: text for
// people (the default) or one JSON document for scripts. The JSON field
// names are part of the CLI's interface (README, "Output"): add fields,
// do not rename them.
type output string

const (
	outputText output = "text"
	outputJSON output = "json"
)

func (o *output) String() string { return string(*o) }
func (o *output) Type() string   { return "text|json" }
func (o *output) Set(v string) error {
	switch output(v) {
	case outputText, outputJSON:
		*o = output(v)
		return nil
	}
	return fmt.Errorf("%q: want text or json", v)
}

// JSON reports whether the command is to print JSON.
func (o *output) JSON() bool { return o != nil && *o == outputJSON }

// addOutputFlag gives cmd the -o/--output flag, with shell completion of
// its two values.
func addOutputFlag(cmd *cobra.Command) *output {
	o := outputText
	cmd.Flags().VarP(&o, "output", "o", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return &o
}

// writeJSON prints v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// printJSON is writeJSON for command bodies that return an exit code.
func printJSON(stdout, stderr io.Writer, v any) int {
	if err := writeJSON(stdout, v); err != nil {
		fmt.Fprintln(stderr, "rpacloud:", err)
		return exitFailure
	}
	return exitOK
}

// isTerminal reports whether w is a terminal: carriage-return progress
// lines are drawn only there, never into a pipe, file or test buffer.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}
