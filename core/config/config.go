// Package config loads the operator's HCL configuration: the daemon
// (server), Vault, provider plugins, network profiles, pools, processes,
// RPA vendor connections, customers, and the triggers that start runs with
// their calendars (trigger.go).
//
// Loading never stops at the first problem. Every syntax, schema and
// semantic error is returned as an hcl.Diagnostic whose Subject points at
// the offending attribute, label or block, so `rpacloud validate` can show
// an operator everything to fix in one run. See README.md in this folder
// for the language reference.
//
// Plugins (vendor types, provider plugins, process crawlers) are not a
// fixed list: LoadWith checks each against the schema the plugin declares,
// through a PluginSchemas the caller gives (plugins.go); this package
// never starts a plugin and links no go-plugin.
package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/wslimit"
)

// Defaults applied when an attribute is omitted. They are exported so the
// daemon and the documentation cannot drift from the loader.
const (
	DefaultListen        = "127.0.0.1:8080"
	DefaultDataDir       = ".rpacloud"
	DefaultLogLevel      = "info"
	DefaultDriver        = "sqlite"
	DefaultPeriod        = 60 * time.Second
	DefaultTasksPerRobot = 1
	DefaultFairness      = string(policy.FairShare)
	DefaultMaxDuration   = 10 * time.Minute
	DefaultRetries       = 3
	// DefaultMaxWait bounds how long a task waits for a robot: a day
	// covers a night's backlog and a weekend's outage of a pool's
	// provider is an anomaly (task_stuck) long before it expires tasks.
	DefaultMaxWait      = 24 * time.Hour
	DefaultVaultAuth    = "token"
	DefaultVaultMount   = "secret"
	DefaultVaultPrefix  = "rpacloud"
	DefaultCustomerKind = "company"

	// Limits of the daemon's reads (server.limits).
	DefaultRequestBodyBytes      = 8 << 20
	DefaultWebsocketInitBytes    = wslimit.DefaultInit
	DefaultWebsocketMessageBytes = wslimit.DefaultMessage
	DefaultTokenRecheck          = 5 * time.Second
	DefaultResultBytes           = 1 << 20
)

// CustomerKinds are the allowed customer kinds, default first; the storage
// enum (ent/schema Customer.kind) is checked against it by a test.
var CustomerKinds = []string{DefaultCustomerKind, "department"}

// Config is one whole configuration, possibly spread over several files.
// Slices keep declaration order (files sorted by name, then source order).
type Config struct {
	Server    Server
	Vault     *Vault // nil when no vault block
	Providers []Provider
	Networks  []Network
	Pools     []Pool
	Processes []Process
	Vendors   []Vendor
	Customers []Customer
	Flows     []Flow     // flow.go
	Documents Documents  // delivery.go
	Monitor   Monitor    // monitor.go
	Calendars []Calendar // trigger.go
	Triggers  []Trigger  // trigger.go
	Retention Retention  // retention.go
}

// Server configures the daemon itself.
type Server struct {
	Listen    string // default "127.0.0.1:8080"
	PublicURL string // URL robots use to reach the daemon; default "http://" + Listen ("https://" with TLS)
	DataDir   string // default ".rpacloud"
	PluginDir string // default "" = DataDir/plugins
	Database  Database
	LogLevel  string // debug|info|warn|error, default info
	Timezone  string // IANA name: the default zone of triggers; "" = UTC
	Limits    Limits
	// CORSOrigins are the web origins ("https://ops.example.com") other
	// than the daemon's own whose pages may call the API; none: same
	// origin only.
	CORSOrigins []string
	// MetricsListen, when set, is the HOST:PORT that alone serves
	// /metrics (plain HTTP, no token), so that a proxy or Ingress in front
	// of Listen cannot expose it; "": /metrics is served on Listen.
	MetricsListen string
	// TLSCertFile and TLSKeyFile (PEM, both or neither; tls.go): the
	// daemon serves HTTPS with them and re-reads them on SIGHUP.
	TLSCertFile   string
	TLSKeyFile    string
	TLSMinVersion string // "1.2" or "1.3"; "" = DefaultTLSMinVersion (TLSMin)
	// TrustedProxies are networks in CIDR notation ("10.0.0.0/8") whose
	// X-Forwarded-For / X-Real-IP name the client; none: the peer's
	// address is the client's, headers ignored.
	TrustedProxies []string
}

// Limits bound what one client can make the daemon read or keep open.
type Limits struct {
	RequestBodyBytes      int64         // one HTTP request body; default 8 MiB
	WebsocketInitBytes    int64         // one websocket message before connection_init is accepted; default 64 KiB
	WebsocketMessageBytes int64         // one websocket message afterwards; default 1 MiB
	TokenRecheck          time.Duration // how often an open websocket re-checks its token; default 5s
	ResultBytes           int64         // one task's stored output or error message; default 1 MiB
}

// Database selects the storage. An empty DSN is resolved by the caller:
// RPACLOUD_DATABASE_DSN for postgres, DataDir/rpacloud.db for sqlite.
type Database struct {
	Driver string // "sqlite" (default) or "postgres"
	DSN    string
}

// Provider is a provider plugin instance that pools rent VMs from.
type Provider struct {
	Name   string // block label
	Plugin string // plugin name, e.g. "local"
	// Config holds every other attribute of the block in string form:
	// strings as written, numbers in decimal, bools as true/false, lists
	// and maps as JSON.
	Config    map[string]string
	DeclRange hcl.Range
	// Body holds the plugin-owned attributes with their source ranges, so
	// the plugin host can decode them against the plugin's own hcldec
	// spec and still report file:line:col.
	Body hcl.Body
}

// Network is an intranet access profile a pool's robots run behind.
type Network struct {
	Name      string
	Proxy     string   // http, https or socks5 URL; "" = direct
	DNS       []string // resolver IP addresses
	Allow     []string // host patterns: example.com, *.example.com, IP, CIDR, or *
	Deny      []string
	DeclRange hcl.Range
}

// Pool is a group of robots on VMs from one provider, scaled between Min
// and Max.
type Pool struct {
	Name          string
	Provider      string
	Min, Max      int
	Period        time.Duration // default 60s
	TasksPerRobot int           // default 1
	Fairness      string        // "fair_share" (default) | "weighted" | "oldest_served"
	Network       string        // "" = none
	Scaling       Scaling       // settings beyond the seed's rule (scaling.go)
	Setup         *PoolSetup    // VM preparation and remote access; nil = none declared (delivery.go)
	DeclRange     hcl.Range
}

// Process is a named automation that runs in a pool.
type Process struct {
	Name        string
	Pool        string
	Kind        string // "builtin" | "vendor" | "crawler"
	Runner      string // builtin: noop|echo; vendor: a vendor block's name; crawler: browser|http
	Package     string
	Owner       string        // customer name, optional
	MaxDuration time.Duration // default 10m
	Retries     int           // default 3
	MaxWait     time.Duration // default 24h: a task still waiting that long after submission fails (expired)
	Credentials []string      // names of credentials onboarded into Vault
	Flow        string        // crawler processes: the flow block a task runs (flow.go)
	Schedules   []Schedule
	DeclRange   hcl.Range
}

// Schedule is a recurring time slot a process runs in.
type Schedule struct {
	Name string
	Cron string // 5 fields: minute hour day-of-month month day-of-week, as written
	// Start is Cron parsed once, at load: consumers (the scaler's slots,
	// the missed-run monitor) read it instead of parsing the text again.
	Start    Cron
	Duration time.Duration // length of the slot; default the process's max_duration
	Timezone string        // IANA name; "" = UTC
	Robot    string        // run schedule: the robot reserved; "" = any of the pool (delivery.go)
	Robots   int           // run schedule: robots reserved at once; 0 = 1
}

// Vendor is a connection to an RPA vendor's orchestrator.
type Vendor struct {
	Name        string
	Type        string // "uipath" | "aa"
	URL         string
	Tenant      string
	Folder      string
	Credentials string            // a vault:PATH#FIELD reference
	Extra       map[string]string // other attributes, in the same string form as Provider.Config
	DeclRange   hcl.Range
}

// Vault is how the daemon reaches HashiCorp Vault.
type Vault struct {
	Address      string
	AuthMethod   string // "token" (default) | "approle"
	RoleID       string
	SecretIDFile string
	TokenFile    string
	Mount        string // default "secret"
	Prefix       string // default "rpacloud"
}

// Customer is a tenant: a company or one of its departments.
type Customer struct {
	Name        string
	DisplayName string // default Name
	Kind        string // "company" (default) | "department"
	Parent      string // another customer's name, optional
	DeclRange   hcl.Range
}

func defaultConfig() *Config {
	return &Config{Documents: Documents{Language: DefaultDocumentsLanguage, Organisation: DefaultDocumentsOrganisation}, Retention: noRetention(), Server: Server{
		Listen:    DefaultListen,
		PublicURL: "http://" + DefaultListen,
		DataDir:   DefaultDataDir,
		LogLevel:  DefaultLogLevel,
		Database:  Database{Driver: DefaultDriver},
		Limits:    defaultLimits(),
	}}
}

func defaultLimits() Limits {
	return Limits{
		RequestBodyBytes:      DefaultRequestBodyBytes,
		WebsocketInitBytes:    DefaultWebsocketInitBytes,
		WebsocketMessageBytes: DefaultWebsocketMessageBytes,
		TokenRecheck:          DefaultTokenRecheck,
		ResultBytes:           DefaultResultBytes,
	}
}
