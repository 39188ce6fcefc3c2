# VAT filing runs in UiPath during the monthly peak; the crawlers fetch
# invoices and check what the bureau has accepted.

process "vat-filing" {
  pool         = "tax-rpa"
  vendor       = "uipath-prod"
  package      = "TaxFiling.VAT"
  owner        = "acme-finance"
  max_duration = "20m"
  retries      = 3
  credentials  = ["etax/acme", "bank/acme-payments"]

  schedule "monthly-peak" {
    cron     = "0 8 1-15 * 1-5" # 08:00 on the 1st-15th, and on every weekday (cron ORs day-of-month and day-of-week)
    duration = "10h"
    timezone = "Asia/Shanghai"
  }

  schedule "month-end-catch-up" {
    cron     = "30 18 28-31 * *"
    duration = "3h"
    timezone = "Asia/Shanghai"
  }
}

process "payroll-tax" {
  pool         = "tax-rpa"
  vendor       = "uipath-prod"
  package      = "TaxFiling.IndividualIncome"
  owner        = "acme-hr"
  max_duration = "30m"
  retries      = 2
  credentials  = ["etax/acme"]

  schedule "payroll-window" {
    cron     = "0 9 5-10 * mon-fri"
    duration = "8h"
    timezone = "Asia/Shanghai"
  }
}

process "invoice-download" {
  pool         = "tax-crawler"
  crawler      = "browser"
  package      = "crawlers/invoice-download.js"
  owner        = "acme-finance"
  max_duration = "5m"
  retries      = 3
  credentials  = ["etax/acme"]

  schedule "nightly" {
    cron     = "0 2 * * *"
    duration = "2h"
    timezone = "Asia/Shanghai"
  }
}

process "filing-status" {
  pool         = "tax-crawler"
  crawler      = "http"
  package      = "crawlers/filing-status.yaml"
  owner        = "acme"
  max_duration = "1m"
  retries      = 5

  schedule "hourly-in-peak" {
    cron     = "*/15 8-20 1-16 * *"
    duration = "10m"
    timezone = "Asia/Shanghai"
  }
}
