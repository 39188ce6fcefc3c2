package fleetbench

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// daemon is the one the bench started: its own binary, `rpacloud server`
// on a temporary directory and a loopback port.
type daemon struct {
	url, token string
	dataDir    string
	driver     string // sqlite or postgres
	dsn        string // the database the daemon uses (SQLite file or the fresh PostgreSQL database)
	cmd        *exec.Cmd
	logPath    string
	cleanup    []func()
}

// config is the daemon's HCL: one pool without provider sized for the
// robots (enrolled robots only: nothing is rented), one builtin process
// whose max_duration suits the task length, one customer.
func config(listen, dataDir, driver string, robots int, taskSeconds float64) string {
	maxDur := max(60, int(taskSeconds*5)+10)
	return fmt.Sprintf(`server {
  listen    = %q
  data_dir  = %q
  log_level = "warn"
  database {
    driver = %q
  }
}

pool "fleet" {
  min    = 0
  max    = %d
  period = "60s"
}

customer "bench" {}

process "task" {
  pool         = "fleet"
  builtin      = "echo"
  max_duration = "%ds"
  retries      = 0
}
`, listen, dataDir, driver, robots, maxDur)
}

// startDaemon runs exe as `rpacloud server` with a generated configuration
// on db (sqlite: a file in the temporary directory; a postgres:// URL: a
// fresh database created there, dropped by stop).
func startDaemon(ctx context.Context, exe, db string, robots int, taskSeconds float64, debugListen string, logf func(string, ...any)) (_ *daemon, err error) {
	dir, err := os.MkdirTemp("", "rpacloud-fleet-")
	if err != nil {
		return nil, fmt.Errorf("fleet: temporary directory: %w", err)
	}
	d := &daemon{dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "daemon.log")}
	d.cleanup = append(d.cleanup, func() { os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	env := os.Environ()
	switch {
	case db == "sqlite":
		d.driver, d.dsn = "sqlite", filepath.Join(d.dataDir, "rpacloud.db")
	case strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://"):
		name := fmt.Sprintf("rpacloud_fleet_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
		admin, err := sql.Open("pgx", db)
		if err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			return nil, fmt.Errorf("fleet: create database %s (the DSN's user needs CREATEDB): %w", name, err)
		}
		d.cleanup = append(d.cleanup, func() {
			if a, err := sql.Open("pgx", db); err == nil {
				_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
				a.Close()
			}
		})
		d.driver, d.dsn = "postgres", swapDatabase(db, name)
		// The DSN reaches the daemon through its environment, not the
		// configuration file, as in production.
		env = append(env, "RPACLOUD_DATABASE_DSN="+d.dsn)
	default:
		return nil, fmt.Errorf("fleet: --db %q: want sqlite or a postgres:// URL", db)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgDir := filepath.Join(dir, "config")
	if err := os.Mkdir(cfgDir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "rpacloud.hcl"), []byte(config(addr, d.dataDir, d.driver, robots, taskSeconds)), 0o600); err != nil {
		return nil, fmt.Errorf("fleet: write configuration: %w", err)
	}
	logFile, err := os.Create(d.logPath)
	if err != nil {
		return nil, fmt.Errorf("fleet: daemon log: %w", err)
	}
	d.cleanup = append(d.cleanup, func() { logFile.Close() })
	// Not CommandContext: the daemon is stopped by stop, with SIGINT and
	// a grace, also when ctx ends first.
	args := []string{"server", "--config", cfgDir, "--log-format", "text"}
	if debugListen != "" {
		args = append(args, "--debug-listen", debugListen)
	}
	d.cmd = exec.Command(exe, args...)
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		d.cmd = nil
		return nil, fmt.Errorf("fleet: start %s server: %w", exe, err)
	}
	d.url = "http://" + addr
	logf("daemon started: pid %d, %s, %s database, log %s", d.cmd.Process.Pid, d.url, d.driver, d.logPath)
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	d.cleanup = append([]func(){func() {
		if d.cmd == nil {
			return
		}
		_ = d.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-exited
		}
	}}, d.cleanup...)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, rerr := os.ReadFile(filepath.Join(d.dataDir, "admin.token"))
		if rerr == nil && healthy(ctx, d.url) {
			d.token = strings.TrimSpace(string(b))
			return d, nil
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("fleet: the daemon exited at start (%v); its log %s ends: %s", err, d.logPath, tail(d.logPath))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("fleet: the daemon did not come up in 2 minutes; its log %s ends: %s", d.logPath, tail(d.logPath))
		}
	}
}

// stop ends the daemon (SIGINT, then SIGKILL after 30 s) and removes what
// the bench made: the temporary directory and the PostgreSQL database.
func (d *daemon) stop() {
	for _, f := range d.cleanup {
		f()
	}
	d.cleanup = nil
}

func healthy(ctx context.Context, base string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("fleet: free address: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// tail returns the last lines of a log, for an error message.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 10 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func swapDatabase(dsn, name string) string {
	q := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn, q = dsn[:i], dsn[i:]
	}
	return dsn[:strings.LastIndexByte(dsn, '/')+1] + name + q
}

// metrics is what the bench reads from a daemon's /metrics: its own CPU
// and memory (Prometheus' process collector) and its statement counters.
type metrics struct {
	at         time.Time
	cpuSeconds float64
	benchCPU   float64 // this process's CPU seconds at the scrape
	// postgresCPU: the local PostgreSQL processes' CPU seconds, when
	// postgresLocal.
	postgresCPU   float64
	postgresLocal bool
	rssBytes      float64
	statements    map[string]float64 // rpacloud_db_statements_total by kind
}

func scrape(ctx context.Context, hc *http.Client, base string) (metrics, error) {
	m := metrics{at: time.Now(), statements: map[string]float64{}}
	m.benchCPU, _ = selfCPU()
	m.postgresCPU, m.postgresLocal = postgresCPU()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return m, fmt.Errorf("fleet: metrics: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return m, fmt.Errorf("fleet: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("fleet: metrics: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch {
		case name == "process_cpu_seconds_total":
			m.cpuSeconds = v
		case name == "process_resident_memory_bytes":
			m.rssBytes = v
		case strings.HasPrefix(name, `rpacloud_db_statements_total{kind="`):
			m.statements[strings.TrimSuffix(strings.TrimPrefix(name, `rpacloud_db_statements_total{kind="`), `"}`)] = v
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("fleet: metrics: %w", err)
	}
	if len(m.statements) == 0 {
		return m, errors.New("fleet: metrics: the daemon serves no rpacloud_db_statements_total (an older version?)")
	}
	return m, nil
}

// pgStats reads the bench database's counters of PostgreSQL itself:
// pg_stat_database (commits, rows written) and, when the extension can be
// loaded, pg_stat_statements' calls.
type pgStats struct {
	commits, inserted, updated, deleted float64
	calls                               *float64
}

func readPG(ctx context.Context, db *sql.DB, withStatements bool) (pgStats, error) {
	var s pgStats
	// Statistics reach the shared counters when a backend reports them,
	// at most every second: a fresh snapshot after a pause sees them.
	if _, err := db.ExecContext(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return s, fmt.Errorf("fleet: pg_stat_database: %w", err)
	}
	err := db.QueryRowContext(ctx, `SELECT xact_commit, tup_inserted, tup_updated, tup_deleted
		FROM pg_stat_database WHERE datname = current_database()`).Scan(&s.commits, &s.inserted, &s.updated, &s.deleted)
	if err != nil {
		return s, fmt.Errorf("fleet: pg_stat_database: %w", err)
	}
	if withStatements {
		var calls float64
		if err := db.QueryRowContext(ctx, `SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&calls); err == nil {
			s.calls = &calls
		}
	}
	return s, nil
}
