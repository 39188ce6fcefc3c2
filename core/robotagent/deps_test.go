package robotagent

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent runs on every robot's VM and must not carry the server:
// `go list -deps` of the package holds no storage (ent), no configuration
// language (HCL, which Vault's client library links too), no event bus, no
// configuration room and not the daemon's credentials service (robots link
// core/credentials/secret).
func TestAgentLinksNoServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	prefixes := []string{
		"entgo.io/",
		"github.com/rpacloud/rpacloud/ent",
		"github.com/hashicorp/hcl",
		"github.com/hashicorp/vault/",
		"github.com/rpacloud/rpacloud/core/events",
		"github.com/rpacloud/rpacloud/core/config",
	}
	exact := []string{"github.com/rpacloud/rpacloud/core/credentials"}
	for _, dep := range strings.Fields(string(out)) {
		for _, p := range prefixes {
			if strings.HasPrefix(dep, p) {
				t.Errorf("the robot agent links %s", dep)
			}
		}
		for _, e := range exact {
			if dep == e {
				t.Errorf("the robot agent links %s", dep)
			}
		}
	}
}
