package fakeorch

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A subset of OData $filter: comparisons (eq ne gt ge lt le) of a property
// with a string ('it”s'), number, true/false/null or a date-time literal,
// combined with and/or and parentheses. Enough for what clients send.
type filter func(e map[string]any) bool

type lexer struct {
	toks []string
	pos  int
}

func lex(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case c == '(' || c == ')':
			out = append(out, string(c))
			i++
		case c == '\'':
			j := i + 1
			var b strings.Builder
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("unterminated string literal at position %d", i)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, "'"+b.String())
			i = j + 1
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '(' && s[j] != ')' {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out, nil
}

func parseFilter(s string, props map[string]bool) (filter, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	l := &lexer{toks: toks}
	f, err := l.or(props)
	if err != nil {
		return nil, err
	}
	if l.pos != len(l.toks) {
		return nil, fmt.Errorf("syntax error at '%s'", l.toks[l.pos])
	}
	return f, nil
}

func (l *lexer) peek() string {
	if l.pos < len(l.toks) {
		return l.toks[l.pos]
	}
	return ""
}

func (l *lexer) or(props map[string]bool) (filter, error) {
	left, err := l.and(props)
	if err != nil {
		return nil, err
	}
	for l.peek() == "or" {
		l.pos++
		right, err := l.and(props)
		if err != nil {
			return nil, err
		}
		a, b := left, right
		left = func(e map[string]any) bool { return a(e) || b(e) }
	}
	return left, nil
}

func (l *lexer) and(props map[string]bool) (filter, error) {
	left, err := l.factor(props)
	if err != nil {
		return nil, err
	}
	for l.peek() == "and" {
		l.pos++
		right, err := l.factor(props)
		if err != nil {
			return nil, err
		}
		a, b := left, right
		left = func(e map[string]any) bool { return a(e) && b(e) }
	}
	return left, nil
}

func (l *lexer) factor(props map[string]bool) (filter, error) {
	if l.peek() == "(" {
		l.pos++
		f, err := l.or(props)
		if err != nil {
			return nil, err
		}
		if l.peek() != ")" {
			return nil, fmt.Errorf("')' expected")
		}
		l.pos++
		return f, nil
	}
	if l.pos+3 > len(l.toks) {
		return nil, fmt.Errorf("incomplete comparison")
	}
	prop, op, lit := l.toks[l.pos], l.toks[l.pos+1], l.toks[l.pos+2]
	l.pos += 3
	if !props[prop] {
		// Orchestrator's own wording, capital included.
		return nil, fmt.Errorf("could not find a property named '%s'", prop)
	}
	var want any
	switch {
	case strings.HasPrefix(lit, "'"):
		want = lit[1:]
	case lit == "null":
		want = nil
	case lit == "true" || lit == "false":
		want = lit == "true"
	default:
		if n, err := strconv.ParseFloat(lit, 64); err == nil {
			want = n
		} else if t, err := time.Parse(time.RFC3339Nano, lit); err == nil {
			want = t
		} else {
			return nil, fmt.Errorf("unrecognized literal '%s'", lit)
		}
	}
	cmp := map[string]func(int) bool{
		"eq": func(c int) bool { return c == 0 }, "ne": func(c int) bool { return c != 0 },
		"gt": func(c int) bool { return c > 0 }, "ge": func(c int) bool { return c >= 0 },
		"lt": func(c int) bool { return c < 0 }, "le": func(c int) bool { return c <= 0 },
	}[op]
	if cmp == nil {
		return nil, fmt.Errorf("unknown operator '%s'", op)
	}
	return func(e map[string]any) bool {
		c, ok := compare(e[prop], want)
		return ok && cmp(c)
	}, nil
}

func compare(have, want any) (int, bool) {
	switch w := want.(type) {
	case nil:
		if have == nil {
			return 0, true
		}
		return 1, true
	case string:
		h, ok := have.(string)
		return strings.Compare(h, w), ok
	case bool:
		h, ok := have.(bool)
		if !ok {
			return 0, false
		}
		if h == w {
			return 0, true
		}
		return 1, true
	case float64:
		var h float64
		switch v := have.(type) {
		case int64:
			h = float64(v)
		case int:
			h = float64(v)
		case float64:
			h = v
		default:
			return 0, false
		}
		switch {
		case h < w:
			return -1, true
		case h > w:
			return 1, true
		}
		return 0, true
	case time.Time:
		h, ok := have.(time.Time)
		if !ok {
			return 0, false
		}
		return h.Compare(w), true
	}
	return 0, false
}
