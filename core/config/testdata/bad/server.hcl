server {
  listen     = "8080"
  public_url = "robots.example"
  log_level  = "verbose"

  database {
    driver = "mysql"
  }

  database {
    driver = "postgres"
  }
}

server {
  data_dir = ""

  database {
    driver = "postgres"
    dsn    = "postgres://rpacloud:hunter2@db.example/rpacloud"
  }
}
