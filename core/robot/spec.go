package robot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// SpecPath is the daemon's endpoint a robot reads a process's spec from:
// GET SpecPath + process name, with the robot's token.
const SpecPath = "/robot/v1/processes/"

// ProcessSpec is what a robot needs to run a crawler or vendor process
// besides the task: the flow, the pool's network profile, the vendor
// connection (never its secrets: those come with the claim's credentials).
type ProcessSpec struct {
	Name        string              `json:"name"`
	Kind        string              `json:"kind"`   // crawler | vendor
	Runner      string              `json:"runner"` // crawler plugin, or vendor block name
	Package     string              `json:"package"`
	Flow        *sdk.Flow           `json:"flow,omitempty"`
	NetworkName string              `json:"networkName,omitempty"`
	Network     *sdk.NetworkProfile `json:"network,omitempty"`
	VendorType  string              `json:"vendorType,omitempty"` // uipath | aa
	Vendor      map[string]string   `json:"vendor,omitempty"`     // non-secret settings
}

// SpecClient fetches specs from the daemon and keeps each for a while: a
// robot runs many tasks of one process, and the spec changes only with
// the daemon's configuration.
type SpecClient struct {
	Server string // daemon URL
	Token  string // the robot's token; a secret
	HTTP   *http.Client
	TTL    time.Duration // default 1 minute

	mu    sync.Mutex
	cache map[string]specEntry
}

type specEntry struct {
	spec *ProcessSpec
	at   time.Time
}

// Spec returns the spec of process.
func (c *SpecClient) Spec(ctx context.Context, process string) (*ProcessSpec, error) {
	ttl := c.TTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	c.mu.Lock()
	if e, ok := c.cache[process]; ok && time.Since(e.at) < ttl {
		c.mu.Unlock()
		return e.spec, nil
	}
	c.mu.Unlock()
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.Server, "/")+SpecPath+url.PathEscape(process), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the spec of process %q: %w", process, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch the spec of process %q: %w", process, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the spec of process %q: HTTP %d: %s", process, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var spec ProcessSpec
	if err := json.Unmarshal(body, &spec); err != nil {
		return nil, fmt.Errorf("fetch the spec of process %q: malformed reply: %w", process, err)
	}
	if spec.Name != process {
		return nil, errors.New("fetch the spec of process " + process + ": the daemon answered for another process")
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]specEntry{}
	}
	c.cache[process] = specEntry{spec: &spec, at: time.Now()}
	c.mu.Unlock()
	return &spec, nil
}
