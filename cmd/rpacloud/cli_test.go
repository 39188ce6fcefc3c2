package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spf13/cobra"
)

// commandTree is every command of the CLI, hidden ones included, with the
// help and completion commands cobra adds at execution.
func commandTree() []*cobra.Command {
	root := newRootCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var all []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		all = append(all, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return all
}

// path is the command line that names c, without "rpacloud".
func path(c *cobra.Command) []string {
	return strings.Fields(c.CommandPath())[1:]
}

func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := execute(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// Every command, including one added later, answers --help on stdout with
// exit 0 and refuses an unknown flag with exit 2.
func TestEveryCommandHelpAndUsageError(t *testing.T) {
	tree := commandTree()
	if len(tree) < 30 {
		t.Fatalf("walked only %d commands", len(tree))
	}
	for _, c := range tree {
		p := path(c)
		name := strings.Join(append([]string{"rpacloud"}, p...), " ")
		for _, h := range []string{"--help", "-h"} {
			code, out, errs := cli(append(p, h)...)
			if code != exitOK || !strings.Contains(out, "Usage:") || errs != "" {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", name, h, code, out, errs)
			}
		}
		if c.Name() == "help" || c.DisableFlagParsing {
			continue // takes any words; `help --no-such-flag` is a help topic
		}
		if code, _, errs := cli(append(p, "--no-such-flag")...); code != exitUsage || !strings.Contains(errs, "unknown flag") {
			t.Errorf("%s --no-such-flag: exit %d, stderr %q; want exit 2", name, code, errs)
		}
	}
	for _, args := range [][]string{nil, {"no-such-command"}, {"task"}, {"task", "no-such-subcommand"}, {"credential", "nope"}} {
		if code, _, _ := cli(args...); code != exitUsage {
			t.Errorf("rpacloud %v: exit %d, want 2", args, code)
		}
	}
}

// Every command with an --output flag takes json and text, and refuses
// anything else as a usage error. Flags are parsed before --help is
// answered, so this needs no daemon.
func TestEveryOutputFlagTakesJSON(t *testing.T) {
	n := 0
	for _, c := range commandTree() {
		f := c.Flags().Lookup("output")
		if f == nil {
			continue
		}
		n++
		p := path(c)
		if f.Shorthand != "o" || f.DefValue != "text" {
			t.Errorf("%s: --output is -%s with default %q; want -o, text", c.CommandPath(), f.Shorthand, f.DefValue)
		}
		for _, args := range [][]string{{"-o", "json"}, {"--output", "json"}, {"--output=text"}, {"-ojson"}} {
			if code, _, errs := cli(append(append(p, args...), "--help")...); code != exitOK {
				t.Errorf("%s %v: exit %d: %s", c.CommandPath(), args, code, errs)
			}
		}
		if code, _, _ := cli(append(p, "-o", "yaml", "--help")...); code != exitUsage {
			t.Errorf("%s -o yaml: exit %d, want 2", c.CommandPath(), code)
		}
	}
	if n < 10 {
		t.Errorf("only %d commands have --output", n)
	}
}

// The Go flag package's spellings scripts may use still parse.
func TestGoFlagSpellings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.hcl")
	if err := os.WriteFile(file, []byte("customer \"x\" {\ndisplay_name = \"X\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cli("fmt", "-check", file); code != exitFailure || !strings.Contains(out, file) {
		t.Errorf("fmt -check: exit %d, %q %q; want exit 1 listing the file", code, out, errs)
	}
	if code, out, errs := cli("fmt", "--w=false", file); code != exitOK || !strings.Contains(out, "  display_name = \"X\"") {
		t.Errorf("fmt --w=false: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := cli("validate", "-output=json", file); code != exitOK {
		t.Errorf("validate -output=json: exit %d, %q", code, errs)
	}
	for _, c := range []struct{ in, want []string }{
		{[]string{"docs", "render", "--o", "f.pdf", "-process", "p", "-ojson"}, []string{"docs", "render", "-o", "f.pdf", "--process", "p", "-ojson"}},
		{[]string{"task", "list", "-state=failed", "-h", "--", "-limit"}, []string{"task", "list", "--state=failed", "-h", "--", "-limit"}},
		{[]string{"process", "book", "vat", "--days", "-1", "-nope"}, []string{"process", "book", "vat", "--days", "-1", "-nope"}},
		{[]string{"pool", "status", "-help"}, []string{"pool", "status", "--help"}},
	} {
		if got := goFlagSpellings(newRootCmd(), c.in); !slices.Equal(got, c.want) {
			t.Errorf("%q became %q, want %q", c.in, got, c.want)
		}
	}
}

func TestValidateJSON(t *testing.T) {
	code, out, errs := cli("validate", "-o", "json", "quickstart")
	var r struct {
		OK        bool           `json:"ok"`
		Files     []string       `json:"files"`
		Inventory map[string]int `json:"inventory"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &r) != nil || !r.OK || len(r.Files) != 1 || r.Inventory["pool"] != 1 {
		t.Fatalf("quickstart: exit %d, %q, %q", code, out, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(bad, []byte("pool \"p\" {\n  provider = \"nowhere\"\n  max = \"many\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cli("validate", "-o", "json", bad)
	var br struct {
		OK          bool `json:"ok"`
		Errors      int  `json:"errors"`
		Diagnostics []struct {
			Severity string `json:"severity"`
			File     string `json:"file"`
			Line     int    `json:"line"`
		} `json:"diagnostics"`
	}
	if code != exitFailure || json.Unmarshal([]byte(out), &br) != nil || br.OK || br.Errors != 2 || len(br.Diagnostics) != 3 {
		t.Fatalf("bad: exit %d, %q", code, out)
	}
	for _, d := range br.Diagnostics {
		if d.File != bad || d.Line == 0 || (d.Severity != "error" && d.Severity != "warning") {
			t.Errorf("diagnostic %+v", d)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := cli("version", "-o", "json")
	var v versionInfo
	if code != exitOK || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Fatalf("version -o json: exit %d, %q", code, out)
	}
	code, text, _ := cli("version")
	code2, flag, _ := cli("--version")
	if code != exitOK || code2 != exitOK || text != flag || !strings.HasPrefix(text, "rpacloud "+v.Version+" (") {
		t.Errorf("version %q and --version %q differ or lack the version %q", text, flag, v.Version)
	}
}

// A binary built from a checkout says which commit; a build without VCS
// information (no git, -buildvcs=false, a git worktree, which go does not
// stamp) says (devel) and no commit, and -X main.version still wins.
func TestVersionOfBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "rpacloud")
	cmd := exec.Command("go", "build", "-buildvcs=auto", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil || v.Version != "v9.9.9-test" {
		t.Fatalf("%q: %v", out, err)
	}
	head, gitErr := exec.Command("git", "rev-parse", "HEAD").Output()
	switch {
	case v.Commit != "":
		if gitErr == nil && strings.TrimSpace(string(head)) != v.Commit {
			t.Errorf("commit %s, HEAD is %s", v.Commit, head)
		}
		text, _ := exec.Command(bin, "version").Output()
		if !strings.Contains(string(text), "commit "+v.Commit) {
			t.Errorf("version text %q lacks the commit", text)
		}
	default:
		t.Logf("no VCS stamp in this build (%s); version %q", strings.TrimSpace(string(head)), v.Version)
	}
}

// task submit --wait into a pipe or file: no carriage-return redraws, the
// final tally once; with -o json only the batch's final state.
func TestProgressBarOnlyOnTerminal(t *testing.T) {
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Query string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch {
		case strings.Contains(req.Query, "submitBatch"):
			io.WriteString(w, `{"data":{"submitBatch":{"id":"b1","total":2}}}`)
		case polls.Add(1) < 3:
			io.WriteString(w, `{"data":{"node":{"id":"b1","total":2,"pending":1,"running":1,"stack":"running"}}}`)
		default:
			io.WriteString(w, `{"data":{"node":{"id":"b1","total":2,"succeeded":2,"stack":"finished"}}}`)
		}
	}))
	defer srv.Close()
	input := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(input, []byte("{\"n\":1}\n{\"n\":2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"task", "submit", "--process", "echo", "--input", input, "--wait", "--server", srv.URL, "--token", "t"}

	stdout, err := os.CreateTemp(t.TempDir(), "stdout") // a real file, not a terminal
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	var errb bytes.Buffer
	if code := execute(context.Background(), args, strings.NewReader(""), stdout, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	out, _ := os.ReadFile(stdout.Name())
	want := "batch b1: 2 tasks queued for echo\n[" + strings.Repeat("#", 30) + "] 2/2  ok 2  failed 0  running 0  pending 0\n"
	if string(out) != want {
		t.Errorf("stdout %q, want %q", out, want)
	}

	polls.Store(0)
	code, js, errs := cli(append(args, "-o", "json")...)
	var b batchView
	if code != exitOK || json.Unmarshal([]byte(js), &b) != nil || b.Stack != "finished" || b.Succeeded != 2 {
		t.Errorf("-o json: exit %d, %q, %q", code, js, errs)
	}
}
