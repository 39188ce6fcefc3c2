network "office" {
  proxy = "ftp://proxy.example:21"
  dns   = ["10.0.0.53", "dns.google", "fe80::1%eth0"]
  allow = ["example.com", "*.example.com", "10.0.0.0/8", "2001:db8::/32", "10.1.2.3", "*"]
  deny  = ["foo.*.example", "10.0.0.1/8", "https://example.com", "example.com:443", "10.0.0", "-bad-.example"]
}

network "leaky" {
  proxy = "http://robot:hunter2@proxy.example:3128"
}
