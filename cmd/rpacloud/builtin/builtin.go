// Package builtin is the one table of the plugins the rpacloud binary
// carries: their kind and name, how to serve them, and what they declare
// about themselves. The CLI serves them from it (`rpacloud plugin <kind>
// <name>`), the wiring tells the plugin host which names it may run from
// the daemon's own executable, and the configuration loader reads their
// schemas without starting them (Info, Schemas). Adding a built-in plugin
// is one row here.
//
// Core rooms never import this package (it links every plugin
// implementation in); the wiring in cmd passes what they need.
package builtin

import (
	"context"
	"slices"

	browser "github.com/rpacloud/rpacloud/plugins/crawler/browser"
	httpcrawler "github.com/rpacloud/rpacloud/plugins/crawler/http"
	"github.com/rpacloud/rpacloud/plugins/provider/local"
	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/vendors/aa"
	"github.com/rpacloud/rpacloud/plugins/vendors/uipath"
)

// Plugin is one built-in plugin.
type Plugin struct {
	Kind string // sdk.KindProvider, sdk.KindCrawler or sdk.KindVendor
	Name string // its name in HCL
	// Main serves the plugin over go-plugin on this process's stdio; it
	// returns when the host is done with it.
	Main func()
	// Info is what the plugin declares about itself (its configuration
	// schema with the Sensitive attributes), read without starting it.
	Info func(context.Context) (sdk.PluginInfo, error)
}

// Plugins is the table, in the order the CLI lists them.
var Plugins = []Plugin{
	{sdk.KindProvider, local.Name, local.Main, func(ctx context.Context) (sdk.PluginInfo, error) { return local.New().Info(ctx) }},
	{sdk.KindCrawler, browser.Name, browser.Main, func(ctx context.Context) (sdk.PluginInfo, error) { return browser.New().Info(ctx) }},
	{sdk.KindCrawler, httpcrawler.Name, httpcrawler.Main, func(ctx context.Context) (sdk.PluginInfo, error) { return httpcrawler.New().Info(ctx) }},
	{sdk.KindVendor, uipath.Name, uipath.Main, func(ctx context.Context) (sdk.PluginInfo, error) { return uipath.New().Info(ctx) }},
	{sdk.KindVendor, aa.Name, aa.Main, func(ctx context.Context) (sdk.PluginInfo, error) { return aa.New().Info(ctx) }},
}

// Lookup returns the built-in plugin kind/name.
func Lookup(kind, name string) (Plugin, bool) {
	i := slices.IndexFunc(Plugins, func(p Plugin) bool { return p.Kind == kind && p.Name == name })
	if i < 0 {
		return Plugin{}, false
	}
	return Plugins[i], true
}

// Has reports whether kind/name is built in; it is what the plugin host's
// Options.Builtin takes.
func Has(kind, name string) bool {
	_, ok := Lookup(kind, name)
	return ok
}

// Names lists the built-in plugins of one kind, in table order.
func Names(kind string) []string {
	var out []string
	for _, p := range Plugins {
		if p.Kind == kind {
			out = append(out, p.Name)
		}
	}
	return out
}
