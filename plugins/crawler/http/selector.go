package httpcrawler

import (
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/net/html"
)

// A small CSS subset, enough for forms and receipts without a browser:
// comma-separated compound selectors of a tag name, #id, .class, [attr]
// and [attr=value] (value optionally quoted). No combinators.
type compound struct {
	tag     string
	id      string
	classes []string
	attrs   [][2]string // name, value ("\x00" = any value)
}

const anyValue = "\x00"

func parseSelector(s string) ([]compound, error) {
	var out []compound
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" || strings.ContainsAny(part, " >+~") {
			return nil, fmt.Errorf("selector %q: only tag, #id, .class and [attr=value] without combinators are supported", s)
		}
		var c compound
		i := 0
		readName := func() string {
			j := i
			for j < len(part) && !strings.ContainsRune("#.[:()", rune(part[j])) {
				j++
			}
			n := part[i:j]
			i = j
			return n
		}
		c.tag = strings.ToLower(readName())
		for i < len(part) {
			switch part[i] {
			case '#':
				i++
				c.id = readName()
			case '.':
				i++
				c.classes = append(c.classes, readName())
			case '[':
				end := strings.IndexByte(part[i:], ']')
				if end < 0 {
					return nil, fmt.Errorf("selector %q: unclosed [", s)
				}
				body := part[i+1 : i+end]
				i += end + 1
				name, val, ok := strings.Cut(body, "=")
				if !ok {
					val = anyValue
				} else {
					val = strings.Trim(val, `"'`)
				}
				c.attrs = append(c.attrs, [2]string{strings.TrimSpace(name), val})
			default:
				return nil, fmt.Errorf("selector %q: unexpected %q", s, part[i])
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func (c compound) match(n *html.Node) bool {
	if n.Type != html.ElementNode || (c.tag != "" && c.tag != "*" && n.Data != c.tag) {
		return false
	}
	if c.id != "" {
		if v, _ := attr(n, "id"); v != c.id {
			return false
		}
	}
	if len(c.classes) > 0 {
		v, _ := attr(n, "class")
		have := strings.Fields(v)
		for _, want := range c.classes {
			found := false
			for _, h := range have {
				found = found || h == want
			}
			if !found {
				return false
			}
		}
	}
	for _, a := range c.attrs {
		v, ok := attr(n, a[0])
		if !ok || (a[1] != anyValue && v != a[1]) {
			return false
		}
	}
	return true
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// selectHTML returns the text (or the attribute) of every element of doc
// that matches sel, in document order.
func selectHTML(doc []byte, sel, attribute string) ([]string, error) {
	cs, err := parseSelector(sel)
	if err != nil {
		return nil, err
	}
	root, err := html.Parse(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("parse HTML: %w", err)
	}
	var out []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for _, c := range cs {
			if c.match(n) {
				if attribute == "" {
					out = append(out, text(n))
				} else if v, ok := attr(n, attribute); ok {
					out = append(out, v)
				}
				break
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(root)
	return out, nil
}
