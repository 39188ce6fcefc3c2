# UiPath Orchestrator. The OAuth secret of the external application and the
# webhook signing secret live in Vault; only references are written here.

vendor "uipath-prod" {
  type           = "uipath"
  url            = "https://orchestrator.tax.internal"
  tenant         = "TaxFiling"
  folder         = "Production"
  credentials    = "vault:secret/rpacloud/vendors/uipath-prod#client_secret"
  client_id      = "rpacloud-monitor"
  webhook_secret = "vault:secret/rpacloud/vendors/uipath-prod#webhook_secret"
  poll_interval  = "30s"
}
