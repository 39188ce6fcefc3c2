// Command fakeprovider is the provider plugin fixture of the pluginhost
// tests. One binary plays every part; the part is chosen by the name it is
// installed under (rpacloud-provider-<mode>), since a plugin gets no
// arguments and almost no environment:
//
//	healthy, crashy, hang  an in-memory provider; Create of robot "crash"
//	                       exits the process, of robot "hang" never returns
//	v2                     speaks provider protocol version 2 only
//	garbage                writes garbage to stdout instead of a handshake
//	wrongname              reports another plugin name
//	wrongkind              reports another plugin kind
//	cookie                 expects another magic cookie
//	infocrash              exits while describing itself (Info)
//	infohang               never answers Info
//	infohuge               declares 1000 configuration attributes
//	infobadname            declares an attribute HCL cannot write
//
// Run as `<exe> plugin provider <name>` it plays <name>, as the daemon's
// built-in plugins do. A file <exe>.mode overrides the mode (not the name),
// so a test can turn an installed plugin into a broken one.
//
// Every start writes the environment to $TMPDIR/fakeprovider-<name>.env.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

type fake struct {
	*sdktest.MemoryProvider
	name, kind, mode string
}

func (f *fake) Info(ctx context.Context) (sdk.PluginInfo, error) {
	info, err := f.MemoryProvider.Info(ctx)
	info.Name, info.Kind = f.name, f.kind
	info.ConfigSchema = []sdk.ConfigAttribute{{Name: "region", Type: sdk.TypeString, Required: true}, {Name: "api_token", Type: sdk.TypeString, Sensitive: true}}
	switch f.mode {
	case "infocrash":
		panic("crashed while describing itself")
	case "infohang":
		select {}
	case "infohuge":
		info.ConfigSchema = nil
		for i := range 1000 {
			info.ConfigSchema = append(info.ConfigSchema, sdk.ConfigAttribute{Name: fmt.Sprintf("a%d", i), Type: sdk.TypeString})
		}
	case "infobadname":
		info.ConfigSchema = []sdk.ConfigAttribute{{Name: "x = 1 # ", Type: sdk.TypeString}}
	}
	return info, err
}

func (f *fake) Create(ctx context.Context, req sdk.CreateRequest) (sdk.Instance, error) {
	switch req.RobotName {
	case "crash":
		os.Exit(3)
	case "hang":
		select {} // ignores the deadline, like a plugin stuck in a cloud SDK
	}
	return f.MemoryProvider.Create(ctx, req)
}

func main() {
	name := strings.TrimPrefix(filepath.Base(os.Args[0]), "rpacloud-provider-")
	if len(os.Args) == 4 && os.Args[1] == "plugin" && os.Args[2] == sdk.KindProvider {
		name = os.Args[3]
	}
	mode := name
	if b, err := os.ReadFile(os.Args[0] + ".mode"); err == nil {
		mode = strings.TrimSpace(string(b))
	}
	_ = os.WriteFile(filepath.Join(os.TempDir(), "fakeprovider-"+name+".env"), []byte(strings.Join(os.Environ(), "\n")), 0o600)
	f := &fake{MemoryProvider: sdktest.NewMemoryProvider(name), name: name, kind: sdk.KindProvider, mode: mode}
	switch mode {
	case "v2":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{2: {sdk.KindProvider: &sdk.ProviderPlugin{Impl: f}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	case "garbage":
		fmt.Println("Hello! I am definitely not a go-plugin handshake line.")
		time.Sleep(time.Minute)
	case "cookie":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  plugin.HandshakeConfig{MagicCookieKey: "OTHER_APP_PLUGIN", MagicCookieValue: "x"},
			VersionedPlugins: sdk.ProviderPluginSets(f),
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	case "wrongname":
		f.name = "someone-else"
		sdk.ServeProvider(f)
	case "wrongkind":
		f.kind = "vendor"
		sdk.ServeProvider(f)
	default:
		sdk.ServeProvider(f)
	}
}
