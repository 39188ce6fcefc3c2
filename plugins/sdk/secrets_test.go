package sdk

import "testing"

func TestSecretAttribute(t *testing.T) {
	schema := []ConfigAttribute{{Name: "url"}, {Name: "api_key", Sensitive: true}, {Name: "password", Sensitive: true}}
	for field, want := range map[string]string{"password": "password", "api_key": "api_key", "secret": "api_key", "": "api_key", "url": "api_key"} {
		if got, ok := SecretAttribute(schema, field); !ok || got != want {
			t.Errorf("SecretAttribute(%q) = %q, %v; want %q", field, got, ok, want)
		}
	}
	if _, ok := SecretAttribute([]ConfigAttribute{{Name: "url"}}, "password"); ok {
		t.Error("a plugin without Sensitive attributes took a secret")
	}
}
