# rpacloud on Nomad: two daemons (`rpacloud server`) on an external
# PostgreSQL, with Vault through AppRole. The database DSN and the AppRole
# secret ID come from the Nomad Variable nomad/jobs/rpacloud, which only
# this job's tasks may read (deploy/README.md, "Two daemons on Nomad"):
#
#   nomad var put nomad/jobs/rpacloud database_dsn=@dsn vault_secret_id=@vault-secret-id
#   nomad job run -var image=registry.example.com/rpacloud:1.0.0 \
#     -var public_url=https://rpacloud.example.com \
#     -var vault_address=https://vault.example.internal:8200 rpacloud.nomad.hcl

variable "image" {
  type        = string
  description = "The daemon's container image; there is no published one yet."
}

variable "public_url" {
  type        = string
  description = "What robots dial: a load balancer reaching either daemon."
}

variable "vault_address" {
  type        = string
  description = "Vault's address; the AppRole is deploy/vault/setup.sh's rpacloud-core."
}

job "rpacloud" {
  type = "service"

  group "server" {
    count = 2

    # Never both daemons on one client: a node failure leaves one.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    # One new daemon at a time, kept only once healthy.
    update {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "10s"
      healthy_deadline = "5m"
      auto_revert      = true
    }

    network {
      port "http" {
        to = 8080
      }
      # metrics_listen below: /metrics only; publish it to Prometheus, not
      # to the load balancer.
      port "metrics" {
        to = 9090
      }
    }

    # /healthz answers 503 only when the database is unreachable; a
    # provider or Vault outage is "degraded" with 200. It is the one health
    # endpoint the daemon has.
    service {
      name     = "rpacloud"
      port     = "http"
      provider = "nomad"

      check {
        name     = "healthz"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "5s"
      }
    }

    task "rpacloud" {
      driver = "docker"
      user   = "65532:65532"

      config {
        image           = var.image
        args            = ["server", "--config", "/local/rpacloud"]
        ports           = ["http", "metrics"]
        readonly_rootfs = true
        cap_drop        = ["ALL"]
        security_opt    = ["no-new-privileges"]

        # Chromium (PDF documents) writes under HOME.
        mount {
          type   = "tmpfs"
          target = "/tmp"
          tmpfs_options {
            size = 1073741824
          }
        }
      }

      env {
        HOME = "/tmp"
      }

      # The HCL configuration (core/config/README.md). Add pools, processes
      # and customers as more templates into local/rpacloud.
      template {
        destination = "local/rpacloud/server.hcl"
        change_mode = "noop"
        data        = <<-EOT
          server {
            listen     = "0.0.0.0:8080"
            # /metrics on the "metrics" port alone (404 on 8080).
            metrics_listen = "0.0.0.0:9090"
            public_url = "${var.public_url}"
            # The allocation's data directory: the first start's admin.token.
            data_dir  = "/alloc/data"
            log_level = "info"

            database {
              driver = "postgres"
              # dsn comes from RPACLOUD_DATABASE_DSN (secrets/database.env).
            }
          }

          # Without this block nothing is pruned (core/config/README.md#retention).
          retention {
            events         = "30d"
            attempts       = "90d"
            finished_tasks = "90d"
            anomalies      = "90d"
            audit          = "forever"
          }

          vault {
            address        = "${var.vault_address}"
            auth_method    = "approle"
            role_id        = "rpacloud-core"
            secret_id_file = "/secrets/vault-secret-id"
            mount          = "secret"
            prefix         = "rpacloud"
          }
        EOT
      }

      template {
        destination = "secrets/database.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/rpacloud" }}RPACLOUD_DATABASE_DSN={{ .database_dsn }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/vault-secret-id"
        perms       = "0400"
        uid         = 65532
        gid         = 65532
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/rpacloud" }}{{ .vault_secret_id }}{{ end }}
        EOT
      }

      resources {
        cpu        = 500
        memory     = 512
        memory_max = 1024
      }

      # Long polls and subscriptions end when the daemon stops; robots move
      # to the other daemon.
      kill_timeout = "60s"
    }
  }
}
