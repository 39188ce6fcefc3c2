package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A layer cannot write outside the directory it is unpacked into: not
// through a symlinked parent, not by hard-linking a file outside and
// truncating it through the link.
func TestUntarStaysInside(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	layer := func(hs ...tar.Header) *bytes.Buffer {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			h.Uid, h.Gid = uid, gid
			if h.Mode == 0 {
				h.Mode = 0o644
			}
			data := []byte("evil")
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(data))
			}
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				tw.Write(data)
			}
		}
		tw.Close()
		return &b
	}
	for name, l := range map[string]*bytes.Buffer{
		"symlinked parent": layer(tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: outside}, tar.Header{Name: "a/victim", Typeflag: tar.TypeReg}),
		"relative escape":  layer(tar.Header{Name: "b", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../" + outside}, tar.Header{Name: "b/victim", Typeflag: tar.TypeReg}),
		"hard link out":    layer(tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../" + filepath.Base(outside) + "/victim"}, tar.Header{Name: "h", Typeflag: tar.TypeReg}),
		"dot-dot name":     layer(tar.Header{Name: "../victim", Typeflag: tar.TypeReg}),
	} {
		dir := filepath.Join(t.TempDir(), "root")
		if err := untar(l, dir); err == nil {
			t.Errorf("%s: unpacked without an error", name)
		}
		if b, _ := os.ReadFile(victim); string(b) != "keep" {
			t.Fatalf("%s: the file outside was changed to %q", name, b)
		}
	}
	// A link that stays inside is fine.
	dir := filepath.Join(t.TempDir(), "root")
	ok := layer(tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755}, tar.Header{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"}, tar.Header{Name: "bin/tool", Typeflag: tar.TypeReg, Mode: 0o755},
		tar.Header{Name: "usr/bin/same", Typeflag: tar.TypeLink, Linkname: "usr/bin/tool"})
	if err := untar(ok, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "usr/bin/same")); err != nil || string(b) != "evil" {
		t.Fatalf("links inside: %q %v", b, err)
	}
}
