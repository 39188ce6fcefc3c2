provider "local" {
  plugin = "local"
}

pool "inverted" {
  provider = "local"
  min      = 5
  max      = 2
}

pool "negative" {
  provider        = "local"
  min             = -1
  max             = 0
  period          = "0s"
  tasks_per_robot = 0
}

pool "typos" {
  provider = "lcoal"
  max      = 3
  period   = "soon"
  fairness = "random"
  network  = "office"
}

pool "durations" {
  provider = "local"
  max      = 3
  period   = "-30s"
}

process "keep-pools-busy" {
  pool    = "inverted"
  builtin = "noop"
}
