// Package arrows states which of rpacloud's packages may import which, and
// checks a module's import graph against those rules. The rules keep the
// arrows running from users to used things:
//
//   - only cmd imports the API (graph) and the daemon's wiring
//     (cmd/rpacloud/daemon), and nothing outside cmd imports cmd;
//   - plugins, their tests included, import of this module only
//     plugins/sdk and their own directory, so a third party builds one with
//     the SDK alone; outside cmd nothing imports a plugin's implementation;
//   - storage (ent) imports nothing of core, graph, cmd or plugins;
//   - the pure rules (dispatch policy, scaling rule, anomaly rules,
//     saturation, lifecycle rules, the customer rule) import only the
//     standard library;
//   - a third-party plugin example (examples/NAME with a go.mod of its
//     own) imports of this module only plugins/sdk, as a vendor's plugin
//     built outside this repository would;
//   - no two sibling folders import each other, directly or round about
//     (arrows into a pure package do not count: it imports nothing back).
//
// The rules are data and Check is pure, so a test can break an arrow on
// purpose and see it caught. It imports only the standard library.
package arrows

import (
	"fmt"
	"sort"
	"strings"
)

// Package is one package as `go list -json` describes it, with full import
// paths.
type Package struct {
	Path string
	// Module is the path of the module the package belongs to; a module
	// nested under this one (examples/NAME/go.mod) is a third party's.
	Module      string
	Imports     []string // of the package itself
	TestImports []string // of its _test.go files, both in-package and external
}

// Violation is one broken rule.
type Violation struct {
	From, To string // relative to the module: "core/dispatch"; To is "" for a cycle
	Rule     string
}

func (v Violation) String() string {
	if v.To == "" {
		return v.Rule
	}
	return fmt.Sprintf("%s imports %s: %s", v.From, v.To, v.Rule)
}

// Pure are the packages that hold rules only: they import nothing but the
// standard library, so they are tested exhaustively without a database.
var Pure = []string{
	"core/dispatch/policy",
	"core/robotapi/parking",
	"core/scale/decide",
	"core/monitor/rules",
	"core/monitor/saturation",
	"core/lifecycle",
	"core/trigger/when",
	"core/retention/expire",
	"ent/schema/viewer",
}

// Daemon is the composition root: only cmd/rpacloud imports it.
const Daemon = "cmd/rpacloud/daemon"

// Check returns every rule the packages break, sorted. module is the
// module path ("github.com/rpacloud/rpacloud"): it tells the module's own
// packages from the standard library and third parties.
func Check(module string, pkgs []Package) []Violation {
	var out []Violation
	add := func(from, to, rule string) {
		out = append(out, Violation{From: from, To: to, Rule: rule})
	}
	folder := newFolderGraph()
	for _, p := range pkgs {
		from, ok := strings.CutPrefix(p.Path, module+"/")
		if !ok {
			continue // not one of ours
		}
		if p.Module != "" && p.Module != module {
			checkThirdParty(module, p, add)
			continue
		}
		for _, test := range []bool{false, true} {
			imports := p.Imports
			if test {
				imports = p.TestImports
			}
			for _, full := range imports {
				imp, own := strings.CutPrefix(full, module+"/")
				if !own {
					if isPure(from) && !test && !stdlib(full) {
						add(from, full, "a pure rules package imports only the standard library")
					}
					continue
				}
				if imp == from {
					continue // an external test package importing its package
				}
				if !isPure(imp) {
					// A pure package imports nothing of ours, so an arrow
					// into it closes no loop; its folder's other packages
					// are not its users' business.
					folder.add(from, imp)
				}
				checkOwn(from, imp, test, add)
			}
		}
	}
	out = append(out, folder.cycles()...)
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// checkOwn applies the rules on an import from one of the module's
// packages to another.
func checkOwn(from, to string, test bool, add func(from, to, rule string)) {
	switch {
	case under(to, "cmd") && !under(from, "cmd"):
		add(from, to, "nothing outside cmd imports cmd")
	case under(to, Daemon) && from != "cmd/rpacloud" && !under(from, Daemon):
		add(from, to, "only cmd/rpacloud imports the daemon's wiring")
	case under(to, "graph") && !under(from, "graph") && !under(from, "cmd"):
		add(from, to, "only cmd imports the API (graph)")
	}
	if isPure(from) && !test {
		add(from, to, "a pure rules package imports only the standard library")
	}
	if under(from, "ent") && !under(to, "ent") {
		add(from, to, "storage (ent) imports nothing of core, graph, cmd or plugins")
	}
	if under(from, "plugins") && !under(from, "plugins/sdk") {
		if !under(to, "plugins/sdk") && !under(to, pluginRoot(from)) && !under(to, kindInternal(from)) {
			add(from, to, "a plugin imports of rpacloud only plugins/sdk and its own directory")
		}
	}
	if under(from, "plugins/sdk") && !under(to, "plugins/sdk") {
		add(from, to, "the SDK imports only itself: third parties build plugins with it alone")
	}
	if under(to, "plugins") && !under(to, "plugins/sdk") && !under(from, "plugins") && !under(from, "cmd") {
		add(from, to, "only cmd loads a plugin's implementation; the daemon talks to plugins through plugins/sdk")
	}
}

// checkThirdParty applies the rule of a module nested under ours: of
// ours it may import only the SDK (its own packages are its own).
func checkThirdParty(module string, p Package, add func(from, to, rule string)) {
	from := strings.TrimPrefix(p.Path, module+"/")
	for _, full := range append(append([]string(nil), p.Imports...), p.TestImports...) {
		if full == p.Module || strings.HasPrefix(full, p.Module+"/") {
			continue
		}
		imp, own := strings.CutPrefix(full, module+"/")
		if own && !under(imp, "plugins/sdk") {
			add(from, imp, "a third-party plugin imports of rpacloud only plugins/sdk")
		}
	}
}

// pluginRoot is a plugin's own directory: plugins/KIND/NAME.
func pluginRoot(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) < 3 {
		return p
	}
	return strings.Join(parts[:3], "/")
}

// kindInternal is the code plugins of one kind share:
// plugins/KIND/internal.
func kindInternal(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) < 2 {
		return p
	}
	return parts[0] + "/" + parts[1] + "/internal"
}

func isPure(p string) bool {
	for _, q := range Pure {
		if p == q {
			return true
		}
	}
	return false
}

// under reports whether package p is dir or below it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// stdlib: the standard library's paths have no dot in their first element.
func stdlib(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

// folderGraph has an arrow between two sibling folders when a package in
// or below one imports a package in or below the other: core/scale → core/
// config for core/scale/decide importing core/config/x. A package using
// its own parent or child folder adds nothing.
type folderGraph struct {
	edges map[string]map[string]string // folder → folder → one import behind it
}

func newFolderGraph() *folderGraph { return &folderGraph{edges: map[string]map[string]string{}} }

func (g *folderGraph) add(from, to string) {
	a, b := strings.Split(from, "/"), strings.Split(to, "/")
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) || i == len(b) {
		return // one is inside the other
	}
	fa, fb := strings.Join(a[:i+1], "/"), strings.Join(b[:i+1], "/")
	if g.edges[fa] == nil {
		g.edges[fa] = map[string]string{}
	}
	if _, ok := g.edges[fa][fb]; !ok {
		g.edges[fa][fb] = from + " → " + to
	}
}

// cycles reports each strongly connected set of folders once, with the
// imports that close it.
func (g *folderGraph) cycles() []Violation {
	var nodes []string
	for n := range g.edges {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	// Tarjan's algorithm; the graph has a few dozen folders.
	index, low, onStack := map[string]int{}, map[string]int{}, map[string]bool{}
	var stack []string
	var out []Violation
	next := 0
	var visit func(n string)
	visit = func(n string) {
		index[n], low[n] = next, next
		next++
		stack = append(stack, n)
		onStack[n] = true
		var succ []string
		for m := range g.edges[n] {
			succ = append(succ, m)
		}
		sort.Strings(succ)
		for _, m := range succ {
			if _, seen := index[m]; !seen {
				visit(m)
				low[n] = min(low[n], low[m])
			} else if onStack[m] {
				low[n] = min(low[n], index[m])
			}
		}
		if low[n] != index[n] {
			return
		}
		var scc []string
		for {
			m := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[m] = false
			scc = append(scc, m)
			if m == n {
				break
			}
		}
		if len(scc) < 2 {
			return
		}
		sort.Strings(scc)
		in := map[string]bool{}
		for _, m := range scc {
			in[m] = true
		}
		var why []string
		for _, a := range scc {
			for b, imp := range g.edges[a] {
				if in[b] {
					why = append(why, imp)
				}
			}
		}
		sort.Strings(why)
		out = append(out, Violation{Rule: fmt.Sprintf("folders %s import each other (%s)", strings.Join(scc, ", "), strings.Join(why, "; "))})
	}
	for _, n := range nodes {
		if _, seen := index[n]; !seen {
			visit(n)
		}
	}
	return out
}
