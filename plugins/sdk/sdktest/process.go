package sdktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// The process harness starts a crawler or vendor plugin in its own
// process, over the go-plugin handshake the daemon uses, so that a plugin's
// tests exercise its real main, its gRPC wire and its Configure without
// importing the daemon. The plugin is the test binary itself: its TestMain
// serves the plugin when run as `TEST_BINARY plugin KIND NAME`, as the
// daemon's own binary does for built-in plugins:
//
//	func TestMain(m *testing.M) {
//		if len(os.Args) == 4 && os.Args[1] == "plugin" {
//			mycrawler.Main()
//			os.Exit(0)
//		}
//		os.Exit(m.Run())
//	}

// ErrConfigRefused is returned (wrapped, with the diagnostics) when the
// plugin refuses its configuration.
var ErrConfigRefused = errors.New("configuration refused")

// Process is a running plugin process.
type Process struct {
	// PID is the plugin process's id (tests that kill it).
	PID int
	// Diagnostics are the plugin's answer to Configure.
	Diagnostics []sdk.ConfigDiagnostic
	raw         any
	client      *plugin.Client
}

// Stop kills the plugin process; later calls do nothing.
func (p *Process) Stop() { p.client.Kill() }

// Crawler is the process's crawler client.
func (p *Process) Crawler() *sdk.GRPCCrawlerClient { return p.raw.(*sdk.GRPCCrawlerClient) }

// Vendor is the process's vendor client.
func (p *Process) Vendor() *sdk.GRPCVendorClient { return p.raw.(*sdk.GRPCVendorClient) }

// StartCrawler starts the test binary as crawler plugin name, configured
// with cfg, and fails the test if it does not start or refuses cfg.
func StartCrawler(t testing.TB, name string, cfg map[string]string) *Process {
	t.Helper()
	p, err := Launch(t, sdk.KindCrawler, name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartVendor is StartCrawler for a vendor plugin.
func StartVendor(t testing.TB, name string, cfg map[string]string) *Process {
	t.Helper()
	p, err := Launch(t, sdk.KindVendor, name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Launch starts the test binary as plugin name of kind and configures it
// with cfg. A configuration the plugin refuses is an error wrapping
// ErrConfigRefused that lists the diagnostics. The process is killed when
// the test ends.
func Launch(t testing.TB, kind, name string, cfg map[string]string) (*Process, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("test binary: %w", err)
	}
	var sets map[int]plugin.PluginSet
	switch kind {
	case sdk.KindCrawler:
		sets = sdk.CrawlerPluginSets(nil)
	case sdk.KindVendor:
		sets = sdk.VendorPluginSets(nil)
	default:
		sets = sdk.ProviderPluginSets(nil)
	}
	cmd := exec.Command(exe, "plugin", kind, name)
	// As the daemon does: the plugin gets no secrets from the environment.
	cmd.Env = nil
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sets,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     30 * time.Second,
		SkipHostEnv:      true,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: io.Discard}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("%s plugin %q: start: %w", kind, name, err)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		return nil, fmt.Errorf("%s plugin %q: dispense: %w", kind, name, err)
	}
	p := &Process{raw: raw, client: client}
	if rc := client.ReattachConfig(); rc != nil {
		p.PID = rc.Pid
	}
	base, ok := raw.(interface {
		Info(ctx context.Context) (sdk.PluginInfo, error)
		Configure(ctx context.Context, cfg map[string]string) ([]sdk.ConfigDiagnostic, error)
	})
	if !ok {
		return nil, fmt.Errorf("%s plugin %q dispensed %T", kind, name, raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// As the daemon does: the process must say it is the plugin asked for.
	info, err := base.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s plugin %q: info: %w", kind, name, err)
	}
	if info.Kind != kind || info.Name != name {
		return nil, fmt.Errorf("%s plugin %q reports itself as %s plugin %q", kind, name, info.Kind, info.Name)
	}
	diags, err := base.Configure(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s plugin %q: configure: %w", kind, name, err)
	}
	p.Diagnostics = diags
	if len(diags) > 0 {
		parts := make([]string, len(diags))
		for i, d := range diags {
			parts[i] = d.String()
		}
		return p, fmt.Errorf("%s plugin %q: %w: %s", kind, name, ErrConfigRefused, strings.Join(parts, "; "))
	}
	return p, nil
}
