# The daemon of a tax-filing service: PostgreSQL for the queue, Vault for
# every credential. The database password is not here: leave dsn without it
# and set RPACLOUD_DATABASE_DSN in the daemon's environment (or use a
# .pgpass file).

server {
  listen     = "0.0.0.0:8080"
  public_url = "https://rpacloud.tax.example"
  data_dir   = "/var/lib/rpacloud"
  plugin_dir = "/usr/lib/rpacloud/plugins"
  log_level  = "info"

  database {
    driver = "postgres"
    dsn    = "postgres://rpacloud@db.tax.internal:5432/rpacloud?sslmode=verify-full"
  }
}

vault {
  address        = "https://vault.tax.internal:8200"
  auth_method    = "approle"
  role_id        = "rpacloud-core"
  secret_id_file = "/etc/rpacloud/vault-secret-id"
  mount          = "secret"
  prefix         = "rpacloud"
}

provider "local" {
  plugin              = "local"
  stop_robots_on_exit = false
}

# The supporting documents (record sheet, acceptance sheet, run schedule,
# user manual) are written in Chinese for the business users, with times in
# China Standard Time; `rpacloud docs render --lang en` gives English.
documents {
  language     = "zh"
  organisation = "ACME 税务共享中心"
  support      = "RPA 运维值班 ext. 8080 / rpa-desk@acme.example"
  timezone     = "Asia/Shanghai"
}
