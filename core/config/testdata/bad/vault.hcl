vault {
  address     = "vault.example:8200"
  auth_method = "approle"
  token       = "hvs.CAESIJ"
}

vault {
  address     = "https://vault.example:8200"
  auth_method = "kerberos"
  mount       = "/secret/"
  tokn_file   = "/etc/rpacloud/token"
}
