# The daemon image's default configuration (deploy/image/Containerfile):
# SQLite in the data volume, every interface of the container on 8080.
# Mount a directory of your own *.hcl over /etc/rpacloud to replace it
# (core/config/README.md is the reference).
server {
  listen   = "0.0.0.0:8080"
  data_dir = "/var/lib/rpacloud"
}
