package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// The installed service's command line is readable by every user of the
// machine (the SCM keeps it in the registry): it carries the agent's
// flags, never a token.
func TestServiceArgsCarryNoToken(t *testing.T) {
	o := robotServiceOptions{service: "rpa", robotOptions: robotOptions{
		servers: []string{"https://a:8080", "https://b:8080"}, stateDir: `C:\ProgramData\rpacloud-robot`,
		pluginDir: `C:\plugins`, logLevel: "warn", joinToken: "rpj_secret", token: "rpr_secret", name: "vm-1"}}
	args := serviceArgs(o)
	want := []string{"robot", "service", "run", "--service-name", "rpa", "--state-dir", `C:\ProgramData\rpacloud-robot`,
		"--log-level", "warn", "--server", "https://a:8080", "--server", "https://b:8080", "--plugin-dir", `C:\plugins`}
	if !slices.Equal(args, want) {
		t.Fatalf("service command line %q, want %q", args, want)
	}
	if line := strings.Join(args, " "); strings.Contains(line, "secret") {
		t.Fatalf("a token on the service's command line: %s", line)
	}
	// The command line parses as the run command's own flags.
	cmd := newRobotServiceRunCmd()
	if err := cmd.ParseFlags(args[3:]); err != nil {
		t.Fatalf("run does not take the installed command line: %v", err)
	}
}

// Off Windows every service command says it is Windows only, exit 1; an
// install says so before it enrols, so the join token is not spent; a
// rented robot's token is refused for a service; a bad service name is a
// usage error.
func TestRobotServiceOffWindows(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	t.Setenv("RPACLOUD_JOIN_TOKEN", "rpj_secret")
	dir := t.TempDir()
	for _, args := range [][]string{
		{"robot", "service", "install", "--server", srv.URL, "--state-dir", dir},
		{"robot", "service", "start"}, {"robot", "service", "stop"}, {"robot", "service", "status", "-o", "json"},
		{"robot", "service", "uninstall"}, {"robot", "service", "run"},
	} {
		code, out, errs := cli(args...)
		if code != exitFailure || !strings.Contains(errs, "Windows") || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 saying it is for Windows", args, code, out, errs)
		}
		if strings.Contains(errs, "rpj_secret") {
			t.Errorf("%v: the join token in the error: %s", args, errs)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the daemon was called %d times: install enrolled off Windows", n)
	}
	t.Setenv("RPACLOUD_ROBOT_TOKEN", "rpr_secret")
	if code, _, errs := cli("robot", "service", "install", "--server", srv.URL); code != exitUsage || !strings.Contains(errs, "join token") || strings.Contains(errs, "rpr_secret") {
		t.Errorf("install with a rented robot's token: exit %d, %q; want exit 2 asking for a join token", code, errs)
	}
	if code, _, errs := cli("robot", "service", "start", "--service-name", `a\b`); code != exitUsage || !strings.Contains(errs, "--service-name") {
		t.Errorf("a bad service name: exit %d, %q; want exit 2", code, errs)
	}
}

func TestServiceStatusText(t *testing.T) {
	for _, tc := range []struct {
		st   serviceStatus
		want string
	}{
		{serviceStatus{Service: "rpacloud-robot", State: "running", PID: 42}, "service rpacloud-robot: running (pid 42)"},
		{serviceStatus{Service: "rpacloud-robot", State: "stopped", Win32ExitCode: 1066, ServiceExitCode: 1},
			"service rpacloud-robot: stopped; the agent last exited with code 1 (Windows restarts it; see the Event Log)"},
		{serviceStatus{Service: "r", State: "stopped", Win32ExitCode: 5}, "service r: stopped; last Windows exit code 5"},
	} {
		if got := serviceStatusText(tc.st); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
}
