package sdktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// MemoryProvider is a provider that rents nothing: instances exist only in
// memory and are Running as soon as they are created. It is the reference
// implementation of the contract and a fake for daemon-side tests.
type MemoryProvider struct {
	name string

	mu        sync.Mutex
	max       int
	instances map[string]*sdk.Instance // by ID
	byKey     map[string]string        // idempotency key → ID
	creates   int
}

var _ sdk.Provider = (*MemoryProvider)(nil)

// NewMemoryProvider returns a provider that reports name in its Info.
func NewMemoryProvider(name string) *MemoryProvider {
	return &MemoryProvider{name: name, instances: map[string]*sdk.Instance{}, byKey: map[string]string{}}
}

// Info implements sdk.Provider.
func (m *MemoryProvider) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{
		Kind:          sdk.KindProvider,
		Name:          m.name,
		PluginVersion: "0.0.0",
		APIVersions:   []int{sdk.ProviderProtocolVersion},
		ConfigSchema: []sdk.ConfigAttribute{{
			Name: "max_instances", Type: sdk.TypeNumber, Default: "0",
			Description: "Most live instances at once; 0 means no limit.",
		}},
	}, nil
}

// Configure implements sdk.Provider.
func (m *MemoryProvider) Configure(_ context.Context, cfg map[string]string) ([]sdk.ConfigDiagnostic, error) {
	var diags []sdk.ConfigDiagnostic
	limit := 0
	for k, v := range cfg {
		switch k {
		case "max_instances":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				diags = append(diags, sdk.ConfigDiagnostic{Attribute: k, Message: "must be a whole number ≥ 0"})
				continue
			}
			limit = n
		default:
			diags = append(diags, sdk.ConfigDiagnostic{Attribute: k, Message: "unknown attribute"})
		}
	}
	if len(diags) > 0 {
		return diags, nil
	}
	m.mu.Lock()
	m.max = limit
	m.mu.Unlock()
	return nil, nil
}

// Create implements sdk.Provider.
func (m *MemoryProvider) Create(ctx context.Context, req sdk.CreateRequest) (sdk.Instance, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Instance{}, err
	}
	if req.IdempotencyKey == "" || req.RobotName == "" {
		return sdk.Instance{}, fmt.Errorf("idempotency key and robot name are required: %w", sdk.ErrInvalidRequest)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byKey[req.IdempotencyKey]; ok {
		return *m.instances[id], nil
	}
	if m.max > 0 && m.liveLocked() >= m.max {
		return sdk.Instance{}, fmt.Errorf("%d instances are running, the most allowed: %w", m.max, sdk.ErrOutOfCapacity)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	in := &sdk.Instance{
		ID:             "mem-" + hex.EncodeToString(b),
		IdempotencyKey: req.IdempotencyKey,
		Pool:           req.Pool,
		RobotName:      req.RobotName,
		State:          sdk.InstanceRunning,
		Address:        "memory",
		CreatedAt:      time.Now().UTC(),
	}
	m.instances[in.ID] = in
	m.byKey[in.IdempotencyKey] = in.ID
	m.creates++
	return *in, nil
}

func (m *MemoryProvider) liveLocked() int {
	n := 0
	for _, in := range m.instances {
		if in.State == sdk.InstanceCreating || in.State == sdk.InstanceRunning {
			n++
		}
	}
	return n
}

// Destroy implements sdk.Provider.
func (m *MemoryProvider) Destroy(ctx context.Context, ids []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if in, ok := m.instances[id]; ok {
			in.State = sdk.InstanceDeleted
		}
	}
	return nil
}

// List implements sdk.Provider.
func (m *MemoryProvider) List(ctx context.Context) ([]sdk.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]sdk.Instance, 0, len(m.instances))
	for _, in := range m.instances {
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Creates reports how many instances were actually rented (not answered
// from the idempotency key).
func (m *MemoryProvider) Creates() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.creates
}

// Fail marks an instance failed, as a cloud would report a VM that died.
func (m *MemoryProvider) Fail(id, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if in, ok := m.instances[id]; ok {
		in.State = sdk.InstanceFailed
		in.Error = reason
	}
}
