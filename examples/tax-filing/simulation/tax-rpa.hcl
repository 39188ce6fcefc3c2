# The tax-filing VAT pool on its own, for `rpacloud simulate`: the same
# sizes as ../pools.hcl, with room to grow to 40 robots at the deadline.
# The scaling settings beyond the seed are listed, off, so an operator can
# switch one on and compare.

provider "cloud" {
  plugin = "local"
}

pool "tax-rpa" {
  provider        = "cloud"
  min             = 2
  max             = 40
  period          = "30s"
  tasks_per_robot = 10
  fairness        = "fair_share"

  # Off by default (the seed's rule):
  # cooldown       = "5m"   # default: tasks_per_robot periods
  # boot_aware     = true   # booting robots count as capacity
  # prewarm_robots = 12     # before and during the monthly-peak slots
  # prewarm_lead   = "15m"
}

process "vat-filing" {
  pool         = "tax-rpa"
  builtin      = "noop"
  max_duration = "20m"
  retries      = 3

  schedule "monthly-peak" {
    cron     = "0 8 1-15 * 1-5"
    duration = "10h"
  }
}
