# The tax-filing demo: crawler robots file VAT declarations on the demo
# e-tax portal (go run ./examples/tax-filing/cmd/etax-portal) and
# bring back the receipt numbers. Run with:
#   rpacloud dev --config examples/tax-filing/demo
# (the dev command keeps its own data directory, SQLite and listen address).

provider "local" {
  plugin = "local"
}

# The robots may reach the portal on this machine and nothing else: any
# other host a page asks for fails the attempt, naming host and profile.
network "etax-demo" {
  allow = ["127.0.0.1", "localhost"]
  deny  = ["*"]
}

pool "etax-crawlers" {
  provider        = "local"
  min             = 2
  max             = 3
  period          = "10s"
  tasks_per_robot = 60
  fairness        = "fair_share"
  network         = "etax-demo"
}

customer "tax-service" {
  display_name = "Demo tax-filing service"
}

process "vat-filing" {
  pool         = "etax-crawlers"
  crawler      = "browser"
  flow         = "vat-declaration"
  owner        = "tax-service"
  max_duration = "2m"
  retries      = 3
  # The portal login, from the credential store at run time.
  credentials = ["etax/demo"]
}
