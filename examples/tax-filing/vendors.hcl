# UiPath Orchestrator. The OAuth secret of the external application is in
# Vault; only a reference is written here.

vendor "uipath-prod" {
  type          = "uipath"
  url           = "https://orchestrator.tax.internal"
  tenant        = "TaxFiling"
  folder        = "Production"
  credentials   = "vault:secret/rpacloud/vendors/uipath-prod#client_secret"
  client_id     = "rpacloud-monitor"
  poll_interval = "30s"
}
