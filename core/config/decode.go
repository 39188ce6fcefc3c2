package config

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/rpacloud/rpacloud/core/dispatch/policy"
)

var rootSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "server"},
	{Type: "vault"},
	{Type: "provider", LabelNames: []string{"name"}},
	{Type: "network", LabelNames: []string{"name"}},
	{Type: "pool", LabelNames: []string{"name"}},
	{Type: "process", LabelNames: []string{"name"}},
	{Type: "vendor", LabelNames: []string{"name"}},
	{Type: "customer", LabelNames: []string{"name"}},
	{Type: "flow", LabelNames: []string{"name"}},     // flow.go
	{Type: "documents"},                              // delivery.go
	{Type: "monitor"},                                // monitor.go
	{Type: "calendar", LabelNames: []string{"name"}}, // trigger.go
	{Type: "trigger", LabelNames: []string{"name"}},  // trigger.go
	{Type: "retention"},                              // retention.go
}}

var (
	serverSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "listen"}, {Name: "public_url"}, {Name: "data_dir"}, {Name: "plugin_dir"}, {Name: "log_level"},
			{Name: "timezone"}, // trigger.go: the triggers' default zone
			{Name: "cors_origins"},
			{Name: "metrics_listen"},
			{Name: "tls_cert_file"}, {Name: "tls_key_file"}, {Name: "tls_min_version"}, {Name: "trusted_proxies"}, // tls.go
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "database"}, {Type: "limits"}},
	}
	databaseSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "driver"}, {Name: "dsn"}}}
	limitsSchema   = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "request_body_bytes"}, {Name: "websocket_init_bytes"}, {Name: "websocket_message_bytes"}, {Name: "token_recheck"}, {Name: "result_bytes"},
	}}
	vaultAttrs = []hcl.AttributeSchema{
		{Name: "address", Required: true}, {Name: "auth_method"}, {Name: "role_id"},
		{Name: "secret_id_file"}, {Name: "token_file"}, {Name: "mount"}, {Name: "prefix"},
	}
	providerSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "plugin", Required: true}}}
	networkSchema  = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "proxy"}, {Name: "dns"}, {Name: "allow"}, {Name: "deny"},
	}}
	poolSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "provider"}, {Name: "min"}, {Name: "max", Required: true}, {Name: "period"},
		{Name: "tasks_per_robot"}, {Name: "fairness"}, {Name: "network"},
		// scaling.go: settings beyond the seed's rule
		{Name: "cooldown"}, {Name: "boot_aware"}, {Name: "licence_cap"},
		{Name: "prewarm_lead"}, {Name: "prewarm_robots"}, {Name: "boot_timeout"},
		// delivery.go: VM preparation and remote access
		{Name: "software"}, {Name: "config_files"}, {Name: "remote_access"},
	}}
	processSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "pool", Required: true}, {Name: "builtin"}, {Name: "vendor"}, {Name: "crawler"},
			{Name: "package"}, {Name: "owner"}, {Name: "max_duration"}, {Name: "retries"}, {Name: "max_wait"}, {Name: "credentials"},
			{Name: "flow"}, // flow.go
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "schedule", LabelNames: []string{"name"}}},
	}
	scheduleSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "cron", Required: true}, {Name: "duration"}, {Name: "timezone"},
		{Name: "robot"}, {Name: "robots"}, // delivery.go
	}}
	vendorSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "type", Required: true}, {Name: "url", Required: true}, {Name: "tenant"}, {Name: "folder"}, {Name: "credentials"},
		{Name: "poll_interval"}, // the daemon's vendor poller
	}}
	customerSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "display_name"}, {Name: "kind"}, {Name: "parent"},
	}}
)

// Names become database keys, CLI arguments and plugin file names, so they
// are kept to a portable alphabet.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// pluginRE is stricter: a plugin name becomes a file name in the plugin
// directory and must never climb out of it.
var pluginRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ref is a use of a declared name, checked once every file is decoded
// because a name may be declared in any file.
type ref struct {
	kind string // block type the name must be declared as
	name string
	rng  hcl.Range
	from string // the referring attribute, for the message, e.g. `pool "x" provider`
}

type loader struct {
	ctx     context.Context
	plugins PluginSchemas // nil: plugin names and bodies are not checked
	uses    []pluginUse   // plugins.go

	cfg   *Config
	diags hcl.Diagnostics
	decls map[string]map[string]hcl.Range
	refs  []ref

	server, vault *hcl.Range
	documents     *hcl.Range           // delivery.go
	monitor       *hcl.Range           // monitor.go
	retention     *hcl.Range           // retention.go
	parents       map[string]hcl.Range // customer name -> range of its parent attribute

	// fromDisk: the sources are files of the daemon's host (Load), so a
	// block may name files next to them (trigger.go); false for sources
	// sent through the API (LoadSources).
	fromDisk     bool
	sideDir      string               // set: such files are read from here, not next to the source (LoadSourcesAt)
	triggerSlots map[string]hcl.Range // trigger name -> range of its slot attribute
}

func newLoader(ctx context.Context, plugins PluginSchemas) *loader {
	return &loader{ctx: ctx, plugins: plugins, cfg: defaultConfig(), decls: map[string]map[string]hcl.Range{}, parents: map[string]hcl.Range{}, triggerSlots: map[string]hcl.Range{}}
}

func (l *loader) attrs(m hcl.Attributes) attrs { return attrs{m: m, diags: &l.diags} }

func (l *loader) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	l.diags = append(l.diags, diags...)
	return c
}

// decodeFile decodes the top-level blocks of one file. After a syntax
// error (cut >= 0 is its byte offset) only the blocks that end before it
// are decoded: the parser's recovery leaves later blocks half-read, and
// their "missing argument" errors would only echo the syntax error.
func (l *loader) decodeFile(f *hcl.File, cut int) {
	c, diags := f.Body.Content(rootSchema)
	for _, d := range diags {
		if cut < 0 || d.Subject == nil || d.Subject.Start.Byte < cut {
			l.diags = append(l.diags, d)
		}
	}
	for _, b := range c.Blocks {
		if cut >= 0 {
			if body, ok := b.Body.(*hclsyntax.Body); !ok || body.SrcRange.End.Byte > cut {
				continue
			}
		}
		switch b.Type {
		case "server":
			l.decodeServer(b)
		case "vault":
			l.decodeVault(b)
		case "provider":
			l.decodeProvider(b)
		case "network":
			l.decodeNetwork(b)
		case "pool":
			l.decodePool(b)
		case "process":
			l.decodeProcess(b)
		case "vendor":
			l.decodeVendor(b)
		case "customer":
			l.decodeCustomer(b)
		case "flow":
			l.decodeFlow(b)
		case "monitor":
			l.decodeMonitor(b)
		case "documents":
			l.decodeDocuments(b)
		case "calendar":
			l.decodeCalendar(b)
		case "trigger":
			l.decodeTrigger(b)
		case "retention":
			l.decodeRetention(b)
		}
	}
}

// declare registers a labelled block and reports a duplicate. The block
// is still decoded by the caller so its own errors are shown too.
func (l *loader) declare(b *hcl.Block) (string, bool) {
	name := b.Labels[0]
	rng := b.LabelRanges[0]
	if !nameRE.MatchString(name) {
		l.diags = append(l.diags, errAt(rng, "Invalid "+b.Type+" name",
			fmt.Sprintf("%q is not a valid name: use 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit.", name)))
		return name, false
	}
	m := l.decls[b.Type]
	if m == nil {
		m = map[string]hcl.Range{}
		l.decls[b.Type] = m
	}
	if prev, dup := m[name]; dup {
		l.diags = append(l.diags, errAt(rng, "Duplicate "+b.Type+" "+fmt.Sprintf("%q", name),
			fmt.Sprintf("A %s named %q was previously declared at %s:%d.", b.Type, name, prev.Filename, prev.Start.Line)))
		return name, false
	}
	m[name] = rng
	return name, true
}

// single reports a second server or vault block.
func (l *loader) single(b *hcl.Block, prev **hcl.Range) bool {
	if *prev != nil {
		l.diags = append(l.diags, errAt(b.DefRange, "Duplicate "+b.Type+" block",
			fmt.Sprintf("Only one %s block is allowed; it was previously declared at %s:%d.", b.Type, (*prev).Filename, (*prev).Start.Line)))
		return false
	}
	r := b.DefRange
	*prev = &r
	return true
}

func (l *loader) decodeServer(b *hcl.Block) {
	first := l.single(b, &l.server)
	c := l.content(b.Body, serverSchema)
	a := l.attrs(c.Attributes)
	s := l.cfg.Server
	publicSet := false
	if at := a.str("listen", &s.Listen); at != nil {
		l.checkListen(at, s.Listen)
	}
	if at := a.str("public_url", &s.PublicURL); at != nil {
		publicSet = true
		if err := checkHTTPURL(s.PublicURL); err != nil {
			a.errorf(at.Expr.Range(), "Invalid public_url", "%s.", err)
		}
	}
	if at := a.str("data_dir", &s.DataDir); at != nil && s.DataDir == "" {
		a.errorf(at.Expr.Range(), "Invalid data_dir", "data_dir must not be empty; omit it to use %q.", DefaultDataDir)
	}
	a.str("plugin_dir", &s.PluginDir)
	if at := a.str("log_level", &s.LogLevel); at != nil {
		a.oneOf(at, "log_level", s.LogLevel, "debug", "info", "warn", "error")
	}
	if at := a.str("timezone", &s.Timezone); at != nil {
		if err := checkTimezone(s.Timezone); err != nil {
			a.errorf(at.Expr.Range(), "Invalid timezone", "timezone = %q: %s; use an IANA name such as \"Asia/Shanghai\" or \"UTC\".", s.Timezone, err)
			s.Timezone = ""
		}
	}
	if _, ranges := a.strs("cors_origins", &s.CORSOrigins); ranges != nil {
		for i, o := range s.CORSOrigins {
			norm, err := checkOrigin(o)
			if err != nil {
				a.errorf(ranges[i], "Invalid CORS origin", "cors_origins[%d] = %q: %s.", i, o, err)
				continue
			}
			s.CORSOrigins[i] = norm
		}
	}
	if at := a.str("metrics_listen", &s.MetricsListen); at != nil {
		l.checkListen(at, s.MetricsListen)
		if s.MetricsListen == s.Listen {
			a.errorf(at.Expr.Range(), "Invalid metrics_listen", "metrics_listen = %q is the listen address; give /metrics an address of its own, or omit metrics_listen to serve it on listen.", s.MetricsListen)
		}
	}
	l.decodeTLS(a, &s)            // tls.go
	l.decodeTrustedProxies(a, &s) // tls.go
	var dbSeen, limitsSeen *hcl.Range
	for _, db := range c.Blocks {
		if db.Type == "limits" {
			if l.single(db, &limitsSeen) {
				s.Limits = l.decodeLimits(db)
			}
			continue
		}
		if !l.single(db, &dbSeen) {
			continue
		}
		dc := l.content(db.Body, databaseSchema)
		da := l.attrs(dc.Attributes)
		if at := da.str("driver", &s.Database.Driver); at != nil {
			da.oneOf(at, "driver", s.Database.Driver, "sqlite", "postgres")
		}
		if at := da.str("dsn", &s.Database.DSN); at != nil && dsnHasPassword(s.Database.DSN) {
			l.diags = append(l.diags, warnAt(at.Expr.Range(), "Database password in the configuration",
				"The dsn carries a password, which ends up in git with this file; leave dsn empty and set RPACLOUD_DATABASE_DSN in the daemon's environment instead."))
		}
	}
	if !publicSet {
		s.PublicURL = "http://" + s.Listen
		if s.TLSOn() {
			s.PublicURL = "https://" + s.Listen
		}
		if at := c.Attributes["listen"]; at != nil && unspecifiedHost(s.Listen) {
			l.diags = append(l.diags, warnAt(at.Expr.Range(), "No public_url",
				fmt.Sprintf("public_url defaults to %q, which robots on other machines cannot reach; set public_url to the address they should use.", s.PublicURL)))
		}
	}
	if first {
		l.cfg.Server = s
	}
}

// Bounds of the limits block: below the minimum a limit breaks ordinary
// requests, above the maximum it protects nothing.
const (
	minLimitBytes   = 1 << 10
	maxLimitBytes   = 1 << 30
	minTokenRecheck = time.Second
	maxTokenRecheck = 10 * time.Minute
)

func (l *loader) decodeLimits(b *hcl.Block) Limits {
	c := l.content(b.Body, limitsSchema)
	a := l.attrs(c.Attributes)
	lim := defaultLimits()
	for _, f := range []struct {
		name string
		dst  *int64
	}{
		{"request_body_bytes", &lim.RequestBodyBytes},
		{"websocket_init_bytes", &lim.WebsocketInitBytes},
		{"websocket_message_bytes", &lim.WebsocketMessageBytes},
		{"result_bytes", &lim.ResultBytes},
	} {
		var n int
		at := a.int(f.name, &n)
		if at == nil {
			continue
		}
		if n < minLimitBytes || n > maxLimitBytes {
			a.errorf(at.Expr.Range(), "Invalid "+f.name, "%s = %d; it must be between %d (1 KiB) and %d (1 GiB) bytes.", f.name, n, minLimitBytes, maxLimitBytes)
			continue
		}
		*f.dst = int64(n)
	}
	if at := a.dur("token_recheck", &lim.TokenRecheck); at != nil && (lim.TokenRecheck < minTokenRecheck || lim.TokenRecheck > maxTokenRecheck) {
		a.errorf(at.Expr.Range(), "Invalid token_recheck", "token_recheck = %s; it must be between %s and %s: a revoked token keeps its open websockets until the next check.", lim.TokenRecheck, minTokenRecheck, maxTokenRecheck)
		lim.TokenRecheck = DefaultTokenRecheck
	}
	return lim
}

func (l *loader) checkListen(at *hcl.Attribute, listen string) {
	if err := checkHostPort(listen); err != nil {
		l.diags = append(l.diags, errAt(at.Expr.Range(), "Invalid listen address",
			fmt.Sprintf("listen = %q: %s; write HOST:PORT, e.g. \"127.0.0.1:8080\" or \":8080\".", listen, err)))
	}
}

func (l *loader) decodeVault(b *hcl.Block) {
	first := l.single(b, &l.vault)
	c, rest, diags := b.Body.PartialContent(&hcl.BodySchema{Attributes: vaultAttrs})
	l.diags = append(l.diags, diags...)
	l.rejectVaultExtras(rest)
	a := l.attrs(c.Attributes)
	v := &Vault{AuthMethod: DefaultVaultAuth, Mount: DefaultVaultMount, Prefix: DefaultVaultPrefix}
	if at := a.str("address", &v.Address); at != nil {
		if err := checkHTTPURL(v.Address); err != nil {
			a.errorf(at.Expr.Range(), "Invalid vault address", "%s.", err)
		}
	}
	authAt := a.str("auth_method", &v.AuthMethod)
	a.oneOf(authAt, "auth_method", v.AuthMethod, "token", "approle")
	roleAt := a.str("role_id", &v.RoleID)
	secretAt := a.str("secret_id_file", &v.SecretIDFile)
	a.str("token_file", &v.TokenFile)
	for _, name := range []string{"mount", "prefix"} {
		dst := &v.Mount
		if name == "prefix" {
			dst = &v.Prefix
		}
		if at := a.str(name, dst); at != nil && !vaultPathRE.MatchString(*dst) {
			a.errorf(at.Expr.Range(), "Invalid vault "+name,
				"%s = %q is not a Vault path: use segments of letters, digits, '-', '_' and '.', separated by '/', without leading or trailing '/'.", name, *dst)
		}
	}
	if v.AuthMethod == "approle" {
		missing := b.Body.MissingItemRange()
		if authAt != nil {
			missing = authAt.Expr.Range()
		}
		if roleAt == nil {
			l.diags = append(l.diags, errAt(missing, "Missing role_id", `auth_method = "approle" needs role_id and secret_id_file.`))
		}
		if secretAt == nil {
			l.diags = append(l.diags, errAt(missing, "Missing secret_id_file", `auth_method = "approle" needs role_id and secret_id_file; the secret ID itself is never written in HCL.`))
		}
	}
	if first {
		l.cfg.Vault = v
	}
}

// rejectVaultExtras reports attributes the vault block does not know. A
// secret-looking one gets its own message: Vault's own credentials cannot
// be a vault: reference, so they come from files.
func (l *loader) rejectVaultExtras(rest hcl.Body) {
	extra, diags := rest.JustAttributes()
	l.diags = append(l.diags, diags...)
	known := make([]string, len(vaultAttrs))
	for i, s := range vaultAttrs {
		known[i] = s.Name
	}
	const fromFiles = "Vault's own credentials cannot come from Vault, so the vault block reads them from files: token_file (auth_method = \"token\"; without it the daemon uses VAULT_TOKEN) or secret_id_file (auth_method = \"approle\")."
	for _, at := range sortedAttrs(extra) {
		if secretName(at.Name) {
			summary, detail := "Secret given as a literal", "use a vault:PATH#FIELD reference for other secrets; "+fromFiles
			if v, diags := at.Expr.Value(nil); !diags.HasErrors() && v.Type() == cty.String && !v.IsNull() {
				if _, err := ParseVaultRef(v.AsString()); err == nil {
					summary, detail = "Unsupported argument", fromFiles
				}
			}
			l.diags = append(l.diags, errAt(at.NameRange, summary, fmt.Sprintf("%s Remove %q.", detail, at.Name)))
			continue
		}
		l.diags = append(l.diags, errAt(at.NameRange, "Unsupported argument",
			fmt.Sprintf("An argument named %q is not expected here.%s", at.Name, didYouMean(at.Name, known))))
	}
}

func (l *loader) decodeProvider(b *hcl.Block) {
	name, ok := l.declare(b)
	c, rest, diags := b.Body.PartialContent(providerSchema)
	l.diags = append(l.diags, diags...)
	a := l.attrs(c.Attributes)
	p := Provider{Name: name, Config: map[string]string{}, DeclRange: b.DefRange, Body: rest}
	if at := a.str("plugin", &p.Plugin); at != nil && !pluginRE.MatchString(p.Plugin) {
		a.errorf(at.Expr.Range(), "Invalid plugin name",
			"plugin = %q: a plugin name is a file name in the plugin directory: lower-case letters, digits, '-' and '_'.", p.Plugin)
	}
	if p.Plugin != "" && pluginRE.MatchString(p.Plugin) {
		l.use(pluginUse{kind: KindProvider, name: p.Plugin, rng: c.Attributes["plugin"].Expr.Range(), what: fmt.Sprintf("provider %q plugin", name),
			body: rest, own: providerOwnAttrs, blockType: "provider", block: name, dst: p.Config})
	} else {
		p.Config = l.pluginOwned(rest, "provider", name)
	}
	if ok {
		l.cfg.Providers = append(l.cfg.Providers, p)
	}
}

// pluginOwned converts the attributes a plugin owns to their string form
// and refuses secrets written as literals.
func (l *loader) pluginOwned(body hcl.Body, blockType, name string) map[string]string {
	m, diags := body.JustAttributes()
	l.diags = append(l.diags, diags...)
	out := make(map[string]string, len(m))
	for _, at := range sortedAttrs(m) {
		v, diags := at.Expr.Value(nil)
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		if secretName(at.Name) && !l.checkSecretRef(at, v, blockType, name) {
			continue
		}
		s, err := stringForm(v)
		if err != nil {
			l.diags = append(l.diags, errAt(at.Expr.Range(), "Unsupported value",
				fmt.Sprintf("%s attribute %q: %s.", blockType, at.Name, err)))
			continue
		}
		if addressName(at.Name) && literalURLPassword(s) {
			l.diags = append(l.diags, secretAt(at.Expr.Range(), "Secret given as a literal",
				fmt.Sprintf("%s %q attribute %q: the URL carries a password, which would end up in git; put the credentials in Vault and reference them from the attribute the plugin reads them from.", blockType, name, at.Name)))
			continue
		}
		out[at.Name] = s
	}
	return out
}

// checkSecretRef insists a secret is a vault:PATH#FIELD reference.
func (l *loader) checkSecretRef(at *hcl.Attribute, v cty.Value, blockType, name string) bool {
	if v.Type() == cty.String && !v.IsNull() {
		if _, err := ParseVaultRef(v.AsString()); err == nil {
			return true
		}
	}
	example := VaultRef{Path: "secret/rpacloud/" + blockType + "s/" + name, Field: at.Name}
	l.diags = append(l.diags, secretAt(at.Expr.Range(), "Secret given as a literal",
		fmt.Sprintf("use a vault:PATH#FIELD reference, e.g. %s = %q; %q holds a secret, and secrets never live in configuration files.", at.Name, example, at.Name)))
	return false
}

func (l *loader) decodeNetwork(b *hcl.Block) {
	name, ok := l.declare(b)
	c := l.content(b.Body, networkSchema)
	a := l.attrs(c.Attributes)
	n := Network{Name: name, DeclRange: b.DefRange}
	if at := a.str("proxy", &n.Proxy); at != nil {
		if summary, err := checkProxyURL(n.Proxy); err != nil {
			a.errorf(at.Expr.Range(), summary, "proxy = %q: %s.", n.Proxy, err)
		}
	}
	if _, rngs := a.strs("dns", &n.DNS); rngs != nil {
		for i, s := range n.DNS {
			if err := checkIP(s); err != nil {
				a.errorf(rngs[i], "Invalid DNS server", "dns entry %q: %s; write resolver IP addresses such as \"10.0.0.53\".", s, err)
			}
		}
	}
	for _, key := range []string{"allow", "deny"} {
		dst := &n.Allow
		if key == "deny" {
			dst = &n.Deny
		}
		if _, rngs := a.strs(key, dst); rngs != nil {
			for i, s := range *dst {
				if err := checkHostPattern(s); err != nil {
					a.errorf(rngs[i], "Invalid host pattern",
						"%s entry %q: %s. Patterns are \"example.com\", \"*.example.com\", an IP address, a CIDR such as \"10.0.0.0/8\", or \"*\".", key, s, err)
				}
			}
		}
	}
	if ok {
		l.cfg.Networks = append(l.cfg.Networks, n)
	}
}

func (l *loader) decodePool(b *hcl.Block) {
	name, ok := l.declare(b)
	c := l.content(b.Body, poolSchema)
	a := l.attrs(c.Attributes)
	p := Pool{Name: name, Period: DefaultPeriod, TasksPerRobot: DefaultTasksPerRobot, Fairness: DefaultFairness, DeclRange: b.DefRange}
	what := fmt.Sprintf("pool %q", name)
	if at := a.str("provider", &p.Provider); at != nil {
		l.refs = append(l.refs, ref{kind: "provider", name: p.Provider, rng: at.Expr.Range(), from: what + " provider"})
	}
	minAt := a.int("min", &p.Min)
	maxAt := a.int("max", &p.Max)
	if minAt != nil && p.Min < 0 {
		a.errorf(minAt.Expr.Range(), "Invalid pool size", "min = %d: min must be 0 or more.", p.Min)
		minAt = nil
	}
	if maxAt != nil && p.Max < 1 {
		a.errorf(maxAt.Expr.Range(), "Invalid pool size", "max = %d: max must be 1 or more, or the pool can never run a task.", p.Max)
		maxAt = nil
	}
	if maxAt != nil && p.Min > p.Max {
		rng := maxAt.Expr.Range()
		if minAt != nil {
			rng = minAt.Expr.Range()
		}
		a.errorf(rng, "Invalid pool size", "min = %d is greater than max = %d.", p.Min, p.Max)
	}
	if at := a.dur("period", &p.Period); at != nil && p.Period <= 0 {
		a.errorf(at.Expr.Range(), "Invalid period", "period must be greater than zero; it is how often the scaler looks at the pool.")
	}
	if at := a.int("tasks_per_robot", &p.TasksPerRobot); at != nil && p.TasksPerRobot < 1 {
		a.errorf(at.Expr.Range(), "Invalid tasks_per_robot",
			"tasks_per_robot = %d: it must be 1 or more (the least work that makes renting a robot worth it).", p.TasksPerRobot)
	}
	if at := a.str("fairness", &p.Fairness); at != nil {
		a.oneOf(at, "fairness", p.Fairness, policy.Names()...)
	}
	if at := a.str("network", &p.Network); at != nil && p.Network != "" {
		l.refs = append(l.refs, ref{kind: "network", name: p.Network, rng: at.Expr.Range(), from: what + " network"})
	}
	decodeScaling(a, &p)
	decodePoolSetup(a, &p)
	if ok {
		l.cfg.Pools = append(l.cfg.Pools, p)
	}
}

var (
	builtinRunners = []string{"noop", "echo"}
	// credentialRE names a credential onboarded into Vault, relative to
	// the vault block's mount and prefix.
	credentialRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*$`)
)

func (l *loader) decodeProcess(b *hcl.Block) {
	name, ok := l.declare(b)
	c := l.content(b.Body, processSchema)
	a := l.attrs(c.Attributes)
	p := Process{Name: name, MaxDuration: DefaultMaxDuration, Retries: DefaultRetries, MaxWait: DefaultMaxWait, DeclRange: b.DefRange}
	what := fmt.Sprintf("process %q", name)
	if at := a.str("pool", &p.Pool); at != nil {
		l.refs = append(l.refs, ref{kind: "pool", name: p.Pool, rng: at.Expr.Range(), from: what + " pool"})
	}

	var kinds []string
	var kindAt *hcl.Attribute
	for _, kind := range []string{"builtin", "vendor", "crawler"} {
		var runner string
		at := a.str(kind, &runner)
		if at == nil {
			if _, present := c.Attributes[kind]; present {
				kinds = append(kinds, kind) // present but invalid: already reported
			}
			continue
		}
		kinds = append(kinds, kind)
		if len(kinds) > 1 {
			a.errorf(at.NameRange, "Conflicting process runners",
				"%s and %s are both set; a process runs through exactly one of builtin, vendor or crawler.", kinds[0], kind)
			continue
		}
		p.Kind, p.Runner, kindAt = kind, runner, at
		switch kind {
		case "builtin":
			a.oneOf(at, "builtin", runner, builtinRunners...)
		case "crawler":
			if pluginRE.MatchString(runner) {
				l.use(pluginUse{kind: KindCrawler, name: runner, rng: at.Expr.Range(), what: what + " crawler"})
			} else {
				a.errorf(at.Expr.Range(), "Invalid crawler name",
					"crawler = %q: a plugin name is a file name in the plugin directory: lower-case letters, digits, '-' and '_'.", runner)
			}
		case "vendor":
			l.refs = append(l.refs, ref{kind: "vendor", name: runner, rng: at.Expr.Range(), from: what + " vendor"})
		}
	}
	if len(kinds) == 0 {
		l.diags = append(l.diags, errAt(b.DefRange, "Missing process runner",
			`A process needs exactly one of builtin = "noop"|"echo", vendor = "<vendor block name>" or crawler = "<crawler plugin>" (built in: "browser", "http").`))
	}
	pkgAt := a.str("package", &p.Package)
	if at := a.str("flow", &p.Flow); at != nil {
		l.refs = append(l.refs, ref{kind: "flow", name: p.Flow, rng: at.Expr.Range(), from: what + " flow"})
	}
	if kindAt != nil && (p.Kind == "vendor" || p.Kind == "crawler") && p.Package == "" && p.Flow == "" {
		rng := kindAt.NameRange
		if pkgAt != nil {
			rng = pkgAt.Expr.Range()
		}
		what := map[string]string{
			"vendor":  "the name of the process or package the vendor's orchestrator runs",
			"crawler": "the crawler script or flow to run",
		}[p.Kind]
		a.errorf(rng, "Missing package", "A %s process needs package = \"...\": %s.", p.Kind, what)
	}
	if at := a.str("owner", &p.Owner); at != nil && p.Owner != "" {
		l.refs = append(l.refs, ref{kind: "customer", name: p.Owner, rng: at.Expr.Range(), from: what + " owner"})
	}
	if at := a.dur("max_duration", &p.MaxDuration); at != nil && p.MaxDuration <= 0 {
		a.errorf(at.Expr.Range(), "Invalid max_duration", "max_duration must be greater than zero: it is each attempt's deadline.")
	}
	if at := a.dur("max_wait", &p.MaxWait); at != nil && p.MaxWait < time.Second {
		a.errorf(at.Expr.Range(), "Invalid max_wait", "max_wait must be at least 1s: a task still waiting for a robot that long after its submission fails with reason expired.")
	}
	if at := a.int("retries", &p.Retries); at != nil && p.Retries < 0 {
		a.errorf(at.Expr.Range(), "Invalid retries", "retries = %d: it must be 0 or more.", p.Retries)
	}
	if _, rngs := a.strs("credentials", &p.Credentials); rngs != nil {
		seen := map[string]bool{}
		for i, cr := range p.Credentials {
			switch {
			case strings.HasPrefix(cr, "vault:"):
				a.errorf(rngs[i], "Invalid credential name",
					"credentials entry %q: list credential names onboarded into Vault (e.g. \"etax/acme\"), not vault: references; the credentials service resolves them under the vault block's mount and prefix.", cr)
			case !credentialRE.MatchString(cr):
				a.errorf(rngs[i], "Invalid credential name",
					"credentials entry %q: use a path of letters, digits, '-', '_' and '.' segments separated by '/', e.g. \"etax/acme\".", cr)
			case seen[cr]:
				a.errorf(rngs[i], "Duplicate credential", "credentials lists %q twice.", cr)
			}
			seen[cr] = true
		}
	}
	names := map[string]hcl.Range{}
	for _, sb := range c.Blocks {
		s, valid := l.decodeSchedule(sb, names)
		if valid {
			if s.Duration == 0 {
				s.Duration = p.MaxDuration
			}
			p.Schedules = append(p.Schedules, s)
		}
	}
	if ok {
		l.cfg.Processes = append(l.cfg.Processes, p)
	}
}

func (l *loader) decodeSchedule(b *hcl.Block, names map[string]hcl.Range) (Schedule, bool) {
	s := Schedule{Name: b.Labels[0]}
	valid := true
	if !nameRE.MatchString(s.Name) {
		l.diags = append(l.diags, errAt(b.LabelRanges[0], "Invalid schedule name",
			fmt.Sprintf("%q is not a valid name: use 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit.", s.Name)))
		valid = false
	} else if prev, dup := names[s.Name]; dup {
		l.diags = append(l.diags, errAt(b.LabelRanges[0], fmt.Sprintf("Duplicate schedule %q", s.Name),
			fmt.Sprintf("A schedule named %q was previously declared in this process at %s:%d.", s.Name, prev.Filename, prev.Start.Line)))
		valid = false
	} else {
		names[s.Name] = b.LabelRanges[0]
	}
	c := l.content(b.Body, scheduleSchema)
	a := l.attrs(c.Attributes)
	if at := a.str("cron", &s.Cron); at != nil {
		c, err := ParseCron(s.Cron)
		if err != nil {
			a.errorf(at.Expr.Range(), "Invalid cron expression", "cron = %q: %s.", s.Cron, err)
		}
		s.Start = c
	}
	if at := a.dur("duration", &s.Duration); at != nil && s.Duration <= 0 {
		a.errorf(at.Expr.Range(), "Invalid duration", "duration must be greater than zero: it is how long the time slot lasts.")
	}
	if at := a.str("timezone", &s.Timezone); at != nil {
		if err := checkTimezone(s.Timezone); err != nil {
			a.errorf(at.Expr.Range(), "Invalid timezone", "timezone = %q: %s; use an IANA name such as \"Asia/Shanghai\" or \"UTC\".", s.Timezone, err)
		}
	}
	decodeScheduleBooking(a, &s)
	return s, valid
}

func (l *loader) decodeVendor(b *hcl.Block) {
	name, ok := l.declare(b)
	c, rest, diags := b.Body.PartialContent(vendorSchema)
	l.diags = append(l.diags, diags...)
	a := l.attrs(c.Attributes)
	v := Vendor{Name: name, DeclRange: b.DefRange, Extra: map[string]string{}}
	typeAt := a.str("type", &v.Type)
	if typeAt != nil && !pluginRE.MatchString(v.Type) {
		a.errorf(typeAt.Expr.Range(), "Invalid vendor type",
			"type = %q: a vendor type names a plugin, a file name in the plugin directory: lower-case letters, digits, '-' and '_'.", v.Type)
		typeAt = nil
	}
	if at := a.str("url", &v.URL); at != nil {
		if err := checkHTTPURL(v.URL); err != nil {
			a.errorf(at.Expr.Range(), "Invalid vendor url", "%s.", err)
		}
	}
	a.str("tenant", &v.Tenant)
	a.str("folder", &v.Folder)
	var poll time.Duration
	if at := a.dur("poll_interval", &poll); at != nil {
		if poll < time.Second {
			a.errorf(at.Expr.Range(), "Invalid poll_interval", "poll_interval = %q: it must be at least 1s.", poll)
		} else {
			v.Extra["poll_interval"] = poll.String()
		}
	}
	if at, ok := c.Attributes["credentials"]; ok {
		val, diags := at.Expr.Value(nil)
		l.diags = append(l.diags, diags...)
		if !diags.HasErrors() && !val.IsNull() && l.checkSecretRef(at, val, "vendor", name) {
			v.Credentials = val.AsString()
		}
	}
	if typeAt != nil {
		l.use(pluginUse{kind: KindVendor, name: v.Type, rng: typeAt.Expr.Range(), what: fmt.Sprintf("vendor %q type", name),
			body: rest, own: vendorOwnAttrs, blockType: "vendor", block: name, dst: v.Extra})
	} else {
		for k, val := range l.pluginOwned(rest, "vendor", name) {
			v.Extra[k] = val
		}
	}
	if ok {
		l.cfg.Vendors = append(l.cfg.Vendors, v)
	}
}

func (l *loader) decodeCustomer(b *hcl.Block) {
	name, ok := l.declare(b)
	c := l.content(b.Body, customerSchema)
	a := l.attrs(c.Attributes)
	cu := Customer{Name: name, Kind: DefaultCustomerKind, DeclRange: b.DefRange}
	a.str("display_name", &cu.DisplayName)
	if cu.DisplayName == "" {
		cu.DisplayName = name
	}
	if at := a.str("kind", &cu.Kind); at != nil {
		a.oneOf(at, "kind", cu.Kind, CustomerKinds...)
	}
	if at := a.str("parent", &cu.Parent); at != nil && cu.Parent != "" {
		l.refs = append(l.refs, ref{kind: "customer", name: cu.Parent, rng: at.Expr.Range(), from: fmt.Sprintf("customer %q parent", name)})
		if ok {
			l.parents[name] = at.Expr.Range()
		}
	}
	if ok {
		l.cfg.Customers = append(l.cfg.Customers, cu)
	}
}

// finish runs the checks that need every file: references, parent
// cycles and unused pools. They are skipped after a syntax error, whose
// unparsed declarations would show up as false "undefined" errors.
func (l *loader) finish(complete bool) {
	if !complete {
		return
	}
	l.resolvePlugins()
	for _, r := range l.refs {
		if _, ok := l.decls[r.kind][r.name]; ok {
			continue
		}
		declared := make([]string, 0, len(l.decls[r.kind]))
		for n := range l.decls[r.kind] {
			declared = append(declared, n)
		}
		sort.Strings(declared)
		detail := fmt.Sprintf("%s refers to %s %q, which is not declared.", r.from, r.kind, r.name)
		if s := didYouMean(r.name, declared); s != "" {
			detail += s
		} else if len(declared) > 0 {
			detail += " Declared: " + strings.Join(declared, ", ") + "."
		} else {
			detail += fmt.Sprintf(" No %s block is declared.", r.kind)
		}
		l.diags = append(l.diags, errAt(r.rng, "Undefined "+r.kind, detail))
	}
	l.checkParentCycles()
	l.checkFlows()
	l.finishTriggers()
	used := map[string]bool{}
	for _, p := range l.cfg.Processes {
		used[p.Pool] = true
	}
	for _, p := range l.cfg.Pools {
		if !used[p.Name] {
			detail := fmt.Sprintf("No process runs in pool %q, so its robots never get work.", p.Name)
			if p.Min > 0 {
				detail += fmt.Sprintf(" Its %d permanent robots (min) still run, and cost.", p.Min)
			}
			l.diags = append(l.diags, warnAt(p.DeclRange, "Pool has no process", detail))
		}
	}
}

// checkParentCycles reports each cycle of customer parents once, at the
// first-declared customer in it: the database could not store it.
func (l *loader) checkParentCycles() {
	parent := map[string]string{}
	index := map[string]int{}
	for i, c := range l.cfg.Customers {
		parent[c.Name] = c.Parent
		index[c.Name] = i
	}
	for i, c := range l.cfg.Customers {
		path := []string{c.Name}
		first := true
		for cur := c.Parent; cur != ""; cur = parent[cur] {
			if _, ok := index[cur]; !ok {
				break
			}
			path = append(path, cur)
			if cur == c.Name {
				break
			}
			if index[cur] < i {
				first = false
			}
			if len(path) > len(l.cfg.Customers)+1 {
				break // a cycle not through c; reported at its own first member
			}
		}
		if path[len(path)-1] != c.Name || len(path) == 1 || !first {
			continue
		}
		l.diags = append(l.diags, errAt(l.parents[c.Name], "Customer parent cycle",
			"Customers form a cycle: "+strings.Join(path, " → ")+"; a company's tree must end at a customer without parent."))
	}
}

func sortedAttrs(m hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(m))
	for _, at := range m {
		out = append(out, at)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Range.Start.Byte < out[j].Range.Start.Byte })
	return out
}
