widget "w" {}

pool {
  max = 1
}

pool "a" "b" {
  max = 1
}

pool "types" {
  provider        = 42
  min             = "five"
  max             = 2.5
  period          = 30
  tasks_per_robot = [1]
  colour          = "blue"
}

pool "Bad Name!" {
  provider = "x"
  max      = 1
}

process "vars" {
  pool    = var.pool
  builtin = upper("echo")
}
