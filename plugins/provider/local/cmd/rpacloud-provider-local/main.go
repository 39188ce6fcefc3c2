// Command rpacloud-provider-local is the local provider as a standalone
// plugin executable. The daemon carries the same plugin built in
// (`rpacloud plugin provider local`); this binary, put in the plugin
// directory, overrides it.
package main

import "github.com/rpacloud/rpacloud/plugins/provider/local"

func main() { local.Main() }
