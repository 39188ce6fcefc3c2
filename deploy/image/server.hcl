# The daemon image's default configuration (deploy/image/Containerfile):
# SQLite in the data volume, every interface of the container on 8080.
# Mount a directory of your own *.hcl over /etc/rpacloud to replace it
# (core/config/README.md is the reference). It sets no public_url, which
# only you know, so the daemon warns at start that robots on other machines
# cannot dial 0.0.0.0: set public_url in your own configuration.
server {
  listen   = "0.0.0.0:8080"
  data_dir = "/var/lib/rpacloud"
}
