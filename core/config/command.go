package config

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// The CLI commands live here rather than in cmd/rpacloud so they are
// tested with the loader they drive; cmd/rpacloud only forwards to them.

// ValidateCommand implements `rpacloud validate PATH...`: it loads every
// path as one configuration, prints each problem to stderr and a summary,
// and returns 0 when there are no errors, 1 when there are and 2 for a
// usage error. Plugins (may be nil) checks the plugins the configuration
// names, as LoadWith does.
func ValidateCommand(ctx context.Context, plugins PluginSchemas, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("validate", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: rpacloud validate PATH...\n\nChecks the HCL configuration in the given files and directories (their *.hcl\nfiles, not recursive) as one configuration and reports every problem.")
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() == 0 {
		fset.Usage()
		return 2
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "rpacloud validate: %v\n", err)
		return 1
	}
	cfg, diags, files := LoadWith(ctx, plugins, fset.Args()...)
	if err := WriteDiagnostics(stderr, files, diags); err != nil {
		fmt.Fprintf(stderr, "rpacloud validate: %v\n", err)
		return 1
	}
	nerr, nwarn := count(diags)
	if nerr > 0 {
		fmt.Fprintf(stderr, "%s, %s in %s\n", plural(nerr, "error"), plural(nwarn, "warning"), plural(len(files), "file"))
		return 1
	}
	summary := fmt.Sprintf("%s OK (%s)", plural(len(files), "file"), inventory(cfg))
	if nwarn > 0 {
		summary += ", " + plural(nwarn, "warning")
	}
	fmt.Fprintln(stdout, summary)
	return 0
}

func count(diags hcl.Diagnostics) (errs, warns int) {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "s") {
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func inventory(c *Config) string {
	parts := []string{}
	add := func(n int, word string) {
		if n > 0 {
			parts = append(parts, plural(n, word))
		}
	}
	add(len(c.Providers), "provider")
	add(len(c.Networks), "network")
	add(len(c.Pools), "pool")
	add(len(c.Processes), "process")
	add(len(c.Vendors), "vendor")
	add(len(c.Customers), "customer")
	add(len(c.Calendars), "calendar")
	add(len(c.Triggers), "trigger")
	if c.Vault != nil {
		parts = append(parts, "vault")
	}
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, ", ")
}

// FmtCommand implements `rpacloud fmt [-check] [-w] [-recursive] PATH...`.
// By default it rewrites files in place and prints the names of those it
// changed; -check only lists the files that are not canonical and returns
// 1 if there are any; -w=false prints the canonical form to stdout. A file
// that does not parse is reported and left alone (exit 1). Usage errors
// return 2.
func FmtCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("fmt", flag.ContinueOnError)
	fset.SetOutput(stderr)
	check := fset.Bool("check", false, "list files whose formatting differs and exit 1 if any; write nothing")
	write := fset.Bool("w", true, "write the result to the file instead of stdout")
	recursive := fset.Bool("recursive", false, "also format files in subdirectories")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: rpacloud fmt [-check] [-w] [-recursive] PATH...\n\nRewrites HCL files (a file, or a directory's *.hcl files) in canonical form.")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() == 0 {
		fset.Usage()
		return 2
	}
	var names []string
	failed := false
	for _, p := range fset.Args() {
		found, err := fmtTargets(p, *recursive)
		if err != nil {
			fmt.Fprintf(stderr, "rpacloud fmt: %v\n", err)
			failed = true
			continue
		}
		names = append(names, found...)
	}
	differs := false
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			fmt.Fprintf(stderr, "rpacloud fmt: %v\n", err)
			return 1
		}
		changed, err := fmtFile(name, *check, *write, stdout, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "rpacloud fmt: %v\n", err)
			failed = true
			continue
		}
		differs = differs || changed
	}
	if failed || (*check && differs) {
		return 1
	}
	return 0
}

func fmtTargets(path string, recursive bool) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	if !recursive {
		names, err := hclFiles(path)
		if err != nil {
			return nil, fmt.Errorf("read directory %s: %w", path, err)
		}
		return names, nil
	}
	var names []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		hidden := strings.HasPrefix(d.Name(), ".") && p != path
		if d.IsDir() {
			if hidden {
				return filepath.SkipDir
			}
			return nil
		}
		if !hidden && strings.HasSuffix(p, ".hcl") {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", path, err)
	}
	sort.Strings(names)
	return names, nil
}

// fmtFile formats one file and reports whether it was not canonical.
func fmtFile(name string, check, write bool, stdout, stderr io.Writer) (bool, error) {
	src, err := readFile(name)
	if err != nil {
		return false, fmt.Errorf("format %s: %w", name, err)
	}
	out, diags := Format(name, src)
	if diags.HasErrors() {
		files := map[string]*hcl.File{name: {Bytes: src}}
		if werr := WriteDiagnostics(stderr, files, diags); werr != nil {
			return false, werr
		}
		return false, fmt.Errorf("%s: not formatted: it does not parse", name)
	}
	changed := !bytes.Equal(src, out)
	switch {
	case check:
		if changed {
			fmt.Fprintln(stdout, name)
		}
	case !write:
		if _, err := stdout.Write(out); err != nil {
			return changed, fmt.Errorf("write %s to stdout: %w", name, err)
		}
	case changed:
		st, err := os.Stat(name)
		if err != nil {
			return changed, fmt.Errorf("stat %s: %w", name, err)
		}
		if err := os.WriteFile(name, out, st.Mode().Perm()); err != nil {
			return changed, fmt.Errorf("write %s: %w", name, err)
		}
		fmt.Fprintln(stdout, name)
	}
	return changed, nil
}
