// Command rpacloud is the one binary of the platform: the daemon (dev and
// server), the robot agent, the built-in plugins, and the operator's CLI.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `rpacloud — control plane for RPA robot fleets

Usage:
  rpacloud dev [--data-dir DIR] [--listen ADDR]    run the embedded platform (SQLite, local robots)
  rpacloud server --config DIR                     run the daemon from HCL configuration
  rpacloud robot --server URL [--token T]          run a robot agent (token also from RPACLOUD_ROBOT_TOKEN)
  rpacloud validate PATH...                        check HCL configuration
  rpacloud fmt [-check] PATH...                    format HCL files canonically
  rpacloud task submit --process P --input F.jsonl [--wait]
  rpacloud task list [--batch ID] [--state S]
  rpacloud pool status
  rpacloud token create --name N --role R [--customer C]   make an API token (admin)
  rpacloud token revoke --name N
  rpacloud simulate --config F.hcl --trace F.csv [--json]   capacity planning on a virtual clock
  rpacloud process status|advance|connect|book|cancel-booking|schedule ...   lifecycle S1–S5, remote access, run schedule
  rpacloud docs render --process P --kind K --format F [--lang en|zh] -o FILE   supporting documents
  rpacloud bench dispatch --db sqlite|postgres://... [--tasks N --robots W --customers C] [--backlog] [--json]
  rpacloud bench fairness [--robots W] [--json]   dispatch fairness in slots: weighted, oldest_served, FIFO
  rpacloud credential put|rotate|list|delete|bind|unbind ...   credentials in Vault (values from stdin or a file)
  rpacloud version

Client commands read the daemon URL from --server or RPACLOUD_SERVER
(default http://127.0.0.1:8080) and the token from --token, RPACLOUD_TOKEN
or ./.rpacloud/admin.token.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest, stdout, stderr)
	case "server":
		return runServer(ctx, rest, stdout, stderr)
	case "robot":
		return runRobot(ctx, rest, stdout, stderr)
	case "validate":
		return runValidate(ctx, rest, stdout, stderr)
	case "fmt":
		return runFmt(ctx, rest, stdout, stderr)
	case "task":
		return runTask(ctx, rest, stdout, stderr)
	case "token":
		return runToken(ctx, rest, stdout, stderr)
	case "pool":
		return runPool(ctx, rest, stdout, stderr)
	case "credential":
		return runCredential(ctx, rest, os.Stdin, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, rest, stdout, stderr)
	case "process":
		return runProcess(ctx, rest, stdout, stderr)
	case "docs":
		return runDocs(ctx, rest, stdout, stderr)
	case "plugin":
		return runPlugin(rest, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "rpacloud", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "rpacloud: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"
