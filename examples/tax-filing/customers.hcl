customer "acme" {
  display_name = "ACME Trading Co., Ltd."
  kind         = "company"
}

customer "acme-finance" {
  display_name = "ACME Finance Department"
  kind         = "department"
  parent       = "acme"
}

customer "acme-hr" {
  display_name = "ACME Human Resources"
  kind         = "department"
  parent       = "acme"
}
