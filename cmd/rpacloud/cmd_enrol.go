package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

const (
	createJoinTokenQ = `mutation($p:String!,$t:Int,$u:Int){createJoinToken(pool:$p,ttlSeconds:$t,uses:$u){secret joinToken{id pool expiresAt maxUses uses}}}`
	joinTokensQ      = `query{joinTokens{id pool expiresAt maxUses uses revokedAt createdBy createdAt}}`
	revokeJoinTokenQ = `mutation($id:ID!){revokeJoinToken(id:$id)}`
	revokeRobotQ     = `mutation($n:String!){revokeRobot(name:$n)}`
)

// joinTokenJSON is one join token of `pool join-token list -o json`, and of
// `create -o json` with its secret.
type joinTokenJSON struct {
	ID        string     `json:"id"`
	Pool      string     `json:"pool"`
	ExpiresAt time.Time  `json:"expires_at"`
	MaxUses   int        `json:"max_uses"`
	Uses      int        `json:"uses"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	Secret    string     `json:"secret,omitempty"`
}

type joinTokenWire struct {
	ID        string     `json:"id"`
	Pool      string     `json:"pool"`
	ExpiresAt time.Time  `json:"expiresAt"`
	MaxUses   int        `json:"maxUses"`
	Uses      int        `json:"uses"`
	RevokedAt *time.Time `json:"revokedAt"`
	CreatedBy string     `json:"createdBy"`
	CreatedAt *time.Time `json:"createdAt"`
}

func (w joinTokenWire) view() joinTokenJSON {
	return joinTokenJSON{ID: w.ID, Pool: w.Pool, ExpiresAt: w.ExpiresAt, MaxUses: w.MaxUses, Uses: w.Uses,
		RevokedAt: w.RevokedAt, CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt}
}

// newJoinTokenCmd manages the join tokens existing machines enrol with
// (admin only); it sits under `rpacloud pool`.
func newJoinTokenCmd() *cobra.Command {
	var cc clientFlags
	var pool string
	var ttl time.Duration
	var uses int
	create := &cobra.Command{
		Use:   "create --pool P [--ttl 24h] [--uses N]",
		Short: "make a join token for a pool; the secret is printed once",
		Long: `Make a join token with which existing machines enrol as robots of the pool
(rpacloud robot --join-token, or RPACLOUD_JOIN_TOKEN). The secret is printed
once, on stdout alone, so a script can capture it; it is never stored.
--ttl is from 1m to 720h (default 24h), --uses from 1 to 10000 (default 1).

-o json prints {"id", "pool", "expires_at", "max_uses", "uses", "secret"}.`,
		Args: cobra.NoArgs,
	}
	cc.register(create.Flags())
	create.Flags().StringVar(&pool, "pool", "", "pool the machines join (required)")
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token may be used")
	create.Flags().IntVar(&uses, "uses", 1, "how many machines it may enrol")
	cout := addOutputFlag(create)
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		return exit(joinTokenCreate(cmd.Context(), cc, pool, ttl, uses, cout, cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}

	var lc clientFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "list join tokens (never their secrets)",
		Long: `List every join token, newest first: its pool, expiry, uses and whether it
was revoked. Secrets are never shown again.

-o json prints {"join_tokens": [{"id", "pool", "expires_at", "max_uses",
"uses", "revoked_at", "created_by", "created_at"}]}.`,
		Args: cobra.NoArgs,
	}
	lc.register(list.Flags())
	lout := addOutputFlag(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		return exit(joinTokenList(cmd.Context(), lc, lout, cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}

	var rc clientFlags
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "revoke a join token (robots it enrolled keep their identities)",
		Args:  cobra.ExactArgs(1),
	}
	rc.register(revoke.Flags())
	revoke.RunE = func(cmd *cobra.Command, args []string) error {
		return exit(joinTokenRevoke(cmd.Context(), rc, args[0], cmd.ErrOrStderr()))
	}
	return group(&cobra.Command{Use: "join-token", Short: "make, list and revoke join tokens for enrolling machines (admin)"},
		create, list, revoke)
}

func joinTokenCreate(ctx context.Context, cf clientFlags, pool string, ttl time.Duration, uses int, o *output, stdout, stderr io.Writer) int {
	switch {
	case pool == "":
		fmt.Fprintln(stderr, "rpacloud pool join-token create: --pool is required")
		return exitUsage
	case ttl < time.Minute:
		fmt.Fprintf(stderr, "rpacloud pool join-token create: --ttl %s: at least 1m\n", ttl)
		return exitUsage
	case uses < 1:
		fmt.Fprintf(stderr, "rpacloud pool join-token create: --uses %d: at least 1\n", uses)
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud pool join-token create:", err)
		return exitFailure
	}
	var out struct {
		CreateJoinToken struct {
			Secret    string        `json:"secret"`
			JoinToken joinTokenWire `json:"joinToken"`
		} `json:"createJoinToken"`
	}
	vars := map[string]any{"p": pool, "t": int(ttl / time.Second), "u": uses}
	if err := c.Do(ctx, createJoinTokenQ, vars, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud pool join-token create:", err)
		return exitFailure
	}
	jt := out.CreateJoinToken
	if o.JSON() {
		v := jt.JoinToken.view()
		v.Secret = jt.Secret
		return printJSON(stdout, stderr, v)
	}
	fmt.Fprintln(stdout, jt.Secret)
	fmt.Fprintf(stderr, "join token %s for pool %s: %d use(s), expires %s\n", jt.JoinToken.ID, jt.JoinToken.Pool,
		jt.JoinToken.MaxUses, jt.JoinToken.ExpiresAt.Format(time.RFC3339))
	return exitOK
}

func joinTokenList(ctx context.Context, cf clientFlags, o *output, stdout, stderr io.Writer) int {
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud pool join-token list:", err)
		return exitFailure
	}
	var out struct {
		JoinTokens []joinTokenWire `json:"joinTokens"`
	}
	if err := c.Do(ctx, joinTokensQ, nil, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud pool join-token list:", err)
		return exitFailure
	}
	views := make([]joinTokenJSON, len(out.JoinTokens))
	for i, t := range out.JoinTokens {
		views[i] = t.view()
	}
	if o.JSON() {
		return printJSON(stdout, stderr, struct {
			JoinTokens []joinTokenJSON `json:"join_tokens"`
		}{views})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPOOL\tUSES\tEXPIRES\tSTATE\tCREATED-BY")
	now := time.Now()
	for _, t := range views {
		state := "active"
		switch {
		case t.RevokedAt != nil:
			state = "revoked"
		case !now.Before(t.ExpiresAt):
			state = "expired"
		case t.Uses >= t.MaxUses:
			state = "used up"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", t.ID, t.Pool, t.Uses, t.MaxUses, t.ExpiresAt.Format(time.RFC3339), state, t.CreatedBy)
	}
	_ = tw.Flush()
	return exitOK
}

func joinTokenRevoke(ctx context.Context, cf clientFlags, id string, stderr io.Writer) int {
	if _, err := strconv.Atoi(id); err != nil {
		fmt.Fprintf(stderr, "rpacloud pool join-token revoke: %q is not a join token id (see rpacloud pool join-token list)\n", id)
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud pool join-token revoke:", err)
		return exitFailure
	}
	if err := c.Do(ctx, revokeJoinTokenQ, map[string]any{"id": id}, nil); err != nil {
		fmt.Fprintln(stderr, "rpacloud pool join-token revoke:", err)
		return exitFailure
	}
	fmt.Fprintf(stderr, "join token %s revoked\n", id)
	return exitOK
}

// newRobotRevokeCmd revokes a robot identity (admin only); it sits under
// `rpacloud robot`.
func newRobotRevokeCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "revoke a robot's identity: its token is refused and its open claim ends at once (admin)",
		Long: `Revoke a robot's identity: its token is revoked, so its next request is
refused, its open claim ends at once, and it takes no more work: an
enrolled robot is released (it leaves the pool's counts, its machine's row
is marked deleted); a rented one drains, so the scaler destroys its VM (and
rents a replacement for a permanent one). A task it was running is retried
per its process when its attempt's deadline passes.
To bring the machine back, give its agent a join token created after the
revoke (the one it enrolled with is refused for the revoked name): refused
with its old identity, it enrols again under the same name (the revoked
robot's history stays, renamed NAME~revoked-ID).`,
		Args: cobra.ExactArgs(1),
	}
	cf.register(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client()
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "rpacloud robot revoke:", err)
			return exit(exitFailure)
		}
		if err := c.Do(cmd.Context(), revokeRobotQ, map[string]any{"n": args[0]}, nil); err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "rpacloud robot revoke:", err)
			return exit(exitFailure)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "robot %s revoked\n", args[0])
		return nil
	}
	return cmd
}
