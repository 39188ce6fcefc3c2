package sdk

import (
	plugin "github.com/hashicorp/go-plugin"
)

// The magic cookie is a UX guard, not security: it lets a plugin binary
// tell a human who runs it by hand that it is not meant to be run that way.
// It must never change, or every existing plugin stops loading.
const (
	MagicCookieKey   = "RPACLOUD_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue = "6c1a3f0e9b7d4e25a8c2f1d04b9e7a63"
)

// Plugin kinds. Each kind has its own protocol version, so one kind can
// make a breaking change without touching the others.
const (
	KindProvider = "provider"
)

// ProviderProtocolVersion is the provider protocol this SDK speaks.
const ProviderProtocolVersion = 1

// Handshake is the go-plugin handshake shared by the daemon and every
// plugin. The protocol version lives in VersionedPlugins, per kind.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// ProviderPluginSets is the VersionedPlugins map for a provider. impl is
// nil on the daemon side.
func ProviderPluginSets(impl Provider) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProviderProtocolVersion: {KindProvider: &ProviderPlugin{Impl: impl}},
	}
}

// Plugin kinds added after the provider. Each has its own protocol version.
const (
	KindCrawler = "crawler"
	KindVendor  = "vendor"
)

// Protocol versions of the crawler and vendor kinds.
const (
	CrawlerProtocolVersion = 1
	VendorProtocolVersion  = 1
)

// CrawlerPluginSets is the VersionedPlugins map for a crawler. impl is nil
// on the daemon side.
func CrawlerPluginSets(impl Crawler) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		CrawlerProtocolVersion: {KindCrawler: &CrawlerPlugin{Impl: impl}},
	}
}

// VendorPluginSets is the VersionedPlugins map for a vendor. impl is nil on
// the daemon side.
func VendorPluginSets(impl Vendor) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		VendorProtocolVersion: {KindVendor: &VendorPlugin{Impl: impl}},
	}
}
