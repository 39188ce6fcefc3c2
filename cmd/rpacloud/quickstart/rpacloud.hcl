# The built-in development configuration: `rpacloud dev` runs exactly this.
# Copy it as a starting point for your own: `rpacloud validate DIR` checks it.

server {
  listen    = "127.0.0.1:8080"
  data_dir  = ".rpacloud"
  log_level = "info"

  database {
    driver = "sqlite" # the file DATA_DIR/rpacloud.db
  }
}

# Robots as local processes on this machine: nothing to rent, nothing to pay.
provider "local" {
  plugin = "local"
}

# An intranet access profile. No pool uses it here; add network = "office"
# to a pool to run its robots behind the office proxy.
network "office" {
  proxy = "http://proxy.office.example:3128"
  dns   = ["10.0.0.53", "10.0.0.54"]
  allow = ["*.office.example", "10.0.0.0/8"]
  deny  = ["*"]
}

pool "default" {
  provider        = "local"
  min             = 2 # robots always running
  max             = 4 # robots in all, rented ones included
  period          = "15s"
  tasks_per_robot = 5 # the least work that makes starting one more robot worth it
  fairness        = "fair_share"
}

customer "demo" {
  display_name = "Demo customer"
}

# echo returns its input; {"sleep_ms": 500} or {"fail": "data"} in the
# input exercise deadlines and retries.
process "echo" {
  pool         = "default"
  builtin      = "echo"
  max_duration = "2m"
  retries      = 3
}

process "noop" {
  pool    = "default"
  builtin = "noop"
}

# Prune what grows with every run: events after 30 days, finished tasks and
# attempts after 90 (core/config/README.md#retention). Without this block
# nothing is pruned.
retention {}
