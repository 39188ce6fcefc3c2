-- Create "access_sessions" table
CREATE TABLE `access_sessions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `process_id` integer NOT NULL, `vm_id` integer NULL, `vm` text NOT NULL, `user` text NOT NULL, `protocol` text NOT NULL, `host` text NOT NULL, `port` integer NOT NULL, `stage` text NOT NULL, `purpose` text NOT NULL DEFAULT (''), `at` datetime NOT NULL);
-- Set sequence for "access_sessions" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("access_sessions", 60129542144);
-- Create index "accesssession_process_id_at" to table: "access_sessions"
CREATE INDEX `accesssession_process_id_at` ON `access_sessions` (`process_id`, `at`);
-- Create "anomalies" table
CREATE TABLE `anomalies` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `rule` text NOT NULL, `key` text NOT NULL, `open_key` text NULL, `severity` text NOT NULL, `status` text NOT NULL DEFAULT ('open'), `title` text NOT NULL, `message` text NOT NULL DEFAULT (''), `since` datetime NOT NULL, `detected_at` datetime NOT NULL, `acknowledged_at` datetime NULL, `acknowledged_by` text NOT NULL DEFAULT (''), `resolved_at` datetime NULL, `resolved_by` text NOT NULL DEFAULT (''), `resolution` text NOT NULL DEFAULT (''), `customer_id` integer NULL, `pool_id` integer NULL, `process_id` integer NULL, `robot_id` integer NULL, `vm_id` integer NULL, `task_id` integer NULL, `vendor` text NOT NULL DEFAULT (''), `facts` json NULL);
-- Set sequence for "anomalies" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("anomalies", 47244640256);
-- Create index "anomalies_open_key_key" to table: "anomalies"
CREATE UNIQUE INDEX `anomalies_open_key_key` ON `anomalies` (`open_key`);
-- Create index "anomaly_status_detected_at" to table: "anomalies"
CREATE INDEX `anomaly_status_detected_at` ON `anomalies` (`status`, `detected_at`);
-- Create index "anomaly_key" to table: "anomalies"
CREATE INDEX `anomaly_key` ON `anomalies` (`key`);
-- Create "attempts" table
CREATE TABLE `attempts` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `customer_id` integer NOT NULL, `number` integer NOT NULL, `state` text NOT NULL DEFAULT ('running'), `started_at` datetime NOT NULL, `deadline` datetime NOT NULL, `heartbeat_at` datetime NULL, `stop_requested_at` datetime NULL, `finished_at` datetime NULL, `error_class` text NULL, `error_message` text NOT NULL DEFAULT (''), `output` text NOT NULL DEFAULT (''), `robot_id` integer NOT NULL, `task_id` integer NOT NULL, CONSTRAINT `attempts_robots_attempts` FOREIGN KEY (`robot_id`) REFERENCES `robots` (`id`) ON DELETE NO ACTION, CONSTRAINT `attempts_tasks_attempts` FOREIGN KEY (`task_id`) REFERENCES `tasks` (`id`) ON DELETE NO ACTION);
-- Create index "attempt_task_id_number" to table: "attempts"
CREATE UNIQUE INDEX `attempt_task_id_number` ON `attempts` (`task_id`, `number`);
-- Create index "attempt_state_deadline" to table: "attempts"
CREATE INDEX `attempt_state_deadline` ON `attempts` (`state`, `deadline`);
-- Create index "attempt_robot_id_state" to table: "attempts"
CREATE INDEX `attempt_robot_id_state` ON `attempts` (`robot_id`, `state`);
-- Create "audit_entries" table
CREATE TABLE `audit_entries` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `at` datetime NOT NULL, `actor` text NOT NULL, `actor_role` text NOT NULL DEFAULT (''), `actor_customer_id` integer NULL, `scope_customer_id` integer NULL, `action` text NOT NULL, `target` text NOT NULL DEFAULT (''), `arguments` text NOT NULL DEFAULT (''), `outcome` text NOT NULL, `error_code` text NOT NULL DEFAULT (''), `remote_addr` text NOT NULL DEFAULT (''), `request_id` text NOT NULL DEFAULT (''));
-- Set sequence for "audit_entries" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("audit_entries", 103079215104);
-- Create index "auditentry_at" to table: "audit_entries"
CREATE INDEX `auditentry_at` ON `audit_entries` (`at`);
-- Create index "auditentry_scope_customer_id_at" to table: "audit_entries"
CREATE INDEX `auditentry_scope_customer_id_at` ON `audit_entries` (`scope_customer_id`, `at`);
-- Create index "auditentry_actor_customer_id_at" to table: "audit_entries"
CREATE INDEX `auditentry_actor_customer_id_at` ON `audit_entries` (`actor_customer_id`, `at`);
-- Create index "auditentry_actor_at" to table: "audit_entries"
CREATE INDEX `auditentry_actor_at` ON `audit_entries` (`actor`, `at`);
-- Create "batches" table
CREATE TABLE `batches` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `pool_id` integer NOT NULL, `label` text NOT NULL DEFAULT (''), `stack` text NOT NULL DEFAULT ('new'), `total` integer NOT NULL, `pending` integer NOT NULL, `running` integer NOT NULL DEFAULT (0), `succeeded` integer NOT NULL DEFAULT (0), `failed` integer NOT NULL DEFAULT (0), `cancelled` integer NOT NULL DEFAULT (0), `last_served_at` datetime NULL, `finished_at` datetime NULL, `submitted_by` text NOT NULL DEFAULT (''), `trigger_id` integer NULL, `scheduled_for` datetime NULL, `customer_id` integer NOT NULL, `process_id` integer NOT NULL, CONSTRAINT `batches_customers_batches` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`) ON DELETE NO ACTION, CONSTRAINT `batches_processes_batches` FOREIGN KEY (`process_id`) REFERENCES `processes` (`id`) ON DELETE NO ACTION);
-- Set sequence for "batches" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("batches", 4294967296);
-- Create index "batch_pool_id_stack_last_served_at" to table: "batches"
CREATE INDEX `batch_pool_id_stack_last_served_at` ON `batches` (`pool_id`, `stack`, `last_served_at`);
-- Create index "batch_customer_id_created_at" to table: "batches"
CREATE INDEX `batch_customer_id_created_at` ON `batches` (`customer_id`, `created_at`);
-- Create index "batch_trigger_id_scheduled_for" to table: "batches"
CREATE UNIQUE INDEX `batch_trigger_id_scheduled_for` ON `batches` (`trigger_id`, `scheduled_for`);
-- Create "bookings" table
CREATE TABLE `bookings` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `key` text NOT NULL, `process_id` integer NOT NULL, `pool` text NOT NULL, `department` text NOT NULL DEFAULT (''), `robot` text NOT NULL DEFAULT (''), `robots` integer NOT NULL DEFAULT (1), `cron` text NOT NULL, `duration_seconds` integer NOT NULL, `timezone` text NOT NULL DEFAULT (''), `valid_from` datetime NULL, `valid_until` datetime NULL, `created_by` text NOT NULL DEFAULT (''), `clash_accepted` bool NOT NULL DEFAULT (false));
-- Set sequence for "bookings" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("bookings", 64424509440);
-- Create index "bookings_key_key" to table: "bookings"
CREATE UNIQUE INDEX `bookings_key_key` ON `bookings` (`key`);
-- Create index "booking_pool" to table: "bookings"
CREATE INDEX `booking_pool` ON `bookings` (`pool`);
-- Create index "booking_process_id" to table: "bookings"
CREATE INDEX `booking_process_id` ON `bookings` (`process_id`);
-- Create "config_revisions" table
CREATE TABLE `config_revisions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `hash` text NOT NULL, `files` json NOT NULL, `applied_by` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL);
-- Set sequence for "config_revisions" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("config_revisions", 94489280512);
-- Create index "configrevision_created_at" to table: "config_revisions"
CREATE INDEX `configrevision_created_at` ON `config_revisions` (`created_at`);
-- Create "credential_bindings" table
CREATE TABLE `credential_bindings` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `customer_id` integer NOT NULL, `name` text NOT NULL, `process_id` integer NOT NULL, `created_by` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL);
-- Set sequence for "credential_bindings" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("credential_bindings", 55834574848);
-- Create index "credentialbinding_customer_id_name_process_id" to table: "credential_bindings"
CREATE UNIQUE INDEX `credentialbinding_customer_id_name_process_id` ON `credential_bindings` (`customer_id`, `name`, `process_id`);
-- Create index "credentialbinding_process_id" to table: "credential_bindings"
CREATE INDEX `credentialbinding_process_id` ON `credential_bindings` (`process_id`);
-- Create "customers" table
CREATE TABLE `customers` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `display_name` text NOT NULL DEFAULT (''), `kind` text NOT NULL DEFAULT ('company'), `parent_id` integer NULL, CONSTRAINT `customers_customers_children` FOREIGN KEY (`parent_id`) REFERENCES `customers` (`id`) ON DELETE SET NULL);
-- Set sequence for "customers" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("customers", 8589934592);
-- Create index "customers_name_key" to table: "customers"
CREATE UNIQUE INDEX `customers_name_key` ON `customers` (`name`);
-- Create "download_tickets" table
CREATE TABLE `download_tickets` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `hash` text NOT NULL, `kind` text NOT NULL, `params` text NOT NULL DEFAULT ('{}'), `token_id` integer NOT NULL, `expires_at` datetime NOT NULL, `created_at` datetime NOT NULL);
-- Set sequence for "download_tickets" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("download_tickets", 68719476736);
-- Create index "download_tickets_hash_key" to table: "download_tickets"
CREATE UNIQUE INDEX `download_tickets_hash_key` ON `download_tickets` (`hash`);
-- Create "events" table
CREATE TABLE `events` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `at` datetime NOT NULL, `type` text NOT NULL, `customer_id` integer NULL, `pool_id` integer NULL, `process_id` integer NULL, `batch_id` integer NULL, `task_id` integer NULL, `robot_id` integer NULL, `attempt_no` integer NULL, `message` text NOT NULL DEFAULT (''), `vm_id` integer NULL, `vendor` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT (''), `external_id` text NOT NULL DEFAULT (''), `anomaly_id` integer NULL);
-- Set sequence for "events" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("events", 12884901888);
-- Create index "event_task_id" to table: "events"
CREATE INDEX `event_task_id` ON `events` (`task_id`);
-- Create index "event_customer_id_at" to table: "events"
CREATE INDEX `event_customer_id_at` ON `events` (`customer_id`, `at`);
-- Create index "event_type_at" to table: "events"
CREATE INDEX `event_type_at` ON `events` (`type`, `at`);
-- Create index "event_pool_id_at" to table: "events"
CREATE INDEX `event_pool_id_at` ON `events` (`pool_id`, `at`);
-- Create "join_tokens" table
CREATE TABLE `join_tokens` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `hash` text NOT NULL, `pool_id` integer NOT NULL, `pool_name` text NOT NULL, `expires_at` datetime NOT NULL, `max_uses` integer NOT NULL, `uses` integer NOT NULL DEFAULT (0), `revoked_at` datetime NULL, `created_by` text NOT NULL DEFAULT (''));
-- Set sequence for "join_tokens" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("join_tokens", 90194313216);
-- Create index "join_tokens_hash_key" to table: "join_tokens"
CREATE UNIQUE INDEX `join_tokens_hash_key` ON `join_tokens` (`hash`);
-- Create "leases" table
CREATE TABLE `leases` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `name` text NOT NULL, `holder` text NOT NULL, `term` integer NOT NULL, `expires_at` datetime NOT NULL);
-- Set sequence for "leases" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("leases", 17179869184);
-- Create index "leases_name_key" to table: "leases"
CREATE UNIQUE INDEX `leases_name_key` ON `leases` (`name`);
-- Create "lifecycle_transitions" table
CREATE TABLE `lifecycle_transitions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `process_id` integer NOT NULL, `seq` integer NOT NULL, `from_stage` text NOT NULL, `to_stage` text NOT NULL, `action` text NOT NULL, `actor` text NOT NULL, `at` datetime NOT NULL, `note` text NOT NULL DEFAULT (''), `evidence` text NOT NULL DEFAULT ('{}'));
-- Set sequence for "lifecycle_transitions" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("lifecycle_transitions", 73014444032);
-- Create index "lifecycletransition_process_id_seq" to table: "lifecycle_transitions"
CREATE UNIQUE INDEX `lifecycletransition_process_id_seq` ON `lifecycle_transitions` (`process_id`, `seq`);
-- Create "pools" table
CREATE TABLE `pools` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `paused_at` datetime NULL, `paused_by` text NULL, `pause_reason` text NULL, `name` text NOT NULL, `provider` text NOT NULL DEFAULT (''), `min` integer NOT NULL DEFAULT (0), `max` integer NOT NULL DEFAULT (1), `period_seconds` integer NOT NULL DEFAULT (60), `tasks_per_robot` integer NOT NULL DEFAULT (1), `fairness` text NOT NULL DEFAULT ('fair_share'), `network` text NOT NULL DEFAULT (''), `active` bool NOT NULL DEFAULT (true));
-- Set sequence for "pools" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("pools", 21474836480);
-- Create index "pools_name_key" to table: "pools"
CREATE UNIQUE INDEX `pools_name_key` ON `pools` (`name`);
-- Create "pool_samples" table
CREATE TABLE `pool_samples` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `at` datetime NOT NULL, `pool_id` integer NOT NULL, `robots` integer NOT NULL, `idle` integer NOT NULL, `busy` integer NOT NULL, `pending` integer NOT NULL, `running` integer NOT NULL, `max` integer NOT NULL);
-- Set sequence for "pool_samples" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("pool_samples", 51539607552);
-- Create index "poolsample_pool_id_at" to table: "pool_samples"
CREATE INDEX `poolsample_pool_id_at` ON `pool_samples` (`pool_id`, `at`);
-- Create index "poolsample_at" to table: "pool_samples"
CREATE INDEX `poolsample_at` ON `pool_samples` (`at`);
-- Create "processes" table
CREATE TABLE `processes` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `paused_at` datetime NULL, `paused_by` text NULL, `pause_reason` text NULL, `name` text NOT NULL, `kind` text NOT NULL DEFAULT ('builtin'), `runner` text NOT NULL DEFAULT (''), `package` text NOT NULL DEFAULT (''), `max_duration_seconds` integer NOT NULL DEFAULT (600), `retries` integer NOT NULL DEFAULT (3), `max_wait_seconds` integer NOT NULL DEFAULT (86400), `schedule` text NOT NULL DEFAULT (''), `active` bool NOT NULL DEFAULT (true), `owner_id` integer NULL, `pool_id` integer NOT NULL, CONSTRAINT `processes_customers_processes` FOREIGN KEY (`owner_id`) REFERENCES `customers` (`id`) ON DELETE SET NULL, CONSTRAINT `processes_pools_processes` FOREIGN KEY (`pool_id`) REFERENCES `pools` (`id`) ON DELETE NO ACTION);
-- Set sequence for "processes" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("processes", 25769803776);
-- Create index "processes_name_key" to table: "processes"
CREATE UNIQUE INDEX `processes_name_key` ON `processes` (`name`);
-- Create "remote_endpoints" table
CREATE TABLE `remote_endpoints` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `vm_id` integer NOT NULL, `protocol` text NOT NULL, `host` text NOT NULL, `port` integer NOT NULL, `username` text NOT NULL DEFAULT (''));
-- Set sequence for "remote_endpoints" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("remote_endpoints", 81604378624);
-- Create index "remote_endpoints_vm_id_key" to table: "remote_endpoints"
CREATE UNIQUE INDEX `remote_endpoints_vm_id_key` ON `remote_endpoints` (`vm_id`);
-- Create "robots" table
CREATE TABLE `robots` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `state` text NOT NULL DEFAULT ('provisioning'), `permanent` bool NOT NULL DEFAULT (false), `enrolled` bool NOT NULL DEFAULT (false), `last_seen_at` datetime NULL, `hostname` text NOT NULL DEFAULT (''), `agent_version` text NOT NULL DEFAULT (''), `pool_id` integer NOT NULL, `vm_id` integer NULL, CONSTRAINT `robots_pools_robots` FOREIGN KEY (`pool_id`) REFERENCES `pools` (`id`) ON DELETE NO ACTION, CONSTRAINT `robots_vms_robot` FOREIGN KEY (`vm_id`) REFERENCES `vms` (`id`) ON DELETE SET NULL);
-- Set sequence for "robots" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("robots", 30064771072);
-- Create index "robots_name_key" to table: "robots"
CREATE UNIQUE INDEX `robots_name_key` ON `robots` (`name`);
-- Create index "robots_vm_id_key" to table: "robots"
CREATE UNIQUE INDEX `robots_vm_id_key` ON `robots` (`vm_id`);
-- Create index "robot_pool_id_state" to table: "robots"
CREATE INDEX `robot_pool_id_state` ON `robots` (`pool_id`, `state`);
-- Create "scale_decisions" table
CREATE TABLE `scale_decisions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `at` datetime NOT NULL, `pool_id` integer NOT NULL, `pool_name` text NOT NULL, `x` integer NOT NULL, `z` integer NOT NULL, `d` integer NOT NULL, `booting` integer NOT NULL DEFAULT (0), `idle_rented` integer NOT NULL DEFAULT (0), `vendor_others` integer NOT NULL DEFAULT (0), `prewarm_floor` integer NOT NULL DEFAULT (0), `action` text NOT NULL, `rent` integer NOT NULL DEFAULT (0), `release` integer NOT NULL DEFAULT (0), `target` integer NOT NULL, `capped` text NOT NULL DEFAULT (''), `reason` text NOT NULL, `rented` integer NOT NULL DEFAULT (0), `released` integer NOT NULL DEFAULT (0), `boot_failures` integer NOT NULL DEFAULT (0), `error` text NOT NULL DEFAULT (''), `up_streak` integer NOT NULL DEFAULT (0), `down_streak` integer NOT NULL DEFAULT (0), `cooldown_left` integer NOT NULL DEFAULT (0), `term` integer NOT NULL DEFAULT (0));
-- Set sequence for "scale_decisions" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("scale_decisions", 85899345920);
-- Create index "scaledecision_pool_id_at" to table: "scale_decisions"
CREATE INDEX `scaledecision_pool_id_at` ON `scale_decisions` (`pool_id`, `at`);
-- Create "tasks" table
CREATE TABLE `tasks` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `process_id` integer NOT NULL, `pool_id` integer NOT NULL, `customer_id` integer NOT NULL, `seq` integer NOT NULL, `state` text NOT NULL DEFAULT ('pending'), `input` text NOT NULL DEFAULT ('{}'), `output` text NOT NULL DEFAULT (''), `attempt_no` integer NOT NULL DEFAULT (0), `executions_failed` integer NOT NULL DEFAULT (0), `timeouts` integer NOT NULL DEFAULT (0), `manual_retries` integer NOT NULL DEFAULT (0), `requeued_at` datetime NULL, `failure_reason` text NULL, `error_message` text NOT NULL DEFAULT (''), `finished_at` datetime NULL, `rand_key` integer NOT NULL DEFAULT (0), `batch_id` integer NOT NULL, CONSTRAINT `tasks_batches_tasks` FOREIGN KEY (`batch_id`) REFERENCES `batches` (`id`) ON DELETE NO ACTION);
-- Set sequence for "tasks" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("tasks", 34359738368);
-- Create index "task_batch_id_state_rand_key" to table: "tasks"
CREATE INDEX `task_batch_id_state_rand_key` ON `tasks` (`batch_id`, `state`, `rand_key`);
-- Create index "task_pool_id_state" to table: "tasks"
CREATE INDEX `task_pool_id_state` ON `tasks` (`pool_id`, `state`);
-- Create index "task_customer_id_state" to table: "tasks"
CREATE INDEX `task_customer_id_state` ON `tasks` (`customer_id`, `state`);
-- Create "tokens" table
CREATE TABLE `tokens` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `hash` text NOT NULL, `role` text NOT NULL, `customer_id` integer NULL, `robot_id` integer NULL, `expires_at` datetime NULL, `revoked_at` datetime NULL);
-- Set sequence for "tokens" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("tokens", 38654705664);
-- Create index "tokens_name_key" to table: "tokens"
CREATE UNIQUE INDEX `tokens_name_key` ON `tokens` (`name`);
-- Create index "tokens_hash_key" to table: "tokens"
CREATE UNIQUE INDEX `tokens_hash_key` ON `tokens` (`hash`);
-- Create "triggers" table
CREATE TABLE `triggers` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `paused_at` datetime NULL, `paused_by` text NULL, `pause_reason` text NULL, `name` text NOT NULL, `customer_id` integer NOT NULL, `process_id` integer NOT NULL, `cron` text NOT NULL DEFAULT (''), `timezone` text NOT NULL DEFAULT ('UTC'), `calendar` text NOT NULL DEFAULT (''), `days` text NOT NULL DEFAULT (''), `catch_up` text NOT NULL DEFAULT ('skip'), `active` bool NOT NULL DEFAULT (true), `last_scheduled_for` datetime NULL);
-- Set sequence for "triggers" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("triggers", 98784247808);
-- Create index "triggers_name_key" to table: "triggers"
CREATE UNIQUE INDEX `triggers_name_key` ON `triggers` (`name`);
-- Create index "trigger_customer_id" to table: "triggers"
CREATE INDEX `trigger_customer_id` ON `triggers` (`customer_id`);
-- Create "vms" table
CREATE TABLE `vms` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `provider` text NOT NULL DEFAULT (''), `idempotency_key` text NOT NULL, `instance_id` text NOT NULL DEFAULT (''), `state` text NOT NULL DEFAULT ('requested'), `permanent` bool NOT NULL DEFAULT (false), `address` text NOT NULL DEFAULT (''), `enrolled` bool NOT NULL DEFAULT (false), `hostname` text NOT NULL DEFAULT (''), `os` text NOT NULL DEFAULT (''), `addresses` json NULL, `error` text NOT NULL DEFAULT (''), `pool_id` integer NOT NULL, CONSTRAINT `vms_pools_vms` FOREIGN KEY (`pool_id`) REFERENCES `pools` (`id`) ON DELETE NO ACTION);
-- Set sequence for "vms" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("vms", 42949672960);
-- Create index "vms_idempotency_key_key" to table: "vms"
CREATE UNIQUE INDEX `vms_idempotency_key_key` ON `vms` (`idempotency_key`);
-- Create index "vm_pool_id_state" to table: "vms"
CREATE INDEX `vm_pool_id_state` ON `vms` (`pool_id`, `state`);
