# Filing peaks in the first fifteen days of each month: the pools keep a few
# permanent robots and rent more when the queue grows.

pool "tax-rpa" {
  provider        = "local"
  min             = 2
  max             = 20
  period          = "30s"
  tasks_per_robot = 10
  fairness        = "fair_share" # firms hold more robots; small companies are not starved behind them
  network         = "tax-bureau"

  # What every VM of the pool is prepared with (lifecycle step S2) and how
  # developers and business users reach it from their desks.
  software      = ["UiPath Robot 2024.10", "WPS Office 2023", "Chrome 131", "CFCA e-tax client 5.2"]
  config_files  = ["C:\\rpa\\uipath\\robot.json", "C:\\rpa\\etax\\companies.json"]
  remote_access = "rdp"
}

# Crawler jobs are many small batches from many companies; oldest_served
# suited them, and fair_share behaves like it while no batch holds more
# robots than its share.
pool "tax-crawler" {
  provider        = "local"
  min             = 1
  max             = 8
  period          = "1m"
  tasks_per_robot = 25
  fairness        = "fair_share"
  network         = "tax-bureau"

  software      = ["rpacloud robot", "Chromium 131"]
  config_files  = ["/etc/rpacloud/robot.env"]
  remote_access = "ssh"
}
