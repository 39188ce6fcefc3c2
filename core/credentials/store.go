package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials/layout"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
)

// Meta is what anybody may know about a credential: never its values.
type Meta struct {
	Customer  string
	Name      string
	Version   int
	CreatedAt time.Time
	UpdatedAt time.Time
	UpdatedBy string
	Fields    []string // names of the fields it holds
}

// custom metadata keys rpacloud keeps on each credential.
const (
	metaFields    = "rpacloud_fields"
	metaUpdatedBy = "rpacloud_updated_by"
)

// MaxValueLen bounds one field's value; logins are short, and a huge value
// is more likely a mistake (a file pasted into the wrong field).
const MaxValueLen = 16 << 10

// CheckSecret validates a secret before it is stored. The error names the
// field, never the value.
func CheckSecret(sec secret.Secret) error {
	if sec.Username == "" && sec.Password == "" && sec.TOTPSeed == "" && len(sec.Extra) == 0 {
		return fmt.Errorf("%w: a credential needs at least one field (username, password, totp seed or an extra field)", secret.ErrBadInput)
	}
	if len(sec.Extra) > 32 {
		return fmt.Errorf("%w: %d extra fields, at most 32", secret.ErrBadInput, len(sec.Extra))
	}
	for k, v := range sec.Extra {
		if err := layout.CheckField(k); err != nil {
			return fmt.Errorf("%w: %v", secret.ErrBadInput, err)
		}
		switch k {
		case layout.FieldUsername, layout.FieldPassword, layout.FieldTOTPSeed:
			return fmt.Errorf("%w: extra field %q is a standard field; set it directly", secret.ErrBadInput, k)
		}
		if len(v) > MaxValueLen {
			return fmt.Errorf("%w: field %q is longer than %d bytes", secret.ErrBadInput, k, MaxValueLen)
		}
	}
	for name, v := range map[string]string{"username": sec.Username, "password": sec.Password, "totp_seed": sec.TOTPSeed} {
		if len(v) > MaxValueLen {
			return fmt.Errorf("%w: field %q is longer than %d bytes", secret.ErrBadInput, name, MaxValueLen)
		}
	}
	return nil
}

func secretData(sec secret.Secret) map[string]any {
	d := map[string]any{}
	for k, v := range sec.Extra {
		d[k] = v
	}
	if sec.Username != "" {
		d[layout.FieldUsername] = sec.Username
	}
	if sec.Password != "" {
		d[layout.FieldPassword] = sec.Password
	}
	if sec.TOTPSeed != "" {
		d[layout.FieldTOTPSeed] = sec.TOTPSeed
	}
	return d
}

// Put stores a new credential; it fails with secret.ErrExists when the name is
// taken (use Rotate to replace a credential's values).
func (s *Service) Put(ctx context.Context, ref layout.Ref, sec secret.Secret, by string) (Meta, error) {
	return s.write(ctx, ref, sec, by, false)
}

// Rotate stores a new version of an existing credential; robots that
// already hold the old version finish with it, every later grant delivers
// the new one. It fails with secret.ErrNotFound when there is no such credential.
func (s *Service) Rotate(ctx context.Context, ref layout.Ref, sec secret.Secret, by string) (Meta, error) {
	return s.write(ctx, ref, sec, by, true)
}

func (s *Service) write(ctx context.Context, ref layout.Ref, sec secret.Secret, by string, rotate bool) (Meta, error) {
	if s == nil {
		return Meta{}, secret.ErrOff
	}
	if err := ref.Check(); err != nil {
		return Meta{}, fmt.Errorf("%w: %v", secret.ErrBadInput, err)
	}
	if err := CheckSecret(sec); err != nil {
		return Meta{}, fmt.Errorf("credential %q: %w", ref, err)
	}
	op := "store"
	cas := 0 // KV v2 check-and-set 0: only if the key does not exist
	if rotate {
		op = "rotate"
		m, err := s.Meta(ctx, ref)
		if err != nil {
			return Meta{}, err
		}
		cas = m.Version // and rotation never overwrites a concurrent one
	}
	wctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.client.Logical().WriteWithContext(wctx, s.lay.DataPath(ref), map[string]any{
		"options": map[string]any{"cas": cas},
		"data":    secretData(sec),
	})
	if err != nil {
		e := opError(op, ref.String(), err)
		if rotate && errors.Is(e, secret.ErrExists) {
			return Meta{}, &secret.Error{Op: op, Credential: ref.String(), Kind: secret.ErrVault, Detail: "rotated concurrently by someone else; try again"}
		}
		return Meta{}, e
	}
	_, err = s.client.Logical().WriteWithContext(wctx, s.lay.MetadataPath(ref), map[string]any{
		"custom_metadata": map[string]string{metaFields: strings.Join(sec.Fields(), ","), metaUpdatedBy: by},
	})
	if err != nil {
		return Meta{}, opError(op+" metadata of", ref.String(), err)
	}
	return s.Meta(ctx, ref)
}

// Meta reads a credential's metadata.
func (s *Service) Meta(ctx context.Context, ref layout.Ref) (Meta, error) {
	if s == nil {
		return Meta{}, secret.ErrOff
	}
	if err := ref.Check(); err != nil {
		return Meta{}, fmt.Errorf("%w: %v", secret.ErrBadInput, err)
	}
	sec, err := s.read(ctx, s.lay.MetadataPath(ref), nil)
	if err != nil {
		return Meta{}, opError("read metadata of", ref.String(), err)
	}
	if sec == nil || sec.Data == nil {
		return Meta{}, &secret.Error{Op: "read metadata of", Credential: ref.String(), Kind: secret.ErrNotFound}
	}
	return metaFrom(ref, sec.Data)
}

func metaFrom(ref layout.Ref, d map[string]any) (Meta, error) {
	m := Meta{Customer: ref.Customer, Name: ref.Name}
	if v, ok := d["current_version"].(json.Number); ok {
		n, _ := v.Int64()
		m.Version = int(n)
	}
	parse := func(v any) time.Time {
		s, _ := v.(string)
		t, _ := time.Parse(time.RFC3339Nano, s)
		return t
	}
	m.CreatedAt = parse(d["created_time"])
	m.UpdatedAt = parse(d["updated_time"])
	if vs, ok := d["versions"].(map[string]any); ok {
		if v, ok := vs[fmt.Sprint(m.Version)].(map[string]any); ok {
			m.UpdatedAt = parse(v["created_time"])
		}
	}
	if cm, ok := d["custom_metadata"].(map[string]any); ok {
		if f, _ := cm[metaFields].(string); f != "" {
			m.Fields = strings.Split(f, ",")
		}
		m.UpdatedBy, _ = cm[metaUpdatedBy].(string)
	}
	if m.Version == 0 {
		return m, &secret.Error{Op: "read metadata of", Credential: ref.String(), Kind: secret.ErrNotFound, Detail: "every version is deleted"}
	}
	return m, nil
}

// List returns the metadata of every credential of customer, by name.
func (s *Service) List(ctx context.Context, customer string) ([]Meta, error) {
	if s == nil {
		return nil, secret.ErrOff
	}
	if err := layout.CheckCustomer(customer); err != nil {
		return nil, fmt.Errorf("%w: %v", secret.ErrBadInput, err)
	}
	var names []string
	var walk func(sub string, depth int) error
	walk = func(sub string, depth int) error {
		if depth > 8 {
			return nil
		}
		p := s.lay.CustomerListPath(customer)
		if sub != "" {
			p += "/" + strings.TrimSuffix(sub, "/")
		}
		lctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		sec, err := s.client.Logical().ListWithContext(lctx, p)
		if err != nil {
			return opError("list", customer+"/"+sub, err)
		}
		if sec == nil {
			return nil
		}
		keys, _ := sec.Data["keys"].([]any)
		for _, k := range keys {
			ks, _ := k.(string)
			if strings.HasSuffix(ks, "/") {
				if err := walk(sub+ks, depth+1); err != nil {
					return err
				}
				continue
			}
			names = append(names, sub+ks)
		}
		return nil
	}
	if err := walk("", 0); err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Meta, 0, len(names))
	for _, n := range names {
		m, err := s.Meta(ctx, layout.Ref{Customer: customer, Name: n})
		if errors.Is(err, secret.ErrNotFound) || errors.Is(err, secret.ErrBadInput) {
			continue // deleted meanwhile, or not made by rpacloud
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Delete removes a credential and every version of it.
func (s *Service) Delete(ctx context.Context, ref layout.Ref) error {
	if s == nil {
		return secret.ErrOff
	}
	if _, err := s.Meta(ctx, ref); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.client.Logical().DeleteWithContext(dctx, s.lay.MetadataPath(ref)); err != nil {
		return opError("delete", ref.String(), err)
	}
	return nil
}

// Resolve reads the secret a configuration reference points at
// ("vault:secret/rpacloud/vendors/uipath#client_secret": a vendor's API
// key, a cloud key), for the daemon's own use, such as configuring a
// plugin. The path starts with the KV v2 mount; the value is never logged.
func (s *Service) Resolve(ctx context.Context, ref config.VaultRef) (string, error) {
	if s == nil {
		return "", &secret.Error{Op: "resolve", Credential: ref.String(), Kind: secret.ErrOff}
	}
	rest, ok := strings.CutPrefix(ref.Path, s.cfg.Mount+"/")
	if !ok {
		return "", &secret.Error{Op: "resolve", Credential: ref.String(), Kind: secret.ErrBadInput, Detail: "the path must start with the KV mount " + s.cfg.Mount + "/"}
	}
	sec, err := s.read(ctx, s.cfg.Mount+"/data/"+rest, nil)
	if err != nil {
		return "", opError("resolve", ref.String(), err)
	}
	var data map[string]any
	if sec != nil {
		data, _ = sec.Data["data"].(map[string]any)
	}
	v, ok := data[ref.Field].(string)
	if !ok {
		return "", &secret.Error{Op: "resolve", Credential: ref.String(), Kind: secret.ErrNotFound}
	}
	return v, nil
}
