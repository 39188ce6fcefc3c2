pool "p" {
  provider = "local"
  max      = 4
}

provider "local" {
  plugin = "local"
}

server {}

process "x" {
  pool    = "p"
  builtin = "echo"
}
