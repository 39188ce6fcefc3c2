process "x" {
  pool    = "p"
  builtin = "echo"
  retries = -1
}

process "y" {
  pool    = "p"
  builtin "echo"
  retries = -1
}

process "z" {
  pool = "undefined-but-not-reported"
}
