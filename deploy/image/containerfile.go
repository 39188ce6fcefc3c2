// Package image builds rpacloud's container images from
// deploy/image/Containerfile without a container engine: the Debian stage's
// root filesystem from mmdebstrap (its RUN instructions run in that root
// with chroot), the build stage's binaries from the host's go build, and
// the result as an OCI image layout written with go-containerregistry.
//
// It reads the same Containerfile an engine builds, so the two cannot
// drift, but it understands only the instructions and forms that file
// uses; anything else is refused with its file:line rather than built
// differently from what an engine would do.
package image

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Instruction is one Containerfile instruction, continuation lines joined.
type Instruction struct {
	Line  int    // first line, 1-based
	Cmd   string // upper case: FROM, RUN, COPY, ...
	Flags map[string]string
	Rest  string // the text after the keyword and its --flags
}

// Stage kinds the builder knows how to make.
const (
	stageGo     = "go"     // FROM golang:X: host go build
	stageDebian = "debian" // FROM debian:SUITE[-slim]: mmdebstrap + RUN in chroot
	stageChild  = "child"  // FROM an earlier stage: COPY and image configuration only
)

// Stage is one FROM and what follows it.
type Stage struct {
	Name   string
	From   string
	Kind   string
	Parent *Stage // for stageChild
	Line   int
	Insts  []Instruction

	// stageGo
	GoVersion string // "1.26" from golang:1.26-bookworm
	// stageDebian
	Suite string // bookworm
	Slim  bool
}

// File is a parsed Containerfile.
type File struct {
	Name   string
	Stages []*Stage
}

// Stage returns the stage called name, or nil.
func (f *File) Stage(name string) *Stage {
	for _, s := range f.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// errAt is an error naming the Containerfile and line.
func errAt(file string, line int, format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, a...))
}

var (
	stageNameRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)
	golangRE    = regexp.MustCompile(`^golang:([0-9]+\.[0-9]+)(\.[0-9]+)?-([a-z]+)$`)
	debianRE    = regexp.MustCompile(`^debian:([a-z]+)(-slim)?$`)
	flagRE      = regexp.MustCompile(`^--([a-z-]+)(?:=(\S+))?$`)
)

// allowed lists the instructions each kind of stage may hold; FROM starts
// a stage and is not listed.
var allowed = map[string]map[string]bool{
	stageGo:     {"WORKDIR": true, "COPY": true, "RUN": true, "ENV": true},
	stageDebian: {"RUN": true, "ENV": true, "LABEL": true},
	stageChild: {"COPY": true, "ENV": true, "LABEL": true, "USER": true, "WORKDIR": true,
		"VOLUME": true, "EXPOSE": true, "ENTRYPOINT": true, "CMD": true},
}

// Parse reads a Containerfile. name is used in errors.
func Parse(name string, src []byte) (*File, error) {
	insts, err := split(name, src)
	if err != nil {
		return nil, err
	}
	f := &File{Name: name}
	var cur *Stage
	for _, in := range insts {
		if in.Cmd == "FROM" {
			st, err := f.from(in)
			if err != nil {
				return nil, err
			}
			f.Stages = append(f.Stages, st)
			cur = st
			continue
		}
		if cur == nil {
			return nil, errAt(name, in.Line, "%s before the first FROM", in.Cmd)
		}
		if !allowed[cur.Kind][in.Cmd] {
			return nil, errAt(name, in.Line, "%s is not supported in a %s stage by the engine-less builder (deploy/image); supported: %s",
				in.Cmd, kindDesc[cur.Kind], keys(allowed[cur.Kind]))
		}
		if err := checkFlags(name, cur, in); err != nil {
			return nil, err
		}
		cur.Insts = append(cur.Insts, in)
	}
	if len(f.Stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", name)
	}
	return f, nil
}

var kindDesc = map[string]string{
	stageGo:     "golang (build)",
	stageDebian: "debian (root filesystem)",
	stageChild:  "derived (FROM an earlier stage)",
}

func keys(m map[string]bool) string {
	var out []string
	for _, k := range []string{"RUN", "COPY", "ENV", "LABEL", "USER", "WORKDIR", "VOLUME", "EXPOSE", "ENTRYPOINT", "CMD"} {
		if m[k] {
			out = append(out, k)
		}
	}
	return strings.Join(out, ", ")
}

func (f *File) from(in Instruction) (*Stage, error) {
	if len(in.Flags) > 0 {
		return nil, errAt(f.Name, in.Line, "FROM takes no --flags here (no --platform)")
	}
	w := strings.Fields(in.Rest)
	st := &Stage{Line: in.Line}
	switch {
	case len(w) == 3 && strings.EqualFold(w[1], "AS"):
		st.Name = w[2]
		if !stageNameRE.MatchString(st.Name) {
			return nil, errAt(f.Name, in.Line, "stage name %q: lower-case letters, digits, '.', '_' and '-'", st.Name)
		}
		if f.Stage(st.Name) != nil {
			return nil, errAt(f.Name, in.Line, "stage %q defined twice", st.Name)
		}
	case len(w) == 1:
		return nil, errAt(f.Name, in.Line, "FROM %s: every stage needs a name (FROM IMAGE AS NAME)", w[0])
	default:
		return nil, errAt(f.Name, in.Line, "FROM: want IMAGE AS NAME, got %q", in.Rest)
	}
	st.From = w[0]
	if p := f.Stage(st.From); p != nil {
		st.Kind, st.Parent = stageChild, p
		if p.Kind == stageGo {
			return nil, errAt(f.Name, in.Line, "FROM %s: a golang stage is a build stage; derive images from a debian stage", p.Name)
		}
		return st, nil
	}
	if m := golangRE.FindStringSubmatch(st.From); m != nil {
		st.Kind, st.GoVersion = stageGo, m[1]
		return st, nil
	}
	if m := debianRE.FindStringSubmatch(st.From); m != nil {
		st.Kind, st.Suite, st.Slim = stageDebian, m[1], m[2] != ""
		return st, nil
	}
	return nil, errAt(f.Name, in.Line, "FROM %s: the engine-less builder knows golang:X.Y-SUITE, debian:SUITE[-slim] and earlier stages only (no digests or registries)", st.From)
}

// checkFlags allows the --flags the builder implements.
func checkFlags(file string, st *Stage, in Instruction) error {
	for k := range in.Flags {
		ok := in.Cmd == "COPY" && (k == "from" || (st.Kind == stageChild && (k == "chown" || k == "chmod")))
		if !ok {
			return errAt(file, in.Line, "%s --%s is not supported by the engine-less builder", in.Cmd, k)
		}
		if in.Flags[k] == "" {
			return errAt(file, in.Line, "%s --%s needs a value (--%s=...)", in.Cmd, k, k)
		}
	}
	if in.Cmd == "COPY" && in.Flags["from"] != "" {
		if st.Kind != stageChild {
			return errAt(file, in.Line, "COPY --from is supported in derived stages only")
		}
	}
	if in.Cmd == "RUN" && strings.Contains(in.Rest, "<<") {
		return errAt(file, in.Line, "RUN with a heredoc is not supported by the engine-less builder")
	}
	if (in.Cmd == "RUN" || in.Cmd == "ENTRYPOINT" || in.Cmd == "CMD") && strings.TrimSpace(in.Rest) == "" {
		return errAt(file, in.Line, "%s without a command", in.Cmd)
	}
	return nil
}

// split turns the text into instructions: comments and blank lines
// dropped, lines ending in a backslash joined to the next.
func split(name string, src []byte) ([]Instruction, error) {
	var out []Instruction
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var (
		buf   strings.Builder
		start int
		n     int
	)
	flush := func() error {
		text := strings.TrimSpace(buf.String())
		buf.Reset()
		if text == "" {
			return nil
		}
		kw, rest, _ := strings.Cut(text, " ")
		in := Instruction{Line: start, Cmd: strings.ToUpper(kw), Flags: map[string]string{}}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			tok, after, _ := strings.Cut(rest, " ")
			m := flagRE.FindStringSubmatch(tok)
			if m == nil {
				return errAt(name, start, "%s: flag %q: want --name=value", in.Cmd, tok)
			}
			if _, dup := in.Flags[m[1]]; dup {
				return errAt(name, start, "%s: --%s given twice", in.Cmd, m[1])
			}
			in.Flags[m[1]] = m[2]
			rest = strings.TrimSpace(after)
		}
		in.Rest = rest
		out = append(out, in)
		return nil
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "#") {
			continue // a comment, also between continuation lines as engines allow
		}
		if buf.Len() == 0 {
			if trim == "" {
				continue
			}
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			buf.WriteString(strings.TrimSuffix(line, "\\"))
			buf.WriteByte(' ')
			continue
		}
		buf.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if buf.Len() > 0 {
		return nil, errAt(name, start, "the file ends inside a continued line")
	}
	return out, nil
}

// execForm decodes a JSON array (ENTRYPOINT, CMD, VOLUME); the shell form
// is refused because an engine wraps it in /bin/sh -c with signals not
// reaching the daemon.
func execForm(file string, in Instruction) ([]string, error) {
	var v []string
	if !strings.HasPrefix(in.Rest, "[") {
		return nil, errAt(file, in.Line, "%s: use the JSON (exec) form, e.g. [\"/usr/local/bin/rpacloud\"]", in.Cmd)
	}
	if err := json.Unmarshal([]byte(in.Rest), &v); err != nil {
		return nil, errAt(file, in.Line, "%s: not a JSON array of strings: %v", in.Cmd, err)
	}
	if len(v) == 0 {
		return nil, errAt(file, in.Line, "%s: empty", in.Cmd)
	}
	return v, nil
}

// keyValues decodes ENV and LABEL's KEY=value pairs. Quotes and $
// expansion are refused rather than interpreted differently from an engine.
func keyValues(file string, in Instruction) ([][2]string, error) {
	if strings.ContainsAny(in.Rest, "\"'$\\") {
		return nil, errAt(file, in.Line, "%s: quotes, backslashes and $ are not supported by the engine-less builder", in.Cmd)
	}
	var out [][2]string
	for _, w := range strings.Fields(in.Rest) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, errAt(file, in.Line, "%s: want KEY=value, got %q", in.Cmd, w)
		}
		out = append(out, [2]string{k, v})
	}
	if len(out) == 0 {
		return nil, errAt(file, in.Line, "%s: empty", in.Cmd)
	}
	return out, nil
}

// absPath checks a path inside the image.
func absPath(file string, in Instruction, p string) (string, error) {
	if !path.IsAbs(p) || path.Clean(p) != p || strings.ContainsAny(p, "*?[$\\") {
		return "", errAt(file, in.Line, "%s: %q: want a clean absolute path without wildcards or variables", in.Cmd, p)
	}
	return p, nil
}
