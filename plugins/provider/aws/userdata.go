package aws

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// TokenEnv is how the robot agent receives its token.
const TokenEnv = "RPACLOUD_ROBOT_TOKEN"

// q quotes a string for YAML: a JSON string is a valid YAML flow scalar,
// so nothing a request carries can break out of its field.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// UserData is the cloud-init document a robot VM boots with: it writes the
// robot's environment (token, daemon URL, proxy) to a root-only file,
// points the resolver at the network profile's DNS servers, downloads the
// rpacloud binary (checking its SHA-256 when given) and starts `rpacloud
// robot` as a systemd service that restarts on failure.
//
// The token travels in the user data because a VM has no other channel
// before its robot first calls in; the instance is launched with IMDSv2
// required, and operators should deny ec2:DescribeInstanceAttribute for
// userData to everyone but administrators.
func UserData(req sdk.CreateRequest, robotURL, sha256 string) string {
	env := []string{
		TokenEnv + "=" + req.RobotToken,
		"RPACLOUD_SERVER=" + req.ServerURL,
		"RPACLOUD_ROBOT_NAME=" + req.RobotName,
	}
	var dns []string
	network := map[string]any{}
	if n := req.Network; n != nil {
		if n.Proxy != "" {
			// The robot reaches the daemon directly; task traffic goes
			// through the pool's proxy.
			noProxy := "localhost,127.0.0.1,::1,169.254.169.254"
			if u, err := url.Parse(req.ServerURL); err == nil && u.Hostname() != "" {
				noProxy = u.Hostname() + "," + noProxy
			}
			for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
				env = append(env, k+"="+n.Proxy)
			}
			env = append(env, "NO_PROXY="+noProxy, "no_proxy="+noProxy)
		}
		dns = n.DNS
		network = map[string]any{"proxy": n.Proxy, "dns": n.DNS, "allow": n.Allow, "deny": n.Deny}
	}
	netJSON, _ := json.Marshal(network)

	var b strings.Builder
	w := func(lines ...string) {
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	w("#cloud-config",
		"# rpacloud robot "+strings.NewReplacer("\n", " ", "\r", " ").Replace(req.RobotName),
		"write_files:",
		"  - path: /etc/rpacloud/robot.env",
		"    permissions: '0600'",
		"    owner: root:root",
		"    content: "+q(strings.Join(env, "\n")+"\n"),
		"  - path: /etc/rpacloud/network.json",
		"    permissions: '0644'",
		"    content: "+q(string(netJSON)+"\n"),
		"  - path: /etc/systemd/system/rpacloud-robot.service",
		"    permissions: '0644'",
		"    content: "+q(unit))
	if len(dns) > 0 {
		w("  - path: /etc/systemd/resolved.conf.d/rpacloud.conf",
			"    permissions: '0644'",
			"    content: "+q("[Resolve]\nDNS="+strings.Join(dns, " ")+"\nDomains=~.\n"))
	}
	if st := req.Setup; st != nil {
		// The pool's preparation (lifecycle step S2): the manifest is what
		// the image's own preparation tooling and the S2 checklist read;
		// software names are installed as distribution packages.
		manifest, _ := json.Marshal(map[string]any{"software": st.Software, "config_files": st.ConfigFiles, "remote_access": st.RemoteAccess})
		w("  - path: /etc/rpacloud/setup.json",
			"    permissions: '0644'",
			"    content: "+q(string(manifest)+"\n"))
		if len(st.Software) > 0 {
			w("packages:")
			for _, pkg := range st.Software {
				w("  - " + q(pkg))
			}
		}
		if st.RemoteAccess == "ssh" {
			w("ssh_pwauth: false")
		}
	}
	w("runcmd:")
	if len(dns) > 0 {
		w("  - [systemctl, restart, systemd-resolved]")
	}
	w("  - [useradd, --system, --home-dir, /var/lib/rpacloud, --create-home, rpacloud]",
		"  - [curl, -fsSL, --retry, '10', --retry-connrefused, -o, /usr/local/bin/rpacloud, "+q(robotURL)+"]")
	if sha256 != "" {
		w("  - [sh, -c, " + q("echo '"+sha256+"  /usr/local/bin/rpacloud' | sha256sum -c - || { rm -f /usr/local/bin/rpacloud; exit 1; }") + "]")
	}
	w("  - [chmod, '0755', /usr/local/bin/rpacloud]",
		"  - [systemctl, daemon-reload]",
		"  - [systemctl, enable, --now, rpacloud-robot.service]")
	return b.String()
}

const unit = `[Unit]
Description=rpacloud robot agent
After=network-online.target
Wants=network-online.target

[Service]
User=rpacloud
EnvironmentFile=/etc/rpacloud/robot.env
ExecStart=/usr/local/bin/rpacloud robot --server ${RPACLOUD_SERVER} --name ${RPACLOUD_ROBOT_NAME}
Restart=always
RestartSec=5
NoNewPrivileges=true

[Install]
WantedBy=multi-user.target
`
