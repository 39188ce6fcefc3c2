package main

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/robotagent"
)

// A bad daemon URL, in --server or RPACLOUD_SERVER, stops the agent before
// it does anything, naming the value and where it came from.
func TestRobotRefusesBadServers(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		env   string
		want  string
	}{
		{flags: []string{"http://a:8080", "b:8080"}, want: `--server: "b:8080"`},
		{flags: []string{"http://a:8080,ftp://b"}, want: `--server: "ftp://b"`},
		{env: "http://a:8080, http://b:8080?x", want: `RPACLOUD_SERVER: "http://b:8080?x"`},
	} {
		t.Setenv("RPACLOUD_SERVER", tc.env)
		t.Setenv("RPACLOUD_ROBOT_TOKEN", "rpr_secret")
		var stderr bytes.Buffer
		code := runRobot(context.Background(), robotOptions{servers: tc.flags, logLevel: "error"}, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) || strings.Contains(stderr.String(), "rpr_secret") {
			t.Errorf("%v %q: exit %d, stderr %q; want exit %d naming %s", tc.flags, tc.env, code, stderr.String(), exitUsage, tc.want)
		}
	}
}

// An enrolled robot started without --server works with every daemon its
// identity lists; --server, when given, wins.
func TestRobotServersFromIdentity(t *testing.T) {
	dir := t.TempDir()
	id := robotagent.Identity{Server: "http://a:8080", Servers: []string{"http://a:8080", "http://b:8080"}, Robot: "r1", Pool: "p", Token: "rpr_x"}
	if err := robotagent.SaveIdentity(dir, id); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	got, token, name, code := robotIdentity(context.Background(), robotOptions{stateDir: dir}, nil, "", false, log)
	if code != exitOK || token != "rpr_x" || name != "r1" || !reflect.DeepEqual(got, id.Servers) {
		t.Fatalf("from the identity: %v %q %q %d", got, token, name, code)
	}
	flag := []string{"http://c:8080"}
	if got, _, _, _ := robotIdentity(context.Background(), robotOptions{stateDir: dir}, flag, "", false, log); !reflect.DeepEqual(got, flag) {
		t.Fatalf("--server over the identity: %v", got)
	}
}
