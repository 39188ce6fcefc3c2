package builtin_test

import (
	"context"
	"slices"
	"testing"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// The configuration accepts exactly the built-in crawler and vendor
// plugins; a row added to the table and not to config fails here.
func TestConfigNamesTheBuiltins(t *testing.T) {
	if got, want := builtin.Names(sdk.KindCrawler), config.CrawlerRunners; !slices.Equal(got, want) {
		t.Errorf("crawlers: table %q, config %q", got, want)
	}
	if got, want := builtin.Names(sdk.KindVendor), config.VendorTypes; !slices.Equal(got, want) {
		t.Errorf("vendors: table %q, config %q", got, want)
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
