package robotagent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotwire"
)

// specQ asks for one process's spec; robotapi answers only robots of the
// process's pool.
const specQ = `query($p:String!){processSpec(process:$p)}`

// SpecClient fetches specs from the daemon (the processSpec query) and
// keeps each for a while: a robot runs many tasks of one process, and the
// spec changes only with the daemon's configuration.
type SpecClient struct {
	Client *gqlclient.Client // with the robot's token
	TTL    time.Duration     // default 1 minute

	mu    sync.Mutex
	cache map[string]specEntry
}

type specEntry struct {
	spec *robotwire.ProcessSpec
	at   time.Time
}

// Spec returns the spec of process.
func (c *SpecClient) Spec(ctx context.Context, process string) (*robotwire.ProcessSpec, error) {
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
	var out struct {
		ProcessSpec json.RawMessage `json:"processSpec"`
	}
	if err := c.Client.Do(ctx, specQ, map[string]any{"p": process}, &out); err != nil {
		return nil, fmt.Errorf("fetch the spec of process %q: %w", process, err)
	}
	var spec robotwire.ProcessSpec
	if err := json.Unmarshal(out.ProcessSpec, &spec); err != nil {
		return nil, fmt.Errorf("fetch the spec of process %q: malformed reply: %w", process, err)
	}
	if spec.Name != process {
		return nil, fmt.Errorf("fetch the spec of process %q: the daemon answered for another process", process)
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]specEntry{}
	}
	c.cache[process] = specEntry{spec: &spec, at: time.Now()}
	c.mu.Unlock()
	return &spec, nil
}
