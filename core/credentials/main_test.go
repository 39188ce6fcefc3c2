package credentials_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The Vault client's HTTP keep-alive connections close lazily.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// The shared dev server's output reader lives as long as the process.
		goleak.IgnoreAnyFunction("github.com/rpacloud/rpacloud/core/credentials/devvault.(*Server).launch.func1"),
		goleak.IgnoreAnyFunction("github.com/rpacloud/rpacloud/core/credentials/devvault.(*Server).launch.func2"),
		goleak.IgnoreAnyFunction("os/exec.(*Cmd).Start.func2"),
	)
}
