package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/core/robotagent"
	browser "github.com/rpacloud/rpacloud/plugins/crawler/browser"
	httpcrawler "github.com/rpacloud/rpacloud/plugins/crawler/http"
	"github.com/rpacloud/rpacloud/plugins/vendors/aa"
	"github.com/rpacloud/rpacloud/plugins/vendors/uipath"
)

// builtinPlugins are the crawler and vendor plugins the rpacloud binary
// carries, run as `rpacloud plugin <kind> <name>`.
var builtinPlugins = map[[2]string]func(){
	{"crawler", "browser"}: browser.Main,
	{"crawler", "http"}:    httpcrawler.Main,
	{"vendor", "uipath"}:   uipath.Main,
	{"vendor", "aa"}:       aa.Main,
}

// runBuiltinPlugin serves a built-in crawler or vendor plugin; false when
// args name none.
func runBuiltinPlugin(args []string) bool {
	if len(args) != 2 {
		return false
	}
	main, ok := builtinPlugins[[2]string{args[0], args[1]}]
	if ok {
		main()
	}
	return ok
}

// robotPlugins is what a robot runs crawler and vendor processes with:
// plugin processes started from this binary (or a plugin directory), the
// process specs from the daemon, artefacts under the robot's directory.
func robotPlugins(server, token string, log *slog.Logger) (*robotagent.Plugins, *pluginhost.Host) {
	host := pluginhost.New(pluginhost.Options{
		Dir: os.Getenv("RPACLOUD_PLUGIN_DIR"), SelfExe: selfExe(), Logger: log,
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
		Specs:         &robotagent.SpecClient{Client: newClient(server, token)},
		Log:           log,
		CrawlerConfig: map[string]map[string]string{"browser": browserCfg},
		ArtifactDir:   dir,
	}, host
}
