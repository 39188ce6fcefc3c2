// Command vault is HashiCorp Vault 1.19.0 built from its Go module, because
// Debian ships no Vault package and the tests need a real server.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
