package credentials

import (
	"context"
	"fmt"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Redeem is the robot's side of a grant: it unwraps every credential of g
// straight from Vault into memory, checking first that each wrapping token
// was made by reading exactly the path the grant names. Nothing is written
// to disk. An error names the credential and what went wrong (sealed,
// unreachable, expired, denied), never a value; the robot reports it as an
// execution error so the task is retried per its process's policy.
func Redeem(ctx context.Context, g *Grant) (Secrets, error) {
	if g == nil || len(g.Items) == 0 {
		return nil, nil
	}
	vc := vault.DefaultConfig() // TLS settings (VAULT_CACERT, ...) from the robot's environment
	if vc.Error != nil {
		return nil, fmt.Errorf("vault client configuration: %w", vc.Error)
	}
	vc.Address = g.VaultAddress
	vc.Timeout = 15 * time.Second
	vc.MaxRetries = 2
	// Each redemption is a handful of requests per attempt: keep no
	// connections (nor goroutines) around afterwards.
	defer vc.HttpClient.CloseIdleConnections()
	out := make(Secrets, len(g.Items))
	for _, it := range g.Items {
		c, err := vault.NewClient(vc)
		if err != nil {
			return nil, &Error{Op: "read", Credential: it.Name, Kind: ErrUnreachable, Detail: "bad Vault address"}
		}
		// The wrapping token is the only token this client ever holds.
		c.SetToken(it.WrappingToken)
		info, err := c.Logical().WriteWithContext(ctx, "sys/wrapping/lookup", map[string]any{"token": it.WrappingToken})
		if err != nil {
			return nil, opError("read", it.Name, err)
		}
		if info == nil || info.Data == nil {
			return nil, &Error{Op: "read", Credential: it.Name, Kind: ErrExpired}
		}
		if info.Data["creation_path"] != it.Path {
			return nil, &Error{Op: "read", Credential: it.Name, Kind: ErrDenied, Detail: "the wrapping token was not made for this credential"}
		}
		sec, err := c.Logical().UnwrapWithContext(ctx, "")
		if err != nil {
			return nil, opError("read", it.Name, err)
		}
		if sec == nil {
			return nil, &Error{Op: "read", Credential: it.Name, Kind: ErrNotFound}
		}
		data, _ := sec.Data["data"].(map[string]any)
		if data == nil {
			return nil, &Error{Op: "read", Credential: it.Name, Kind: ErrNotFound, Detail: "every version is deleted"}
		}
		out[it.Name] = secretFromData(data)
	}
	return out, nil
}

// Deliver is the robot agent's one call: it redeems the grant of a claimed
// attempt (if any) and returns ctx carrying the secrets for the attempt's
// runner or plugin (SecretsFrom). The error is an execution error naming
// the credential.
func Deliver(ctx context.Context, g *Grant) (context.Context, error) {
	if g == nil || len(g.Items) == 0 {
		return ctx, nil
	}
	s, err := Redeem(ctx, g)
	if err != nil {
		return ctx, err
	}
	return WithSecrets(ctx, s), nil
}
