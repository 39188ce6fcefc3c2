package layout

import (
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestCheckName(t *testing.T) {
	good := []string{"etax", "etax/acme", "bank/acme-payments", "a.b/c_d/E-9", strings.Repeat("a", MaxNameLen)}
	for _, n := range good {
		if err := CheckName(n); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", n, err)
		}
	}
	bad := []string{"", "/etax", "etax/", "a//b", "../b", "a/../b", "a/./b", ".", "..", "a b", "a/b?c", "vault:secret/x#y",
		"ä", "a\x00b", strings.Repeat("a", MaxNameLen+1)}
	for _, n := range bad {
		if err := CheckName(n); err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", n)
		}
	}
}

func TestCheckCustomer(t *testing.T) {
	for _, c := range []string{"acme", "acme-finance", "ACME_2"} {
		if err := CheckCustomer(c); err != nil {
			t.Errorf("CheckCustomer(%q) = %v", c, err)
		}
	}
	for _, c := range []string{"", "a/b", "..", "財務部", "a b"} {
		if err := CheckCustomer(c); err == nil {
			t.Errorf("CheckCustomer(%q) = nil, want an error", c)
		}
	}
}

func TestCheckField(t *testing.T) {
	for _, f := range []string{"username", "password", "totp_seed", "pin2", "x"} {
		if err := CheckField(f); err != nil {
			t.Errorf("CheckField(%q) = %v", f, err)
		}
	}
	for _, f := range []string{"", "Password", "2fa", "a-b", "a.b", strings.Repeat("a", 65)} {
		if err := CheckField(f); err == nil {
			t.Errorf("CheckField(%q) = nil, want an error", f)
		}
	}
}

func TestPaths(t *testing.T) {
	l := Layout{Mount: "secret", Prefix: "rpacloud"}
	r := Ref{Customer: "acme-finance", Name: "etax/acme"}
	if got, want := l.DataPath(r), "secret/data/rpacloud/acme-finance/etax/acme"; got != want {
		t.Errorf("DataPath = %q, want %q", got, want)
	}
	if got, want := l.MetadataPath(r), "secret/metadata/rpacloud/acme-finance/etax/acme"; got != want {
		t.Errorf("MetadataPath = %q, want %q", got, want)
	}
	if got, want := l.CustomerListPath("acme-hr"), "secret/metadata/rpacloud/acme-hr"; got != want {
		t.Errorf("CustomerListPath = %q, want %q", got, want)
	}
	for _, p := range []string{"secret/metadata/rpacloud/acme/x", "secret/data/rpacloud/acme", "secret/data/other/acme/x",
		"secret/data/rpacloud/acme/../x", "other/data/rpacloud/acme/x", "secret/data/rpacloud//x"} {
		if r, ok := l.ParseDataPath(p); ok {
			t.Errorf("ParseDataPath(%q) = %v, want no match", p, r)
		}
	}
	if err := (Layout{Mount: "kv/team", Prefix: "a/b"}).Check(); err != nil {
		t.Errorf("nested mount/prefix: %v", err)
	}
	if err := (Layout{Mount: "/secret", Prefix: "x"}).Check(); err == nil {
		t.Error("mount with a leading '/' accepted")
	}
}

// Every valid ref round-trips through its data path, under any valid
// layout, and distinct refs never share a path (a department can never be
// handed another department's secret by a naming accident).
func TestLayoutProperties(t *testing.T) {
	seg := rapid.StringMatching(`[A-Za-z0-9_-][A-Za-z0-9_.-]{0,6}`)
	path := rapid.Custom(func(t *rapid.T) string {
		return strings.Join(rapid.SliceOfN(seg, 1, 3).Draw(t, "segs"), "/")
	})
	rapid.Check(t, func(t *rapid.T) {
		l := Layout{Mount: path.Draw(t, "mount"), Prefix: path.Draw(t, "prefix")}
		a := Ref{Customer: seg.Draw(t, "c1"), Name: path.Draw(t, "n1")}
		b := Ref{Customer: seg.Draw(t, "c2"), Name: path.Draw(t, "n2")}
		if a.Check() != nil || b.Check() != nil || l.Check() != nil {
			t.Skip("drew a '.' or '..' segment")
		}
		got, ok := l.ParseDataPath(l.DataPath(a))
		if !ok || got != a {
			t.Fatalf("ParseDataPath(DataPath(%v)) = %v, %v", a, got, ok)
		}
		if a != b && l.DataPath(a) == l.DataPath(b) {
			t.Fatalf("%v and %v share %q", a, b, l.DataPath(a))
		}
	})
}
