package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
)

const nomadJob = "nomad/rpacloud.nomad.hcl"

// nomadVars are what `nomad job run -var ...` gives the job's variables,
// which have no defaults on purpose (there is no image yet).
var nomadVars = []string{
	"image=registry.example.com/rpacloud:1.0.0",
	"public_url=https://rpacloud.example.com",
	"vault_address=https://vault.example.internal:8200",
}

// The job as Nomad's API JSON, only the fields checkNomad reads (the
// parser has already refused anything unknown).
type (
	nomadJobJSON struct {
		TaskGroups []nomadGroup
	}
	nomadGroup struct {
		Name        string
		Count       *int
		Constraints []struct{ Operand, RTarget string }
		Update      *struct{ MaxParallel *int }
		Networks    []struct {
			DynamicPorts, ReservedPorts []struct {
				Label string
				To    int
			}
		}
		Services []nomadService
		Tasks    []nomadTask
	}
	nomadService struct {
		Name, PortLabel string
		Checks          []struct{ Name, Type, Path string }
	}
	nomadTask struct {
		Name      string
		Config    map[string]any
		Templates []nomadTemplate
	}
	nomadTemplate struct {
		DestPath, EmbeddedTmpl string
		Envvars                *bool
		Perms                  *string
	}
)

var (
	jobcheckOnce sync.Once
	jobcheckBin  string
	jobcheckErr  error
)

// jobcheck returns deploy/nomad/jobcheck built once into
// ~/.cache/rpacloud/bin under a name keyed by its sources, so that a change
// to it or to its Nomad version builds afresh. It is a module of its own
// (Nomad's parser needs Nomad's fork of hcl/v2): the first build fetches
// its modules through the Go proxy, later ones need nothing.
func jobcheck(t *testing.T) string {
	t.Helper()
	jobcheckOnce.Do(func() { jobcheckBin, jobcheckErr = buildJobcheck() })
	if jobcheckErr != nil {
		t.Fatal(jobcheckErr)
	}
	return jobcheckBin
}

func buildJobcheck() (string, error) {
	const dir = "nomad/jobcheck"
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("home directory: %w", err)
	}
	bin := filepath.Join(home, ".cache", "rpacloud", "bin", "nomad-jobcheck-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	// Built beside its final name and renamed: a concurrent test process
	// sees either no binary or a whole one.
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s (Nomad's job parser): %v\n%s", dir, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// parseNomad parses a job with Nomad's own HCL2 job parser (jobspec2 of
// Nomad 1.6.0, the last release under the MPL), strictly: an unknown block
// or attribute is an error, as `nomad job validate` reports it.
func parseNomad(t *testing.T, name string, src []byte, vars []string) (*nomadJobJSON, error) {
	file := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(file, src, 0o600); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, v := range vars {
		args = append(args, "-var", v)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(jobcheck(t), append(args, file)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	var job nomadJobJSON
	if err := json.Unmarshal(stdout.Bytes(), &job); err != nil {
		return nil, fmt.Errorf("jobcheck's output: %w", err)
	}
	return &job, nil
}

func TestNomadJob(t *testing.T) {
	src, err := os.ReadFile(nomadJob)
	if err != nil {
		t.Fatal(err)
	}
	job, err := parseNomad(t, nomadJob, src, nomadVars)
	if err != nil {
		t.Fatalf("%s: %v", nomadJob, err)
	}
	for _, err := range checkNomad(job) {
		t.Errorf("%s: %v", nomadJob, err)
	}
}

// TestNomadJobChecksCatchBreaks parses the job broken on purpose and
// expects the parser or checkNomad to name what broke.
func TestNomadJobChecksCatchBreaks(t *testing.T) {
	src, err := os.ReadFile(nomadJob)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, old, new, want string }{
		{"unknown attribute", "count = 2", "count = 2\n    replicas = 2", `Unsupported argument; An argument named "replicas"`},
		{"unknown block", "    update {", "    upgrade {", `Unsupported block type; Blocks of type "upgrade"`},
		{"count", "count = 2", "count = 1", "want 2 daemons"},
		{"service port", `port     = "http"`, `port     = "web"`, `service rpacloud: port "web"`},
		{"check path", `path     = "/healthz"`, `path     = "/health"`, `check healthz: path "/health"`},
		{"listen port", `to = 8080`, `to = 9000`, "listens on port 8080"},
		{"secret id file", `secret_id_file = "/secrets/vault-secret-id"`, `secret_id_file = "/secrets/secret-id"`, "/secrets/secret-id"},
		{"config dir", `"/local/rpacloud"]`, `"/local/config"]`, "no template writes *.hcl into /local/config"},
		{"bad hcl", `log_level = "info"`, `log_level = "loud"`, "server.hcl"},
		{"distinct hosts", `operator = "distinct_hosts"`, `operator = "distinct_property"`, "distinct_hosts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(string(src), c.old) {
				t.Fatalf("%s no longer holds %q: update this case", nomadJob, c.old)
			}
			broken := strings.Replace(string(src), c.old, c.new, 1)
			job, err := parseNomad(t, nomadJob, []byte(broken), nomadVars)
			var got []string
			if err != nil {
				got = append(got, err.Error())
			} else {
				for _, e := range checkNomad(job) {
					got = append(got, e.Error())
				}
			}
			if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, c.want) }) {
				t.Errorf("want an error containing %q, got %q", c.want, got)
			}
		})
	}
	// The image has no default: running the job without it is an error.
	if _, err := parseNomad(t, nomadJob, src, nomadVars[1:]); err == nil || !strings.Contains(err.Error(), `Unset variable "image"`) {
		t.Errorf("without -var image: want the unset variable named, got %v", err)
	}
}

// checkNomad checks what the job promises (deploy/README.md) and that its
// parts agree: the service's port is a network port the task maps, the
// check asks /healthz, the HCL template loads with the daemon's own loader
// and listens on the port Nomad maps, and the secret ID file it names is
// a template's destination.
func checkNomad(job *nomadJobJSON) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(job.TaskGroups) != 1 {
		return []error{fmt.Errorf("want one group, got %d", len(job.TaskGroups))}
	}
	g := job.TaskGroups[0]
	if g.Count == nil || *g.Count != 2 {
		fail("group %s: want 2 daemons (count = 2)", g.Name)
	}
	if !slices.ContainsFunc(g.Constraints, func(c struct{ Operand, RTarget string }) bool {
		return c.Operand == "distinct_hosts" && c.RTarget == "true"
	}) {
		fail("group %s: no distinct_hosts constraint: both daemons could land on one client", g.Name)
	}
	if g.Update == nil || g.Update.MaxParallel == nil || *g.Update.MaxParallel != 1 {
		fail("group %s: want update max_parallel = 1", g.Name)
	}
	ports := map[string]int{} // label → port inside the task
	for _, n := range g.Networks {
		for _, p := range append(slices.Clone(n.DynamicPorts), n.ReservedPorts...) {
			ports[p.Label] = p.To
		}
	}
	if len(g.Services) == 0 {
		fail("group %s: no service registration", g.Name)
	}
	for _, s := range g.Services {
		if _, ok := ports[s.PortLabel]; !ok {
			fail("service %s: port %q is not a network port of the group", s.Name, s.PortLabel)
		}
		if len(s.Checks) == 0 {
			fail("service %s: no health check", s.Name)
		}
		for _, c := range s.Checks {
			if c.Type != "http" || c.Path != "/healthz" {
				fail("check %s: path %q (type %s), want an http check of /healthz", c.Name, c.Path, c.Type)
			}
		}
	}
	if len(g.Tasks) != 1 {
		return append(errs, fmt.Errorf("group %s: want one task, got %d", g.Name, len(g.Tasks)))
	}
	task := g.Tasks[0]
	args, _ := task.Config["args"].([]any)
	if len(args) != 3 || args[0] != "server" || args[1] != "--config" {
		return append(errs, fmt.Errorf("task %s: args %v are not `server --config DIR`", task.Name, args))
	}
	dir, _ := args[2].(string)
	if ro, _ := task.Config["readonly_rootfs"].(bool); !ro {
		fail("task %s: want readonly_rootfs = true", task.Name)
	}
	if taskPorts, _ := task.Config["ports"].([]any); !slices.ContainsFunc(taskPorts, func(p any) bool { _, ok := ports[fmt.Sprint(p)]; return ok }) {
		fail("task %s: maps none of the group's ports %v", task.Name, ports)
	}
	// Templates' destinations are relative to the task directory, which the
	// docker driver mounts at / (local/ → /local, secrets/ → /secrets).
	srcs := map[string][]byte{}
	dests := map[string]nomadTemplate{}
	envDSN := false
	for _, tp := range task.Templates {
		dest := "/" + path.Clean(tp.DestPath)
		dests[dest] = tp
		if path.Dir(dest) == dir && strings.HasSuffix(dest, ".hcl") {
			srcs[path.Base(dest)] = []byte(tp.EmbeddedTmpl)
		}
		if tp.Envvars != nil && *tp.Envvars && strings.Contains(tp.EmbeddedTmpl, "RPACLOUD_DATABASE_DSN=") {
			envDSN = true
		}
	}
	if !envDSN {
		fail("task %s: no env template sets RPACLOUD_DATABASE_DSN", task.Name)
	}
	if len(srcs) == 0 {
		return append(errs, fmt.Errorf("task %s: no template writes *.hcl into %s", task.Name, dir))
	}
	cfg, diags, _ := config.LoadSources(srcs)
	if len(diags) > 0 { // warnings too: a shipped configuration should raise none
		return append(errs, fmt.Errorf("task %s: the configuration in %s does not load cleanly: %s", task.Name, dir, diags.Error()))
	}
	_, port, _ := strings.Cut(cfg.Server.Listen, ":")
	if n, err := strconv.Atoi(port); err != nil || !slices.ContainsFunc(g.Services, func(s nomadService) bool { return ports[s.PortLabel] == n }) {
		fail("task %s: the service's port maps to %v inside the task, but the daemon listens on port %s", task.Name, ports, port)
	}
	if !strings.HasPrefix(cfg.Server.DataDir, "/alloc/") && cfg.Server.DataDir != "/alloc/data" {
		fail("task %s: data_dir %s is not in the allocation directory (the root filesystem is read-only)", task.Name, cfg.Server.DataDir)
	}
	if cfg.Server.Database.Driver != "postgres" || cfg.Server.Database.DSN != "" {
		fail("task %s: want database driver postgres with its dsn from RPACLOUD_DATABASE_DSN", task.Name)
	}
	if cfg.Vault == nil || cfg.Vault.AuthMethod != "approle" {
		fail("task %s: want a vault block with auth_method approle", task.Name)
	} else if tp, ok := dests[cfg.Vault.SecretIDFile]; !ok {
		fail("task %s: secret_id_file %s is no template's destination", task.Name, cfg.Vault.SecretIDFile)
	} else if tp.Perms == nil || *tp.Perms != "0400" {
		fail("task %s: the secret ID file's perms are not 0400", task.Name)
	}
	return errs
}
