package config_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/rpacloud/rpacloud/core/config"
)

// problems renders diagnostics as "file:line:col: severity: summary" so a
// table can pin both the message and its exact position.
// dated drops the warning that a calendar file's dates end soon: the
// examples ship one year of official holidays, and whether that year is
// running out depends on the day the test runs, not on the example.
func dated(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity != hcl.DiagWarning || d.Summary != config.CalendarRunningOut {
			out = append(out, d)
		}
	}
	return out
}

func problems(diags hcl.Diagnostics) []string {
	out := make([]string, 0, len(diags))
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		loc := "-"
		if d.Subject != nil {
			loc = fmt.Sprintf("%s:%d:%d", filepath.Base(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column)
		}
		out = append(out, fmt.Sprintf("%s: %s: %s", loc, sev, d.Summary))
	}
	return out
}

func TestBadFixtures(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"testdata/bad/customer.hcl", []string{
			"customer.hcl:11:12: error: Customer parent cycle",
			"customer.hcl:19:12: error: Customer parent cycle",
			"customer.hcl:23:12: error: Invalid value for kind",
			"customer.hcl:24:12: error: Undefined customer",
		}},
		{"testdata/bad/duplicates", []string{
			"b.hcl:1:6: error: Duplicate pool \"p\"",
			"b.hcl:6:10: error: Duplicate provider \"local\"",
			"b.hcl:10:1: error: Duplicate server block",
		}},
		{"testdata/bad/empty", []string{
			"empty:1:1: error: No configuration files",
		}},
		{"testdata/bad/network.hcl", []string{
			"network.hcl:2:11: error: Invalid proxy",
			"network.hcl:3:25: error: Invalid DNS server",
			"network.hcl:3:39: error: Invalid DNS server",
			"network.hcl:5:12: error: Invalid host pattern",
			"network.hcl:5:29: error: Invalid host pattern",
			"network.hcl:5:43: error: Invalid host pattern",
			"network.hcl:5:66: error: Invalid host pattern",
			"network.hcl:5:85: error: Invalid host pattern",
			"network.hcl:5:95: error: Invalid host pattern",
			"network.hcl:9:11: error: Secret given as a literal",
		}},
		{"testdata/bad/pool.hcl", []string{
			"pool.hcl:7:14: error: Invalid pool size",
			"pool.hcl:11:1: warning: Pool has no process",
			"pool.hcl:13:21: error: Invalid pool size",
			"pool.hcl:14:21: error: Invalid pool size",
			"pool.hcl:15:21: error: Invalid period",
			"pool.hcl:16:21: error: Invalid tasks_per_robot",
			"pool.hcl:19:1: warning: Pool has no process",
			"pool.hcl:20:14: error: Undefined provider",
			"pool.hcl:22:14: error: Invalid duration",
			"pool.hcl:23:14: error: Invalid value for fairness",
			"pool.hcl:24:14: error: Undefined network",
			"pool.hcl:27:1: warning: Pool has no process",
			"pool.hcl:30:14: error: Invalid duration",
		}},
		{"testdata/bad/process.hcl", []string{
			"process.hcl:12:17: error: Missing required argument", // uipath's client_id
			"process.hcl:17:1: error: Missing process runner",
			"process.hcl:24:3: error: Conflicting process runners",
			"process.hcl:29:13: error: Invalid value for builtin",
			"process.hcl:34:13: error: Unknown crawler plugin",
			"process.hcl:39:18: error: Undefined pool",
			"process.hcl:40:18: error: Undefined vendor",
			"process.hcl:42:18: error: Undefined customer",
			"process.hcl:43:18: error: Invalid retries",
			"process.hcl:44:18: error: Invalid max_duration",
			"process.hcl:49:3: error: Missing package",
			"process.hcl:55:31: error: Invalid credential name",
			"process.hcl:55:51: error: Duplicate credential",
			"process.hcl:55:64: error: Invalid credential name",
		}},
		{"testdata/bad/provider.hcl", []string{
			"provider.hcl:2:19: error: Invalid plugin name",
			"provider.hcl:3:19: error: Secret given as a literal",
			"provider.hcl:4:19: error: Secret given as a literal",
			"provider.hcl:9:22: error: Missing required argument",
			"provider.hcl:16:3: error: Unsupported block type",
		}},
		{"testdata/bad/schedule.hcl", []string{
			"schedule.hcl:15:12: error: Invalid cron expression",
			"schedule.hcl:19:16: error: Invalid cron expression",
			"schedule.hcl:20:16: error: Invalid timezone",
			"schedule.hcl:23:12: error: Duplicate schedule \"fields\"",
			"schedule.hcl:25:16: error: Invalid duration",
			"schedule.hcl:29:12: error: Invalid cron expression",
			"schedule.hcl:33:16: error: Invalid cron expression",
			"schedule.hcl:34:16: error: Invalid duration",
		}},
		{"testdata/bad/schema.hcl", []string{
			"schema.hcl:1:1: error: Unsupported block type",
			"schema.hcl:3:6: error: Missing name for pool",
			"schema.hcl:7:10: error: Extraneous label for pool",
			"schema.hcl:11:1: warning: Pool has no process",
			"schema.hcl:12:21: error: Undefined provider",
			"schema.hcl:13:21: error: Incorrect attribute value type",
			"schema.hcl:14:21: error: Incorrect attribute value type",
			"schema.hcl:15:21: error: Invalid duration",
			"schema.hcl:16:21: error: Incorrect attribute value type",
			"schema.hcl:17:3: error: Unsupported argument",
			"schema.hcl:20:6: error: Invalid pool name",
			"schema.hcl:21:14: error: Undefined provider",
			"schema.hcl:26:13: error: Variables not allowed",
			"schema.hcl:27:13: error: Function calls not allowed",
		}},
		{"testdata/bad/server.hcl", []string{
			"server.hcl:2:16: error: Invalid listen address",
			"server.hcl:3:16: error: Invalid public_url",
			"server.hcl:4:16: error: Invalid value for log_level",
			"server.hcl:7:14: error: Invalid value for driver",
			"server.hcl:10:3: error: Duplicate database block",
			"server.hcl:15:1: error: Duplicate server block",
			"server.hcl:16:14: error: Invalid data_dir",
			"server.hcl:20:14: warning: Database password in the configuration",
		}},
		{"testdata/bad/syntax", []string{
			"a-good.hcl:8:14: error: Invalid pool size",
			"b-broken.hcl:4:13: error: Invalid retries",
			"b-broken.hcl:9:17: error: Invalid block definition",
		}},
		{"testdata/bad/vault.hcl", []string{
			"vault.hcl:2:17: error: Invalid vault address",
			"vault.hcl:3:17: error: Missing role_id",
			"vault.hcl:3:17: error: Missing secret_id_file",
			"vault.hcl:4:3: error: Secret given as a literal",
			"vault.hcl:7:1: error: Duplicate vault block",
			"vault.hcl:9:17: error: Invalid value for auth_method",
			"vault.hcl:10:17: error: Invalid vault mount",
			"vault.hcl:11:3: error: Unsupported argument",
		}},
		{"testdata/bad/vendor.hcl", []string{
			"vendor.hcl:2:17: error: Unknown vendor plugin",
			"vendor.hcl:3:17: error: Invalid vendor url",
			"vendor.hcl:4:17: error: Secret given as a literal",
			"vendor.hcl:7:16: error: Missing required argument", // aa's username
			"vendor.hcl:9:19: error: Invalid vendor url",
			"vendor.hcl:11:19: error: Secret given as a literal",
			"vendor.hcl:12:3: error: Unsupported argument", // aa declares no client_secret
			"vendor.hcl:13:3: error: Unsupported argument",
			"vendor.hcl:16:21: error: Missing required argument",
			"vendor.hcl:16:21: error: Missing required argument",
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.path] = true
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			_, diags, _ := config.LoadWith(context.Background(), newFakePlugins(), tt.path)
			got := problems(diags)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diagnostics of %s:\n got %s\nwant %s", tt.path, strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a subject: %s", d.Summary)
				}
			}
		})
	}
	// Every fixture must be in the table, or a new one would go untested.
	all, err := filepath.Glob("testdata/bad/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if !seen[p] {
			t.Errorf("fixture %s has no expectations", p)
		}
	}
}

// details pins the wording the brief and operators rely on.
func TestDiagnosticDetails(t *testing.T) {
	tests := []struct {
		path, loc, summary, detail string
	}{
		{"testdata/bad/duplicates", "b.hcl:1:6", `Duplicate pool "p"`, "previously declared at testdata/bad/duplicates/a.hcl:5"},
		{"testdata/bad/duplicates", "b.hcl:10:1", "Duplicate server block", "previously declared at testdata/bad/duplicates/a.hcl:10"},
		{"testdata/bad/provider.hcl", "provider.hcl:3:19", "Secret given as a literal", `use a vault:PATH#FIELD reference, e.g. access_key_id = "vault:secret/rpacloud/providers/cloud#access_key_id"`},
		{"testdata/bad/vendor.hcl", "vendor.hcl:4:17", "Secret given as a literal", "use a vault:PATH#FIELD reference"},
		{"testdata/bad/vendor.hcl", "vendor.hcl:11:19", "Secret given as a literal", "use a vault:PATH#FIELD reference"},
		{"testdata/bad/vault.hcl", "vault.hcl:4:3", "Secret given as a literal", "token_file"},
		{"testdata/bad/vault.hcl", "vault.hcl:11:3", "Unsupported argument", `Did you mean "token_file"?`},
		{"testdata/bad/pool.hcl", "pool.hcl:20:14", "Undefined provider", `Did you mean "local"?`},
		{"testdata/bad/pool.hcl", "pool.hcl:7:14", "Invalid pool size", "min = 5 is greater than max = 2"},
		{"testdata/bad/customer.hcl", "customer.hcl:11:12", "Customer parent cycle", "loop-a → loop-b → loop-a"},
		{"testdata/bad/network.hcl", "network.hcl:5:29", "Invalid host pattern", `did you mean "10.0.0.0/8"?`},
		{"testdata/bad/schema.hcl", "schema.hcl:15:21", "Invalid duration", `did you mean "30s"?`},
	}
	for _, tt := range tests {
		_, diags, _ := config.Load(tt.path)
		found := false
		for _, d := range diags {
			loc := fmt.Sprintf("%s:%d:%d", filepath.Base(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column)
			if loc == tt.loc && d.Summary == tt.summary {
				found = true
				if !strings.Contains(d.Detail, tt.detail) {
					t.Errorf("%s %s: detail %q does not contain %q", tt.loc, tt.summary, d.Detail, tt.detail)
				}
			}
		}
		if !found {
			t.Errorf("%s: no %q at %s", tt.path, tt.summary, tt.loc)
		}
	}
}

// A syntax error must not hide the problems of the other files, nor turn
// into false "undefined" errors for what the broken file declares.
func TestSyntaxErrorKeepsOtherProblems(t *testing.T) {
	_, diags, files := config.Load("testdata/bad/syntax")
	if len(files) != 2 {
		t.Fatalf("files: got %d, want 2", len(files))
	}
	for _, d := range diags {
		if strings.HasPrefix(d.Summary, "Undefined") {
			t.Errorf("reference error after a syntax error: %s", d.Detail)
		}
	}
}

func TestManyProblemsInOneFile(t *testing.T) {
	_, diags, _ := config.Load("testdata/many.hcl")
	errs := 0
	lines := map[int]bool{}
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs++
			lines[d.Subject.Start.Line] = true
		}
	}
	// One deliberate mistake on each attribute line of both blocks.
	for line := 2; line <= 21; line++ {
		if line == 10 || line == 11 {
			continue // the end of the pool, the start of the process
		}
		if !lines[line] {
			t.Errorf("no error reported on line %d", line)
		}
	}
	if errs < 19 {
		t.Errorf("got %d errors, want at least 19:\n%s", errs, strings.Join(problems(diags), "\n"))
	}
}

func exampleDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("../../examples", e.Name()))
		}
	}
	if len(dirs) < 1 {
		t.Fatalf("found only %v under examples/", dirs)
	}
	// The quickstart is a runnable example too; it lives beside the command
	// that embeds it.
	return append(dirs, "../../cmd/rpacloud/quickstart")
}

func TestExamplesValidate(t *testing.T) {
	for _, dir := range exampleDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, diags, _ := config.Load(dir)
			if diags = dated(diags); len(diags) > 0 {
				t.Fatalf("%s:\n%s", dir, strings.Join(problems(diags), "\n"))
			}
			if len(cfg.Pools) == 0 || len(cfg.Processes) == 0 {
				t.Errorf("%s declares no pool or no process", dir)
			}
			if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
				t.Errorf("example without README: %v", err)
			}
		})
	}
}

func TestQuickstart(t *testing.T) {
	// The file rpacloud dev embeds (cmd/rpacloud/quickstart checks that
	// the embedded copy is this file).
	cfg, diags, _ := config.Load("../../cmd/rpacloud/quickstart")
	if len(diags) > 0 {
		t.Fatal(strings.Join(problems(diags), "\n"))
	}
	want := config.Server{
		Listen: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", DataDir: ".rpacloud",
		LogLevel: "info", Database: config.Database{Driver: "sqlite"}, Limits: defaultLimits,
	}
	if !reflect.DeepEqual(cfg.Server, want) {
		t.Errorf("server: got %+v, want %+v", cfg.Server, want)
	}
	if cfg.Vault != nil {
		t.Errorf("vault: got %+v, want none", cfg.Vault)
	}
	if len(cfg.Providers) != 1 || cfg.Providers[0].Name != "local" || cfg.Providers[0].Plugin != "local" {
		t.Errorf("providers: %+v", cfg.Providers)
	}
	if len(cfg.Networks) != 1 || cfg.Networks[0].Name != "office" {
		t.Errorf("networks: %+v", cfg.Networks)
	}
	if len(cfg.Pools) != 1 {
		t.Fatalf("pools: %+v", cfg.Pools)
	}
	p := cfg.Pools[0]
	p.DeclRange = hcl.Range{}
	wantPool := config.Pool{Name: "default", Provider: "local", Min: 2, Max: 4, Period: 15 * time.Second, TasksPerRobot: 5, Fairness: "fair_share"}
	if p != wantPool {
		t.Errorf("pool: got %+v, want %+v", p, wantPool)
	}
	if len(cfg.Customers) != 1 || cfg.Customers[0].Name != "demo" || cfg.Customers[0].Kind != "company" {
		t.Errorf("customers: %+v", cfg.Customers)
	}
	got := map[string]config.Process{}
	for _, pr := range cfg.Processes {
		pr.DeclRange = hcl.Range{}
		got[pr.Name] = pr
	}
	wantProcs := map[string]config.Process{
		"echo": {Name: "echo", Pool: "default", Kind: "builtin", Runner: "echo", MaxDuration: 2 * time.Minute, Retries: 3, MaxWait: 24 * time.Hour},
		"noop": {Name: "noop", Pool: "default", Kind: "builtin", Runner: "noop", MaxDuration: 10 * time.Minute, Retries: 3, MaxWait: 24 * time.Hour},
	}
	if !reflect.DeepEqual(got, wantProcs) {
		t.Errorf("processes:\n got %+v\nwant %+v", got, wantProcs)
	}
}

func TestTaxFiling(t *testing.T) {
	cfg, diags, files := config.Load("../../examples/tax-filing")
	if diags = dated(diags); len(diags) > 0 {
		t.Fatal(strings.Join(problems(diags), "\n"))
	}
	if len(files) < 5 {
		t.Errorf("tax-filing should span several files, has %d", len(files))
	}
	if cfg.Server.Database.Driver != "postgres" || cfg.Server.PublicURL != "https://rpacloud.tax.example" {
		t.Errorf("server: %+v", cfg.Server)
	}
	wantVault := config.Vault{Address: "https://vault.tax.internal:8200", AuthMethod: "approle", RoleID: "rpacloud-core",
		SecretIDFile: "/etc/rpacloud/vault-secret-id", Mount: "secret", Prefix: "rpacloud"}
	if cfg.Vault == nil || *cfg.Vault != wantVault {
		t.Errorf("vault: got %+v, want %+v", cfg.Vault, wantVault)
	}
	if got := cfg.Providers[0].Config; !reflect.DeepEqual(got, map[string]string{"stop_robots_on_exit": "false"}) {
		t.Errorf("provider config: %v", got)
	}
	v := cfg.Vendors[0]
	if v.Type != "uipath" || v.Tenant != "TaxFiling" || v.Folder != "Production" ||
		v.Credentials != "vault:secret/rpacloud/vendors/uipath-prod#client_secret" ||
		v.Extra["poll_interval"] != "30s" || v.Extra["client_id"] != "rpacloud-monitor" {
		t.Errorf("vendor: %+v", v)
	}
	kinds := map[string]string{}
	for _, c := range cfg.Customers {
		kinds[c.Name] = c.Kind + ":" + c.Parent
	}
	if want := map[string]string{"acme": "company:", "acme-finance": "department:acme", "acme-hr": "department:acme"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("customers: %v", kinds)
	}
	var vat config.Process
	for _, p := range cfg.Processes {
		if p.Name == "vat-filing" {
			vat = p
		}
	}
	wantSched := []config.Schedule{
		{Name: "monthly-peak", Cron: "0 8 1-15 * 1-5", Start: config.MustParseCron("0 8 1-15 * 1-5"), Duration: 10 * time.Hour, Timezone: "Asia/Shanghai"},
		{Name: "month-end-catch-up", Cron: "30 18 28-31 * *", Start: config.MustParseCron("30 18 28-31 * *"), Duration: 3 * time.Hour, Timezone: "Asia/Shanghai"},
	}
	if vat.Kind != "vendor" || vat.Runner != "uipath-prod" || vat.Owner != "acme-finance" ||
		!reflect.DeepEqual(vat.Credentials, []string{"etax/acme", "bank/acme-payments"}) || !reflect.DeepEqual(vat.Schedules, wantSched) {
		t.Errorf("vat-filing: %+v", vat)
	}
	n := cfg.Networks[0]
	if n.Proxy != "http://egress.tax.internal:3128" || len(n.DNS) != 2 || len(n.Allow) != 4 || !reflect.DeepEqual(n.Deny, []string{"*"}) {
		t.Errorf("network: %+v", n)
	}
}

// Formatting an example changes nothing, and the formatted text loads to
// the same configuration: fmt can never change meaning.
func TestExamplesRoundTrip(t *testing.T) {
	for _, dir := range exampleDirs(t) {
		names, err := filepath.Glob(filepath.Join(dir, "*.hcl"))
		if err != nil {
			t.Fatal(err)
		}
		srcs := map[string][]byte{}
		formatted := map[string][]byte{}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			out, diags := config.Format(n, b)
			if diags.HasErrors() {
				t.Fatalf("%s: %s", n, diags.Error())
			}
			if string(out) != string(b) {
				t.Errorf("%s is not in canonical form; run rpacloud fmt %s", n, dir)
			}
			srcs[n], formatted[n] = b, out
		}
		a, _, _ := config.LoadSources(srcs)
		b, _, _ := config.LoadSources(formatted)
		if !reflect.DeepEqual(strip(a), strip(b)) {
			t.Errorf("%s: formatting changed the configuration", dir)
		}
	}
}

// strip removes what depends on the file's position and identity.
func strip(c *config.Config) *config.Config {
	out := *c
	out.Providers = append([]config.Provider(nil), c.Providers...)
	for i := range out.Providers {
		out.Providers[i].DeclRange, out.Providers[i].Body = hcl.Range{}, nil
	}
	out.Networks = append([]config.Network(nil), c.Networks...)
	for i := range out.Networks {
		out.Networks[i].DeclRange = hcl.Range{}
	}
	out.Pools = append([]config.Pool(nil), c.Pools...)
	for i := range out.Pools {
		out.Pools[i].DeclRange = hcl.Range{}
	}
	out.Processes = append([]config.Process(nil), c.Processes...)
	for i := range out.Processes {
		out.Processes[i].DeclRange = hcl.Range{}
	}
	out.Vendors = append([]config.Vendor(nil), c.Vendors...)
	for i := range out.Vendors {
		out.Vendors[i].DeclRange = hcl.Range{}
	}
	out.Customers = append([]config.Customer(nil), c.Customers...)
	for i := range out.Customers {
		out.Customers[i].DeclRange = hcl.Range{}
	}
	return &out
}
