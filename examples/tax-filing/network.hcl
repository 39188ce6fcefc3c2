# Robots that file declarations reach the tax bureau's e-filing portal only
# through the bureau-approved egress proxy, with the company resolvers.

network "tax-bureau" {
  proxy = "http://egress.tax.internal:3128"
  dns   = ["10.20.0.53", "10.20.1.53"]
  allow = [
    "etax.example.gov",
    "*.etax.example.gov",
    "*.tax.internal",
    "10.20.0.0/16",
  ]
  deny = [
    "*",
  ]
}
