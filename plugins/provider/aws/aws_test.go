package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/plugins/provider/aws/ec2fake"
	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

const (
	akid   = "AKIAEXAMPLE0000000001"
	secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// fakeClock runs with real time plus an offset the test moves, so SigV4
// timestamps stay within EC2's fifteen minutes.
func newFake(t *testing.T) (*ec2fake.Server, *sdktest.Clock, string) {
	clk := sdktest.RunningClock()
	f := ec2fake.New("eu-central-1", akid, secret, clk.Now)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, clk, srv.URL
}

func testConfig(endpoint string) map[string]string {
	return map[string]string{
		"region": "eu-central-1", "image_id": "ami-0123456789abcdef0", "instance_type": "t3.large",
		"subnet_id": "subnet-0aa", "security_group_ids": `["sg-01","sg-02"]`,
		"robot_url": "https://artifacts.internal/rpacloud/v1/rpacloud-linux-amd64", "robot_sha256": strings.Repeat("ab", 32),
		"access_key_id": akid, "secret_access_key": secret, "endpoint": endpoint, "max_attempts": "3",
		"max_instances": "6", "tags": "cost-centre=tax",
	}
}

func configured(t *testing.T, endpoint string, edit func(map[string]string)) *Provider {
	p := New()
	cfg := testConfig(endpoint)
	if edit != nil {
		edit(cfg)
	}
	diags, err := p.Configure(context.Background(), cfg)
	if err != nil || len(diags) > 0 {
		t.Fatalf("Configure: %v %v", diags, err)
	}
	return p
}

func req(i int) sdk.CreateRequest {
	return sdk.CreateRequest{IdempotencyKey: fmt.Sprintf("rpacloud-tax-%04d", i), Pool: "tax", RobotName: fmt.Sprintf("tax-%04d", i),
		ServerURL: "https://rpacloud.internal", RobotToken: "rpc_SECRET-token-of-robot", Labels: map[string]string{"rpacloud.pool": "tax"},
		Network: &sdk.NetworkProfile{Proxy: "http://egress.internal:3128", DNS: []string{"10.20.0.53"}, Allow: []string{"etax.example.gov"}, Deny: []string{"*"}}}
}

func TestContract(t *testing.T) {
	var url string
	sdktest.RunProviderContract(t, sdktest.ProviderContract{
		Name: Name, Capacity: 6,
		New: func(t *testing.T) sdk.Provider {
			f, _, u := newFake(t)
			f.BootTime = 0
			url = u
			return New()
		},
		ConfigFor: func(t *testing.T) map[string]string { return testConfig(url) },
		Request:   req,
	})
}

func TestLifecycleAndUserData(t *testing.T) {
	f, clk, url := newFake(t)
	p := configured(t, url, nil)
	ctx := context.Background()
	in, err := p.Create(ctx, req(1))
	if err != nil {
		t.Fatal(err)
	}
	if in.State != sdk.InstanceCreating || in.IdempotencyKey != "rpacloud-tax-0001" || in.Pool != "tax" || in.Address == "" {
		t.Fatalf("created %+v", in)
	}
	insts := f.Instances()
	if len(insts) != 1 {
		t.Fatalf("%d instances on EC2", len(insts))
	}
	got := insts[0]
	if got.Type != "t3.large" || got.SubnetID != "subnet-0aa" || strings.Join(got.SecurityGroups, ",") != "sg-01,sg-02" ||
		got.Tags["rpacloud:key"] != "rpacloud-tax-0001" || got.Tags["cost-centre"] != "tax" || got.ClientToken != "rpacloud-tax-0001" {
		t.Fatalf("RunInstances parameters: %+v", got)
	}
	ud, err := base64.StdEncoding.DecodeString(got.UserData)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#cloud-config", `RPACLOUD_ROBOT_TOKEN=rpc_SECRET-token-of-robot`, "RPACLOUD_SERVER=https://rpacloud.internal",
		"HTTPS_PROXY=http://egress.internal:3128", "NO_PROXY=rpacloud.internal,", "DNS=10.20.0.53", "permissions: '0600'",
		"rpacloud robot --server ${RPACLOUD_SERVER}", "enable, --now, rpacloud-robot.service", "sha256sum -c",
		`\"deny\":[\"*\"]`, "https://artifacts.internal/rpacloud/v1/rpacloud-linux-amd64"} {
		if !strings.Contains(string(ud), want) {
			t.Errorf("user data lacks %q:\n%s", want, ud)
		}
	}

	clk.Add(31 * time.Second)
	list, err := p.List(ctx)
	if err != nil || len(list) != 1 || list[0].State != sdk.InstanceRunning {
		t.Fatalf("after boot: %+v %v", list, err)
	}
	if list[0].RemoteAccess != nil {
		t.Fatalf("remote access reported for a pool that declares none: %+v", list[0].RemoteAccess)
	}
	if strings.Contains(fmt.Sprintf("%+v", list), "SECRET") {
		t.Fatal("List leaks the robot token")
	}
	if err := p.Destroy(ctx, []string{in.ID}); err != nil {
		t.Fatal(err)
	}
	list, _ = p.List(ctx)
	if list[0].State != sdk.InstanceDeleting {
		t.Fatalf("after terminate: %s, want deleting (shutting-down)", list[0].State)
	}
	clk.Add(21 * time.Second)
	list, _ = p.List(ctx)
	if list[0].State != sdk.InstanceDeleted {
		t.Fatalf("after shutdown: %s, want deleted (terminated)", list[0].State)
	}
	// Terminating again, or an instance EC2 forgot, is not an error.
	if err := p.Destroy(ctx, []string{in.ID, "i-00000000000000999"}); err != nil {
		t.Fatalf("idempotent destroy: %v", err)
	}
}

func TestPagination(t *testing.T) {
	f, _, url := newFake(t)
	old := pageSize
	pageSize = 5
	t.Cleanup(func() { pageSize = old })
	p := configured(t, url, func(c map[string]string) { c["max_instances"] = "50" })
	for i := range 12 {
		if _, err := p.Create(context.Background(), req(i)); err != nil {
			t.Fatal(err)
		}
	}
	before := f.Calls("DescribeInstances")
	list, err := p.List(context.Background())
	if err != nil || len(list) != 12 {
		t.Fatalf("List: %d instances, %v", len(list), err)
	}
	if pages := f.Calls("DescribeInstances") - before; pages != 3 {
		t.Fatalf("List took %d DescribeInstances calls, want 3 pages of 5", pages)
	}
}

func TestErrors(t *testing.T) {
	f, _, url := newFake(t)
	p := configured(t, url, nil)
	ctx := context.Background()

	// Throttling is retried by the SDK.
	f.Fail("RunInstances", "RequestLimitExceeded")
	if _, err := p.Create(ctx, req(1)); err != nil {
		t.Fatalf("create after one RequestLimitExceeded: %v", err)
	}
	if n := f.Calls("RunInstances"); n != 2 {
		t.Fatalf("%d RunInstances calls, want 2 (one throttled, one retried)", n)
	}
	if n := len(f.Instances()); n != 1 {
		t.Fatalf("%d instances after a throttled create, want 1", n)
	}

	f.Fail("RunInstances", "InsufficientInstanceCapacity", "InsufficientInstanceCapacity", "InsufficientInstanceCapacity")
	if _, err := p.Create(ctx, req(2)); !errors.Is(err, sdk.ErrOutOfCapacity) {
		t.Fatalf("no capacity: %v, want ErrOutOfCapacity", err)
	}

	f.Deny("TerminateInstances", true)
	err := p.Destroy(ctx, []string{f.Instances()[0].ID})
	if err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") || !strings.Contains(err.Error(), "IAM policy") {
		t.Fatalf("denied terminate: %v", err)
	}
	f.Deny("TerminateInstances", false)

	// A reused token with other parameters is refused, not a second rental.
	other := req(1)
	other.RobotName = "tax-other"
	if _, err := configured(t, url, func(c map[string]string) { c["instance_type"] = "t3.small" }).Create(ctx, other); err != nil {
		// The plugin finds the instance by its key first and returns it.
		t.Fatalf("create with a known key: %v", err)
	}
	if n := len(f.Instances()); n != 1 {
		t.Fatalf("%d instances, want still 1", n)
	}

	bad := configured(t, url, func(c map[string]string) { c["secret_access_key"] = "wrong" })
	if _, err := bad.List(ctx); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v", err)
	}
	unknown := configured(t, url, func(c map[string]string) { c["access_key_id"] = "AKIAUNKNOWN" })
	if _, err := unknown.List(ctx); err == nil || !strings.Contains(err.Error(), "AuthFailure") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestConfigDiagnostics(t *testing.T) {
	diags, err := New().Configure(context.Background(), map[string]string{
		"region": "eu-central-1", "image_id": "img-1", "robot_url": "ftp://x", "security_group_ids": "default",
		"access_key_id": akid, "secret_access_key": secret, "max_attempts": "0", "colour": "blue", "robot_sha256": "xyz",
	})
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprint(diags)
	for _, want := range []string{"image_id", "robot_url", "security_group_ids", "max_attempts", "colour", "robot_sha256"} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnostics %s do not name %s", text, want)
		}
	}
	if strings.Contains(text, secret) {
		t.Error("diagnostics leak the secret key")
	}
}

// TestSetupAndRemoteAccess: the pool's preparation reaches the VM's
// cloud-init, and the declared protocol comes back as an endpoint on the
// instance's private address.
func TestSetupAndRemoteAccess(t *testing.T) {
	f, clk, url := newFake(t)
	p := configured(t, url, nil)
	ctx := context.Background()
	r := req(2)
	r.Setup = &sdk.VMSetup{Software: []string{"chromium", "fonts-noto-cjk"}, ConfigFiles: []string{"/etc/tax/portal.json"}, RemoteAccess: "ssh"}
	in, err := p.Create(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	got := f.Instances()[0]
	if got.Tags["rpacloud:remote-access"] != "ssh" {
		t.Fatalf("tags %v", got.Tags)
	}
	ud, err := base64.StdEncoding.DecodeString(got.UserData)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"path: /etc/rpacloud/setup.json", `/etc/tax/portal.json`, "packages:", `- "chromium"`, `- "fonts-noto-cjk"`, "ssh_pwauth: false"} {
		if !strings.Contains(string(ud), want) {
			t.Errorf("user data lacks %q:\n%s", want, ud)
		}
	}
	clk.Add(31 * time.Second)
	list, err := p.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}
	ra := list[0].RemoteAccess
	if ra == nil || ra.Protocol != "ssh" || ra.Port != 22 || ra.Host != in.Address {
		t.Fatalf("remote access %+v, want ssh to %s:22", ra, in.Address)
	}
}
