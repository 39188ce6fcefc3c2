provider "local" {
  plugin = "local"
}

pool "p" {
  provider = "local"
  max      = 2
  min      = 3
}
