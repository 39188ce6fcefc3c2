package arrows_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/arrows"
)

const module = "github.com/rpacloud/rpacloud"

// goList returns the packages matching patterns as the compiler sees them,
// with overlay (a go list -overlay file) when not empty.
func goList(t *testing.T, overlay string, patterns ...string) []arrows.Package {
	t.Helper()
	return goListIn(t, moduleRoot(t), overlay, patterns...)
}

// goListIn is goList in another directory (a nested module).
func goListIn(t *testing.T, dir, overlay string, patterns ...string) []arrows.Package {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	args := []string{"list", "-json=ImportPath,Module,Imports,TestImports,XTestImports"}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.Command(goBin, append(args, patterns...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []arrows.Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath                         string
			Module                             struct{ Path string }
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, arrows.Package{Path: p.ImportPath, Module: p.Module.Path, Imports: p.Imports, TestImports: append(p.TestImports, p.XTestImports...)})
	}
	return pkgs
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return dir
}

// TestModuleKeepsTheRules is the guard: every package of the module, its
// tests included, keeps every rule.
func TestModuleKeepsTheRules(t *testing.T) {
	pkgs := goList(t, "", "./...")
	if len(pkgs) < 50 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, v := range arrows.Check(module, pkgs) {
		t.Error(v)
	}
}

// The third-party plugin examples are modules of their own, which the
// root's ./... does not list: each is listed in its directory, and may
// import of rpacloud only the SDK. A copy with an import of core added
// shows the rule bites.
func TestExampleModulesImportOnlyTheSDK(t *testing.T) {
	mods, _ := filepath.Glob(filepath.Join(moduleRoot(t), "examples", "*", "go.mod"))
	if len(mods) == 0 {
		t.Fatal("no example module found under examples/*/go.mod")
	}
	for _, m := range mods {
		pkgs := goListIn(t, filepath.Dir(m), "", "./...")
		if len(pkgs) == 0 || pkgs[0].Module == module {
			t.Fatalf("%s: go list found %v, not a module of its own", m, pkgs)
		}
		for _, v := range arrows.Check(module, pkgs) {
			t.Error(v)
		}
		bad := append([]arrows.Package(nil), pkgs...)
		bad[0].Imports = append(append([]string(nil), bad[0].Imports...), module+"/core/config")
		if got := arrows.Check(module, bad); !mentions(got, "a third-party plugin imports of rpacloud only plugins/sdk") {
			t.Errorf("%s importing core/config was not caught: %v", bad[0].Path, got)
		}
	}
}

// TestBrokenArrowIsCaught breaks each rule on purpose, the way a careless
// change would, and checks that the guard fails. The first case goes
// through the compiler's own view: a file that exists only in a go list
// overlay makes a crawler plugin import the configuration package.
func TestBrokenArrowIsCaught(t *testing.T) {
	root := moduleRoot(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.go")
	nameCmd := exec.Command("go", "list", "-f", "{{.Name}}", "./plugins/crawler/http")
	nameCmd.Dir = root
	name, err := nameCmd.Output()
	if err != nil {
		t.Fatalf("package name: %v", err)
	}
	src := "package " + strings.TrimSpace(string(name)) + "\n\nimport _ \"" + module + "/core/config\"\n"
	if err := os.WriteFile(bad, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "plugins/crawler/http/zz_broken_arrow.go"): bad}})
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := arrows.Check(module, goList(t, ov, "./plugins/crawler/http")); !mentions(got, "plugins/crawler/http imports core/config") {
		t.Errorf("a plugin importing core was not caught: %v", got)
	}

	clean := goList(t, "", "./...")
	cases := []struct {
		from, to string // the import added
		test     bool   // in a _test.go file
		want     string // in the violation
	}{
		{"core/dispatch", "graph", false, "only cmd imports the API"},
		{"core/scale", "cmd/rpacloud/daemon", false, "nothing outside cmd imports cmd"},
		{"graph", "cmd/rpacloud/daemon", false, "nothing outside cmd imports cmd"},
		{"cmd/rpacloud/quickstart", "cmd/rpacloud/daemon", false, "only cmd/rpacloud imports the daemon"},
		{"plugins/vendors/uipath", "core/credentials", true, "a plugin imports of rpacloud only plugins/sdk"},
		{"plugins/sdk", "core/config", false, "the SDK imports only itself"},
		{"core/dispatch/policy", "github.com/google/uuid", false, "pure rules package"},
		{"core/monitor/rules", "core/events", false, "pure rules package"},
		{"ent/schema", "core/auth", false, "storage (ent) imports nothing"},
		{"core/monitor", "plugins/crawler/browser", false, "only cmd loads a plugin's implementation"},
		{"core/config", "core/scale", false, "core/config → core/scale"},
	}
	for _, c := range cases {
		t.Run(c.from+"→"+c.to, func(t *testing.T) {
			pkgs := withImport(t, clean, c.from, c.to, c.test)
			if got := arrows.Check(module, pkgs); !mentions(got, c.want) {
				t.Errorf("not caught, want %q among %v", c.want, got)
			}
		})
	}
}

// withImport returns a copy of pkgs in which package from also imports to.
func withImport(t *testing.T, pkgs []arrows.Package, from, to string, test bool) []arrows.Package {
	t.Helper()
	full := func(p string) string {
		if strings.Contains(strings.Split(p, "/")[0], ".") {
			return p
		}
		return module + "/" + p
	}
	out := make([]arrows.Package, len(pkgs))
	found := false
	for i, p := range pkgs {
		out[i] = p
		if p.Path == full(from) {
			found = true
			if test {
				out[i].TestImports = append(append([]string(nil), p.TestImports...), full(to))
			} else {
				out[i].Imports = append(append([]string(nil), p.Imports...), full(to))
			}
		}
	}
	if !found {
		t.Fatalf("no package %s", from)
	}
	return out
}

func mentions(vs []arrows.Violation, s string) bool {
	for _, v := range vs {
		if strings.Contains(v.String(), s) {
			return true
		}
	}
	return false
}

// What a package links matters as much as what it imports: a third-party
// plugin built with the SDK, and the robot agent on every robot VM, must
// not carry the daemon's database, API or configuration stack. go list
// -deps sees everything the linker will.
var linkRules = []struct {
	pattern   string
	forbidden []string // prefixes; one ending in "$" is a whole path
	why       string
}{
	{"./plugins/sdk/...", []string{"ariga.io/", "entgo.io/", "github.com/99designs/", module + "/core/", module + "/ent", module + "/graph"},
		"third parties build plugins with the SDK alone (the Nomad Autoscaler's SDK linked its daemon)"},
	{"./core/robotagent/...", []string{"entgo.io/", module + "/ent", "github.com/hashicorp/hcl", "github.com/hashicorp/vault/",
		module + "/core/events", module + "/core/config", module + "/core/credentials$", module + "/graph"},
		"the agent runs on every robot VM: no storage, no HCL (Vault's client library links it), no event bus, no daemon credentials service (robots use core/credentials/secret)"},
}

func TestLinks(t *testing.T) {
	for _, r := range linkRules {
		cmd := exec.Command("go", "list", "-deps", r.pattern)
		cmd.Dir = moduleRoot(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", r.pattern, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range r.forbidden {
				if whole, ok := strings.CutSuffix(f, "$"); ok && dep == whole || !ok && strings.HasPrefix(dep, f) {
					t.Errorf("%s links %s: %s", r.pattern, dep, r.why)
				}
			}
		}
	}
}
