// Package textlimit shortens text to a byte limit without cutting a UTF-8
// character in two: a cut rune would store invalid UTF-8 (which PostgreSQL
// refuses) or show garbage. Hostnames, versions, notes and failure messages
// from robots and operators all pass through it. It imports only the
// standard library, so the robot agent may use it too.
package textlimit

import "unicode/utf8"

// Cut returns at most n bytes of s, ending on a character boundary.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(n, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
