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
//
// The other kinds work the same way. A crawler plugin implements [Crawler]
// (run one task's [Flow] with its input, credentials and network profile;
// return outputs, artefacts, or a [TaskError] classified as data or
// execution error) and calls [ServeCrawler]; it is named
// rpacloud-crawler-<name>. A vendor plugin implements [Vendor] (start,
// follow and stop jobs, list jobs and robots of an RPA orchestrator) and
// calls [ServeVendor]; it is named rpacloud-vendor-<name>. Helpers:
// package flowvars expands {{input.x}}, {{credentials.name.field}} and
// {{outputs.x}} in steps and scrubs secrets from messages; package
// netpolicy enforces a network profile (allow/deny host patterns, proxy,
// DNS); package vendorhttp does JSON calls with rate limiting (429 and
// Retry-After) and clear errors for malformed replies.
//
// [PluginInfo].ConfigSchema is the plugin's configuration block in HCL:
// `rpacloud validate` and the daemon start the executable just to read
// it (Info must answer within 10 s, before Configure) and refuse any
// attribute it does not declare, a value of the wrong [AttributeType], a
// missing Required one, and a literal where an attribute is Sensitive
// (a vault: reference is required). Names are lower-case identifiers; at
// most 128 attributes. examples/robocorp-plugin in rpacloud's repository
// is a complete vendor plugin built this way, in a module of its own.
package sdk
