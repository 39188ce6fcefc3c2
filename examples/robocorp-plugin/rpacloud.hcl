# A configuration that uses the plugin. From this directory:
#
#   go build -o plugins/rpacloud-vendor-robocorp ./cmd/rpacloud-vendor-robocorp
#   rpacloud validate .
#
# validate starts plugins/rpacloud-vendor-robocorp to read the attributes it
# declares, and checks the vendor block against them.

server {
  plugin_dir = "plugins"
}

provider "local" {
  plugin = "local"
}

pool "robocorp-robots" {
  provider = "local"
  min      = 0
  max      = 2
}

customer "acme" {}

vendor "robocorp" {
  type          = "robocorp"
  url           = "https://cloud.robocorp.com/api/v1"
  workspace_id  = "0f4a7b2c-workspace"
  credentials   = "vault:secret/rpacloud/vendors/robocorp#api_key"
  poll_interval = "30s"
}

# A task of this process starts a run of the Control Room process
# 8d1e5c3a-process with the task's input as its work item; the robots get
# the API key from the credential robocorp/prod (field api_key).
process "vat-filing" {
  pool        = "robocorp-robots"
  vendor      = "robocorp"
  package     = "8d1e5c3a-process"
  owner       = "acme"
  credentials = ["robocorp/prod"]
}
