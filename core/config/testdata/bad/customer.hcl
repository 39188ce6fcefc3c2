customer "acme" {
  display_name = "ACME Ltd."
}

customer "finance" {
  kind   = "department"
  parent = "acme"
}

customer "loop-a" {
  parent = "loop-b"
}

customer "loop-b" {
  parent = "loop-a"
}

customer "self" {
  parent = "self"
}

customer "orphan" {
  kind   = "team"
  parent = "acmee"
}
