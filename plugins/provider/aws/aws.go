// Package aws is a provider plugin that rents robots as Amazon EC2
// instances, through the official SDK (aws-sdk-go-v2):
//
//   - Create is RunInstances with ClientToken = the idempotency key, so a
//     retried create returns the instance the first call launched; the
//     instance is tagged with its pool, robot and key, and its user data
//     (cloud-init) installs `rpacloud robot` as a systemd service with its
//     token and the pool's network profile;
//   - List is DescribeInstances filtered on the rpacloud tags, page by
//     page (NextToken);
//   - Destroy is TerminateInstances; an instance EC2 no longer knows
//     (InvalidInstanceID.NotFound) counts as destroyed.
//
// Instance states map onto the SDK's: pending → creating, running →
// running, stopping/shutting-down → deleting, terminated → deleted,
// stopped → failed (a robot VM that stopped does no work).
package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	hclog "github.com/hashicorp/go-hclog"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Name is the plugin's name in HCL (`plugin = "aws"`).
const Name = "aws"

// Version is the plugin's release version, set by the build.
var Version = "dev"

// Tags put on every instance. tagKey carries the idempotency key, so List
// can match instances to the daemon's VM rows.
const (
	tagManaged = "rpacloud:managed"
	tagPool    = "rpacloud:pool"
	tagRobot   = "rpacloud:robot"
	tagKey     = "rpacloud:key"
	// tagRemote keeps the pool's remote-access protocol on the instance,
	// so List can report the endpoint without state in the plugin.
	tagRemote = "rpacloud:remote-access"
)

// pageSize is DescribeInstances' MaxResults; a variable so tests can make
// pagination visible with a few instances.
var pageSize int32 = 100

// Main serves the plugin.
func Main() { sdk.ServeProvider(New()) }

// Provider implements sdk.Provider on EC2.
type Provider struct {
	log hclog.Logger

	mu     sync.Mutex
	cfg    config
	client *ec2.Client
}

var _ sdk.Provider = (*Provider)(nil)

// New returns an unconfigured provider.
func New() *Provider { return &Provider{log: sdk.Logger().Named(Name)} }

type config struct {
	region, endpoint       string
	accessKey, secretKey   string
	imageID, instanceType  string
	subnetID, instanceRole string
	securityGroups         []string
	robotURL, robotSHA256  string
	maxAttempts            int
	maxInstances           int
	extraTags              map[string]string
}

var attributes = []sdk.ConfigAttribute{
	{Name: "region", Type: sdk.TypeString, Required: true, Description: "AWS region, e.g. eu-central-1."},
	{Name: "image_id", Type: sdk.TypeString, Required: true, Description: "AMI of the robot VMs: a Linux with systemd and cloud-init (Ubuntu, Debian, Amazon Linux)."},
	{Name: "instance_type", Type: sdk.TypeString, Default: "t3.medium", Description: "EC2 instance type."},
	{Name: "subnet_id", Type: sdk.TypeString, Description: "Subnet to launch into; default: the region's default VPC."},
	{Name: "security_group_ids", Type: sdk.TypeList, Description: "Security groups, comma-separated."},
	{Name: "iam_instance_profile", Type: sdk.TypeString, Description: "Instance profile name for the robot VMs (none by default)."},
	{Name: "robot_url", Type: sdk.TypeString, Required: true, Description: "HTTPS URL the VM downloads the rpacloud binary from at boot."},
	{Name: "robot_sha256", Type: sdk.TypeString, Description: "SHA-256 of that binary; the VM refuses a binary that does not match."},
	{Name: "access_key_id", Type: sdk.TypeString, Required: true, Sensitive: true, Description: "Access key ID of the IAM user or role the plugin acts as."},
	{Name: "secret_access_key", Type: sdk.TypeString, Required: true, Sensitive: true, Description: "Its secret access key."},
	{Name: "endpoint", Type: sdk.TypeString, Description: "EC2 API endpoint URL, for VPC interface endpoints or a regional proxy; default: the region's public endpoint."},
	{Name: "max_attempts", Type: sdk.TypeNumber, Default: "5", Description: "Attempts per API call; throttling (RequestLimitExceeded) is retried with back-off."},
	{Name: "max_instances", Type: sdk.TypeNumber, Default: "100", Description: "Most robot instances alive at once; more are refused as out of capacity."},
	{Name: "tags", Type: sdk.TypeList, Description: "Extra instance tags as key=value, comma-separated (e.g. cost-centre=tax)."},
}

// Info implements sdk.Provider.
func (p *Provider) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Kind: sdk.KindProvider, Name: Name, PluginVersion: Version,
		APIVersions: []int{sdk.ProviderProtocolVersion}, Capabilities: []string{"network.proxy", "network.dns"},
		ConfigSchema: attributes}, nil
}

// Configure implements sdk.Provider.
func (p *Provider) Configure(_ context.Context, raw map[string]string) ([]sdk.ConfigDiagnostic, error) {
	cfg, diags := parseConfig(raw)
	if len(diags) > 0 {
		return diags, nil
	}
	opts := ec2.Options{
		Region:      cfg.region,
		Credentials: credentials.NewStaticCredentialsProvider(cfg.accessKey, cfg.secretKey, ""),
		Retryer:     retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = cfg.maxAttempts }),
	}
	if cfg.endpoint != "" {
		opts.BaseEndpoint = awssdk.String(cfg.endpoint)
	}
	p.mu.Lock()
	p.cfg, p.client = cfg, ec2.New(opts)
	p.mu.Unlock()
	p.log.Info("configured", "region", cfg.region, "image", cfg.imageID, "type", cfg.instanceType, "endpoint", cfg.endpoint)
	return nil, nil
}

func parseConfig(raw map[string]string) (config, []sdk.ConfigDiagnostic) {
	cfg := config{instanceType: "t3.medium", maxAttempts: 5, maxInstances: 100, extraTags: map[string]string{}}
	var diags []sdk.ConfigDiagnostic
	bad := func(attr, format string, args ...any) {
		diags = append(diags, sdk.ConfigDiagnostic{Attribute: attr, Message: fmt.Sprintf(format, args...)})
	}
	known := map[string]bool{}
	for _, a := range attributes {
		known[a.Name] = true
		if a.Required && strings.TrimSpace(raw[a.Name]) == "" {
			bad(a.Name, "required: %s", a.Description)
		}
	}
	for k := range raw {
		if !known[k] {
			names := make([]string, 0, len(attributes))
			for _, a := range attributes {
				names = append(names, a.Name)
			}
			bad(k, "unknown attribute; the aws provider has %s", strings.Join(names, ", "))
		}
	}
	cfg.region, cfg.imageID = raw["region"], raw["image_id"]
	cfg.accessKey, cfg.secretKey = raw["access_key_id"], raw["secret_access_key"]
	cfg.subnetID, cfg.instanceRole = raw["subnet_id"], raw["iam_instance_profile"]
	cfg.robotURL, cfg.robotSHA256 = raw["robot_url"], strings.ToLower(raw["robot_sha256"])
	if v := raw["instance_type"]; v != "" {
		cfg.instanceType = v
	}
	if cfg.imageID != "" && !strings.HasPrefix(cfg.imageID, "ami-") {
		bad("image_id", "%q is not an AMI ID (ami-...)", cfg.imageID)
	}
	if v := raw["robot_url"]; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			bad("robot_url", "want an http(s) URL without credentials, got %q", v)
		}
	}
	if v := cfg.robotSHA256; v != "" && (len(v) != 64 || strings.Trim(v, "0123456789abcdef") != "") {
		bad("robot_sha256", "want 64 hexadecimal digits")
	}
	if v := raw["endpoint"]; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("endpoint", "want an http(s) URL, got %q", v)
		}
		cfg.endpoint = v
	}
	for _, g := range splitList(raw["security_group_ids"]) {
		if !strings.HasPrefix(g, "sg-") {
			bad("security_group_ids", "%q is not a security group ID (sg-...)", g)
		}
		cfg.securityGroups = append(cfg.securityGroups, g)
	}
	for _, t := range splitList(raw["tags"]) {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" || strings.HasPrefix(k, "rpacloud:") || strings.HasPrefix(k, "aws:") {
			bad("tags", "%q: want key=value with a key not starting with rpacloud: or aws:", t)
			continue
		}
		cfg.extraTags[k] = v
	}
	for name, dst := range map[string]*int{"max_attempts": &cfg.maxAttempts, "max_instances": &cfg.maxInstances} {
		if v := raw[name]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				bad(name, "must be a whole number ≥ 1, got %q", v)
			}
			*dst = n
		}
	}
	return cfg, diags
}

// splitList reads a list attribute: comma-separated, or the JSON array the
// configuration loader passes for an HCL list.
func splitList(s string) []string {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.Trim(strings.TrimSpace(part), `"`)
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

func (p *Provider) get() (config, *ec2.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		return config{}, nil, fmt.Errorf("aws provider: %w: not configured", sdk.ErrInvalidRequest)
	}
	return p.cfg, p.client, nil
}

// clientToken turns an idempotency key into an EC2 ClientToken: at most 64
// ASCII characters. Longer keys are shortened by keeping a distinct tail.
func clientToken(key string) string {
	if len(key) <= 64 {
		return key
	}
	return key[:32] + key[len(key)-32:]
}

// Create implements sdk.Provider.
func (p *Provider) Create(ctx context.Context, req sdk.CreateRequest) (sdk.Instance, error) {
	cfg, c, err := p.get()
	if err != nil {
		return sdk.Instance{}, err
	}
	if req.IdempotencyKey == "" || req.RobotName == "" || req.ServerURL == "" || req.RobotToken == "" {
		return sdk.Instance{}, fmt.Errorf("aws provider: %w: idempotency key, robot name, server URL and token are required", sdk.ErrInvalidRequest)
	}
	// A retried create finds its instance by token (RunInstances is
	// idempotent on it) without counting it twice against max_instances.
	live, err := p.List(ctx)
	if err != nil {
		return sdk.Instance{}, err
	}
	n := 0
	for _, in := range live {
		if in.IdempotencyKey == req.IdempotencyKey {
			return in, nil
		}
		if in.State == sdk.InstanceCreating || in.State == sdk.InstanceRunning {
			n++
		}
	}
	if n >= cfg.maxInstances {
		return sdk.Instance{}, fmt.Errorf("aws provider: %d instances alive, max_instances = %d: %w", n, cfg.maxInstances, sdk.ErrOutOfCapacity)
	}
	tags := []types.Tag{
		{Key: awssdk.String(tagManaged), Value: awssdk.String("true")},
		{Key: awssdk.String(tagPool), Value: awssdk.String(req.Pool)},
		{Key: awssdk.String(tagRobot), Value: awssdk.String(req.RobotName)},
		{Key: awssdk.String(tagKey), Value: awssdk.String(req.IdempotencyKey)},
		{Key: awssdk.String("Name"), Value: awssdk.String("rpacloud-" + req.RobotName)},
	}
	if req.Setup != nil && req.Setup.RemoteAccess != "" {
		tags = append(tags, types.Tag{Key: awssdk.String(tagRemote), Value: awssdk.String(req.Setup.RemoteAccess)})
	}
	keys := make([]string, 0, len(cfg.extraTags))
	for k := range cfg.extraTags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: awssdk.String(k), Value: awssdk.String(cfg.extraTags[k])})
	}
	in := &ec2.RunInstancesInput{
		ImageId: awssdk.String(cfg.imageID), InstanceType: types.InstanceType(cfg.instanceType),
		MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1),
		ClientToken: awssdk.String(clientToken(req.IdempotencyKey)),
		UserData:    awssdk.String(base64.StdEncoding.EncodeToString([]byte(UserData(req, cfg.robotURL, cfg.robotSHA256)))),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		},
		// IMDSv2 only: the user data holds the robot token, and
		// session tokens keep SSRF-style reads of the metadata out.
		MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired},
	}
	if cfg.subnetID != "" {
		in.SubnetId = awssdk.String(cfg.subnetID)
	}
	if len(cfg.securityGroups) > 0 {
		in.SecurityGroupIds = cfg.securityGroups
	}
	if cfg.instanceRole != "" {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: awssdk.String(cfg.instanceRole)}
	}
	out, err := c.RunInstances(ctx, in)
	if err != nil {
		return sdk.Instance{}, classify("RunInstances for robot "+req.RobotName, err)
	}
	if len(out.Instances) != 1 {
		return sdk.Instance{}, fmt.Errorf("aws provider: RunInstances for robot %s returned %d instances, want 1", req.RobotName, len(out.Instances))
	}
	inst := instance(out.Instances[0])
	p.log.Info("instance launched", "instance", inst.ID, "robot", req.RobotName, "pool", req.Pool)
	return inst, nil
}

// Destroy implements sdk.Provider.
func (p *Provider) Destroy(ctx context.Context, ids []string) error {
	_, c, err := p.get()
	if err != nil {
		return err
	}
	// One unknown ID fails a whole TerminateInstances call, so IDs go one
	// by one; a robot pool releases a handful at a time.
	var errs []error
	for _, id := range ids {
		_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		if err != nil && apiCode(err) != "InvalidInstanceID.NotFound" && apiCode(err) != "InvalidInstanceID.Malformed" {
			errs = append(errs, classify("TerminateInstances "+id, err))
			continue
		}
		p.log.Info("instance terminated", "instance", id)
	}
	return errors.Join(errs...)
}

// List implements sdk.Provider.
func (p *Provider) List(ctx context.Context) ([]sdk.Instance, error) {
	_, c, err := p.get()
	if err != nil {
		return nil, err
	}
	pages := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{
		Filters:    []types.Filter{{Name: awssdk.String("tag:" + tagManaged), Values: []string{"true"}}},
		MaxResults: awssdk.Int32(pageSize),
	})
	var out []sdk.Instance
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, classify("DescribeInstances", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				out = append(out, instance(in))
			}
		}
	}
	return out, nil
}

// remotePorts are the standard ports of the remote-access protocols.
var remotePorts = map[string]int{"ssh": 22, "rdp": 3389, "vnc": 5900}

func instance(in types.Instance) sdk.Instance {
	out := sdk.Instance{ID: awssdk.ToString(in.InstanceId), Address: awssdk.ToString(in.PrivateIpAddress)}
	var remote string
	if in.LaunchTime != nil {
		out.CreatedAt = in.LaunchTime.UTC()
	}
	for _, t := range in.Tags {
		switch awssdk.ToString(t.Key) {
		case tagPool:
			out.Pool = awssdk.ToString(t.Value)
		case tagRobot:
			out.RobotName = awssdk.ToString(t.Value)
		case tagKey:
			out.IdempotencyKey = awssdk.ToString(t.Value)
		case tagRemote:
			remote = awssdk.ToString(t.Value)
		}
	}
	// The endpoint is the instance's private address: robots and the
	// people who prepare them sit on the same intranet, and a public
	// address for a desktop protocol is not something to hand out.
	if port, ok := remotePorts[remote]; ok && out.Address != "" {
		out.RemoteAccess = &sdk.RemoteAccess{Protocol: remote, Host: out.Address, Port: port}
	}
	state := types.InstanceStateNamePending
	if in.State != nil {
		state = in.State.Name
	}
	switch state {
	case types.InstanceStateNamePending:
		out.State = sdk.InstanceCreating
	case types.InstanceStateNameRunning:
		out.State = sdk.InstanceRunning
	case types.InstanceStateNameShuttingDown, types.InstanceStateNameStopping:
		out.State = sdk.InstanceDeleting
	case types.InstanceStateNameTerminated:
		out.State = sdk.InstanceDeleted
	default:
		out.State = sdk.InstanceFailed
		out.Error = "instance is " + string(state)
		if in.StateReason != nil {
			out.Error += ": " + awssdk.ToString(in.StateReason.Message)
		}
	}
	return out
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// classify maps EC2 error codes onto the SDK's sentinels, so the daemon
// fails fast when AWS has no capacity and never retries a request that
// cannot succeed.
func classify(what string, err error) error {
	switch code := apiCode(err); code {
	case "InsufficientInstanceCapacity", "InstanceLimitExceeded", "VcpuLimitExceeded", "InsufficientFreeAddressesInSubnet":
		return fmt.Errorf("aws provider: %s: %w: %v", what, sdk.ErrOutOfCapacity, err)
	case "InvalidParameterValue", "InvalidParameterCombination", "InvalidAMIID.NotFound", "InvalidAMIID.Malformed",
		"InvalidSubnetID.NotFound", "InvalidGroup.NotFound", "IdempotentParameterMismatch", "MissingParameter":
		return fmt.Errorf("aws provider: %s: %w: %v", what, sdk.ErrInvalidRequest, err)
	case "UnauthorizedOperation", "AuthFailure":
		return fmt.Errorf("aws provider: %s: not allowed (check the IAM policy of access_key_id): %v", what, err)
	}
	return fmt.Errorf("aws provider: %s: %w", what, err)
}
