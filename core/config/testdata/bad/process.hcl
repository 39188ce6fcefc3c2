provider "local" {
  plugin = "local"
}

pool "p" {
  provider = "local"
  max      = 2
}

customer "acme" {}

vendor "uipath" {
  type = "uipath"
  url  = "https://orchestrator.example"
}

process "no-runner" {
  pool = "p"
}

process "two-runners" {
  pool    = "p"
  builtin = "echo"
  crawler = "http"
}

process "bad-runners" {
  pool    = "p"
  builtin = "shell"
}

process "bad-crawler" {
  pool    = "p"
  crawler = "selenium"
  package = "x.js"
}

process "dangling" {
  pool         = "pp"
  vendor       = "uipat"
  package      = "Invoices"
  owner        = "acne"
  retries      = -1
  max_duration = "0s"
}

process "vendor-without-package" {
  pool   = "p"
  vendor = "uipath"
}

process "credentials" {
  pool        = "p"
  builtin     = "echo"
  credentials = ["etax/acme", "vault:secret/x#y", "etax/acme", "bad name"]
}
