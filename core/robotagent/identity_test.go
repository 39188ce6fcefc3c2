package robotagent

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// The identity is written 0600 in a 0700 directory, read back, and
// refused, naming the fix, once others may read it.
func TestIdentityFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX modes")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if _, found, err := LoadIdentity(dir); found || err != nil {
		t.Fatalf("empty state dir: %v %v", found, err)
	}
	want := Identity{Server: "http://d:8080", Servers: []string{"http://d:8080", "http://e:8080"}, Robot: "r1", Pool: "onprem", Token: "rpc_secret"}
	if err := SaveIdentity(dir, want); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, IdentityFile)
	for p, mode := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v, want %04o", p, fi.Mode(), err, mode)
		}
	}
	got, found, err := LoadIdentity(dir)
	if err != nil || !found || !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v %v %v", got, found, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("state dir holds %d files, want the identity alone", len(entries))
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadIdentity(dir)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), want.Token) {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadIdentity(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged identity: %v", err)
	}
}

// A symbolic link in place of the identity, and a state directory that
// group or others may write, are refused like ssh refuses them.
func TestIdentitySymlinkAndDirectoryRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX modes and symbolic links")
	}
	base := t.TempDir()
	elsewhere := filepath.Join(base, "elsewhere")
	want := Identity{Server: "http://d:8080", Servers: []string{"http://d:8080", "http://e:8080"}, Robot: "r1", Pool: "onprem", Token: "rpc_secret"}
	if err := SaveIdentity(elsewhere, want); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, IdentityFile), filepath.Join(dir, IdentityFile)); err != nil {
		t.Fatal(err)
	}
	if _, found, err := LoadIdentity(dir); err == nil || found || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("symlinked identity: %v %v", found, err)
	}
	for _, mode := range []os.FileMode{0o770, 0o707, 0o777} {
		if err := os.Chmod(elsewhere, mode); err != nil {
			t.Fatal(err)
		}
		_, found, err := LoadIdentity(elsewhere)
		if err == nil || found || !strings.Contains(err.Error(), "chmod 700") || strings.Contains(err.Error(), want.Token) {
			t.Fatalf("state directory mode %04o: %v %v", mode, found, err)
		}
	}
	if err := os.Chmod(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, found, err := LoadIdentity(elsewhere); err != nil || !found {
		t.Fatalf("state directory 0755 (others may read, not write): %v %v", found, err)
	}
}

func TestParseRemoteAccess(t *testing.T) {
	ra, err := ParseRemoteAccess("rdp://robot@10.0.0.5")
	if err != nil || ra.Protocol != "rdp" || ra.Host != "10.0.0.5" || ra.Port != 3389 || ra.Username != "robot" {
		t.Fatalf("%+v %v", ra, err)
	}
	ra, err = ParseRemoteAccess("ssh://h.example:2222")
	if err != nil || ra.Port != 2222 || ra.Username != "" {
		t.Fatalf("%+v %v", ra, err)
	}
	for _, bad := range []string{"telnet://h", "rdp://h:0", "h:3389", "rdp://h/path"} {
		if _, err := ParseRemoteAccess(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
