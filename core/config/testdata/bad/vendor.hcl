vendor "bp" {
  type        = "blueprism"
  url         = "orchestrator.example"
  credentials = "s3cr3t"
}

vendor "leaky" {
  type          = "aa"
  url           = "https://admin:hunter2@controlroom.example"
  credentials   = "vault:secret/rpacloud/vendors/leaky#api_key"
  api_key       = "0123456789abcdef"
  client_secret = "vault:secret/rpacloud/vendors/leaky#client_secret"
  region        = "eu"
}

vendor "incomplete" {
  tenant = "Default"
}
