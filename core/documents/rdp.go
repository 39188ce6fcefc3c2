package documents

import (
	"fmt"
	"strings"
)

// RDPFile is a Remote Desktop connection file for a VM, as Microsoft's
// clients read it (one "name:type:value" per line, CRLF). It never holds
// a password: the user types it, or the client asks its own store.
func RDPFile(v VM) ([]byte, error) {
	if v.Protocol != "rdp" {
		return nil, fmt.Errorf("documents: VM %q is reached by %q, not RDP", v.Name, v.Protocol)
	}
	if v.Host == "" || strings.ContainsAny(v.Host+v.Username, "\r\n") || v.Port < 1 || v.Port > 65535 {
		return nil, fmt.Errorf("documents: VM %q has an invalid RDP endpoint %s:%d", v.Name, v.Host, v.Port)
	}
	lines := []string{
		fmt.Sprintf("full address:s:%s:%d", v.Host, v.Port),
		"prompt for credentials:i:1",
		"administrative session:i:0",
		"screen mode id:i:2",
		"authentication level:i:2",
		"redirectclipboard:i:1",
		"redirectprinters:i:0",
		"redirectdrives:i:0",
		"autoreconnection enabled:i:1",
	}
	if v.Username != "" {
		lines = append(lines, "username:s:"+v.Username)
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n"), nil
}
