// Package sdk is the public SDK for rpacloud plugins. A plugin is a separate
// executable that the rpacloud daemon starts and talks to over gRPC through
// github.com/hashicorp/go-plugin; it imports this package (and its
// subpackages) alone, never the rest of rpacloud, so third parties can build
// plugins without pulling in the daemon's dependencies.
//
// A provider plugin implements [Provider] and calls [ServeProvider] from its
// main function:
//
//	func main() { sdk.ServeProvider(&myProvider{}) }
//
// The executable is named rpacloud-provider-<name> and placed in the
// daemon's plugin directory. Package sdktest checks an implementation
// against the provider contract in memory.
package sdk
