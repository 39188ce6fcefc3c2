package config

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func validate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := ValidateCommand(context.Background(), nil, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func fmtCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := FmtCommand(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestValidateCommandOK(t *testing.T) {
	code, out, errOut := validate(t, "../../examples/tax-filing")
	// The example's calendar holds one year of official holidays; the
	// warning that it runs out depends on the day the test runs.
	if code != 0 || errOut != "" && !strings.Contains(errOut, "warning: "+CalendarRunningOut) {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	want := "7 files OK (1 provider, 1 network, 2 pools, 4 processes, 1 vendor, 3 customers, 1 calendar, 1 trigger, vault)\n"
	if out != want && out != strings.TrimSuffix(want, "\n")+", 1 warning\n" {
		t.Errorf("stdout: got %q, want %q", out, want)
	}
	// Several paths form one configuration.
	code, out, _ = validate(t, "../../cmd/rpacloud/quickstart/rpacloud.hcl")
	if code != 0 || !strings.HasPrefix(out, "1 file OK (") {
		t.Errorf("exit %d, stdout %q", code, out)
	}
}

func TestValidateCommandWarnings(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.hcl"), "provider \"local\" {\n  plugin = \"local\"\n}\n")
	write(t, filepath.Join(dir, "b.hcl"), "pool \"idle\" {\n  provider = \"local\"\n  max      = 1\n}\n")
	code, out, errOut := validate(t, dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(errOut, filepath.Join(dir, "b.hcl")+":1:1: warning: Pool has no process") {
		t.Errorf("stderr: %q", errOut)
	}
	if !strings.HasSuffix(out, ", 1 warning\n") {
		t.Errorf("stdout: %q", out)
	}
}

var diagLine = regexp.MustCompile(`^[^ ]+:\d+:\d+: (error|warning): `)

func TestValidateCommandErrors(t *testing.T) {
	code, out, errOut := validate(t, "testdata/bad/pool.hcl", "testdata/bad/process.hcl")
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	if !strings.Contains(errOut, "testdata/bad/pool.hcl:7:14: error: Invalid pool size; min = 5 is greater than max = 2.\n") {
		t.Errorf("stderr lacks the min > max error:\n%s", errOut)
	}
	n := 0
	for _, line := range strings.Split(errOut, "\n") {
		if diagLine.MatchString(line) {
			n++
		}
	}
	// Both files declare provider "local": together they add a duplicate.
	if n < 20 {
		t.Errorf("only %d diagnostics:\n%s", n, errOut)
	}
	if !strings.HasSuffix(errOut, "errors, 3 warnings in 2 files\n") {
		t.Errorf("summary: %q", errOut[strings.LastIndex(strings.TrimSuffix(errOut, "\n"), "\n")+1:])
	}
}

func TestValidateCommandUsage(t *testing.T) {
	if code, _, errOut := validate(t); code != 2 || !strings.Contains(errOut, "usage: rpacloud validate") {
		t.Errorf("no args: exit %d, %q", code, errOut)
	}
	if code, _, _ := validate(t, "-nope", "x"); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	if code, _, _ := validate(t, "-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	code, _, errOut := validate(t, "testdata/does-not-exist")
	if code != 1 || !strings.HasPrefix(errOut, "testdata/does-not-exist:1:1: error: Cannot read configuration; ") {
		t.Errorf("missing path: exit %d, %q", code, errOut)
	}
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFmtCommand(t *testing.T) {
	dir := t.TempDir()
	messyFile := filepath.Join(dir, "messy.hcl")
	goodFile := filepath.Join(dir, "good.hcl")
	write(t, messyFile, messy)
	write(t, goodFile, canonical)
	write(t, filepath.Join(dir, "notes.txt"), "not hcl = at all {")

	// -check lists what differs, writes nothing, and fails.
	code, out, errOut := fmtCmd(t, "-check", dir)
	if code != 1 || out != messyFile+"\n" || errOut != "" {
		t.Errorf("-check: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if read(t, messyFile) != messy {
		t.Error("-check rewrote the file")
	}

	// -w=false prints the canonical text.
	code, out, _ = fmtCmd(t, "-w=false", messyFile)
	if code != 0 || out != canonical {
		t.Errorf("-w=false: exit %d, stdout %q", code, out)
	}

	// The default rewrites in place and names what changed.
	code, out, errOut = fmtCmd(t, dir)
	if code != 0 || out != messyFile+"\n" || errOut != "" {
		t.Errorf("fmt: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if read(t, messyFile) != canonical {
		t.Errorf("not rewritten:\n%s", read(t, messyFile))
	}
	if st, err := os.Stat(messyFile); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("mode not kept: %v %v", st.Mode(), err)
	}

	// Now everything is canonical.
	if code, out, _ := fmtCmd(t, "-check", dir); code != 0 || out != "" {
		t.Errorf("-check after fmt: exit %d, stdout %q", code, out)
	}
}

func TestFmtCommandBrokenFile(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.hcl")
	write(t, broken, "pool \"p\" {\n  max = \n")
	code, out, errOut := fmtCmd(t, broken)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	if !strings.HasPrefix(errOut, broken+":2:9: error: ") {
		t.Errorf("stderr: %q", errOut)
	}
	if read(t, broken) != "pool \"p\" {\n  max = \n" {
		t.Error("a broken file was rewritten")
	}
}

func TestFmtCommandRecursive(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	hidden := filepath.Join(dir, ".git")
	for _, d := range []string{sub, hidden} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(sub, "a.hcl"), messy)
	write(t, filepath.Join(hidden, "b.hcl"), messy)
	if code, out, _ := fmtCmd(t, "-check", dir); code != 0 || out != "" {
		t.Errorf("not recursive by default: exit %d, %q", code, out)
	}
	code, out, _ := fmtCmd(t, "-check", "-recursive", dir)
	if code != 1 || out != filepath.Join(sub, "a.hcl")+"\n" {
		t.Errorf("-recursive: exit %d, %q", code, out)
	}
}

func TestFmtCommandUsage(t *testing.T) {
	if code, _, errOut := fmtCmd(t); code != 2 || !strings.Contains(errOut, "usage: rpacloud fmt") {
		t.Errorf("no args: exit %d, %q", code, errOut)
	}
	if code, _, _ := fmtCmd(t, "-bogus", "."); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	if code, _, errOut := fmtCmd(t, "testdata/nope.hcl"); code != 1 || !strings.Contains(errOut, "testdata/nope.hcl") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
}
