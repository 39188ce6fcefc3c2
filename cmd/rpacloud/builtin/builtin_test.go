package builtin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// The configuration loader finds every built-in through Schemas without
// starting it (no SelfExe would be needed to read the table, but find
// needs one to call the plugin runnable), gets the schema the plugin
// declares, and an unknown name is refused saying where it was looked for
// and which built-ins exist.
func TestSchemasFindTheBuiltins(t *testing.T) {
	ctx := context.Background()
	s := &builtin.Schemas{SelfExe: "/nonexistent/rpacloud"}
	defer s.Close()
	dir := t.TempDir()
	for _, p := range builtin.Plugins {
		attrs, err := s.PluginSchema(ctx, config.Server{PluginDir: dir}, p.Kind, p.Name)
		if err != nil {
			t.Fatalf("%s %s: %v", p.Kind, p.Name, err)
		}
		info, _ := p.Info(ctx)
		if len(attrs) != len(info.ConfigSchema) {
			t.Errorf("%s %s: %d attributes, the plugin declares %d", p.Kind, p.Name, len(attrs), len(info.ConfigSchema))
		}
		if err := pluginhost.CheckSchema(info.ConfigSchema); err != nil {
			t.Errorf("%s %s declares a schema the host refuses from third parties: %v", p.Kind, p.Name, err)
		}
	}
	_, err := s.PluginSchema(ctx, config.Server{PluginDir: dir}, sdk.KindVendor, "blueprism")
	if !errors.Is(err, config.ErrPluginNotFound) {
		t.Fatalf("unknown vendor: %v", err)
	}
	for _, want := range []string{dir, `"rpacloud-vendor-blueprism"`, "built-in vendor plugins: uipath, aa"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("unknown vendor: %q does not say %q", err, want)
		}
	}

	// A daemon's own host answers for its directory, and outlives Close.
	h := pluginhost.New(pluginhost.Options{Dir: dir, SelfExe: "/nonexistent/rpacloud", Builtin: builtin.Has, BuiltinInfo: builtin.Info})
	defer h.Close()
	lent := &builtin.Schemas{Host: h}
	if _, err := lent.PluginSchema(ctx, config.Server{PluginDir: dir}, sdk.KindVendor, "uipath"); err != nil {
		t.Fatal(err)
	}
	lent.Close()
	if _, err := h.Schema(ctx, sdk.KindVendor, "uipath"); err != nil {
		t.Errorf("the lent host was closed: %v", err)
	}
}

// Every row says truthfully what it is: its Info names the same kind and
// name, so the schema used to route secrets is the plugin's own.
func TestRowsDescribeThemselves(t *testing.T) {
	for _, p := range builtin.Plugins {
		info, err := p.Info(context.Background())
		if err != nil {
			t.Fatalf("%s %s: %v", p.Kind, p.Name, err)
		}
		if info.Kind != p.Kind || info.Name != p.Name {
			t.Errorf("row %s/%s: plugin says %s/%s", p.Kind, p.Name, info.Kind, info.Name)
		}
		if !builtin.Has(p.Kind, p.Name) {
			t.Errorf("Has(%s, %s) = false", p.Kind, p.Name)
		}
	}
	if builtin.Has(sdk.KindProvider, "nosuch") {
		t.Error("Has accepted an unknown plugin")
	}
}
