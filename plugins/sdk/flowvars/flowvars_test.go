package flowvars

import (
	"errors"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	v, err := New([]byte(`{"company":"C-1","amount":1234.5,"n":3,"lines":[{"x":"a"}],"ok":true,"none":null}`),
		map[string]map[string]string{"etax": {"username": "alice", "password": "s3cret!"}, "etax/acme.cn": {"password": "pw2"}})
	if err != nil {
		t.Fatal(err)
	}
	v.Outputs["receipt"] = "R-9"
	cases := map[string]string{
		"{{input.company}}":                  "C-1",
		"{{ input.amount }}/{{input.n}}":     "1234.5/3",
		"{{input.lines.0.x}}":                "a",
		"{{input.ok}}{{input.none}}":         "true",
		"u={{credentials.etax.username}}":    "u=alice",
		"{{credentials.etax.password}}":      "s3cret!",
		"r {{outputs.receipt}} {not a var}}": "r R-9 {not a var}}",
	}
	for in, want := range cases {
		got, err := v.Expand(in)
		if err != nil || got != want {
			t.Errorf("Expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"{{input.missing}}", "{{input.lines.5.x}}", "{{outputs.nope}}"} {
		var me *MissingError
		if _, err := v.Expand(in); !errors.As(err, &me) {
			t.Errorf("Expand(%q) err = %v, want MissingError", in, err)
		}
	}
	for _, in := range []string{"{{credentials.bank.password}}", "{{credentials.etax.pin}}", "{{env.HOME}}"} {
		_, err := v.Expand(in)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Expand(%q) err = %v", in, err)
		}
	}
	if got := v.Scrub("login alice:s3cret! failed"); got != "login ***:*** failed" {
		t.Errorf("Scrub = %q", got)
	}
	if !v.IsSecret("xx s3cret! yy") || v.IsSecret("public") {
		t.Error("IsSecret")
	}
	if _, err := New([]byte("{bad"), nil); err == nil {
		t.Error("bad JSON accepted")
	}
}
