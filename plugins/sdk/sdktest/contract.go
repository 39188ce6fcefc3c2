// Package sdktest checks plugin implementations against the rpacloud plugin
// contract, in memory: the implementation is served over a real gRPC
// connection (go-plugin's TestPluginGRPCConn), so errors and data cross the
// same wire they cross in production.
package sdktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Connect serves impl over an in-memory gRPC connection and returns the
// client the daemon would use. Both ends are closed when t ends.
func Connect(t testing.TB, impl sdk.Provider) *sdk.GRPCProviderClient {
	t.Helper()
	return connect(t, sdk.KindProvider, &sdk.ProviderPlugin{Impl: impl}).(*sdk.GRPCProviderClient)
}

// ConnectCrawler is Connect for a crawler plugin.
func ConnectCrawler(t testing.TB, impl sdk.Crawler) *sdk.GRPCCrawlerClient {
	t.Helper()
	return connect(t, sdk.KindCrawler, &sdk.CrawlerPlugin{Impl: impl}).(*sdk.GRPCCrawlerClient)
}

// ConnectVendor is Connect for a vendor plugin.
func ConnectVendor(t testing.TB, impl sdk.Vendor) *sdk.GRPCVendorClient {
	t.Helper()
	return connect(t, sdk.KindVendor, &sdk.VendorPlugin{Impl: impl}).(*sdk.GRPCVendorClient)
}

func connect(t testing.TB, kind string, p plugin.Plugin) any {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{kind: p})
	t.Cleanup(func() {
		// Close asks the server to stop, as the daemon does; stopping it
		// here as well would race with that.
		_ = client.Close()
		select {
		case <-server.DoneCh:
		case <-time.After(5 * time.Second):
			t.Errorf("in-memory plugin server did not stop after the client closed")
		}
	})
	raw, err := client.Dispense(kind)
	if err != nil {
		t.Fatalf("dispense %s: %v", kind, err)
	}
	return raw
}

// ProviderContract describes the provider under test.
type ProviderContract struct {
	// New returns a fresh, unconfigured provider for each subtest. Clean-up
	// (stopping processes, removing files) is registered on t.
	New func(t *testing.T) sdk.Provider
	// Name is the plugin name Info must report; empty accepts any.
	Name string
	// Config is a valid configuration for the provider.
	Config map[string]string
	// ConfigFor, when set, replaces Config with one configuration per
	// subtest (e.g. a fresh state directory from t.TempDir()).
	ConfigFor func(t *testing.T) map[string]string
	// Capacity, when > 0, is the number of live instances after which
	// Create must fail with sdk.ErrOutOfCapacity (Config must set it up).
	Capacity int
	// Request, when set, builds the i-th create request; the default
	// builds pool "contract", robot "contract-robot-<i>".
	Request func(i int) sdk.CreateRequest
	// Timeout bounds each call; default 30s.
	Timeout time.Duration
}

// secretToken is sent with every request; no answer may contain it.
const secretToken = "sdktest-SECRET-robot-token-3f9a"

func (c ProviderContract) request(i int) sdk.CreateRequest {
	var r sdk.CreateRequest
	if c.Request != nil {
		r = c.Request(i)
	} else {
		r = sdk.CreateRequest{
			Pool:      "contract",
			RobotName: fmt.Sprintf("contract-robot-%d", i),
			ServerURL: "http://127.0.0.1:1",
			Labels:    map[string]string{"rpacloud.pool": "contract"},
		}
	}
	if r.IdempotencyKey == "" {
		r.IdempotencyKey = fmt.Sprintf("rpacloud-contract-key-%d", i)
	}
	r.RobotToken = secretToken
	return r
}

func (c ProviderContract) config(t *testing.T) map[string]string {
	if c.ConfigFor != nil {
		return c.ConfigFor(t)
	}
	return c.Config
}

func (c ProviderContract) ctx(t *testing.T) context.Context {
	d := c.Timeout
	if d <= 0 {
		d = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// start connects a fresh provider, configures it, and destroys whatever
// it still runs when the subtest ends.
func (c ProviderContract) start(t *testing.T) *sdk.GRPCProviderClient {
	t.Helper()
	p := Connect(t, c.New(t))
	ctx := c.ctx(t)
	diags, err := p.Configure(ctx, c.config(t))
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if len(diags) > 0 {
		t.Fatalf("Configure rejected the contract's config: %v", diags)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, err := p.List(ctx)
		if err != nil {
			t.Errorf("List at clean-up: %v", err)
			return
		}
		var ids []string
		for _, in := range list {
			ids = append(ids, in.ID)
		}
		if err := p.Destroy(ctx, ids); err != nil {
			t.Errorf("Destroy at clean-up: %v", err)
		}
	})
	return p
}

// RunProviderContract runs the provider contract as subtests of t.
func RunProviderContract(t *testing.T, c ProviderContract) {
	t.Run("Info", func(t *testing.T) {
		p := Connect(t, c.New(t))
		info, err := p.Info(c.ctx(t))
		if err != nil {
			t.Fatalf("Info: %v", err)
		}
		if info.Kind != sdk.KindProvider {
			t.Errorf("Info kind = %q, want %q", info.Kind, sdk.KindProvider)
		}
		if info.Name == "" || (c.Name != "" && info.Name != c.Name) {
			t.Errorf("Info name = %q, want %q", info.Name, c.Name)
		}
		if !slices.Contains(info.APIVersions, sdk.ProviderProtocolVersion) {
			t.Errorf("Info api versions %v lack %d", info.APIVersions, sdk.ProviderProtocolVersion)
		}
		seen := map[string]bool{}
		for _, a := range info.ConfigSchema {
			if a.Name == "" || seen[a.Name] {
				t.Errorf("config schema: empty or duplicate attribute name %q", a.Name)
			}
			seen[a.Name] = true
			switch a.Type {
			case sdk.TypeString, sdk.TypeNumber, sdk.TypeBool, sdk.TypeDuration, sdk.TypeList:
			default:
				t.Errorf("config schema: attribute %q has unknown type %q", a.Name, a.Type)
			}
		}
		for k := range c.config(t) {
			if !seen[k] {
				t.Errorf("config attribute %q is not in the schema", k)
			}
		}
	})

	t.Run("ConfigureRejectsUnknownAttribute", func(t *testing.T) {
		p := Connect(t, c.New(t))
		cfg := map[string]string{"no_such_attribute_xyz": "1"}
		for k, v := range c.config(t) {
			cfg[k] = v
		}
		diags, err := p.Configure(c.ctx(t), cfg)
		if err != nil {
			t.Fatalf("Configure: %v", err)
		}
		found := false
		for _, d := range diags {
			found = found || d.Attribute == "no_such_attribute_xyz"
		}
		if !found {
			t.Errorf("Configure with an unknown attribute: diagnostics %v do not name it", diags)
		}
	})

	t.Run("CreateThenList", func(t *testing.T) {
		p := c.start(t)
		ctx := c.ctx(t)
		req := c.request(1)
		in, err := p.Create(ctx, req)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		checkInstance(t, in, req)
		list, err := p.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got := find(list, in.ID)
		if got == nil {
			t.Fatalf("List does not show created instance %s: %+v", in.ID, list)
		}
		checkInstance(t, *got, req)
		checkNoToken(t, list)
	})

	t.Run("CreateIsIdempotent", func(t *testing.T) {
		p := c.start(t)
		ctx := c.ctx(t)
		req := c.request(2)
		first, err := p.Create(ctx, req)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		second, err := p.Create(ctx, req)
		if err != nil {
			t.Fatalf("second Create with the same key: %v", err)
		}
		if second.ID != first.ID {
			t.Fatalf("second Create with the same key rented %s, first was %s", second.ID, first.ID)
		}
		list, err := p.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if n := countKey(list, req.IdempotencyKey); n != 1 {
			t.Fatalf("List shows %d instances with key %s, want 1", n, req.IdempotencyKey)
		}
	})

	t.Run("ConcurrentCreatesWithOneKey", func(t *testing.T) {
		p := c.start(t)
		ctx := c.ctx(t)
		req := c.request(3)
		ids := make([]string, 4)
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				in, err := p.Create(ctx, req)
				ids[i], errs[i] = in.ID, err
			})
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil {
				t.Fatalf("Create #%d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("concurrent creates with one key rented %v", ids)
			}
		}
	})

	t.Run("DestroyUnknownIsNoError", func(t *testing.T) {
		p := c.start(t)
		ctx := c.ctx(t)
		if err := p.Destroy(ctx, []string{"no-such-instance-42"}); err != nil {
			t.Errorf("Destroy of an unknown ID: %v", err)
		}
		if err := p.Destroy(ctx, nil); err != nil {
			t.Errorf("Destroy of nothing: %v", err)
		}
	})

	t.Run("DestroyIsIdempotent", func(t *testing.T) {
		p := c.start(t)
		ctx := c.ctx(t)
		req := c.request(4)
		in, err := p.Create(ctx, req)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := p.Destroy(ctx, []string{in.ID}); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		if err := p.Destroy(ctx, []string{in.ID}); err != nil {
			t.Fatalf("second Destroy: %v", err)
		}
		list, err := p.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if got := find(list, in.ID); got != nil && got.State != sdk.InstanceDeleted && got.State != sdk.InstanceDeleting {
			t.Fatalf("destroyed instance is %s", got.State)
		}
	})

	t.Run("InvalidRequest", func(t *testing.T) {
		p := c.start(t)
		req := c.request(5)
		req.IdempotencyKey = ""
		_, err := p.Create(c.ctx(t), req)
		if !errors.Is(err, sdk.ErrInvalidRequest) {
			t.Fatalf("Create without an idempotency key: err = %v, want ErrInvalidRequest", err)
		}
	})

	if c.Capacity > 0 {
		t.Run("OutOfCapacity", func(t *testing.T) {
			p := c.start(t)
			ctx := c.ctx(t)
			for i := range c.Capacity {
				if _, err := p.Create(ctx, c.request(100+i)); err != nil {
					t.Fatalf("Create %d of %d: %v", i+1, c.Capacity, err)
				}
			}
			_, err := p.Create(ctx, c.request(100+c.Capacity))
			if !errors.Is(err, sdk.ErrOutOfCapacity) {
				t.Fatalf("Create beyond capacity: err = %v, want ErrOutOfCapacity", err)
			}
		})
	}
}

func checkInstance(t *testing.T, in sdk.Instance, req sdk.CreateRequest) {
	t.Helper()
	if in.ID == "" {
		t.Errorf("instance has no ID: %+v", in)
	}
	if in.IdempotencyKey != req.IdempotencyKey || in.Pool != req.Pool || in.RobotName != req.RobotName {
		t.Errorf("instance %+v does not match request %v", in, req)
	}
	if in.State != sdk.InstanceCreating && in.State != sdk.InstanceRunning {
		t.Errorf("new instance is %s (%s), want creating or running", in.State, in.Error)
	}
	if in.CreatedAt.IsZero() {
		t.Errorf("instance %s has no creation time", in.ID)
	}
	checkNoToken(t, []sdk.Instance{in})
}

func checkNoToken(t *testing.T, list []sdk.Instance) {
	t.Helper()
	if s := fmt.Sprintf("%+v", list); strings.Contains(s, secretToken) {
		t.Errorf("an instance carries the robot token: %s", s)
	}
}

func find(list []sdk.Instance, id string) *sdk.Instance {
	for i := range list {
		if list[i].ID == id {
			return &list[i]
		}
	}
	return nil
}

func countKey(list []sdk.Instance, key string) int {
	n := 0
	for _, in := range list {
		if in.IdempotencyKey == key {
			n++
		}
	}
	return n
}
