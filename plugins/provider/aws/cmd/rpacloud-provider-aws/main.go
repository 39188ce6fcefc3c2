// Command rpacloud-provider-aws is the AWS EC2 provider plugin. Put it in
// the daemon's plugin directory and declare `provider "x" { plugin = "aws" ... }`.
package main

import "github.com/rpacloud/rpacloud/plugins/provider/aws"

func main() { aws.Main() }
