package image

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/rpacloud/rpacloud/core/config"
)

func TestParseRefusesWhatItCannotBuild(t *testing.T) {
	base := "FROM golang:1.26-bookworm AS build\nRUN go build -o /out/x ./cmd/x\nFROM debian:bookworm-slim AS runtime\nRUN true\n"
	cases := []struct{ name, src, want string }{
		{"add", base + "FROM runtime AS d\nADD x /x\n", "F:6: ADD is not supported in a derived (FROM an earlier stage) stage"},
		{"run in derived", base + "FROM runtime AS d\nRUN echo hi\n", "F:6: RUN is not supported in a derived"},
		{"user in debian", base + "USER 1\n", "F:5: USER is not supported in a debian (root filesystem) stage"},
		{"unnamed stage", "FROM debian:bookworm-slim\n", "F:1: FROM debian:bookworm-slim: every stage needs a name"},
		{"other base", "FROM alpine:3.20 AS a\n", "F:1: FROM alpine:3.20: the engine-less builder knows"},
		{"digest", "FROM debian:bookworm-slim@sha256:00 AS a\n", "F:1: FROM debian:bookworm-slim@sha256:00"},
		{"platform", "FROM --platform=linux/arm64 debian:bookworm AS a\n", "F:1: FROM takes no --flags"},
		{"heredoc", "FROM debian:bookworm AS a\nRUN <<EOF\n", "F:2: RUN with a heredoc"},
		{"before from", "RUN true\n", "F:1: RUN before the first FROM"},
		{"twice", "FROM debian:bookworm AS a\nFROM debian:bookworm AS a\n", "F:2: stage \"a\" defined twice"},
		{"copy from in debian", "FROM debian:bookworm AS a\nCOPY --from=b /x /x\n", "F:2: COPY is not supported in a debian"},
		{"copy link", base + "FROM runtime AS d\nCOPY --link x /x\n", "F:6: COPY --link is not supported"},
		{"continued at end", "FROM debian:bookworm AS a\nRUN true \\\n", "F:2: the file ends inside a continued line"},
		{"from build stage", base + "FROM build AS d\n", "F:5: FROM build: a golang stage is a build stage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("F", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse: %v\nwant an error containing %q", err, c.want)
			}
		})
	}
}

// TestChildRefusals covers what is refused when a derived stage's
// instructions are read (they need the parent's configuration).
func TestChildRefusals(t *testing.T) {
	cases := []struct{ inst, want string }{
		{`ENTRYPOINT /usr/local/bin/rpacloud`, "F:3: ENTRYPOINT: use the JSON (exec) form"},
		{`CMD ["a",`, "F:3: CMD: not a JSON array"},
		{`USER rpacloud`, `F:3: USER "rpacloud": want numeric UID[:GID]`},
		{`ENV A="b c"`, "F:3: ENV: quotes, backslashes and $ are not supported"},
		{`ENV A`, `F:3: ENV: want KEY=value, got "A"`},
		{`WORKDIR var/lib`, `F:3: WORKDIR: "var/lib": want a clean absolute path`},
		{`EXPOSE 80/sctp`, `F:3: EXPOSE "80/sctp"`},
		{`COPY a b c`, "F:3: COPY: want one source and one destination file"},
		{`COPY ../etc/passwd /x`, "F:3: COPY ../etc/passwd: want a file inside the build context"},
		{`COPY --from=nope /out/x /x`, "F:3: COPY --from=nope: no earlier golang build stage"},
	}
	for _, c := range cases {
		src := "FROM debian:bookworm AS runtime\nFROM runtime AS d\n" + c.inst + "\n"
		f, err := Parse("F", []byte(src))
		if err != nil {
			t.Fatalf("%s: Parse: %v", c.inst, err)
		}
		b := &builder{o: Options{Context: t.TempDir()}, f: f, tmp: t.TempDir(), cfgs: map[*Stage]*v1.Config{}}
		b.cfgs[f.Stage("runtime")] = &v1.Config{}
		_, _, _, err = b.childConfig(f.Stage("d"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant an error containing %q", c.inst, err, c.want)
		}
	}
}

// TestContainerfile reads the real file: its targets, and that what the
// images declare agrees with the Kubernetes manifest and the Nomad job
// (user, port, arguments), so the three cannot drift apart.
func TestContainerfile(t *testing.T) {
	src, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("Containerfile", src)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range f.Stages {
		names = append(names, s.Name+"="+s.Kind)
	}
	if want := []string{"build=go", "runtime=debian", "daemon=child", "robot=child"}; !slices.Equal(names, want) {
		t.Fatalf("stages %v, want %v", names, want)
	}
	b := &builder{o: Options{Context: "../.."}, f: f, cfgs: map[*Stage]*v1.Config{}}
	if err := b.checkGoVersion(f.Stage("build")); err != nil {
		t.Fatal(err)
	}
	b.cfgs[f.Stage("runtime")] = &v1.Config{Env: []string{defaultPath}}
	daemon, _, _, err := b.childConfig(f.Stage("daemon"))
	if err != nil {
		t.Fatal(err)
	}
	robot, _, _, err := b.childConfig(f.Stage("robot"))
	if err != nil {
		t.Fatal(err)
	}
	if daemon.User != "65532:65532" || robot.User != "65532:65532" {
		t.Errorf("users %q, %q: want 65532:65532, the manifests' runAsUser", daemon.User, robot.User)
	}
	if _, ok := daemon.ExposedPorts["8080/tcp"]; !ok || len(daemon.ExposedPorts) != 1 {
		t.Errorf("daemon exposes %v, want 8080/tcp", daemon.ExposedPorts)
	}
	if !slices.Equal(robot.Entrypoint, []string{"/usr/local/bin/rpacloud", "robot"}) {
		t.Errorf("robot entrypoint %q", robot.Entrypoint)
	}

	// The default configuration the daemon image carries loads, keeps its
	// data in the volume and listens on the exposed port; its one warning
	// is the public_url only the operator knows.
	hcl, err := os.ReadFile("server.hcl")
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags, _ := config.LoadSources(map[string][]byte{"server.hcl": hcl})
	if diags.HasErrors() || len(diags) != 1 || !strings.Contains(diags[0].Summary+diags[0].Detail, "public_url") {
		t.Errorf("server.hcl: %v", diags)
	} else {
		if _, ok := daemon.Volumes[cfg.Server.DataDir]; !ok {
			t.Errorf("server.hcl data_dir %s is not the image's volume %v", cfg.Server.DataDir, daemon.Volumes)
		}
		if _, port, _ := strings.Cut(cfg.Server.Listen, ":"); !slices.Contains(slices.Collect(maps.Keys(daemon.ExposedPorts)), port+"/tcp") {
			t.Errorf("server.hcl listens on %s, the image exposes %v", cfg.Server.Listen, daemon.ExposedPorts)
		}
	}

	raw, err := os.ReadFile(filepath.Join("..", "kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	if err := yaml.Unmarshal(raw, &dep); err != nil {
		t.Fatal(err)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	// Kubernetes' args replace the image's CMD and keep its ENTRYPOINT.
	if len(c.Command) != 0 || !slices.Equal(c.Args, daemon.Cmd) {
		t.Errorf("deployment command %q args %q; the image's CMD is %q: keep them the same so the image runs alike everywhere", c.Command, c.Args, daemon.Cmd)
	}
	if u := pod.SecurityContext.RunAsUser; u == nil || *u != 65532 {
		t.Errorf("deployment runAsUser %v, the image's user is 65532", u)
	}
	if c.Ports[0].ContainerPort != 8080 {
		t.Errorf("deployment port %d, the image exposes 8080", c.Ports[0].ContainerPort)
	}
	nomad, err := os.ReadFile(filepath.Join("..", "nomad", "rpacloud.nomad.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(nomad), `user   = "65532:65532"`) || !strings.Contains(string(nomad), `args            = ["server", "--config", `) {
		t.Error("the Nomad job's user or args no longer match the image (65532:65532, server --config DIR)")
	}
}
