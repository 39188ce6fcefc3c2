// Command rpacloud-vendor-aa is the Automation Anywhere Control Room vendor
// plugin as its own executable, for a plugin directory.
package main

import "github.com/rpacloud/rpacloud/plugins/vendors/aa"

func main() { aa.Main() }
