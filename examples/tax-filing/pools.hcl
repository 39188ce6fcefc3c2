# Filing peaks in the first fifteen days of each month: the pools keep a few
# permanent robots and rent more when the queue grows.

pool "tax-rpa" {
  provider        = "local"
  min             = 2
  max             = 20
  period          = "30s"
  tasks_per_robot = 10
  fairness        = "weighted" # big accounting firms do not starve small ones
  network         = "tax-bureau"
}

pool "tax-crawler" {
  provider        = "local"
  min             = 1
  max             = 8
  period          = "1m"
  tasks_per_robot = 25
  fairness        = "oldest_served"
  network         = "tax-bureau"
}
