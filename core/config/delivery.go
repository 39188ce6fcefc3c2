package config

import (
	"github.com/hashicorp/hcl/v2"
)

// PoolSetup is how a pool's VMs are prepared (lifecycle step S2) and
// reached: the software and configuration files the provider applies at
// creation and the gate checks off, and the remote-access protocol.
type PoolSetup struct {
	Software     []string // e.g. "UiPath Robot 24.10", "WPS Office"
	ConfigFiles  []string // paths on the VM, e.g. `C:\rpa\tax.json`
	RemoteAccess string   // "rdp" | "ssh" | "vnc" | "" (none declared)
}

// Documents configures the supporting documents.
type Documents struct {
	Language     string // "en" (default) | "zh"
	Organisation string // shown on every document; default "rpacloud"
	Support      string // who business users call when a run fails
	Timezone     string // IANA zone times are shown in; "" = UTC
}

// Defaults of the documents block.
const (
	DefaultDocumentsLanguage     = "en"
	DefaultDocumentsOrganisation = "rpacloud"
)

var documentsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "language"}, {Name: "organisation"}, {Name: "support"}, {Name: "timezone"},
}}

func (l *loader) decodeDocuments(b *hcl.Block) {
	first := l.single(b, &l.documents)
	c := l.content(b.Body, documentsSchema)
	a := l.attrs(c.Attributes)
	d := Documents{Language: DefaultDocumentsLanguage, Organisation: DefaultDocumentsOrganisation}
	if at := a.str("language", &d.Language); at != nil {
		a.oneOf(at, "language", d.Language, "en", "zh")
	}
	a.str("organisation", &d.Organisation)
	a.str("support", &d.Support)
	if at := a.str("timezone", &d.Timezone); at != nil {
		if err := checkTimezone(d.Timezone); err != nil {
			a.errorf(at.Expr.Range(), "Invalid timezone", "timezone = %q: %s; use an IANA name such as \"Asia/Shanghai\" or \"UTC\".", d.Timezone, err)
		}
	}
	if first {
		l.cfg.Documents = d
	}
}

// decodePoolSetup leaves p.Setup nil when the pool declares none of it.
func decodePoolSetup(a attrs, p *Pool) {
	var set PoolSetup
	declared := false
	for _, key := range []string{"software", "config_files", "remote_access"} {
		if _, ok := a.m[key]; ok {
			declared = true
		}
	}
	if !declared {
		return
	}
	p.Setup = &set
	for _, key := range []string{"software", "config_files"} {
		dst := &set.Software
		if key == "config_files" {
			dst = &set.ConfigFiles
		}
		if _, rngs := a.strs(key, dst); rngs != nil {
			seen := map[string]bool{}
			for i, s := range *dst {
				switch {
				case s == "":
					a.errorf(rngs[i], "Invalid "+key+" entry", "%s entries must not be empty.", key)
				case seen[s]:
					a.errorf(rngs[i], "Duplicate "+key+" entry", "%s lists %q twice.", key, s)
				}
				seen[s] = true
			}
		}
	}
	if at := a.str("remote_access", &set.RemoteAccess); at != nil {
		a.oneOf(at, "remote_access", set.RemoteAccess, "rdp", "ssh", "vnc")
	}
}

// decodeScheduleBooking reads the run-schedule attributes of a schedule
// block: which robot it reserves and how many robots at once.
func decodeScheduleBooking(a attrs, s *Schedule) {
	if at := a.str("robot", &s.Robot); at != nil && !nameRE.MatchString(s.Robot) {
		a.errorf(at.Expr.Range(), "Invalid robot name", "robot = %q is not a robot name.", s.Robot)
	}
	if at := a.int("robots", &s.Robots); at != nil {
		switch {
		case s.Robots < 1:
			a.errorf(at.Expr.Range(), "Invalid robots", "robots = %d: a slot needs 1 robot or more.", s.Robots)
		case s.Robot != "" && s.Robots > 1:
			a.errorf(at.Expr.Range(), "Invalid robots", "robots = %d with robot = %q: a slot pinned to one robot uses exactly one.", s.Robots, s.Robot)
		}
	}
}
