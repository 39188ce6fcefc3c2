package sdk

import (
	"context"
	"time"
)

// Provider rents and releases the machines robots run on (VMs, containers,
// local processes). The daemon decides how many robots a pool needs and
// which ones go; the provider does what it is told and reports what exists.
//
// Every method may be called concurrently and must honour ctx: the daemon
// puts a deadline on every call.
type Provider interface {
	// Info describes the plugin. It must work before Configure.
	Info(ctx context.Context) (PluginInfo, error)
	// Configure applies the provider block's attributes. Problems with the
	// configuration are returned as diagnostics, not as an error; the error
	// is for failures unrelated to the values given.
	Configure(ctx context.Context, cfg map[string]string) ([]ConfigDiagnostic, error)
	// Create rents one instance. It is idempotent on req.IdempotencyKey: a
	// second call with the same key returns the same instance and rents
	// nothing. Out of capacity is ErrOutOfCapacity; a bad request is
	// ErrInvalidRequest.
	Create(ctx context.Context, req CreateRequest) (Instance, error)
	// Destroy releases instances. Unknown or already deleted IDs are not
	// errors, so a retried Destroy is harmless.
	Destroy(ctx context.Context, instanceIDs []string) error
	// List returns every instance this provider knows, with its state.
	List(ctx context.Context) ([]Instance, error)
}

// Shutdowner is implemented by plugins that must clean up before the
// process exits. ServeProvider calls Shutdown once, after the daemon
// stopped the plugin, the daemon died, or the plugin got SIGTERM.
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// PluginInfo describes a plugin to the daemon.
type PluginInfo struct {
	Kind          string // KindProvider, ...
	Name          string // as named in HCL; must match the executable's suffix
	PluginVersion string // the plugin's own release version
	APIVersions   []int  // protocol versions of Kind it implements
	Capabilities  []string
	ConfigSchema  []ConfigAttribute
}

// AttributeType is the type of a configuration attribute. Values always
// travel as strings; the type tells the daemon how to validate and
// document them.
type AttributeType string

// Attribute types.
const (
	TypeString   AttributeType = "string"
	TypeNumber   AttributeType = "number"
	TypeBool     AttributeType = "bool"
	TypeDuration AttributeType = "duration" // time.ParseDuration syntax
	TypeList     AttributeType = "list"     // comma-separated
)

// ConfigAttribute is one attribute of the plugin's configuration block.
type ConfigAttribute struct {
	Name        string
	Type        AttributeType
	Required    bool
	Description string
	Default     string // as text; empty if none
	Sensitive   bool   // a secret: never logged or displayed
}

// ConfigDiagnostic is a problem with one configuration attribute.
type ConfigDiagnostic struct {
	Attribute string // empty when it concerns the whole block
	Message   string
}

func (d ConfigDiagnostic) String() string {
	if d.Attribute == "" {
		return d.Message
	}
	return d.Attribute + ": " + d.Message
}

// CreateRequest asks for one instance running one robot agent.
type CreateRequest struct {
	IdempotencyKey string
	Pool           string
	RobotName      string
	ServerURL      string // the daemon URL the robot agent must poll
	// RobotToken is a secret: it must never be logged, written to disk, put
	// on a command line, or returned.
	RobotToken string
	Labels     map[string]string
	Network    *NetworkProfile // nil when the pool has none
	// Setup is what the VM must be prepared with (software, configuration
	// files, remote access), applied at creation; nil when the pool
	// declares none.
	Setup *VMSetup
}

// VMSetup is the preparation of a VM (lifecycle step S2).
type VMSetup struct {
	Software     []string
	ConfigFiles  []string
	RemoteAccess string // "rdp" | "ssh" | "vnc" | ""
}

// RemoteAccess is how people reach an instance from their desks. It never
// carries a password.
type RemoteAccess struct {
	Protocol string // "rdp" | "ssh" | "vnc"
	Host     string
	Port     int
	Username string
}

// String leaves the token out, so a request can be logged with %v.
func (r CreateRequest) String() string {
	return "CreateRequest{key=" + r.IdempotencyKey + " pool=" + r.Pool + " robot=" + r.RobotName + "}"
}

// NetworkProfile is the network a pool's robots must use.
type NetworkProfile struct {
	Proxy string
	DNS   []string
	Allow []string
	Deny  []string
}

// InstanceState is the life-cycle state of an instance.
type InstanceState string

// Instance states.
const (
	InstanceCreating InstanceState = "creating"
	InstanceRunning  InstanceState = "running"
	InstanceDeleting InstanceState = "deleting"
	InstanceDeleted  InstanceState = "deleted"
	InstanceFailed   InstanceState = "failed"
)

// Instance is one rented machine.
type Instance struct {
	ID             string
	IdempotencyKey string
	Pool           string
	RobotName      string
	State          InstanceState
	Address        string
	CreatedAt      time.Time
	Error          string // why it failed, with InstanceFailed
	// RemoteAccess is the endpoint people connect to; nil when the
	// provider offers none.
	RemoteAccess *RemoteAccess
}

// GoString keeps the token out of %#v as well.
func (r CreateRequest) GoString() string { return r.String() }
