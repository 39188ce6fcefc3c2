pool "everything-wrong" {
  provider        = "missing"
  min             = -3
  max             = 0
  period          = "often"
  tasks_per_robot = -2
  fairness        = "round_robin"
  network         = "nowhere"
  size            = "xl"
}
process "everything-wrong" {
  pool         = "absent"
  builtin      = "bash"
  owner        = "nobody"
  retries      = -7
  max_duration = "forever"
  credentials  = ["vault:kv/x#y"]
  schedule "s" { cron = "* * *" }
  schedule "t" { timezone = "Nowhere/City" }
  priority     = 1
  crawler      = "curl"
}
