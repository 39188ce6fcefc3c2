package config

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

type source struct {
	name string
	src  []byte
}

// Load reads every *.hcl file of each path (a file, or a directory: its
// *.hcl files, not recursive, sorted by name) as one configuration. The
// returned Config is never nil; it is only meaningful when the diagnostics
// have no errors. The files map serves WriteDiagnostics' snippets.
func Load(paths ...string) (*Config, hcl.Diagnostics, map[string]*hcl.File) {
	return LoadWith(context.Background(), nil, paths...)
}

// LoadWith is Load that also checks every plugin the configuration names
// (vendor type, provider plugin, process crawler) with plugins: it must
// exist, and the attributes of a vendor or provider block must be those
// its plugin declares. Nil plugins: Load's behaviour, names taken as
// written and attributes passed on unchecked.
func LoadWith(ctx context.Context, plugins PluginSchemas, paths ...string) (*Config, hcl.Diagnostics, map[string]*hcl.File) {
	var diags hcl.Diagnostics
	if len(paths) == 0 {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No configuration given",
			Detail:   "Name at least one .hcl file or directory.",
		})
		return defaultConfig(), diags, map[string]*hcl.File{}
	}
	var srcs []source
	seen := map[string]bool{}
	add := func(name string) {
		key := filepath.Clean(name)
		if abs, err := filepath.Abs(name); err == nil {
			key = abs
		}
		// A file named both directly and through its directory is one file,
		// not a source of duplicate declarations.
		if seen[key] {
			return
		}
		seen[key] = true
		b, err := readFile(name)
		if err != nil {
			diags = append(diags, pathDiag(name, "Cannot read configuration file", err))
			return
		}
		srcs = append(srcs, source{name: name, src: b})
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			diags = append(diags, pathDiag(p, "Cannot read configuration", err))
			continue
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		names, err := hclFiles(p)
		if err != nil {
			diags = append(diags, pathDiag(p, "Cannot read configuration directory", err))
			continue
		}
		if len(names) == 0 {
			diags = append(diags, pathDiag(p, "No configuration files", fmt.Errorf("directory %s has no .hcl files", p)))
			continue
		}
		for _, n := range names {
			add(n)
		}
	}
	cfg, more, files := load(ctx, plugins, srcs, true, "")
	diags = append(diags, more...)
	sortDiagnostics(diags, srcs)
	return cfg, diags, files
}

// LoadSources is Load for in-memory files, keyed by the file name used in
// diagnostics. Files are read in name order.
func LoadSources(srcs map[string][]byte) (*Config, hcl.Diagnostics, map[string]*hcl.File) {
	return LoadSourcesWith(context.Background(), nil, srcs)
}

// LoadSourcesWith is LoadSources checking plugins as LoadWith does.
func LoadSourcesWith(ctx context.Context, plugins PluginSchemas, srcs map[string][]byte) (*Config, hcl.Diagnostics, map[string]*hcl.File) {
	list := sortedSources(srcs)
	cfg, diags, files := load(ctx, plugins, list, false, "")
	sortDiagnostics(diags, list)
	return cfg, diags, files
}

// sortedSources lists sources by name, so that loading (and its
// diagnostics) does not depend on the map's order.
func sortedSources(srcs map[string][]byte) []source {
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	sort.Strings(names)
	list := make([]source, 0, len(names))
	for _, n := range names {
		list = append(list, source{name: n, src: srcs[n]})
	}
	return list
}

// LoadSourcesAt is LoadSourcesWith for files that came from a daemon's own
// configuration (a revision another daemon applied from its --config
// files): the files its blocks name (calendar files, inputs_file) are read
// from dir on this host, as if the sources were there. Never for sources
// sent through the API, which may not read the daemon's files.
func LoadSourcesAt(ctx context.Context, plugins PluginSchemas, srcs map[string][]byte, dir string) (*Config, hcl.Diagnostics, map[string]*hcl.File) {
	list := sortedSources(srcs)
	cfg, diags, files := load(ctx, plugins, list, true, dir)
	sortDiagnostics(diags, list)
	return cfg, diags, files
}

// MaxFileBytes bounds one configuration file. The largest real
// configurations are tens of kilobytes; the bound keeps a mistaken path
// (a log, a disk image) from being read into memory and parsed.
const MaxFileBytes = 4 << 20

// readFile reads one configuration file, refusing what is not a regular
// file once symbolic links are followed (a device such as /dev/zero, a
// FIFO, a socket: reading one may never end or never start) and files
// over MaxFileBytes. The read itself is bounded too, in case the file
// grows or is swapped after the check.
func readFile(name string) ([]byte, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s); name a file or a directory of .hcl files", name, kind(st.Mode()))
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%s is %d bytes, over the limit of %d bytes for one configuration file", name, st.Size(), MaxFileBytes)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", name, kind(st.Mode()))
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%s is over the limit of %d bytes for one configuration file", name, MaxFileBytes)
	}
	return b, nil
}

func kind(m os.FileMode) string {
	switch {
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}

// hclFiles lists a directory's *.hcl files, skipping hidden ones: editors
// leave lock and backup files such as ".#pools.hcl" next to real ones.
func hclFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".hcl") {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	sort.Strings(out)
	return out, nil
}

func pathDiag(path, summary string, err error) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   err.Error(),
		Subject:  &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos},
	}
}

func load(ctx context.Context, plugins PluginSchemas, srcs []source, fromDisk bool, sideDir string) (*Config, hcl.Diagnostics, map[string]*hcl.File) {
	parser := hclparse.NewParser()
	l := newLoader(ctx, plugins)
	l.fromDisk, l.sideDir = fromDisk, sideDir
	syntaxErrors := false
	for _, s := range srcs {
		f, diags := parser.ParseHCL(s.src, s.name)
		l.diags = append(l.diags, diags...)
		cut := -1
		for _, d := range diags {
			if d.Severity != hcl.DiagError {
				continue
			}
			syntaxErrors = true
			// A redefined attribute leaves the body intact: the parser
			// keeps the first definition and reads on normally.
			if d.Summary == "Attribute redefined" && d.Subject != nil {
				continue
			}
			if d.Subject == nil {
				cut = 0
			} else if cut < 0 || d.Subject.Start.Byte < cut {
				cut = d.Subject.Start.Byte
			}
		}
		if f != nil {
			l.decodeFile(f, cut)
		}
	}
	l.finish(!syntaxErrors)
	return l.cfg, l.diags, parser.Files()
}

// sortDiagnostics orders problems as an operator reads them: file by file
// in load order, top to bottom.
func sortDiagnostics(diags hcl.Diagnostics, srcs []source) {
	order := make(map[string]int, len(srcs))
	for i, s := range srcs {
		order[s.name] = i + 1
	}
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			oa, ob := order[a.Filename], order[b.Filename]
			if oa != ob {
				return oa < ob
			}
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
}
