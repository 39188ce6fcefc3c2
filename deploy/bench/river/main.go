// Command riverbench burns down N pre-inserted no-op jobs with River
// (github.com/riverqueue/river) on a PostgreSQL server, the same workload
// `rpacloud bench dispatch` runs through rpacloud's dispatcher, so the two
// figures come from the same machine and the same server. It lives in its
// own module so River never enters rpacloud's go.mod.
//
// River's own `river bench` CLI (module github.com/riverqueue/river/cmd/river)
// is not served by the module proxy this project may use, so this is the
// equivalent burn-down written against River's public API, with the fetch
// settings riverbench uses.
//
//	go run . --database-url postgres://... --jobs 10000 --workers 16 --json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *atomic.Int64
	all  chan struct{}
	want int64
}

func (w *noopWorker) Work(ctx context.Context, job *river.Job[noopArgs]) error {
	if w.done.Add(1) == w.want {
		close(w.all)
	}
	return nil
}

type result struct {
	System     string  `json:"system"`
	Version    string  `json:"version"`
	DB         string  `json:"db"`
	Jobs       int     `json:"jobs"`
	Workers    int     `json:"workers"`
	Seconds    float64 `json:"seconds"`
	JobsPerS   float64 `json:"jobs_per_s"`
	InsertSecs float64 `json:"insert_seconds"`
}

func main() {
	url := flag.String("database-url", os.Getenv("RPACLOUD_TEST_POSTGRES_DSN"), "PostgreSQL URL; a fresh database is created there and dropped")
	jobs := flag.Int("jobs", 10000, "jobs to burn down")
	workers := flag.Int("workers", 16, "River MaxWorkers")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	if err := run(*url, *jobs, *workers, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "riverbench:", err)
		os.Exit(1)
	}
}

func run(url string, jobs, workers int, asJSON bool) error {
	ctx := context.Background()
	if url == "" {
		return fmt.Errorf("--database-url is required")
	}
	name := fmt.Sprintf("river_bench_%d", os.Getpid())
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	defer admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")

	cfg, err := pgxpool.ParseConfig(swapDatabase(url, name))
	if err != nil {
		return err
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	drv := riverpgxv5.New(pool)
	mig, err := rivermigrate.New(drv, nil)
	if err != nil {
		return err
	}
	if _, err := mig.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	w := &noopWorker{done: new(atomic.Int64), all: make(chan struct{}), want: int64(jobs)}
	ws := river.NewWorkers()
	river.AddWorker(ws, w)
	client, err := river.NewClient(drv, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:           ws,
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		Logger:            nil,
	})
	if err != nil {
		return err
	}
	t0 := time.Now()
	params := make([]river.InsertManyParams, 0, 10000)
	for left := jobs; left > 0; {
		params = params[:0]
		for range min(left, 10000) {
			params = append(params, river.InsertManyParams{Args: noopArgs{}})
		}
		if _, err := client.InsertManyFast(ctx, params); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		left -= len(params)
	}
	insertSecs := time.Since(t0).Seconds()

	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return err
	}
	select {
	case <-w.all:
	case <-time.After(30 * time.Minute):
		return fmt.Errorf("timed out with %d of %d jobs done", w.done.Load(), jobs)
	}
	secs := time.Since(start).Seconds()
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return err
	}
	r := result{System: "river", Version: "v0.51.1", DB: "postgres", Jobs: jobs, Workers: workers,
		Seconds: secs, JobsPerS: float64(jobs) / secs, InsertSecs: insertSecs}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Printf("river %s: %d jobs by %d workers in %.2fs: %.0f jobs/s (insert %.2fs)\n", r.Version, jobs, workers, secs, r.JobsPerS, insertSecs)
	return nil
}

func swapDatabase(dsn, name string) string {
	q := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn, q = dsn[:i], dsn[i:]
	}
	return dsn[:strings.LastIndexByte(dsn, '/')+1] + name + q
}
