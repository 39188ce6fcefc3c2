package sdk_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Third parties build plugins by importing the SDK alone; one import of
// the daemon would drag its database and web stack into every plugin (the
// Nomad Autoscaler's SDK mistake). go list sees what the compiler sees.
func TestSDKImportsNoDaemonPackages(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(goBin, "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	const module = "github.com/rpacloud/rpacloud/"
	forbidden := []string{"ariga.io/", "entgo.io/", "github.com/99designs/"}
	for _, pkg := range strings.Fields(string(out)) {
		rel, ours := strings.CutPrefix(pkg, module)
		if ours && !strings.HasPrefix(rel, "plugins/sdk") {
			t.Errorf("the SDK depends on %s; it may import only plugins/sdk/... of rpacloud", pkg)
		}
		for _, p := range forbidden {
			if strings.HasPrefix(pkg, p) {
				t.Errorf("the SDK depends on %s (database/GraphQL stack)", pkg)
			}
		}
	}
}
