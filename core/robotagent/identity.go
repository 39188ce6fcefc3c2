package robotagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/core/robotwire"
)

// IdentityFile is the file in the state directory that holds an enrolled
// robot's identity.
const IdentityFile = "identity.json"

// Identity is what an enrolled robot keeps across restarts: where its
// daemon is, who it is and its robot token.
type Identity struct {
	Server string `json:"server"`
	// Servers are all the daemons (sharing one database) the robot was
	// enrolled with, in order of preference; Server is the first of them,
	// so that an agent of an older version still finds one.
	Servers []string `json:"servers,omitempty"`
	Robot   string   `json:"robot"`
	Pool    string   `json:"pool"`
	Token   string   `json:"token"`
}

// ServerList is the daemons to talk to: Servers, or Server alone.
func (id Identity) ServerList() []string {
	if len(id.Servers) > 0 {
		return id.Servers
	}
	if id.Server == "" {
		return nil
	}
	return []string{id.Server}
}

// DefaultStateDir is where an enrolled robot keeps its identity when no
// --state-dir is given: systemd's StateDirectory= when the agent runs
// under it ($STATE_DIRECTORY), else the platform's usual place.
func DefaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		// systemd may list several, colon-separated; the first is ours.
		return strings.Split(d, ":")[0]
	}
	if runtime.GOOS == "windows" {
		if pd := os.Getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "rpacloud-robot")
		}
	}
	return "/var/lib/rpacloud-robot"
}

// LoadIdentity reads the identity in dir; found is false when there is
// none. Like ssh with a private key, it refuses a file that others than
// its owner may read or write, a symbolic link (which could point the agent
// at another file), and a directory that group or others may write (they
// could swap the file): the robot token in it is the robot.
func LoadIdentity(dir string) (id Identity, found bool, err error) {
	path := filepath.Join(dir, IdentityFile)
	if di, err := os.Stat(dir); err == nil && runtime.GOOS != "windows" && di.Mode().Perm()&0o022 != 0 {
		return id, false, fmt.Errorf("robot state directory %s may be written by others (mode %04o): they could replace the robot's identity; run chmod 700 %s",
			dir, di.Mode().Perm(), dir)
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return id, false, nil
	}
	if err != nil {
		return id, false, fmt.Errorf("robot identity: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return id, false, fmt.Errorf("robot identity %s is not a regular file (a symbolic link?): keep the identity itself in the state directory", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return id, false, fmt.Errorf("robot identity %s is accessible by others (mode %04o): it holds the robot's token; run chmod 600 %s (or enrol again with a new join token if it may have leaked)",
			path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return id, false, fmt.Errorf("robot identity: %w", err)
	}
	if err := json.Unmarshal(b, &id); err != nil || id.Token == "" || id.Robot == "" || id.Server == "" {
		return id, false, fmt.Errorf("robot identity %s is damaged (want JSON with server, robot and token); remove it and enrol again with a new join token", path)
	}
	if _, err := gqlclient.ParseServers("robot identity "+path+": servers", id.Servers...); err != nil {
		return id, false, fmt.Errorf("%w; correct it, or remove the file and enrol again with a new join token", err)
	}
	return id, true, nil
}

// SaveIdentity writes id to dir (made 0700 if missing) as a 0600 file,
// atomically: a crash leaves the old file or the new one, never half of
// one.
func SaveIdentity(dir string, id Identity) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("robot state directory: %w", err)
	}
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return fmt.Errorf("robot identity: %w", err)
	}
	f, err := os.CreateTemp(dir, ".identity-*")
	if err != nil {
		return fmt.Errorf("robot identity: %w", err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("robot identity: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("robot identity: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("robot identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("robot identity: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, IdentityFile)); err != nil {
		return fmt.Errorf("robot identity: %w", err)
	}
	return nil
}

// ErrEnrolRefused is a refusal of the daemon (bad or used-up join token,
// name taken, pool full): trying again will not help.
var ErrEnrolRefused = errors.New("enrolment refused")

// Enrol exchanges a join token for a robot identity at server. It retries
// while the daemon cannot be reached or answers 5xx or 429, and stops at
// the first refusal, whose message it returns (never the token).
func Enrol(ctx context.Context, hc *http.Client, server string, req robotwire.EnrolRequest, log func(msg string, args ...any)) (Identity, error) {
	return EnrolAny(ctx, hc, []string{server}, req, log)
}

// EnrolAny is Enrol with several daemons sharing one database: it asks
// the first of servers, and after each failure that is not a refusal the
// next. The identity keeps all of servers, in their order.
func EnrolAny(ctx context.Context, hc *http.Client, servers []string, req robotwire.EnrolRequest, log func(msg string, args ...any)) (Identity, error) {
	if len(servers) == 0 {
		return Identity{}, errors.New("enrol: no daemon URL")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Identity{}, fmt.Errorf("enrol: %w", err)
	}
	backoff := retry.Backoff(500*time.Millisecond, 15*time.Second)
	for i := 0; ; i++ {
		server := servers[i%len(servers)]
		resp, err := enrolOnce(ctx, hc, strings.TrimRight(server, "/")+robotwire.EnrolPath, body)
		if err == nil {
			id := Identity{Server: servers[0], Robot: resp.Robot, Pool: resp.Pool, Token: resp.Token}
			if len(servers) > 1 {
				id.Servers = servers
			}
			return id, nil
		}
		if errors.Is(err, ErrEnrolRefused) || ctx.Err() != nil {
			return Identity{}, err
		}
		d := backoff.NextBackOff()
		if log != nil {
			log("cannot enrol yet; retrying", "server", server, "err", err, "in", d)
		}
		if !retry.Sleep(ctx, d) {
			return Identity{}, ctx.Err()
		}
	}
}

func enrolOnce(ctx context.Context, hc *http.Client, u string, body []byte) (robotwire.EnrolResponse, error) {
	var out robotwire.EnrolResponse
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return out, fmt.Errorf("enrol: %w", err)
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(r)
	if err != nil {
		return out, fmt.Errorf("enrol: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return out, fmt.Errorf("enrol: read answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
			return out, fmt.Errorf("enrol: the daemon's answer is not an identity (HTTP 200)")
		}
		return out, nil
	}
	var e robotwire.EnrolError
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return out, fmt.Errorf("enrol: HTTP %d: %s", resp.StatusCode, msg)
	}
	return out, fmt.Errorf("%w: HTTP %d: %s", ErrEnrolRefused, resp.StatusCode, msg)
}

// ParseRemoteAccess reads a --remote-access value, PROTOCOL://[USER@]HOST[:PORT]
// (rdp, ssh or vnc; the port defaults to the protocol's).
func ParseRemoteAccess(s string) (*robotwire.RemoteAccess, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("--remote-access %q: want PROTOCOL://[USER@]HOST[:PORT], e.g. rdp://robot@10.0.0.5:3389", s)
	}
	ports := map[string]int{"rdp": 3389, "ssh": 22, "vnc": 5900}
	port, ok := ports[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("--remote-access %q: protocol %q is not rdp, ssh or vnc", s, u.Scheme)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("--remote-access %q: port %q is not 1-65535", s, p)
		}
		port = n
	}
	return &robotwire.RemoteAccess{Protocol: u.Scheme, Host: u.Hostname(), Port: port, Username: u.User.Username()}, nil
}

// Addresses lists the machine's IP addresses other than loopback and
// link-local ones, for the VM row of an enrolment.
func Addresses() []string {
	var out []string
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsLinkLocalMulticast() {
			continue
		}
		out = append(out, ipn.IP.String())
		if len(out) == 16 {
			break
		}
	}
	return out
}
