package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials/devvault"
)

const credentialLong = `Credentials in Vault: put, rotate, list, delete, bind, unbind.

Secrets never go on the command line (other users see it in the process
list): --password-stdin reads the password from the first line of standard
input; --from-file reads a JSON object {"username", "password", "totp_seed",
"fields": {"name": "value"}} from a file (use - for standard input).

-o json prints a credential's metadata (never a secret value):
  {"customer", "name", "version", "created_at", "updated_at", "updated_by",
   "fields", "processes"}
list prints {"credentials": [...]} of those.`

const credentialFields = `customer name version createdAt updatedAt updatedBy fields processes`

type credentialMeta struct {
	Customer  string    `json:"customer"`
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	UpdatedBy string    `json:"updatedBy"`
	Fields    []string  `json:"fields"`
	Processes []string  `json:"processes"`
}

// credentialJSON is a credential's metadata as `-o json` prints it.
type credentialJSON struct {
	Customer  string    `json:"customer"`
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
	Fields    []string  `json:"fields"`
	Processes []string  `json:"processes"`
}

func (m credentialMeta) json() credentialJSON {
	return credentialJSON{Customer: m.Customer, Name: m.Name, Version: m.Version, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
		UpdatedBy: m.UpdatedBy, Fields: nonNil(m.Fields), Processes: nonNil(m.Processes)}
}

// nonNil makes an empty list print as [] rather than null.
func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// secretFile is the --from-file format.
type secretFile struct {
	Username string            `json:"username"`
	Password string            `json:"password"`
	TOTPSeed string            `json:"totp_seed"`
	Fields   map[string]string `json:"fields"`
}

type credentialOptions struct {
	cf                         clientFlags
	name, cust, user, fromFile string
	pwStdin                    bool
	procs                      []string
	out                        *output
}

func newCredentialCmd() *cobra.Command {
	// The subcommands shared one flag set before cobra; each still accepts
	// every flag, and hides those it does not use.
	sub := func(use, short string, shown ...string) *cobra.Command {
		var o credentialOptions
		name := strings.Fields(use)[0]
		cmd := &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return exit(runCredential(cmd.Context(), name, o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()))
			},
		}
		f := cmd.Flags()
		o.cf.register(f)
		f.StringVar(&o.name, "name", "", "credential name, e.g. etax/acme")
		f.StringVar(&o.cust, "customer", "", "owning customer (default: the token's)")
		f.StringVar(&o.user, "username", "", "user name (not secret)")
		f.BoolVar(&o.pwStdin, "password-stdin", false, "read the password from the first line of standard input")
		f.StringVar(&o.fromFile, "from-file", "", "JSON file with username, password, totp_seed, fields (- for stdin)")
		f.StringArrayVar(&o.procs, "process", nil, "process to bind the credential to (repeatable)")
		keep := map[string]bool{"server": true, "token": true, "customer": true}
		for _, n := range shown {
			keep[n] = true
		}
		f.VisitAll(func(fl *pflag.Flag) {
			if !keep[fl.Name] {
				fl.Hidden = true
			}
		})
		if name != "delete" {
			o.out = addOutputFlag(cmd)
		}
		return cmd
	}
	secret := []string{"name", "username", "password-stdin", "from-file", "process"}
	return group(&cobra.Command{Use: "credential", Short: "credentials in Vault (values from stdin or a file)", Long: credentialLong},
		sub("put --name N [--customer C] [--username U] [--password-stdin | --from-file F.json] [--process P]...", "store a credential (a new version if it exists)", secret...),
		sub("rotate --name N [--customer C] [--username U] [--password-stdin | --from-file F.json]", "store a new version of a credential", secret...),
		sub("list [--customer C]", "list credentials (metadata only)"),
		sub("delete --name N [--customer C]", "delete a credential with every version", "name"),
		sub("bind --name N --process P [--customer C]", "let a process use a credential", "name", "process"),
		sub("unbind --name N --process P [--customer C]", "stop a process using a credential", "name", "process"),
	)
}

func runCredential(ctx context.Context, sub string, o credentialOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "rpacloud credential %s: %v\n", sub, err)
		return 1
	}
	c, err := o.cf.client()
	if err != nil {
		return fail(err)
	}
	var customer any
	if o.cust != "" {
		customer = o.cust
	}
	needName := func() bool {
		if o.name == "" {
			fmt.Fprintf(stderr, "rpacloud credential %s: --name is required\n", sub)
			return false
		}
		return true
	}
	switch sub {
	case "put", "rotate":
		if !needName() {
			return 2
		}
		in, err := readSecretInput(stdin, o.user, o.pwStdin, o.fromFile)
		if err != nil {
			return fail(err)
		}
		in["name"], in["customer"] = o.name, customer
		if len(o.procs) > 0 {
			in["processes"] = o.procs
		}
		field := "putCredential"
		if sub == "rotate" {
			field = "rotateCredential"
		}
		var out map[string]credentialMeta
		q := fmt.Sprintf(`mutation($in:CredentialInput!){%s(input:$in){%s}}`, field, credentialFields)
		if err := c.Do(ctx, q, map[string]any{"in": in}, &out); err != nil {
			return fail(err)
		}
		m := out[field]
		if o.out.JSON() {
			return printJSON(stdout, stderr, m.json())
		}
		fmt.Fprintf(stdout, "%s/%s version %d stored in Vault (fields: %s; processes: %s)\n",
			m.Customer, m.Name, m.Version, strings.Join(m.Fields, ", "), orNone(m.Processes))
	case "list":
		var out struct {
			Credentials []credentialMeta `json:"credentials"`
		}
		if err := c.Do(ctx, `query($c:String){credentials(customer:$c){`+credentialFields+`}}`, map[string]any{"c": customer}, &out); err != nil {
			return fail(err)
		}
		if o.out.JSON() {
			list := make([]credentialJSON, 0, len(out.Credentials))
			for _, m := range out.Credentials {
				list = append(list, m.json())
			}
			return printJSON(stdout, stderr, struct {
				Credentials []credentialJSON `json:"credentials"`
			}{list})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CUSTOMER\tNAME\tVERSION\tUPDATED\tBY\tFIELDS\tPROCESSES")
		for _, m := range out.Credentials {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", m.Customer, m.Name, m.Version,
				m.UpdatedAt.Local().Format("2006-01-02 15:04"), m.UpdatedBy, strings.Join(m.Fields, ","), orNone(m.Processes))
		}
		_ = tw.Flush()
	case "delete":
		if !needName() {
			return 2
		}
		if err := c.Do(ctx, `mutation($c:String,$n:String!){deleteCredential(customer:$c,name:$n)}`, map[string]any{"c": customer, "n": o.name}, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "deleted %s with every version\n", o.name)
	case "bind", "unbind":
		if !needName() {
			return 2
		}
		if len(o.procs) != 1 {
			fmt.Fprintf(stderr, "rpacloud credential %s: give exactly one --process\n", sub)
			return 2
		}
		field := sub + "Credential"
		var out map[string]credentialMeta
		q := fmt.Sprintf(`mutation($c:String,$n:String!,$p:String!){%s(customer:$c,name:$n,process:$p){%s}}`, field, credentialFields)
		if err := c.Do(ctx, q, map[string]any{"c": customer, "n": o.name, "p": o.procs[0]}, &out); err != nil {
			return fail(err)
		}
		if o.out.JSON() {
			return printJSON(stdout, stderr, out[field].json())
		}
		fmt.Fprintf(stdout, "%s/%s is used by: %s\n", out[field].Customer, out[field].Name, orNone(out[field].Processes))
	}
	return 0
}

// readSecretInput builds the secret part of a CredentialInput from the
// flags, standard input or a file; never from an argument.
func readSecretInput(stdin io.Reader, user string, pwStdin bool, fromFile string) (map[string]any, error) {
	in := map[string]any{}
	if fromFile != "" {
		if pwStdin {
			return nil, errors.New("--password-stdin and --from-file exclude each other")
		}
		var b []byte
		var err error
		if fromFile == "-" {
			b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
		} else {
			b, err = os.ReadFile(fromFile)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", fromFile, err)
		}
		var f secretFile
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			// The decoder's message may quote the file; say only where.
			return nil, fmt.Errorf("%s is not a JSON object with username, password, totp_seed and fields", fromFile)
		}
		setIf(in, "username", f.Username)
		setIf(in, "password", f.Password)
		setIf(in, "totpSeed", f.TOTPSeed)
		if len(f.Fields) > 0 {
			var fields []map[string]string
			for k, v := range f.Fields {
				fields = append(fields, map[string]string{"name": k, "value": v})
			}
			in["fields"] = fields
		}
	}
	if user != "" {
		in["username"] = user
	}
	if pwStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read the password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return nil, errors.New("--password-stdin: standard input holds no password")
		}
		in["password"] = pw
	}
	return in, nil
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, ", ")
}

// devVault gives `rpacloud dev` a Vault and says which: the one at
// VAULT_ADDR (token from VAULT_TOKEN), else a Vault server it starts with
// its data in DATA_DIR/vault (kept across restarts, unsealed by the key
// beside it) when a vault binary is found, else none, and then credential
// features are off (there is no plain-text fallback). A vault block in
// --config wins over all three. The returned func stops what it started.
func devVault(ctx context.Context, cfg *config.Config, dataDir string, stdout io.Writer) (func(), error) {
	nothing := func() {}
	if cfg.Vault != nil {
		fmt.Fprintf(stdout, "vault: using %s from the configuration's vault block\n", cfg.Vault.Address)
		return nothing, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nothing, fmt.Errorf("data directory %s: %w", dataDir, err)
	}
	tokenFile := filepath.Join(dataDir, "vault.token")
	if addr := os.Getenv("VAULT_ADDR"); addr != "" {
		tok := os.Getenv("VAULT_TOKEN")
		if tok == "" {
			return nothing, errors.New("VAULT_ADDR is set but VAULT_TOKEN is not: set both, or unset VAULT_ADDR to start a dev Vault")
		}
		if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			return nothing, fmt.Errorf("vault token file: %w", err)
		}
		// Robots started by this process must not inherit the token.
		_ = os.Unsetenv("VAULT_TOKEN")
		cfg.Vault = &config.Vault{Address: addr, AuthMethod: "token", TokenFile: tokenFile,
			Mount: config.DefaultVaultMount, Prefix: config.DefaultVaultPrefix}
		fmt.Fprintf(stdout, "vault: using VAULT_ADDR=%s (token from VAULT_TOKEN)\n", addr)
		return nothing, nil
	}
	bin, err := devvault.Find()
	if err != nil {
		fmt.Fprintf(stdout, "vault: none: VAULT_ADDR is not set and %v\n  credential features are OFF: processes that bind credentials fail their attempts\n", err)
		return nothing, nil
	}
	vaultDir := filepath.Join(dataDir, "vault")
	srv, err := devvault.StartPersistent(ctx, bin, vaultDir, config.DefaultVaultMount, devvault.Options{})
	if err != nil {
		return nothing, fmt.Errorf("start a Vault server with %s: %w", bin, err)
	}
	if err := os.WriteFile(tokenFile, []byte(srv.RootToken+"\n"), 0o600); err != nil {
		srv.Stop()
		return nothing, fmt.Errorf("vault token file: %w", err)
	}
	cfg.Vault = &config.Vault{Address: srv.Addr, AuthMethod: "token", TokenFile: tokenFile,
		Mount: config.DefaultVaultMount, Prefix: config.DefaultVaultPrefix}
	fmt.Fprintf(stdout, "vault: started a Vault server at %s (%s) keeping credentials in %s across restarts\n  its unseal key and root token are in %s: for this machine only\n", srv.Addr, bin, vaultDir, filepath.Join(vaultDir, devvault.InitFile))
	return func() { srv.Stop(); _ = os.Remove(tokenFile) }, nil
}
