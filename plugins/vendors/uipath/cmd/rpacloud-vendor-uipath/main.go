// Command rpacloud-vendor-uipath is the UiPath Orchestrator vendor plugin
// as its own executable, for a plugin directory.
package main

import "github.com/rpacloud/rpacloud/plugins/vendors/uipath"

func main() { uipath.Main() }
