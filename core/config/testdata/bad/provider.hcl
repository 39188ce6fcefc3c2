provider "cloud" {
  plugin        = "../../bin/sh"
  access_key_id = "AKIAIOSFODNN7EXAMPLE"
  password      = 12345
  token_file    = "/etc/rpacloud/cloud-token"
  region        = "cn-north-1"
}

provider "no-plugin" {
  region = "eu"
}

provider "nested" {
  plugin = "local"

  settings {
    x = 1
  }
}
