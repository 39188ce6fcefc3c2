package textlimit

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"abc", 0, ""},
		{"abc", -1, ""},
		{"税务局", 4, "税"}, // 3 bytes a character: no half character
		{"税务局", 6, "税务"},
		{"a税", 2, "a"},
	} {
		if got := Cut(c.s, c.n); got != c.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
	s := strings.Repeat("é税🙂x", 50)
	for n := 0; n <= len(s); n++ {
		if got := Cut(s, n); !utf8.ValidString(got) || len(got) > n || len(got) < n-3 {
			t.Fatalf("Cut(_, %d): %d bytes, valid %v", n, len(got), utf8.ValidString(got))
		}
	}
}
