package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// runBuiltinPlugin serves a built-in plugin of the table in
// cmd/rpacloud/builtin; false when args name none.
func runBuiltinPlugin(args []string) bool {
	if len(args) != 2 {
		return false
	}
	p, ok := builtin.Lookup(args[0], args[1])
	if ok {
		p.Main()
	}
	return ok
}

// robotPlugins is what a robot runs crawler and vendor processes with:
// plugin processes started from this binary (or a plugin directory), the
// process specs from the daemon, artefacts under the robot's directory.
func robotPlugins(client *gqlclient.Client, pluginDir string, log *slog.Logger) (*robotagent.Plugins, *pluginhost.Host) {
	host := pluginhost.New(pluginhost.Options{
		Dir: pluginDir, SelfExe: selfExe(), Builtin: builtin.Has, BuiltinInfo: builtin.Info, Logger: log,
		BackoffMin: time.Second, BackoffMax: 30 * time.Second, CallTimeout: time.Hour,
	})
	browserCfg := map[string]string{}
	if c := os.Getenv("RPACLOUD_CHROMIUM"); c != "" {
		browserCfg["chromium"] = c
	}
	dir := ""
	if home, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(home, "rpacloud", "artefacts")
	}
	return &robotagent.Plugins{
		Host:          host,
		Specs:         &robotagent.SpecClient{Client: client},
		Log:           log,
		CrawlerConfig: map[string]map[string]string{"browser": browserCfg},
		ArtifactDir:   dir,
		// What the plugin itself declares, a third-party one included.
		Schema: func(ctx context.Context, kind, name string) []sdk.ConfigAttribute {
			attrs, err := host.Schema(ctx, kind, name)
			if err != nil {
				log.Warn("cannot read the plugin's schema; no secret is passed to it", "kind", kind, "plugin", name, "err", err)
			}
			return attrs
		},
	}, host
}
