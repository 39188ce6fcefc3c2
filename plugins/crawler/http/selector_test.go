package httpcrawler

import (
	"reflect"
	"testing"
)

func TestSelectHTML(t *testing.T) {
	doc := []byte(`<html><body><form><input type="hidden" name="csrf" value="abc">
<p class="field-error big" data-field="period">period: bad</p><p class="field-error">rate:  bad</p>
<span id="receipt">R-1</span><input name="x"></form></body></html>`)
	cases := []struct {
		sel, attr string
		want      []string
	}{
		{"input[name=csrf]", "value", []string{"abc"}},
		{"input[name='csrf']", "value", []string{"abc"}},
		{".field-error", "", []string{"period: bad", "rate: bad"}},
		{"p.field-error.big", "data-field", []string{"period"}},
		{"#receipt", "", []string{"R-1"}},
		{"#receipt, [data-field]", "", []string{"period: bad", "R-1"}},
		{"input[value]", "name", []string{"csrf"}},
		{"#none", "", nil},
	}
	for _, c := range cases {
		got, err := selectHTML(doc, c.sel, c.attr)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("selectHTML(%q, %q) = %q, %v; want %q", c.sel, c.attr, got, err, c.want)
		}
	}
	for _, bad := range []string{"form input", "a > b", "[x", "a:first-child"} {
		if _, err := selectHTML(doc, bad, ""); err == nil {
			t.Errorf("selector %q accepted", bad)
		}
	}
}

func TestJSONPath(t *testing.T) {
	doc := map[string]any{"a": []any{map[string]any{"b": 1.5}}, "s": "x", "n": nil}
	for path, want := range map[string]string{"a.0.b": "1.5", "$.s": "x", "n": ""} {
		if got, ok := jsonPath(doc, path); !ok || got != want {
			t.Errorf("jsonPath(%q) = %q, %v", path, got, ok)
		}
	}
	if _, ok := jsonPath(doc, "a.1.b"); ok {
		t.Error("out of range found")
	}
}
