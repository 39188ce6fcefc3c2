package daemon

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rpacloud/rpacloud/core/metrics"
)

// deployDir holds the Grafana dashboard and the Prometheus rules.
const deployDir = "../../../deploy"

var (
	fqName     = regexp.MustCompile(`fqName: "([^"]+)"`)
	metricRefs = regexp.MustCompile(`\brpacloud_[a-z0-9_]+`)
)

// exportedNames are the metric names the daemon's /metrics describes,
// whether or not they have a series yet (a counter vector has none before
// its first increment, so a scrape alone would miss it).
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	d := &Daemon{metrics: metrics.New()}
	ch := make(chan *prometheus.Desc, 1000)
	for _, c := range d.collectors() {
		c.Describe(ch)
	}
	close(ch)
	names := map[string]bool{}
	for desc := range ch {
		m := fqName.FindStringSubmatch(desc.String())
		if m == nil {
			t.Fatalf("no name in %s", desc)
		}
		names[m[1]] = true
	}
	return names
}

// unknownRefs lists the rpacloud_ metric names text refers to that the
// daemon does not export; a histogram is referred to by its _bucket, _sum
// or _count series.
func unknownRefs(text string, names map[string]bool) []string {
	var bad []string
	for _, ref := range metricRefs.FindAllString(text, -1) {
		base := ref
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if s, ok := strings.CutSuffix(ref, suffix); ok && names[s] {
				base = s
			}
		}
		if !names[base] && !slices.Contains(bad, ref) {
			bad = append(bad, ref)
		}
	}
	return bad
}

// exprs collects every "expr" string of a Grafana dashboard.
func exprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "expr" {
				*out = append(*out, s)
			} else {
				exprs(x, out)
			}
		}
	case []any:
		for _, x := range v {
			exprs(x, out)
		}
	}
}

// The Grafana dashboard and the Prometheus alert rules of deploy/ refer
// only to metrics the daemon exports, the rules pass promtool's check, and
// their unit tests (deploy/prometheus/alerts_test.yml) pass.
func TestDeployedDashboardAndAlerts(t *testing.T) {
	names := exportedNames(t)
	for _, want := range []string{"rpacloud_tasks_finished_total", "rpacloud_task_queue_wait_seconds", "rpacloud_anomalies_open", "rpacloud_plugin_restarts_total"} {
		if !names[want] {
			t.Fatalf("the daemon does not describe %s: %v", want, names)
		}
	}
	if bad := unknownRefs(`rate(rpacloud_tasks_finished_total[5m]) + rpacloud_claim_duration_seconds_bucket + rpacloud_nope_total`, names); !slices.Equal(bad, []string{"rpacloud_nope_total"}) {
		t.Fatalf("the name check found %v, want only the unknown rpacloud_nope_total", bad)
	}

	raw, err := os.ReadFile(filepath.Join(deployDir, "grafana", "rpacloud.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/rpacloud.json: %v", err)
	}
	var es []string
	exprs(dash, &es)
	if len(es) < 10 {
		t.Fatalf("deploy/grafana/rpacloud.json: %d PromQL expressions, want the dashboard's panels", len(es))
	}
	for _, e := range es {
		if bad := unknownRefs(e, names); len(bad) > 0 {
			t.Errorf("deploy/grafana/rpacloud.json: %q refers to %v, which the daemon does not export", e, bad)
		}
	}
	for _, f := range []string{"alerts.yml", "alerts_test.yml"} {
		raw, err := os.ReadFile(filepath.Join(deployDir, "prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		if bad := unknownRefs(string(raw), names); len(bad) > 0 {
			t.Errorf("deploy/prometheus/%s refers to %v, which the daemon does not export", f, bad)
		}
	}

	promtool := promtoolPath(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join(deployDir, "prometheus")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// promtoolPath finds promtool ($RPACLOUD_PROMTOOL, else on PATH: Debian's
// prometheus package, which .ci/services.sh installs); without it the test
// skips, or fails under RPACLOUD_REQUIRE_PROMTOOL=1 (make test sets it).
func promtoolPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RPACLOUD_PROMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("RPACLOUD_REQUIRE_PROMTOOL") == "1" {
		t.Fatal("promtool not found ($RPACLOUD_PROMTOOL, PATH) and RPACLOUD_REQUIRE_PROMTOOL=1")
	}
	t.Skip("promtool not found: apt-get install prometheus, or set RPACLOUD_PROMTOOL")
	return ""
}
