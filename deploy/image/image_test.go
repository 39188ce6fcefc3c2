package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// requireImage skips the image test where it cannot run (not root, no
// mmdebstrap or unshare), unless RPACLOUD_REQUIRE_IMAGE is set, as
// .ci/services.sh does after installing mmdebstrap: there a missing tool
// fails the test.
func requireImage(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Debian root filesystem: not in -short")
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (mmdebstrap --mode=root, chroot)")
	}
	for _, tool := range []string{"mmdebstrap", "unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("RPACLOUD_REQUIRE_IMAGE") != "" {
		t.Fatalf("RPACLOUD_REQUIRE_IMAGE is set but this is missing: %s", strings.Join(missing, ", "))
	}
	t.Skipf("missing %s (set RPACLOUD_REQUIRE_IMAGE=1 to fail instead)", strings.Join(missing, ", "))
}

// TestImages builds both images from the Containerfile with the
// engine-less builder, reads them back from the OCI layout, unpacks each
// and runs its entrypoint as its image configuration says (user, env,
// working directory) in a new mount and PID namespace chrooted into the
// unpacked root: the daemon until /healthz answers and it renders a
// Chinese PDF with the image's Chromium and fonts, the robot until it has
// enrolled with that daemon and run a task.
func TestImages(t *testing.T) {
	requireImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	out := filepath.Join(work, "oci")
	// The tool `make image` runs, built without -race: its compression
	// and unpacking are minutes under the race detector, seconds without.
	tool := filepath.Join(work, "rpacloud-image")
	build := exec.CommandContext(ctx, "go", "build", "-o", tool, "./cmd/rpacloud-image")
	build.Dir = "../.."
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rpacloud-image: %v\n%s", err, b)
	}
	imageTool := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, tool, append([]string{"--containerfile", "deploy/image/Containerfile", "--context", ".",
			"--out", out, "--cache", filepath.Join(home, ".cache", "rpacloud", "image")}, args...)...)
		cmd.Dir = "../.."
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rpacloud-image %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	start := time.Now()
	built := imageTool()
	t.Logf("built both images in %s:\n%s", time.Since(start).Round(time.Second), built)

	daemonImg, err := ReadImage(out, "daemon")
	if err != nil {
		t.Fatal(err)
	}
	robotImg, err := ReadImage(out, "robot")
	if err != nil {
		t.Fatal(err)
	}
	dcfg, rcfg := configOf(t, daemonImg), configOf(t, robotImg)
	if !slices.Equal(dcfg.Entrypoint, []string{"/usr/local/bin/rpacloud"}) || !slices.Equal(dcfg.Cmd, []string{"server", "--config", "/etc/rpacloud"}) {
		t.Errorf("daemon entrypoint %q cmd %q", dcfg.Entrypoint, dcfg.Cmd)
	}
	if _, ok := dcfg.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("daemon exposes %v", dcfg.ExposedPorts)
	}
	if _, ok := dcfg.Volumes["/var/lib/rpacloud"]; !ok {
		t.Errorf("daemon volumes %v", dcfg.Volumes)
	}
	if dcfg.User != "65532:65532" || rcfg.User != "65532:65532" {
		t.Errorf("users %q %q", dcfg.User, rcfg.User)
	}
	if !slices.Equal(rcfg.Entrypoint, []string{"/usr/local/bin/rpacloud", "robot"}) {
		t.Errorf("robot entrypoint %q", rcfg.Entrypoint)
	}
	// Both share the Debian layer: one blob in the layout, pulled once.
	dl, _ := daemonImg.Layers()
	rl, _ := robotImg.Layers()
	d0, _ := dl[0].Digest()
	r0, _ := rl[0].Digest()
	if d0 != r0 {
		t.Errorf("the images' base layers differ: %s, %s", d0, r0)
	}
	// The binary is in the image's own layer, executable.
	if mode := fileInLayer(t, dl[1], "usr/local/bin/rpacloud"); mode&0o111 == 0 {
		t.Errorf("usr/local/bin/rpacloud mode %o in the daemon's COPY layer", mode)
	}

	start = time.Now()
	droot := filepath.Join(work, "daemon")
	imageTool("--unpack", "daemon", "--to", droot)
	for _, f := range []string{"usr/bin/chromium", "usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
		"etc/ssl/certs/ca-certificates.crt", "usr/share/zoneinfo/Asia/Shanghai", "etc/rpacloud/server.hcl"} {
		if _, err := os.Stat(filepath.Join(droot, f)); err != nil {
			t.Errorf("daemon image: %v", err)
		}
	}
	t.Logf("unpacked the daemon image in %s", time.Since(start).Round(time.Second))

	// The configuration mounted over the image's default, as the
	// Kubernetes manifest does: loopback and a free port, SQLite in the
	// data volume, a pool for the robot to join.
	port := freePort(t)
	writeFile(t, filepath.Join(droot, "etc/rpacloud/server.hcl"), fmt.Sprintf(`server {
  listen   = "127.0.0.1:%d"
  data_dir = "/var/lib/rpacloud"
}

pool "onprem" {
  min = 1
  max = 2
}

customer "demo" {
  display_name = "Demo"
}

process "echo" {
  pool    = "onprem"
  builtin = "echo"
}
`, port), 0o644)
	daemon := runImage(ctx, t, droot, dcfg, nil)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHealthy(ctx, t, base+"/healthz", daemon)
	t.Logf("daemon answered /healthz %s after unpacking began", time.Since(start).Round(time.Second))

	// Running as the image's user, not root.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", daemon.nsPid(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(status, []byte("\nUid:\t65532\t65532\t65532\t65532\n")) || !bytes.Contains(status, []byte("\nGid:\t65532\t65532\t65532\t65532\n")) {
		t.Errorf("the daemon does not run as 65532:65532:\n%s", status)
	}

	// The image's binary on this host as the client, with the admin token
	// the daemon wrote into its data volume.
	cli := filepath.Join(droot, "usr/local/bin/rpacloud")
	tokenBytes, err := os.ReadFile(filepath.Join(droot, "var/lib/rpacloud/admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(ctx, cli, append(args, "--server", base)...)
		cmd.Env = append(os.Environ(), "RPACLOUD_TOKEN="+token)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("rpacloud %s: %v\n%s%s\ndaemon:\n%s", strings.Join(args, " "), err, out, stderr, daemon.output())
		}
		return out
	}

	// A PDF in Chinese: the daemon's Chromium inside the image prints it
	// with the image's CJK font.
	pdf := filepath.Join(work, "manual.pdf")
	run("docs", "render", "--process", "echo", "--kind", "manual", "--format", "pdf", "--lang", "zh", "-o", pdf)
	b, err := os.ReadFile(pdf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("%PDF-")) || !bytes.Contains(b, []byte("NotoSansCJK")) {
		t.Errorf("the PDF (%d bytes) is not a PDF with a Noto Sans CJK font embedded", len(b))
	}

	// The robot image enrols with a join token and runs a task.
	var jt struct{ Secret string }
	if err := json.Unmarshal(run("pool", "join-token", "create", "--pool", "onprem", "--uses", "1", "-o", "json"), &jt); err != nil || jt.Secret == "" {
		t.Fatalf("join token: %v", err)
	}
	start = time.Now()
	rroot := filepath.Join(work, "robot")
	imageTool("--unpack", "robot", "--to", rroot)
	robot := runImage(ctx, t, rroot, rcfg, []string{"RPACLOUD_SERVER=" + base, "RPACLOUD_JOIN_TOKEN=" + jt.Secret})
	input := filepath.Join(work, "tasks.jsonl")
	writeFile(t, input, `{"n":1}`+"\n", 0o644)
	var batch struct{ Succeeded int }
	if err := json.Unmarshal(run("task", "submit", "--process", "echo", "--customer", "demo", "--input", input, "--wait", "-o", "json"), &batch); err != nil || batch.Succeeded != 1 {
		t.Fatalf("task on the robot: %+v %v\nrobot:\n%s", batch, err, robot.output())
	}
	if fi, err := os.Stat(filepath.Join(rroot, "var/lib/rpacloud-robot/identity.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the robot's identity in its volume: %v", err)
	}
	t.Logf("robot image unpacked, enrolled and ran a task in %s", time.Since(start).Round(time.Second))
	robot.stop(t)
	daemon.stop(t)
}

func configOf(t *testing.T, img v1.Image) v1.Config {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" || len(cf.RootFS.DiffIDs) == 0 {
		t.Fatalf("config: os %q arch %q layers %d", cf.OS, cf.Architecture, len(cf.RootFS.DiffIDs))
	}
	return cf.Config
}

func fileInLayer(t *testing.T, l v1.Layer, name string) os.FileMode {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the layer: %v", name, err)
		}
		if h.Name == name && h.Typeflag == tar.TypeReg {
			return os.FileMode(h.Mode)
		}
	}
}

// runScript prepares the container's mounts inside the new mount
// namespace (a private copy: nothing reaches the host's mount table and
// everything goes when the namespace's last process ends), then execs the
// entrypoint chrooted into the root, in its working directory, as its
// user, with exactly the image's environment.
const runScript = `set -eu
R=$1; WD=$2; U=$3; G=$4; shift 4
mount -t tmpfs -o mode=755,nosuid tmpfs "$R/dev"
for d in null zero full random urandom tty; do : > "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
mkdir "$R/dev/shm" "$R/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
exec unshare --root="$R" --wd="$WD" --setgid="$G" --setuid="$U" -- "$@"
`

type container struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	err  error
}

// runImage starts the image's entrypoint and command like a runtime: in
// new mount and PID namespaces (the entrypoint is PID 1 there, so killing
// it ends everything it started), the host's network (loopback reaches it).
func runImage(ctx context.Context, t *testing.T, root string, cfg v1.Config, env []string) *container {
	t.Helper()
	// What a runtime writes into every container.
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	writeFile(t, filepath.Join(root, "etc/resolv.conf"), string(resolv), 0o644)
	writeFile(t, filepath.Join(root, "etc/hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost\n", 0o644)
	uid, gid, ok := strings.Cut(cfg.User, ":")
	if !ok {
		t.Fatalf("user %q: want UID:GID", cfg.User)
	}
	wd := cfg.WorkingDir
	if wd == "" {
		wd = "/"
	}
	argv := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	args := append([]string{"--mount", "--pid", "--fork", "--kill-child", "--mount-proc=" + filepath.Join(root, "proc"),
		"--", "/bin/sh", "-c", runScript, "sh", root, wd, uid, gid}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(append([]string{}, cfg.Env...), env...)
	c := &container{cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	lw := &lockedWriter{w: c.out}
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.stop(t) })
	go func() {
		select {
		case <-ctx.Done():
			c.kill()
		case <-c.done:
		}
	}()
	return c
}

func (c *container) kill() {
	if c.cmd.Process != nil {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// stop kills unshare, whose --kill-child kills the namespace's PID 1 and
// with it every process of the namespace; waits until it is gone so the
// root can be removed with no mount left in it.
func (c *container) stop(t *testing.T) {
	c.kill()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Errorf("the container did not end within 30 s of SIGKILL")
	}
}

func (c *container) output() string {
	lw := c.cmd.Stdout.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	s := c.out.String()
	if len(s) > 8000 {
		s = "…" + s[len(s)-8000:]
	}
	return s
}

// nsPid is the host's PID of the namespace's PID 1 (the entrypoint): the
// one child of unshare.
func (c *container) nsPid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", c.cmd.Process.Pid, c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		t.Fatalf("unshare's children: %q", b)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func waitHealthy(ctx context.Context, t *testing.T, url string, c *container) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			t.Fatalf("the daemon ended (%v) before /healthz answered:\n%s", c.err, c.output())
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
	}
	t.Fatalf("/healthz did not answer 200 within 2 minutes:\n%s", c.output())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
