// Command rpacloud-vendor-robocorp is the Robocorp Control Room vendor
// plugin as an executable for rpacloud's plugin directory.
package main

import robocorp "github.com/rpacloud/rpacloud/examples/robocorp-plugin"

func main() { robocorp.Main() }
