provider "local" {
  plugin = "local"
}

pool "p" {
  provider = "local"
  max      = 2
}

process "scheduled" {
  pool    = "p"
  builtin = "echo"

  schedule "fields" {
    cron = "0 9 * *"
  }

  schedule "range" {
    cron     = "0 25 * * 1-5"
    timezone = "Mars/Olympus"
  }

  schedule "fields" {
    cron     = "0 9 * * mon-fri"
    duration = "-1h"
  }

  schedule "never" {
    cron = "0 0 30 feb *"
  }

  schedule "step" {
    cron     = "*/0 * * * *"
    duration = "ninety minutes"
  }
}
